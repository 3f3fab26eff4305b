"""Builds the compiled FLUX transformer blocks ahead of time, in a process that serves nothing.

Why a process of its own: torch.compile traces by patching `torch.nn.Module.__call__` for the whole process, and it
is not thread-safe; compiling in a thread of the serving ComfyUI made sampling fail (`NameError: module is not
installed as a submodule`) and starved the compile under load. Here PyTorch's regional AOT recipe runs instead:

1. one block of each type (FLUX: DoubleStreamBlock, SingleStreamBlock) is built with ComfyUI's own classes from the
   served model's config, with random weights of the served parameters' dtypes (the weights are not baked in);
2. `torch.export` traces it with a dynamic batch and dynamic token counts, so one artifact serves every image size,
   prompt length and batch;
3. AOTInductor compiles it to a `.pt2` package. The block's parameters are inputs of the program, not constants:
   the package holds no weights, and the serving process passes each block's own current tensors on every call
   (compiled_blocks.py), so LoRA patches, the bf16 copies and reloads need nothing at all, never a recompile. (PyTorch's
   recipe binds weights as user-managed constants instead, with `package_constants_in_so=False`; with torch 2.11
   such a CUDA package crashed the process while loading, on an H100.) Before it reports success, the child loads
   each package and checks it against the eager block (_self_test): a package that would crash or miscompute fails
   here, in a process whose failure costs the server nothing but the speed-up.

What is traced is the block as the fast path serves it: weights resident in the compute dtype (or fp8 with the
fp8 row-wise forward of `compute = fp8_rowwise`), no transformer patches, no attention mask, and the attention
function ComfyUI picks from the same command-line flags as the server (`comfy_argv` in the spec). FLUX's RoPE is
traced through ComfyUI's plain-torch implementation (the one it uses when training), which inductor fuses into the
block; at inference ComfyUI calls comfy-kitchen's RoPE op, opaque to a compiler. Both compute in fp32. On Hopper
cards the attention kernel is traced with cuDNN's preferred over FlashAttention (`sdpa`, policy.traced_sdpa),
through ComfyUI's attention-override hook; if that block fails to build, it is built with ComfyUI's own choice.

Spec (JSON, written by the serving process; see compiled_blocks.block_spec):
    {"model_class": "comfy.ldm.flux.model.Flux", "unet_config": {...}, "compute": "bf16" | "fp8_rowwise",
     "io_dtype": "bfloat16", "device": "cuda:0" | "cpu", "comfy_argv": [...], "sdpa": "comfy" | "cudnn_first",
     "lists": {"double_blocks": {"params": {"img_mod.lin.weight": "bfloat16", ...}}, "single_blocks": {...}}}

Run: python <this file> --comfyui COMFYUI_ROOT --spec SPEC.json --out DIR [--log-level INFO]
Writes DIR/<list>.pt2 for each block list and DIR/build.json ({"lists": {...: {"file", "weights", "inputs", ...}}}):
`weights` names the parameters the program takes after the activations, in order.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("flux_fast.build")

# Example sizes (batch, image tokens, text tokens): distinct, > 1 and unlike any static dimension of a block, so
# export keeps every dynamic dimension symbolic and apart (a size-1 or a repeated example size would be specialised
# or unified). They are also the sizes inductor tunes the GPU kernels for: AOTInductor benchmarks each Triton
# kernel's configurations at compile time on the example's sizes, and the package runs every size with the config
# picked there. Tuned on a toy size (96 + 40 tokens) the fp8 package's step took 127.4 ms of GPU time at 832x1536
# on an H100, tuned at the real rows 126.6 ms (bench/aot_probe.py, BENCHMARKS.md): small, but free. So GPU builds use
# the row counts of the default request (832x1536, 256 text tokens): batch 2 of half the tokens gives the same rows
# in every Linear (2 x 2496 image rows, 2 x 136 text rows). That raises the build's peak GPU memory from 0.8 to
# 2.4-2.5 GiB: a GPU with less free than REAL_EXAMPLE_FREE_BYTES (a 24 GB card beside its served models) tunes at
# the toy size, as every build did before, rather than run out and leave the worker eager. CPU builds (tests) keep
# the toy size: their kernels are not tuned, and compile time matters there.
EXAMPLE_SIZES = {"cuda": (2, 2496, 136), "cpu": (2, 96, 40)}
TIGHT_EXAMPLE = EXAMPLE_SIZES["cpu"]
REAL_EXAMPLE_FREE_BYTES = 3 * 2**30   # the real example's build peaked at 2.4-2.5 GiB (H100, H200), context aside
EXAMPLE_ENV = "FLUX_FAST_BUILD_EXAMPLE"   # "B,IMG,TXT": a bench's override (bench/aot_probe.py compares sizes)
MAX_BATCH = 64
TOLERANCE = 0.05    # rel. L2 a package may differ from the eager block by (bf16 rounding is ~0.003)


def load_spec(path: Path) -> dict[str, Any]:
    spec = json.loads(Path(path).read_text())
    for field in ("model_class", "unet_config", "lists", "compute", "io_dtype", "device"):
        if field not in spec:
            raise ValueError(f"build spec has no '{field}'")
    return spec


def _dtype(name: str):
    import torch

    value = getattr(torch, name, None)
    if not isinstance(value, torch.dtype):
        raise ValueError(f"not a torch dtype: {name!r}")
    return value


def _model_class(path: str):
    module, _, name = path.rpartition(".")
    if not module.startswith("comfy."):
        raise ValueError(f"model class {path!r} is not one of ComfyUI's")
    return getattr(importlib.import_module(module), name)


def one_block_each(spec: dict[str, Any]) -> dict[str, Any]:
    """{list name: one block of that list}, built with ComfyUI's classes from the served config, random weights."""
    import torch
    import comfy.ops

    config = dict(spec["unet_config"])
    config.update({"depth": 1, "depth_single_blocks": 1})
    device = torch.device(spec["device"])
    with torch.device("meta"):
        # Plain torch forwards (no per-call cast): the block as the fast path serves it, weights resident in the
        # dtype they are computed in. Names and shapes are ComfyUI's.
        model = _model_class(spec["model_class"])(**config, dtype=_dtype(spec["io_dtype"]), device="meta",
                                                  operations=comfy.ops.disable_weight_init)
    blocks = {}
    generator = torch.Generator(device="cpu").manual_seed(0)
    for name, info in spec["lists"].items():
        block = getattr(model, name)[0].to_empty(device=device)
        with torch.no_grad():
            for pname, param in block.named_parameters():
                want = _dtype(info["params"].get(pname, spec["io_dtype"]))
                # Values do not matter (the served block's own are bound at load); finite ones keep export happy.
                values = torch.randn(param.shape, generator=generator) * 0.02
                param.data = values.to(want).to(device)
                param.requires_grad_(False)
        block.eval()
        if spec["compute"] == "fp8_rowwise":
            from .fp8 import patch_linears

            patch_linears(block)
        _cast_where_stored_narrower(block, _dtype(spec["io_dtype"]))
        blocks[name] = block
    return blocks


