"""Where a FLUX.1-dev sampling step spends its time, and what each compile variant gives: the DiT alone.

Why this exists beside `bench.run`: the end-to-end benchmark says *how fast* a request is; this one says *why*,
cheaply. It builds ComfyUI's own FLUX model class (the one the worker runs) at the real FLUX.1-dev sizes with
random bf16 weights on the GPU, feeds it one 832x1536 step's inputs, and for each variant reports compile time,
s/step (median of N), dynamo graph count and graph breaks, and optionally a torch.profiler breakdown of one
step by kernel family (GEMM, attention, fused elementwise, other) plus the GPU's idle share.

Run on a GPU machine from the repo root (needs a ComfyUI checkout and its Python deps):
    python -m bench.dit_profile --comfyui .comfyui --variants eager,compile,regional --profile compile --out OUT

Variants (each starts from a reset dynamo):
    eager     ComfyUI's model as is, bf16 weights held on the GPU (the shipped path without compile)
    compile   torch.compile of the whole DiT, inductor default mode, dynamic=False (the shipped path)
    regional  torch.compile of each transformer block on its own (one compiled graph reused 19 + 38 times)
    regional_dynamic  the same with dynamic=True: one graph per block type for every image size and batch
    cudagraphs  whole-DiT compile, mode reduce-overhead (CUDA graphs)
    cdt       whole-DiT compile with inductor coordinate-descent tuning
    fp8       whole-DiT compile with FluxFastPatch's fp8 row-wise Linear (the opt-in path)
    fp8_regional  fp8 Linear, each block compiled on its own (also fp8_eager, fp8_regional_dynamic)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from bench.kernels import family

FLUX_DEV = dict(in_channels=16, out_channels=16, vec_in_dim=768, context_in_dim=4096, hidden_size=3072,
                mlp_ratio=4.0, num_heads=24, depth=19, depth_single_blocks=38, axes_dim=[16, 56, 56],
                theta=10000, patch_size=2, qkv_bias=True, guidance_embed=True)


def build_model(torch, depth: int | None, single: int | None):
    import dataclasses

    import comfy.ops
    from comfy.ldm.flux.model import Flux, FluxParams

    # Any ComfyUI release: v0.33.0's FluxParams also wants `txt_ids_dims` (FLUX.1: none), v0.3.64's has no such field.
    accepted = {f.name for f in dataclasses.fields(FluxParams)}
    params = {k: v for k, v in {**FLUX_DEV, "txt_ids_dims": []}.items() if k in accepted}
    if depth is not None:
        params["depth"] = depth
    if single is not None:
        params["depth_single_blocks"] = single
    with torch.no_grad():
        model = Flux(dtype=torch.bfloat16, device="cuda", operations=comfy.ops.manual_cast, **params)
        gen = torch.Generator(device="cuda").manual_seed(0)
        for p in model.parameters():
            p.normal_(0.0, 0.02, generator=gen)
    return model.eval().requires_grad_(False)


def inputs(torch, width: int, height: int, tokens: int):
    gen = torch.Generator(device="cuda").manual_seed(1)
    dev, bf16 = "cuda", torch.bfloat16
    x = torch.randn((1, 16, height // 8, width // 8), generator=gen, device=dev, dtype=bf16)
    context = torch.randn((1, tokens, 4096), generator=gen, device=dev, dtype=bf16)
    y = torch.randn((1, 768), generator=gen, device=dev, dtype=bf16)
    return dict(x=x, timestep=torch.tensor([0.7], device=dev, dtype=bf16), context=context, y=y,
                guidance=torch.tensor([3.5], device=dev, dtype=torch.float32))


def _fp8_linears(torch, model) -> None:
    """Give each eligible Linear FluxFastPatch's fp8 row-wise forward, over an fp8 copy of its weight."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "comfy_nodes"))
    from flux_fast.fp8 import fp8_rowwise_linear
    from flux_fast.policy import fp8_eligible

    for _, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear) and fp8_eligible(mod.in_features, mod.out_features):
            w8 = mod.weight.data.to(torch.float8_e4m3fn)
            mod.weight = None
            mod.forward = (lambda m, w: (lambda x: fp8_rowwise_linear(x, w, m.bias)))(mod, w8)


def variant_callable(torch, name: str, model):
    import torch._dynamo

    if name.startswith("fp8"):
        _fp8_linears(torch, model)
        name = name[4:] or "compile"
    if name == "eager":
        return model
    if name == "compile":
        return torch.compile(model, dynamic=False)
    if name == "cdt":
        import torch._inductor.config as ic
        ic.coordinate_descent_tuning = True
        return torch.compile(model, dynamic=False)
    if name == "cudagraphs":
        return torch.compile(model, dynamic=False, mode="reduce-overhead")
    if name in ("regional", "regional_dynamic"):
        for blocks in (model.double_blocks, model.single_blocks):
            for block in blocks:
                block.compile(dynamic=name == "regional_dynamic")
        return model
    raise SystemExit(f"unknown variant {name}")


class ClockSampler:
    """Samples the SM clock and power draw with nvidia-smi while a timed loop runs (is the card power-capped?)."""

    def __init__(self):
        import threading

        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import subprocess

        while not self._stop.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=clocks.sm,power.draw", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=5).stdout.split(",")
                self.samples.append((float(out[0]), float(out[1])))
            except Exception:  # noqa: BLE001 - a missing nvidia-smi only loses the clock column
                return
            self._stop.wait(0.25)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict:
        if not self.samples:
            return {}
        return {"sm_mhz_median": statistics.median(s[0] for s in self.samples),
                "power_w_median": statistics.median(s[1] for s in self.samples)}


