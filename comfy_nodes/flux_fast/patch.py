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
* torch.compile, one transformer block at a time ("regional" compilation) with dynamic shapes: FLUX's 19
  double and 38 single blocks are two block types, so two compiled graphs serve all 57 blocks, and because the
  token count is symbolic those two graphs serve every image size and prompt length too. Measured on one H100
  (bench/dit_profile.py): the same 0.155-0.158 s/step at 832x1536 as compiling the whole DiT, but 15-20 s to
  compile instead of 70 s (115 s for fp8), and a new image size runs compiled at once instead of recompiling
  for 1.5-2.5 minutes on its first request. An APPLY_MODEL wrapper (the mechanism ComfyUI's TorchCompileModel
  node uses) swaps the compiled blocks in for each model call once they are ready: the compile itself runs in a
  background thread after the first model call, and model calls before that run eager (background_compile.py),
  so no request waits for it. Batches compile ahead in the same background compile: dynamo specialises a
  dimension of size 1, so batch 1 and batches of 2 or more are two graphs per block type.

Everything here is a no-op off CUDA: on the CPU (the CPU test suite runs the production workflow with a tiny
DiT) the model passes through unchanged and the log says why.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable

import torch

from .artifacts import ArtifactStore
from .background_compile import BackgroundCompiler
from .policy import ENV_ARTIFACTS, Plan, artifact_key, fp8_eligible, rows_padding
from .weights import WeightState

log = logging.getLogger("flux_fast")

PATCH_KEY = "flux_fast"
FP8_MAX = 448.0


def apply(model: Any, plan: Plan) -> Any:
    """Return a patched clone of `model` (a ComfyUI ModelPatcher), or `model` itself where nothing applies."""
    import comfy.model_management as mm

    if plan.compute == "off":
        log.info("flux_fast: compute=off, model passed through unchanged")
        return model
    device = torch.device(model.load_device)
    if device.type != "cuda":
        log.info("flux_fast: model runs on %s, not CUDA: passed through unchanged (nothing to gain there)", device)
        return model

    compute = plan.compute
    if compute == "fp8_rowwise" and not mm.supports_fp8_compute(device):
        log.warning("flux_fast: fp8_rowwise asked for but %s has no fp8 matmul; using bf16", torch.cuda.get_device_name(device))
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
                patched.add_object_patch(f"diffusion_model.{name}.forward", _fp8_forward(module))
                count += 1
        log.info("flux_fast: fp8 row-wise matmul on %d Linear layers", count)
    weights = WeightState(upcast_to, plan)
    patched.set_injections(PATCH_KEY, [weights.injection()])
    patched.add_callback_with_key(CallbacksMP.ON_DETACH, PATCH_KEY, weights.on_detach)

    patched.remove_wrappers_with_key(WrappersMP.OUTER_SAMPLE, PATCH_KEY)
    patched.remove_wrappers_with_key(WrappersMP.APPLY_MODEL, PATCH_KEY)
    if plan.compile:
        _tune_dynamo()
        lists = CompiledBlocks.lists_of(diffusion_model)
        compiler = BackgroundCompiler(tuple(lists), lambda: CompiledBlocks(diffusion_model, plan.compile_mode),
                                      artifact_store(plan, compute, device), type(patched.model).__name__,
                                      weights=weights, batches=plan.compile_batches)
        patched.add_wrapper_with_key(WrappersMP.OUTER_SAMPLE, PATCH_KEY, _sampling_run(compiler))
        patched.add_wrapper_with_key(WrappersMP.APPLY_MODEL, PATCH_KEY, _with_compiled_blocks(compiler, plan))
        log.info("flux_fast: torch.compile (inductor, mode %s, dynamic shapes) of %s, in the background after the "
                 "first model call (%s)", plan.compile_mode,
                 ", ".join(f"{n} {k}" for k, n in lists.items()) or "no transformer blocks found",
                 "batch 1 and batches of 2 or more" if plan.compile_batches else "batch 1; batches run uncompiled")
    log.info("flux_fast: %s on %s", plan.describe().replace(plan.compute, compute, 1), torch.cuda.get_device_name(device))
    return patched


