"""The VAE decode of the fast path: the whole latent in one pass when it fits, ComfyUI's tiled decode otherwise.

Why: ComfyUI's VAEDecodeTiled (what the workflow used) runs three tiled passes with differently shaped tiles
and averages them, to hide the seams: 0.55 s for an 832x1536 FLUX latent on an H100, against 0.12 s for the one
pass of ComfyUI's plain VAEDecode (bench/vae_decode.py). The tiling only pays where memory is short, and
VAEDecodeTiled already asks ComfyUI for the whole decode's memory before it starts (ComfyUI v0.3.64, its TODO
says so), so deciding on ComfyUI's own estimate after that request changes nothing else: models evicted are the
same. Where the whole decode fits it is also the exact decode, the one the tiled average approximates.

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
        mm.load_models_gpu([vae.patcher], memory_required=need, force_full_load=getattr(vae, "disable_offload", False))
        whole, why = decode_whole(mode, mm.get_free_memory(vae.device), int(need), mm.extra_reserved_memory())
        log.info("flux_fast: %s", why)
        if whole:
            images = vae.decode(latent)
            if images.ndim == 5:   # a VAE that returns frames: one image per frame, as VAEDecode does
                images = images.reshape(-1, *images.shape[-3:])
            return images
    (images,) = nodes.VAEDecodeTiled().decode(vae, samples, tile_size, overlap)
    return images
