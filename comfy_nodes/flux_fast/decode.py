"""The VAE decode of the fast path: the whole latent in one pass when it fits beside what is loaded, ComfyUI's tiled
decode otherwise.

Why: ComfyUI's VAEDecodeTiled (what the plain workflow uses) runs three tiled passes with differently shaped tiles
and averages them, to hide the seams: 0.55 s for an 832x1536 FLUX latent on an H100, against 0.12 s for one pass
(bench/vae_decode.py). Tiling only pays where memory is short. Since ComfyUI 0.3.7x VAEDecodeTiled asks ComfyUI for
one tile's memory, not the whole decode's, so this node asks for exactly that first (the same models are evicted as
by the plain node), then decodes whole where the whole decode fits in what is free (a large card: always) or fits
once ComfyUI evicts at most policy.DECODE_EVICT_MAX_BYTES of other weights (a 16 GB card after sampling: ~2 GiB of
the partly loaded DiT, which the next request reloads from pinned memory for less than tiling costs); tiled where
more would have to go. Free memory is read through the VAE's patcher, which counts memory held by dynamic VRAM
(comfy-aimdo) as free, as ComfyUI's own VAE.decode does. The whole decode is also the exact decode, the one the tiled
average approximates.

Accepts what VAEDecodeTiled accepts; video latents (5-D) always go to ComfyUI's tiled decode.
"""

from __future__ import annotations

import logging
from typing import Any

from .policy import decode_whole

log = logging.getLogger("flux_fast")


def decode(vae: Any, samples: dict, tile_size: int, overlap: int, mode: str) -> Any:
    """IMAGE tensor [B, H, W, C] for `samples` (a LATENT dict), decoded whole or tiled per decode_whole()."""
    import comfy.model_management as mm
    import nodes

    latent = samples["samples"]
    if latent.ndim == 4 and mode != "tiled":
        need = vae.memory_used_decode(latent.shape, vae.vae_dtype)
        tile = max(1, tile_size // vae.spacial_compression_decode())
        tile_need = vae.memory_used_decode((*latent.shape[:2], min(latent.shape[2], tile), min(latent.shape[3], tile)),
                                           vae.vae_dtype)
        mm.load_models_gpu([vae.patcher], memory_required=tile_need, force_full_load=getattr(vae, "disable_offload", False))
        free_memory = getattr(vae.patcher, "get_free_memory", None)   # ComfyUI >= 0.1x: counts dynamic VRAM too
        free = free_memory(vae.device) if callable(free_memory) else mm.get_free_memory(vae.device)
        whole, why = decode_whole(mode, free, int(need), mm.extra_reserved_memory())
        log.info("flux_fast: %s", why)
        if whole:
            images = vae.decode(latent)
            if images.ndim == 5:   # a VAE that returns frames: one image per frame, as VAEDecode does
                images = images.reshape(-1, *images.shape[-3:])
            return images
    (images,) = nodes.VAEDecodeTiled().decode(vae, samples, tile_size, overlap)
    return images