def _cast_where_stored_narrower(block: Any, io_dtype: Any) -> None:
    """Modules whose weights are served in another dtype than the activations (fp8 weights where the upcast was
    declined: a 16 or 24 GB card) cast them per call, as ComfyUI's manual cast does: weight and bias `.to(input
    dtype)`, then the op. In the compiled block the cast fuses into the op's prologue."""
    import torch

    for module in block.modules():
        weight = getattr(module, "weight", None)
        if not isinstance(weight, torch.Tensor) or weight.dtype == io_dtype or "forward" in vars(module):
            continue                                  # in the compute dtype, or the fp8 forward owns it
        if isinstance(module, torch.nn.Linear):
            def forward(x, m=module):
                bias = None if m.bias is None else m.bias.to(x.dtype)
                return torch.nn.functional.linear(x, m.weight.to(x.dtype), bias)
        elif isinstance(module, torch.nn.RMSNorm):
            def forward(x, m=module):
                return torch.nn.functional.rms_norm(x, m.normalized_shape, m.weight.to(x.dtype), m.eps)
        else:
            raise RuntimeError(f"{type(module).__name__} holds {weight.dtype} weights; the build casts only "
                               "Linear and RMSNorm weights")
        module.forward = forward


def _call_module(name: str, block: Any, weights: list[str], options: dict[str, Any]) -> Any:
    """The export's module: one block called as the FLUX model calls it (minus the options it does not read), with
    its parameters as trailing inputs. The block is not a submodule, so the program has no constants at all: the
    package carries no weights, and the serving process passes each block's own current tensors on every call.
    `options` are the block's transformer_options while it is traced (sdpa_options)."""
    import torch

    n_acts = 4 if name == "double_blocks" else 3

    class BlockCall(torch.nn.Module):
        def forward(self, *inputs):
            acts, params = inputs[:n_acts], inputs[n_acts:]
            return torch.func.functional_call(block, dict(zip(weights, params)), acts,
                                              {"transformer_options": options}, strict=True)

    return BlockCall()


