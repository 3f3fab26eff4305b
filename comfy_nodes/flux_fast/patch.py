"""The FLUX fast path, applied to a ComfyUI ModelPatcher through ComfyUI's own patching API.

Why each piece (first measured on one H100 with ComfyUI v0.3.64; re-measured on v0.33.0, see BENCHMARKS.md):

* Upcast (compute ``bf16``): an fp8 checkpoint is stored in fp8 and ComfyUI's manual-cast Linear casts
  every weight to bf16 on every call, 780 casts per step. Where VRAM allows, the fp8 parameters are held as
  bf16 on the GPU while the model is loaded; ComfyUI's cast then finds the weight already in the compute dtype
  and returns it as is. The values are the fp8 values exactly, so the output does not change. It is a ComfyUI
  injection (weights.py), so ComfyUI sees its fp8 weights whenever it patches (LoRA), unpatches or moves them.
* fp8 compute (``fp8_rowwise``, opt-in): an object patch gives each Linear of the diffusion model a forward
  that quantises the activations per row (amax / 448) and calls ``torch._scaled_mm`` with those row scales and
  per-output-channel weight scales (1.0 for an fp8 checkpoint, whose values are already fp8). Unlike
  ComfyUI's own fp8 path, nothing is clamped, so no activation saturates. It changes the image slightly.
* ``eval()``: ComfyUI never puts the FLUX model in eval mode; nothing in FLUX depends on it, but compiled
  graphs and fp8 kernels assume inference.
* Compiled blocks, one transformer block at a time ("regional" compilation), ahead of time: FLUX's 19 double
  and 38 single blocks are two block types, so two AOTInductor packages serve all 57 blocks, with a dynamic batch
  and token count, so every image size, prompt length and batch. They are built in a process of their own
  (aot_build.py) and only loaded here (compiled_blocks.py): the serving process never traces or compiles. An
  APPLY_MODEL wrapper (the mechanism ComfyUI's TorchCompileModel node uses) puts them in place for each model call
  and an OUTER_SAMPLE wrapper marks sampling runs, so a run takes one path from its first step to its last.
* Conditioning on the card for the run (conds.py): ComfyUI copies a prompt's conditioning from pageable host memory
  inside every model call, ~1 ms a copy, three a step; a CALC_COND_BATCH wrapper moves it once per run.

Everything here is a no-op off CUDA unless FLUX_FAST_ON_CPU=1 (the CPU test suite runs the production workflow
through compiled blocks that way); otherwise the model passes through unchanged and the log says why.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import torch

from . import conds
from .compiled_blocks import LISTS, CompiledBlocks
from .fp8 import fp8_forward
from .policy import Plan, fp8_eligible, resident_decision
from .weights import WeightState

log = logging.getLogger("flux_fast")

PATCH_KEY = "flux_fast"


def apply(model: Any, plan: Plan) -> tuple[Any, str, bool]:
    """(the model to sample with, why, whether the fast path applied).

    The model is a patched clone of `model` (a ComfyUI ModelPatcher) where the fast path applies; a clone that only
    moves the conditioning to the card once per run (conds.py) where a CUDA model is left to dynamic VRAM; `model`
    itself where nothing applies."""
    import comfy.model_management as mm

    if plan.compute == "off":
        return _passed(model, "compute=off")
    device = torch.device(model.load_device)
    if device.type != "cuda" and not plan.on_cpu:
        return _passed(model, f"the model runs on {device}, not CUDA: nothing to gain there")
    if _is_dynamic(model):
        card = mm.get_total_memory(device) - mm.extra_reserved_memory()
        resident, why = resident_decision(card, model.model_size(), plan.resident_room_bytes)
        if not resident:
            return _conditioning_only(model, why)

    compute = plan.compute
    if compute == "fp8_rowwise" and (device.type != "cuda" or not mm.supports_fp8_compute(device)):
        log.warning("flux_fast: fp8_rowwise asked for but %s has no fp8 matmul; using bf16", _device_name(device))
        compute = "bf16"

    patched = _legacy_clone(model)
    diffusion_model = patched.get_model_object("diffusion_model")
    diffusion_model.eval()

    from comfy.patcher_extension import CallbacksMP, WrappersMP

    patched.remove_injections(PATCH_KEY)
    patched.remove_callbacks_with_key(CallbacksMP.ON_DETACH, PATCH_KEY)
    upcast_to = None
    if compute == "bf16":
        upcast_to = getattr(patched.model, "manual_cast_dtype", None)
        if upcast_to is None:
            log.info("flux_fast: weights already stored in the compute dtype; no upcast needed")
    else:
        count = 0
        for name, module in diffusion_model.named_modules():
            if isinstance(module, torch.nn.Linear) and fp8_eligible(module.in_features, module.out_features):
                patched.add_object_patch(f"diffusion_model.{name}.forward", fp8_forward(module))
                count += 1
        log.info("flux_fast: fp8 row-wise matmul on %d Linear layers", count)
    weights = WeightState(upcast_to, plan)
    patched.set_injections(PATCH_KEY, [weights.injection()])
    patched.add_callback_with_key(CallbacksMP.ON_DETACH, PATCH_KEY, weights.on_detach)

    conds.add_to(patched, PATCH_KEY)
    patched.remove_wrappers_with_key(WrappersMP.OUTER_SAMPLE, PATCH_KEY)
    patched.remove_wrappers_with_key(WrappersMP.APPLY_MODEL, PATCH_KEY)
    if plan.compile:
        lists = {name: len(blocks) for name in LISTS
                 if isinstance(blocks := getattr(diffusion_model, name, None), torch.nn.ModuleList) and len(blocks)}
        compiled = CompiledBlocks(plan, compute, device, patched.model.get_dtype_inference(), type(diffusion_model),
                                  patched.model.model_config.unet_config, type(patched.model).__name__)
        patched.add_wrapper_with_key(WrappersMP.OUTER_SAMPLE, PATCH_KEY, _sampling_run(compiled))
        patched.add_wrapper_with_key(WrappersMP.APPLY_MODEL, PATCH_KEY, _with_compiled_blocks(compiled))
        patched.set_attachments(PATCH_KEY, compiled)
        log.info("flux_fast: compiled blocks (AOTInductor, mode %s, dynamic shapes) for %s: loaded from artifacts, "
                 "or built in a child process while runs go eager", plan.compile_mode,
                 ", ".join(f"{n} {k}" for k, n in lists.items()) or "no transformer blocks found")
    log.info("flux_fast: %s on %s", plan.describe().replace(plan.compute, compute, 1), _device_name(device))
    return patched, plan.describe(), True


def prepare_compiled(patched: Any) -> None:
    """Resolve a patched, loaded model's compiled blocks now, outside a sampling run (the start-up preload, which
    has loaded it onto the card): the packages are loaded and checked, or their build starts, before the first
    prompt's first step instead of in it. The first run then finds them ready."""
    compiled = patched.get_attachment(PATCH_KEY)
    if isinstance(compiled, CompiledBlocks):
        compiled.prepare(patched.get_model_object("diffusion_model"))


