"""A sampling run's conditioning moved to the card once, at its first step, instead of at every step.

Why: ComfyUI keeps a prompt's conditioning (for FLUX: T5's embeddings, CLIP's pooled vector, the guidance value) in
host memory and copies it to the card on every model call (samplers.py, `cond_cat` -> `.to(device)`). Each copy from
pageable memory is a blocking copy in PyTorch: the host waits until the card has finished everything queued before
it. So every step begins with the card drained, and it then idles while the host walks ComfyUI's sampler, the model
call's wrappers and the DiT's small layers before the first block's kernels arrive. The fp8 worker's profile on an
H100 showed 87 such copies in a 28-step run (`Memcpy HtoD (Pageable -> Device)`, three a step) and ~7 ms a step of
idle card once the packages' own waits were gone (BENCHMARKS.md, "Where the rest of the step goes").

What it does: a CALC_COND_BATCH wrapper (ComfyUI's wrapper API, the call that gathers a step's conditioning) moves
the tensors of the run's conditioning onto the latent's device before ComfyUI gathers them. ComfyUI's own
`.to(device)` then finds them there and copies nothing, so the later steps have no blocking copy. The values are the
same tensors on the card, and ComfyUI's gathering (`repeat_to_batch_size`, `narrow` for areas, `torch.cat`) is exact
on either device, so the images do not change. Only the kinds ComfyUI itself copies every step are moved: a
`CONDRegular` (and its subclasses for cross-attention and noise-shaped inputs) holding one tensor; `CONDList` and
`CONDConstant`, which ComfyUI passes on as they are, stay where they are.

What it touches: the `model_conds` dicts of the run's conditioning. ComfyUI builds those per sampling run
(samplers.py, `encode_model_conds` copies each dict), so the conditioning a node produced, which ComfyUI caches
between prompts, is never changed. A conditioning on the card lives as long as the run, as ComfyUI's per-step copies
would, a few MB for FLUX.
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


def wrapper() -> Callable:
    """CALC_COND_BATCH wrapper: the conditioning on the latent's device before ComfyUI gathers it."""

    def calc_cond_batch(executor: Any, model: Any, conds: Any, x_in: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        if isinstance(x_in, torch.Tensor) and x_in.device.type == "cuda":
            to_device(conds, x_in.device)
        return executor(model, conds, x_in, *args, **kwargs)

    return calc_cond_batch
