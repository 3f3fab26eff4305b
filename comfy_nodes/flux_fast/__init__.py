"""ComfyUI custom nodes of the shipped workflow's fast path for FLUX.1-dev.

* "FluxFastPatch" sits between UNETLoader and ModelSamplingFlux and returns a patched clone of the model
  (ModelPatcher callbacks, object patches and ComfyUI's wrapper API; no ComfyUI code is modified). The defaults
  are output-preserving; ``compute = fp8_rowwise`` is the opt-in that trades a small change in the image for
  speed. See patch.py.
* "FluxFastDecode" replaces VAEDecodeTiled: the whole latent in one pass when the memory ComfyUI estimates for
  it is free, ComfyUI's tiled decode otherwise. See decode.py.

policy.py holds every decision and environment variable, free of torch so the CPU tests can check them.
"""

from __future__ import annotations

import logging
import os

from .policy import COMPUTE_CHOICES, DECODE_CHOICES, UPCAST_CHOICES, make_plan, resolve_decode

log = logging.getLogger("flux_fast")


class FluxFastPatch:
    """Keep FLUX's weights in the compute layout, optionally compute in fp8, and torch.compile the DiT."""

    CATEGORY = "advanced/model"
    FUNCTION = "patch"
    RETURN_TYPES = ("MODEL",)
    DESCRIPTION = ("Speeds up FLUX sampling on CUDA GPUs: bf16 weights held on the GPU instead of a per-step "
                   "fp8 cast (when VRAM allows), torch.compile, and opt-in fp8 row-wise matmuls. "
                   "Passes the model through unchanged on CPU.")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL",),
                "compute": (list(COMPUTE_CHOICES), {
                    "default": "default",
                    "tooltip": "default: FLUX_FAST_COMPUTE or bf16. bf16 keeps the image; fp8_rowwise is faster "
                               "and changes it slightly; off passes the model through."}),
                "compile": ("BOOLEAN", {
                    "default": True,
                    "tooltip": "torch.compile the diffusion model (first step compiles; FLUX_FAST_COMPILE=0 disables)."}),
                "upcast_weights": (list(UPCAST_CHOICES), {
                    "default": "auto",
                    "tooltip": "auto: hold fp8 weights as bf16 on the GPU when enough VRAM stays free."}),
            }
        }

    def patch(self, model, compute="default", compile=True, upcast_weights="auto"):
        plan = make_plan(compute, compile, upcast_weights, os.environ)
        from . import patch as fast  # torch and ComfyUI imports only when the node runs

        return (fast.apply(model, plan),)


class FluxFastDecode:
    """VAE decode in one pass where the memory is there, ComfyUI's tiled decode where it is not."""

    CATEGORY = "latent"
    FUNCTION = "decode"
    RETURN_TYPES = ("IMAGE",)
    DESCRIPTION = ("Decodes the whole latent in one pass when the VRAM ComfyUI estimates for it is free (the "
                   "plain VAE Decode result, ~4x faster than tiled), else decodes tiled like VAE Decode (Tiled).")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "samples": ("LATENT",),
                "vae": ("VAE",),
                "tile_size": ("INT", {"default": 512, "min": 64, "max": 4096, "step": 32,
                                      "tooltip": "Tile size when the decode is tiled."}),
                "overlap": ("INT", {"default": 64, "min": 0, "max": 4096, "step": 32,
                                    "tooltip": "Tile overlap when the decode is tiled."}),
                "mode": (list(DECODE_CHOICES), {
                    "default": "default",
                    "tooltip": "default: FLUX_FAST_DECODE or auto. auto: whole when it fits, else tiled. "
                               "tiled: always tiled (VAE Decode (Tiled)'s exact output)."}),
            }
        }

    def decode(self, samples, vae, tile_size=512, overlap=64, mode="default"):
        from . import decode as fast_decode  # torch and ComfyUI imports only when the node runs

        return (fast_decode.decode(vae, samples, tile_size, overlap, resolve_decode(mode, os.environ)),)


NODE_CLASS_MAPPINGS = {"FluxFastPatch": FluxFastPatch, "FluxFastDecode": FluxFastDecode}
NODE_DISPLAY_NAME_MAPPINGS = {
    "FluxFastPatch": "FLUX fast path (bf16 weights, compile, opt-in fp8)",
    "FluxFastDecode": "VAE Decode (whole when it fits, else tiled)",
}