def profile_step(torch, fn, kw, out_dir: Path, name: str) -> dict:
    from torch.profiler import ProfilerActivity, profile

    with torch.no_grad():
        fn(**kw)
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            t0 = time.perf_counter()
            fn(**kw)
            torch.cuda.synchronize()
            wall = time.perf_counter() - t0
    kernels: dict[str, list] = {}
    busy = 0.0
    spans = []
    for ev in prof.events():
        dev_type = str(getattr(ev, "device_type", ""))
        if "CUDA" not in dev_type:
            continue
        us = ev.device_time if hasattr(ev, "device_time") else ev.cuda_time
        if not us:
            continue
        k = kernels.setdefault(ev.name, [0, 0.0])
        k[0] += 1
        k[1] += us
        busy += us
        start = getattr(getattr(ev, "time_range", None), "start", None)
        if start is not None:
            spans.append((start, start + us))
    fams: dict[str, float] = {}
    for kname, (_, us) in kernels.items():
        fams[family(kname)] = fams.get(family(kname), 0.0) + us
    top = sorted(kernels.items(), key=lambda kv: -kv[1][1])[:40]
    summary = {
        "wall_ms": round(wall * 1000, 2),
        "gpu_busy_ms": round(busy / 1000, 2),
        "kernel_launches": sum(v[0] for v in kernels.values()),
        "families_ms": {k: round(v / 1000, 2) for k, v in sorted(fams.items(), key=lambda kv: -kv[1])},
        "top_kernels": [{"name": n[:160], "calls": c, "ms": round(us / 1000, 3)} for n, (c, us) in top],
    }
    prof.export_chrome_trace(str(out_dir / f"trace-{name}.json"))
    return summary


def _timed(torch, fn, kw: dict, n: int, each: bool = False) -> list[float]:
    """Wall seconds of n synchronised calls: one figure for all of them, or one per call (each=True)."""
    times, t0 = [], time.perf_counter()
    for _ in range(n):
        fn(**kw)
        if each:
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
    if not each:
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return times


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--comfyui", required=True)
    p.add_argument("--variants", default="eager,compile")
    p.add_argument("--profile", default="", help="comma list of variants to profile")
    p.add_argument("--width", type=int, default=832)
    p.add_argument("--height", type=int, default=1536)
    p.add_argument("--tokens", type=int, default=256)
    p.add_argument("--sizes", default="", help="more WxH sizes to run after the first, e.g. 1024x1024,768x1344")
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--depth", type=int, default=None, help="double blocks (default: FLUX.1-dev's 19)")
    p.add_argument("--single", type=int, default=None, help="single blocks (default: FLUX.1-dev's 38)")
    p.add_argument("--budget-s", type=float, default=540)
    p.add_argument("--out", default="dit-profile")
    args = p.parse_args()

    sys.path.insert(0, str(Path(args.comfyui).resolve()))
    import torch
    import torch._dynamo
    from torch._dynamo.utils import counters

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    profiled = set(filter(None, args.profile.split(",")))
    kw = inputs(torch, args.width, args.height, args.tokens)
    results = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "width": args.width,
               "height": args.height, "variants": {}}
    for name in args.variants.split(","):
        if time.perf_counter() - start > args.budget_s:
            print(f"skipping {name}: budget spent", flush=True)
            continue
        torch._dynamo.reset()
        counters.clear()
        model = build_model(torch, args.depth, args.single)
        fn = variant_callable(torch, name, model)
        with torch.no_grad():
            first_s = _timed(torch, fn, kw, 2)[0]
            with ClockSampler() as clocks:
                times = _timed(torch, fn, kw, args.iters, each=True)
            sizes = {}
            for size in filter(None, args.sizes.split(",")):
                w, h = (int(v) for v in size.split("x"))
                kw2 = inputs(torch, w, h, args.tokens)
                first2 = _timed(torch, fn, kw2, 2)[0]
                t2 = _timed(torch, fn, kw2, max(3, args.iters // 2), each=True)
                sizes[size] = {"first_two_steps_s": round(first2, 2), "s_per_step_median": round(statistics.median(t2), 5)}
                del kw2
        res = {
            "first_two_steps_s": round(first_s, 2),
            "s_per_step_median": round(statistics.median(times), 5),
            "s_per_step_min": round(min(times), 5),
            "unique_graphs": counters["stats"].get("unique_graphs", 0),
            "graph_breaks": sum(counters["graph_break"].values()),
            "graph_break_reasons": [str(k)[:200] for k in list(counters["graph_break"])[:8]],
            "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
            **clocks.summary(),
            "other_sizes": sizes,
        }
        if name in profiled:
            res["profile"] = profile_step(torch, fn, kw, out_dir, name)
        results["variants"][name] = res
        print(f"=== {name}: " + json.dumps({k: v for k, v in res.items() if k != "profile"}), flush=True)
        if "profile" in res:
            pr = res["profile"]
            print(f"    profile: wall {pr['wall_ms']} ms, GPU busy {pr['gpu_busy_ms']} ms, "
                  f"{pr['kernel_launches']} kernels, {json.dumps(pr['families_ms'])}", flush=True)
            for k in pr["top_kernels"][:25]:
                print(f"      {k['ms']:8.3f} ms {k['calls']:5d}x  {k['name'][:120]}", flush=True)
        del fn, model
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        (out_dir / "dit-profile.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