def _passed(model: Any, why: str) -> tuple[Any, str, bool]:
    log.info("flux_fast: model passed through unchanged: %s", why)
    return model, why, False


def _conditioning_only(model: Any, why: str) -> tuple[Any, str, bool]:
    """A model the fast path passes over (left to dynamic VRAM) still gets its conditioning moved to the card once
    per run: ComfyUI copies it from host memory at every step there too. A plain clone (what every LoRA loader
    makes; the weights are shared and not read again) with that one wrapper."""
    clone = model.clone()
    conds.add_to(clone, PATCH_KEY)
    why = f"{why}; its conditioning goes to the card once per run"
    log.info("flux_fast: fast path passed over: %s", why)
    return clone, why, False


def _is_dynamic(model: Any) -> bool:
    """Whether ComfyUI loaded the model with dynamic VRAM (comfy-aimdo; ComfyUI >= 0.16 on NVIDIA)."""
    is_dynamic = getattr(model, "is_dynamic", None)
    return bool(callable(is_dynamic) and is_dynamic())


def _legacy_clone(model: Any) -> Any:
    """A clone whose weights ComfyUI keeps resident on the GPU between calls (a plain ModelPatcher).

    Why: since ComfyUI 0.16 an NVIDIA machine loads every model through dynamic VRAM (comfy-aimdo) unless started
    with --disable-dynamic-vram: weights stay in host memory and stream to the card layer by layer on every call.
    Neither the bf16 copies (weights.py finds no resident fp8 weight to upcast) nor per-block compiled code (each
    Linear calls into aimdo) work on such a model. ComfyUI's own TorchCompileModel takes the same way out:
    `clone(disable_dynamic=True)`; `get_non_dynamic_delegate` does that once and caches the reloaded model, so a
    second apply does not read the file again. start.sh turns dynamic VRAM off for the worker on cards of 18 GiB and
    more, so this is the path of a 16 GB worker (its text encoders and VAE keep streaming), of a GUI user's ComfyUI,
    or of a ComfyUI that drops the flag; apply() leaves the model to dynamic VRAM where the card cannot hold the DiT
    and sampling's room beside it (policy.resident_decision).
    """
    if _is_dynamic(model):
        log.info("flux_fast: the model was loaded with dynamic VRAM; using ComfyUI's non-dynamic copy of it "
                 "(read from its file once), as ComfyUI's TorchCompileModel does")
        return model.get_non_dynamic_delegate()
    return model.clone()


def _with_compiled_blocks(compiled: CompiledBlocks) -> Callable:
    """APPLY_MODEL wrapper: the model call with the compiled blocks in place where they fit."""

    def wrapper(executor: Any, *args: Any, **kwargs: Any) -> Any:
        return compiled.model_call(executor, executor.class_obj.diffusion_model, args, kwargs)

    return wrapper


def _sampling_run(compiled: CompiledBlocks) -> Callable:
    """OUTER_SAMPLE wrapper: a sampling run takes one path from its first step to its last."""

    def wrapper(executor: Any, *args: Any, **kwargs: Any) -> Any:
        compiled.begin_run()
        try:
            return executor(*args, **kwargs)
        finally:
            compiled.end_run()

    return wrapper


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else str(device)