def _legacy_clone(model: Any) -> Any:
    """A clone whose weights ComfyUI keeps resident on the GPU between calls (a plain ModelPatcher).

    Why: since ComfyUI 0.16 an NVIDIA machine loads every model through dynamic VRAM (comfy-aimdo) unless started
    with --disable-dynamic-vram: weights stay in host memory and stream to the card layer by layer on every call.
    Neither the bf16 copies (weights.py finds no resident fp8 weight to upcast) nor per-block compiled code (each
    Linear calls into aimdo) work on such a model. ComfyUI's own TorchCompileModel takes the same way out:
    `clone(disable_dynamic=True)`; `get_non_dynamic_delegate` does that once and caches the reloaded model, so a
    second apply does not read the file again. start.sh turns dynamic VRAM off for the worker, so this is the
    path of a GUI user's ComfyUI (or of a ComfyUI that drops the flag).
    """
    is_dynamic = getattr(model, "is_dynamic", None)
    if callable(is_dynamic) and is_dynamic():
        log.info("flux_fast: the model was loaded with dynamic VRAM; using ComfyUI's non-dynamic copy of it "
                 "(read from its file once), as ComfyUI's TorchCompileModel does")
        return model.get_non_dynamic_delegate()
    return model.clone()


def _keep_guard(entries: list) -> list[bool]:
    """Dynamo guard filter: no guard on `transformer_options`.

    Why: since ComfyUI 0.4 the FLUX model writes the block's index, type and count into the transformer options
    before every block call, and the blocks copy the dict. A guard on those values would tell the 19 (38) blocks
    of one type apart and turn one compiled graph into one per block, each a recompile that the fail_on_recompile
    stance refuses. ComfyUI's TorchCompileModel filters the same guards (nodes_torch_compile.py).
    """
    return ["transformer_options" not in entry.name for entry in entries]


def compile_options(mode: str) -> dict[str, Any]:
    """torch.compile's `options` for inductor in `mode`, with the guard filter (torch takes mode or options)."""
    options: dict[str, Any] = {}
    if mode != "default":
        from torch._inductor import list_mode_options
        options.update(list_mode_options(mode))
    options["guard_filter_fn"] = _keep_guard
    return options


class CompiledBlocks:
    """Compiled stand-ins for a DiT's transformer-block lists, sharing the blocks' parameters.

    torch.compile(block) wraps the block without copying it: weights the ModelPatcher patches in place (LoRA)
    or replaces (the upcast) are what the compiled code reads. Every block of one class shares one code object,
    so dynamo compiles once per block class, not once per block.
    """

    LISTS = ("double_blocks", "single_blocks")

    @classmethod
    def lists_of(cls, diffusion_model: torch.nn.Module) -> dict[str, int]:
        """The block lists this model has, and their lengths (what would be compiled)."""
        return {name: len(blocks) for name in cls.LISTS
                if isinstance(blocks := getattr(diffusion_model, name, None), torch.nn.ModuleList) and len(blocks)}

    def __init__(self, diffusion_model: torch.nn.Module, mode: str, backend: str = "inductor"):
        self.lists: dict[str, torch.nn.ModuleList] = {}
        for name in self.LISTS:
            blocks = getattr(diffusion_model, name, None)
            if isinstance(blocks, torch.nn.ModuleList) and len(blocks):
                # A fresh options dict per call: torch.compile pops the guard filter out of the one it is given.
                self.lists[name] = torch.nn.ModuleList(
                    torch.compile(block, backend=backend, dynamic=True,
                                  options=compile_options(mode) if backend == "inductor" else {"guard_filter_fn": _keep_guard})
                    for block in blocks)

    def describe(self) -> str:
        return ", ".join(f"{len(v)} {k}" for k, v in self.lists.items()) or "no transformer blocks found"

    def swapped_into(self, diffusion_model: torch.nn.Module) -> "_Swap":
        return _Swap(diffusion_model, self.lists)


class _Swap:
    """Context manager: the compiled block lists in place of the eager ones for one model call."""

    def __init__(self, module: torch.nn.Module, lists: dict[str, torch.nn.ModuleList]):
        self.module, self.lists, self.saved = module, lists, {}

    def __enter__(self) -> None:
        for name, compiled in self.lists.items():
            eager = getattr(self.module, name, None)
            # Only swap lists built from this very model (same block objects, same length).
            if isinstance(eager, torch.nn.ModuleList) and len(eager) == len(compiled) and all(
                    getattr(c, "_orig_mod", c) is e for c, e in zip(compiled, eager)):
                self.saved[name] = eager
                setattr(self.module, name, compiled)

    def __exit__(self, *exc: Any) -> None:
        for name, eager in self.saved.items():
            setattr(self.module, name, eager)


def _with_compiled_blocks(compiler: BackgroundCompiler, plan: Plan) -> Callable:
    """APPLY_MODEL wrapper: the model call on the path the compiler allows, unless the shape is one not to compile."""

    def wrapper(executor: Any, *args: Any, **kwargs: Any) -> Any:
        x = args[0] if args else kwargs.get("x")
        if x is None or x.ndim != 4 or not plan.compiled_for(x.shape[0]):
            return executor(*args, **kwargs)
        return compiler.model_call(executor, executor.class_obj.diffusion_model, args, kwargs)

    return wrapper


