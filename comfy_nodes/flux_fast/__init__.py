"""ComfyUI custom node "FluxFastPatch": the shipped workflow's fast path for the FLUX.1-dev diffusion model.

It sits between UNETLoader and ModelSamplingFlux and returns a patched clone of the model (ModelPatcher
callbacks, object patches and ComfyUI's torch.compile wrapper; no ComfyUI code is modified). The defaults are
output-preserving; ``compute = fp8_rowwise`` is the opt-in that trades a small change in the image for speed.
See patch.py for what each piece does and policy.py for the environment variables.
"""

from __future__ import annotations

import logging
import os

from .policy import COMPUTE_CHOICES, UPCAST_CHOICES, make_plan

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


NODE_CLASS_MAPPINGS = {"FluxFastPatch": FluxFastPatch}
NODE_DISPLAY_NAME_MAPPINGS = {"FluxFastPatch": "FLUX fast path (bf16 weights, compile, opt-in fp8)"}