def cudnn_first_attention(func: Any, q: Any, k: Any, v: Any, heads: int, mask: Any = None, skip_reshape: bool = False,
                          skip_output_reshape: bool = False, **kwargs: Any) -> Any:
    """ComfyUI's attention for FLUX's call, with cuDNN's kernel preferred (policy.traced_sdpa says why and where).

    Given to the traced block through ComfyUI's own hook, `transformer_options["optimized_attention_override"]`: its
    PyTorch attention enters its own backend priority (FlashAttention first on Linux) around every call, so the
    priority cannot be set from outside. FLUX's call (heads already split, no mask) is ComfyUI's attention_pytorch
    with that priority changed; any other call is left to ComfyUI (`func`)."""
    import torch

    if func.__name__ != "attention_pytorch" or not skip_reshape or mask is not None or kwargs.get("enable_gqa"):
        return func(q, k, v, heads, mask=mask, skip_reshape=skip_reshape, skip_output_reshape=skip_output_reshape,
                    **kwargs)
    with cudnn_first_priority():
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, dropout_p=0.0, is_causal=False)
    if skip_output_reshape:
        return out
    b, _, _, dim_head = q.shape
    return out.transpose(1, 2).reshape(b, -1, heads * dim_head)


def cudnn_first_priority() -> Any:
    """SDPA's backend priority with cuDNN's kernel first. Entered around the attention call while tracing and around
    the whole export and compile, since the kernel may be picked when the program is traced or when it is lowered."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
                        SDPBackend.MATH], set_priority=True)


def sdpa_options(sdpa: str, attention: str) -> dict[str, Any]:
    """The transformer_options a block is traced with for the spec's `sdpa` (policy.TRACED_SDPA_CHOICES), given the
    attention function this process picked."""
    if sdpa == "comfy":
        return {}
    if sdpa == "cudnn_first":
        if attention != "attention_pytorch":
            raise ValueError(f"sdpa 'cudnn_first' applies to ComfyUI's PyTorch attention, not {attention}")

        def override(func: Any, *args: Any, **kwargs: Any) -> Any:
            override.calls += 1           # _build_one checks that the traced block went through the hook
            return cudnn_first_attention(func, *args, **kwargs)

        override.calls = 0
        return {"optimized_attention_override": override}
    from .policy import TRACED_SDPA_CHOICES

    raise ValueError(f"unknown sdpa choice {sdpa!r} (this build knows {', '.join(TRACED_SDPA_CHOICES)})")


def example_inputs(name: str, block: Any, io_dtype: Any, device: Any,
                   sizes: tuple[int, int, int] | None = None) -> tuple[tuple, tuple]:
    """Example inputs of one block call (at `sizes`, else example_sizes') and export's dynamic shapes for them."""
    import torch
    from torch.export import Dim

    hidden = block.hidden_size if hasattr(block, "hidden_size") else block.hidden_dim
    head_dim = hidden // block.num_heads
    b, n_img, n_txt = sizes or example_sizes(torch.device(device).type)
    batch = Dim("batch", min=1, max=MAX_BATCH)
    auto = Dim.AUTO
    g = torch.Generator(device="cpu").manual_seed(1)

    def t(*shape, dtype=io_dtype):
        return (torch.randn(shape, generator=g)).to(dtype).to(device)

    pe = t(b, 1, n_img + n_txt, head_dim // 2, 2, 2, dtype=torch.float32)
    vec = t(b, hidden)
    if name == "double_blocks":
        args = (t(b, n_img, hidden), t(b, n_txt, hidden), vec, pe)
        dynamic = ({0: batch, 1: auto}, {0: batch, 1: auto}, {0: batch}, {0: batch, 2: auto})
    else:
        args = (t(b, n_img + n_txt, hidden), vec, pe)
        dynamic = ({0: batch, 1: auto}, {0: batch}, {0: batch, 2: auto})
    return args, dynamic


def example_sizes(device_type: str, env: Any = None, free_bytes: int | None = None) -> tuple[int, int, int]:
    """(batch, image tokens, text tokens) of the export's example for a device type and, on a GPU, the memory free
    to the build (EXAMPLE_SIZES says why)."""
    import os

    raw = (os.environ if env is None else env).get(EXAMPLE_ENV, "").strip()
    if not raw:
        if device_type != "cpu" and free_bytes is not None and free_bytes < REAL_EXAMPLE_FREE_BYTES:
            return TIGHT_EXAMPLE
        return EXAMPLE_SIZES.get(device_type, EXAMPLE_SIZES["cuda"])
    try:
        sizes = tuple(int(v) for v in raw.split(","))
    except ValueError:
        sizes = ()
    if len(sizes) != 3 or len(set(sizes)) != 3 or min(sizes) < 2 or sizes[0] > MAX_BATCH:
        raise ValueError(f"{EXAMPLE_ENV}={raw!r}: expected three distinct sizes 'BATCH,IMG_TOKENS,TXT_TOKENS', each "
                         f">= 2, the batch <= {MAX_BATCH}")
    return sizes  # type: ignore[return-value]


def describe_inputs(args: tuple, dynamic: tuple) -> list[dict[str, Any]]:
    """What the serving process checks before a call: each input's rank, dtype, example shape and dynamic dims."""
    return [{"ndim": a.dim(), "dtype": str(a.dtype).removeprefix("torch."), "shape": list(a.shape),
             "dynamic": sorted(dims)} for a, dims in zip(args, dynamic)]


def skip_isa_probe(device_type: str) -> None:
    """For a GPU package, tell inductor not to probe the CPU's vector ISA: its only CPU code is the kernel launcher.

    inductor learns the ISA by compiling a g++ program per candidate (AMX, AVX512-VNNI, AVX512, AVX2) and running
    each in a subprocess that imports torch. On an H100 machine that took 19-31 s at ComfyUI's start (2026-12-07),
    and the first package load waited for it: the first compiled image came 24 s late. The answer only picks the
    ATen vector macros of CPU kernels; the launcher is compiled with `-march=native` whatever it says, which is why
    the artifact key carries the host CPU's features (compiled_blocks.build_fields). The serving process never
    compiles: there the answer only feeds the loader's metadata comparison, and both sides say "no vector ISA".
    CPU packages (FLUX_FAST_ON_CPU, the tests) keep the probe: their kernels are the CPU code."""
    if device_type != "cpu":
        import torch._inductor.config as inductor_config

        inductor_config.cpp.vec_isa_ok = False


def load_package(source: Path | bytes, device: Any) -> Any:
    """An AOTInductor package loaded for `device`, from a file or from bytes already checked (artifacts.py).

    Loaded single-threaded: the default runner keeps one model instance and, before each call, waits on the GPU for
    the previous call to end (cudaEventSynchronize), so the card idled while the host launched every block: 55
    synchronisations a step (bench_profile). The single-threaded runner leaves ordering to the stream, as eager
    PyTorch does: the fp8 worker's step went from 0.1352 to 0.1329 s on an H100 (BENCHMARKS.md). It is not safe for two threads at
    once, so every caller serialises its calls (compiled_blocks._ListRunners.call; the build's self-test has one
    thread)."""
    import io

    import torch

    skip_isa_probe(device.type)
    index = device.index if device.type == "cuda" and device.index is not None else -1
    return torch._inductor.aoti_load_package(io.BytesIO(source) if isinstance(source, bytes) else str(source),
                                             run_single_threaded=True, device_index=index)


def compare_outputs(expected: Any, got: Any) -> tuple[float, str | None]:
    """(worst rel. L2, a sentence if the package's outputs are not the eager block's to TOLERANCE, else None)."""
    import torch

    expected = expected if isinstance(expected, (tuple, list)) else (expected,)
    got = got if isinstance(got, (tuple, list)) else (got,)
    worst = 0.0
    for e, o in zip(expected, got):
        if not torch.isfinite(o).all():
            return float("inf"), "the package computes non-finite values"
        worst = max(worst, ((o.float() - e.float()).norm() / e.float().norm().clamp(min=1e-12)).item())
    if not worst <= TOLERANCE:
        return worst, f"output differs from the eager block by {worst:.3g} (rel. L2, allowed {TOLERANCE})"
    return worst, None


def _self_test(path: Path, block: Any, acts: tuple, params: tuple, device: Any) -> float:
    """Load the package here and run it against the eager block before any serving process loads it.

    Why here: a package that crashes the process that loads it (a torch 2.11 CUDA package with user-managed
    constants did, on an H100) must crash this child, whose failure the server reads as "build failed, stay eager",
    and never ComfyUI. Packages are keyed by GPU model and torch build, so every worker that loads this one loads it
    on the same software and hardware as this test."""
    import torch

    runner = load_package(path, device)
    with torch.inference_mode():
        expected = block(*[a.clone() for a in acts], transformer_options={})
        got = runner.loader.boxed_run([*[a.clone() for a in acts], *params])
    worst, problem = compare_outputs(expected, got)
    if problem:
        raise RuntimeError(f"{path.name}: {problem}")
    return round(worst, 5)


def _sdpa_priority(sdpa: str) -> Any:
    """The backend priority a block with this `sdpa` is exported and compiled under."""
    return cudnn_first_priority() if sdpa == "cudnn_first" else contextlib.nullcontext()


def _parameters(block: Any) -> tuple[list[str], tuple]:
    """(names, detached tensors) of a block's parameters, in the order the package takes them."""
    named = list(block.named_parameters())
    return [n for n, _ in named], tuple(p.detach() for _, p in named)


def export_block(name: str, block: Any, sdpa: str, attention: str, io_dtype: Any, device: Any,
                 sizes: tuple[int, int, int] | None = None) -> tuple[Any, tuple, tuple]:
    """torch.export of one block as the served model calls it, with dynamic batch and token counts and no constants:
    (program, example activations, their dynamic dims). The first half of a build, apart so that a test can check
    on the CPU that a block exports for every compute path (fp8 included), where compiling it needs a GPU."""
    import torch
    import comfy.model_management as mm

    weights, params = _parameters(block)
    options = sdpa_options(sdpa, attention)
    module = _call_module(name, block, weights, options).eval()
    acts, dynamic = example_inputs(name, block, io_dtype, device, sizes)
    training, mm.in_training = mm.in_training, True     # ComfyUI's plain-torch RoPE (see the module docstring)
    try:
        with _sdpa_priority(sdpa), torch.inference_mode(False), torch.no_grad():
            # forward(*inputs): the one positional parameter's dynamic shapes, one entry per input
            program = torch.export.export(module, acts + params,
                                          dynamic_shapes=(dynamic + (None,) * len(params),), strict=False)
    finally:
        mm.in_training = training
    hook = options.get("optimized_attention_override")
    if hook is not None and not hook.calls:
        raise RuntimeError(f"{name}: the block never reached ComfyUI's attention hook, so sdpa={sdpa} was not traced")
    if program.state_dict or program.constants:
        raise RuntimeError(f"{name}: the exported block holds constants: {sorted(program.state_dict)[:5]}")
    return program, acts, dynamic


def _build_one(name: str, block: Any, sdpa: str, attention: str, spec: dict[str, Any], io_dtype: Any, device: Any,
               out: Path, sizes: tuple[int, int, int]) -> dict[str, Any]:
    """Export, compile and self-test one block list's package; its report entry."""
    import torch

    started = time.perf_counter()
    program, acts, dynamic = export_block(name, block, sdpa, attention, io_dtype, device, sizes)
    exported = time.perf_counter()
    path = out / f"{name}.pt2"
    configs: dict[str, Any] = {}
    if spec.get("compile_mode", "default") != "default":
        from torch._inductor import list_mode_options

        configs.update(list_mode_options(spec["compile_mode"]))
    with _sdpa_priority(sdpa):
        torch._inductor.aoti_compile_and_package(program, package_path=str(path), inductor_configs=configs)
    compiled = time.perf_counter()
    weights, params = _parameters(block)
    return {"file": path.name, "weights": weights, "inputs": describe_inputs(acts, dynamic), "sdpa": sdpa,
            "self_test_rel_l2": _self_test(path, block, acts, params, device),
            "export_s": round(exported - started, 2), "compile_s": round(compiled - exported, 2)}


def build(spec: dict[str, Any], out: Path) -> dict[str, Any]:
    import torch

    out.mkdir(parents=True, exist_ok=True)
    io_dtype, device = _dtype(spec["io_dtype"]), torch.device(spec["device"])
    skip_isa_probe(device.type)
    from comfy.ldm.modules import attention

    picked = getattr(attention.optimized_attention, "__name__", "unknown")
    if spec.get("attention") and spec["attention"] != picked:
        raise RuntimeError(f"the server attends with {spec['attention']} but this process picked {picked}: "
                           "the build would not compute what the server does")
    free = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else None
    sizes = example_sizes(device.type, free_bytes=free)
    if free is not None and sizes == TIGHT_EXAMPLE:
        log.info("flux_fast build: %.1f GiB of GPU memory free; tuning at the small example %s", free / 2**30, sizes)
    report: dict[str, Any] = {"lists": {}, "torch": torch.__version__, "example": list(sizes)}
    for name, block in one_block_each(spec).items():
        wanted = spec.get("sdpa", "comfy")
        choices = [wanted] if wanted == "comfy" else [wanted, "comfy"]
        for n, sdpa in enumerate(choices):
            try:
                report["lists"][name] = _build_one(name, block, sdpa, picked, spec, io_dtype, device, out, sizes)
                break
            except Exception as exc:
                if n + 1 == len(choices):
                    raise
                log.warning("flux_fast build: %s traced with sdpa=%s failed (%s: %s); building it with ComfyUI's "
                            "own attention instead", name, sdpa, type(exc).__name__, str(exc)[:300])
                report.setdefault("fell_back", {})[name] = f"{sdpa}: {type(exc).__name__}: {str(exc)[:300]}"
        log.info("flux_fast build: %s (sdpa=%s) exported in %.1f s, compiled in %.1f s", name,
                 report["lists"][name]["sdpa"], report["lists"][name]["export_s"], report["lists"][name]["compile_s"])
    if device.type == "cuda":       # what the child needs beside the server (compiled_blocks.BUILD_VRAM_BYTES)
        report["peak_gpu_mib"] = round(torch.cuda.max_memory_reserved(device) / 2**20)
    (out / "build.json").write_text(json.dumps(report, indent=1))
    return report


def read_build(out: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """What build() left in `out`: its report and {list name: artifacts.Package}."""
    from .artifacts import Package    # here, not at the top: run as a file, the package is set up only below

    report = json.loads((out / "build.json").read_text())
    return report, {name: Package(name, (out / entry["file"]).read_bytes(), entry["inputs"], tuple(entry["weights"]))
                    for name, entry in report["lists"].items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comfyui", required=True, type=Path, help="ComfyUI's root (its main.py's folder)")
    parser.add_argument("--spec", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--log-level", default="INFO")
    ns = parser.parse_args(argv)
    logging.basicConfig(level=ns.log_level, format="%(asctime)s %(name)s %(message)s")
    spec = load_spec(ns.spec)
    sys.path.insert(0, str(ns.comfyui.resolve()))
    # ComfyUI picks its attention function (and more) from its command line at import: give it the server's.
    import comfy.options

    comfy.options.enable_args_parsing()
    sys.argv = [str(ns.comfyui / "main.py"), *spec.get("comfy_argv", [])]
    build(spec, ns.out)
    return 0


if __name__ == "__main__":
    # Run as a file: make the package importable as such (relative imports), without its ComfyUI-side __init__ work.
    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here.parent))
    __package__ = here.name  # noqa: A001
    importlib.import_module(here.name)
    sys.exit(main())