def _sampling_run(compiler: BackgroundCompiler) -> Callable:
    """OUTER_SAMPLE wrapper: a sampling run takes one path from its first step to its last, and a background
    compile pauses while it runs."""

    def wrapper(executor: Any, *args: Any, **kwargs: Any) -> Any:
        compiler.begin_run()
        try:
            return executor(*args, **kwargs)
        finally:
            compiler.end_run()

    return wrapper


def artifact_store(plan: Plan, compute: str, device: torch.device) -> ArtifactStore | None:
    """Where this build's compiled kernels persist across processes; None when FLUX_FAST_ARTIFACTS_DIR is unset."""
    folder = os.environ.get(ENV_ARTIFACTS, "").strip()
    if not folder:
        return None
    return ArtifactStore(Path(folder), artifact_key(build_fields(plan, compute, device)))


def build_fields(plan: Plan, compute: str, device: torch.device) -> dict[str, str]:
    """Everything compiled kernels depend on, for the artifact key (see artifacts.py)."""
    import hashlib

    try:
        import triton

        triton_version = triton.__version__
    except Exception:
        triton_version = "none"
    try:
        import comfyui_version

        comfy_version = comfyui_version.__version__
    except Exception:
        comfy_version = "unknown"
    here = Path(__file__).resolve().parent
    sources = b"".join((here / name).read_bytes() for name in ("background_compile.py", "patch.py", "policy.py",
                                                              "weights.py"))
    return {
        "gpu": torch.cuda.get_device_name(device), "capability": "%d.%d" % torch.cuda.get_device_capability(device),
        "torch": torch.__version__, "torch_git": str(torch.version.git_version), "cuda": str(torch.version.cuda),
        "triton": triton_version, "python": "%d.%d" % sys.version_info[:2], "comfyui": comfy_version,
        "compile_mode": plan.compile_mode, "compute": compute, "source": hashlib.sha256(sources).hexdigest()[:16],
    }


def _tune_dynamo() -> None:
    """One compiled graph per image shape and mode: allow more of them than dynamo's default of 8."""
    import torch._dynamo

    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)


def _fp8_forward(module: torch.nn.Linear) -> Callable[[torch.Tensor], torch.Tensor]:
    """A forward for one Linear: fp8 matmul with row-wise activation and per-channel weight scales.

    Falls back to the module's own (ComfyUI) forward wherever the fast kernel does not apply: weights not on
    the input's device (low-VRAM streaming), weight/bias functions (LoRA patches applied on the fly), an input
    that is not bf16 (torch's row-wise fp8 matmul writes bf16 only).
    """
    original = type(module).forward

    def forward(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        w = module.weight
        if (args or kwargs or x.dtype != torch.bfloat16 or w.device != x.device
                or len(getattr(module, "weight_function", ())) > 0 or len(getattr(module, "bias_function", ())) > 0):
            return original(module, x, *args, **kwargs)
        return fp8_rowwise_linear(x, w, module.bias)

    return forward


def fp8_rowwise_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """y = x @ weight.T + bias with fp8 e4m3 operands: per-row scales for x, per-output-channel for weight."""
    shape = x.shape
    n_out = weight.shape[0]
    x2 = x.reshape(-1, shape[-1])
    rows = x2.shape[0]
    pad = rows_padding(rows)
    if pad:
        x2 = torch.nn.functional.pad(x2, (0, 0, 0, pad))
    xf = x2.float()
    x_scale = xf.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / FP8_MAX
    xq = (xf / x_scale).to(torch.float8_e4m3fn)
    if weight.dtype == torch.float8_e4m3fn:
        wq = weight
        w_scale = torch.ones((1, n_out), device=x.device, dtype=torch.float32)
    else:  # weights were upcast (or never fp8): quantise per output channel on the fly
        wf = weight.float()
        w_scale = (wf.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / FP8_MAX).t()
        wq = (wf / w_scale.t()).to(torch.float8_e4m3fn)
    out = torch._scaled_mm(xq, wq.t(), scale_a=x_scale, scale_b=w_scale, out_dtype=x.dtype)
    if isinstance(out, tuple):
        out = out[0]
    if pad:
        out = out[:rows]
    if bias is not None:
        out = out + bias.to(out.dtype)
    return out.reshape(*shape[:-1], n_out)
