"""A sampling run's conditioning moved to the card once, at its first step, instead of at every step.

Why: ComfyUI keeps a prompt's conditioning (for FLUX: T5's embeddings, CLIP's pooled vector, the guidance value) in
host memory and copies it to the card inside every model call (model_base.BaseModel._apply_model, `cast_to_device` of
the context and of each extra cond). A copy from pageable host memory is staged through the driver while the host
waits, between the sampler's small kernels at the start of a step: the fp8 worker's profile on an H100 showed them
as 87 `Memcpy HtoD (Pageable -> Device)` in a 28-step run, three a step, with ~7 ms a step of idle card left once
the packages' own waits were gone (BENCHMARKS.md, "Where the rest of the step goes"). Moving them once took the
step from 0.1339 to 0.1309 s (fp8) and from 0.1596 to 0.1562 s (bf16) on H100s whose plain-ComfyUI step was the same
(BENCHMARKS.md, "Conditioning on the card and the fast save").

What it does: a CALC_COND_BATCH wrapper (ComfyUI's wrapper API, the call that gathers a step's conditioning) moves
the tensors of the run's conditioning onto the latent's device before ComfyUI gathers them. ComfyUI's own
`cast_to_device` then finds them there and copies nothing from the host (it still casts the dtype, on the card), so
the later steps have no host copy. The values are the same, ComfyUI's gathering (`repeat_to_batch_size`, `narrow`
for areas, `torch.cat`) is exact on either device and a dtype cast rounds the same on both, so the images do not
change (same section: latent rel L2 against plain ComfyUI 0.0035, as before). Only the kinds that hold one tensor are
moved: a `CONDRegular` and its subclasses for cross-attention and noise-shaped inputs; `CONDList` and `CONDConstant`
stay where ComfyUI put them. FluxFastPatch adds it to every CUDA model it is given: to the patched clone of the fast
path, and to a plain clone of a model it leaves to dynamic VRAM (12 GB cards), which makes the same copies.

What it touches: the `model_conds` dicts of the run's conditioning. ComfyUI builds those per sampling run
(samplers.py, `encode_model_conds` copies each dict), so the conditioning a node produced, which ComfyUI caches
between prompts, is never changed. The conditioning on the card lives as long as the run: a few MB for FLUX, the size of the copy
ComfyUI made and freed at every step.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import torch


def to_device(conds: Any, device: torch.device) -> int:
    """Move the tensors of one step's conditioning (ComfyUI's `conds`: a list, per cond/uncond, of None or a list
    of dicts with "model_conds") to `device` in place; return how many were moved."""
    from comfy.conds import CONDConstant, CONDList, CONDRegular

    moved = 0
    for group in conds or ():
        for entry in group or ():
            model_conds = entry.get("model_conds") if isinstance(entry, dict) else None
            if not isinstance(model_conds, dict):
                continue
            for name, cond in list(model_conds.items()):
                if not isinstance(cond, CONDRegular) or isinstance(cond, (CONDList, CONDConstant)):
                    continue
                value = cond.cond
                if not isinstance(value, torch.Tensor) or value.device == device:
                    continue
                on_card = copy.copy(cond)
                on_card.cond = value.to(device)
                model_conds[name] = on_card
                moved += 1
    return moved


def add_to(patcher: Any, key: str) -> None:
    """Put the wrapper on a ComfyUI ModelPatcher under `key`, replacing one a previous apply left there."""
    from comfy.patcher_extension import WrappersMP

    patcher.remove_wrappers_with_key(WrappersMP.CALC_COND_BATCH, key)
    patcher.add_wrapper_with_key(WrappersMP.CALC_COND_BATCH, key, wrapper())


def wrapper() -> Callable:
    """CALC_COND_BATCH wrapper: the conditioning on the latent's device before ComfyUI gathers it."""

    def calc_cond_batch(executor: Any, model: Any, conds: Any, x_in: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        if isinstance(x_in, torch.Tensor) and x_in.device.type == "cuda":
            to_device(conds, x_in.device)
        return executor(model, conds, x_in, *args, **kwargs)

    return calc_cond_batch
