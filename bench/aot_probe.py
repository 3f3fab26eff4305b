"""What the ahead-of-time compiled blocks cost and buy, on the DiT alone: build, load, rebind, and one model call.

Runs the serving code (comfy_nodes/flux_fast/compiled_blocks.py) on a full-size FLUX.1-dev DiT with random bf16
weights (the fast path's upcast state), outside a ComfyUI server: the build is the same child process a worker
starts, the load and the per-call rebinding check are the worker's. Reports, for one model call at the given size:
eager seconds, compiled seconds, their ratio, the rel. L2 between the two outputs, the build's seconds, the load's
seconds and the rebinding check's cost per call. Also what the first `aoti_load_package` of a process costs.

Usage (on a GPU machine, ComfyUI checkout at --comfyui): python -m bench.aot_probe --comfyui .comfyui --out probe.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bench.kernels import families_ms, tally, top_kernels

REPO = Path(__file__).resolve().parent.parent
FLUX_DEV = dict(image_model="flux", in_channels=16, out_channels=16, vec_in_dim=768, context_in_dim=4096,
                hidden_size=3072, mlp_ratio=4.0, num_heads=24, depth=19, depth_single_blocks=38, axes_dim=[16, 56, 56],
                theta=10000, patch_size=2, qkv_bias=True, guidance_embed=True, txt_ids_dims=[])


def timed(fn, runs: int, sync, series: list | None = None) -> float:
    """Median seconds of `runs` synchronised calls after one untimed; `series` gets them in call order (a card
    that slows down under load shows there)."""
    fn()
    sync()
    best = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        sync()
        best.append(time.perf_counter() - t)
    if series is not None:
        series.extend(round(v, 4) for v in best)
    return round(sorted(best)[len(best) // 2], 4)


def kernel_table(torch, fn, top: int = 25) -> dict:
    """One call under the profiler: GPU ms per kernel family, the top kernels, the kernel count."""
    from torch.profiler import ProfilerActivity, profile

    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    kernels, _ = tally(prof)
    return {"gpu_ms": round(sum(us for _, us in kernels.values()) / 1000, 2),
            "kernels": sum(calls for calls, _ in kernels.values()), "families": families_ms(kernels),
            "top": top_kernels(kernels, top)}


def build_report(build) -> dict | None:
    try:
        return json.loads((build.dir / "out" / "build.json").read_text()) if build else None
    except (OSError, ValueError):
        return None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--comfyui", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--width", type=int, default=832)
    p.add_argument("--height", type=int, default=1536)
    p.add_argument("--txt-tokens", type=int, default=512)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--compute", default="bf16")
    p.add_argument("--build-timeout-s", type=float, default=400)
    p.add_argument("--profile", action="store_true",
                   help="profile one eager and one compiled model call: the top kernels by GPU time, per family")
    p.add_argument("--tcmalloc", type=Path, default=None,
                   help="libtcmalloc_minimal.so.4, preloaded into this process and the build's child as start.sh "
                        "preloads it into a worker: on 2026-12-07 (H100) loading a package without it killed the "
                        "process (the child's self-test, and this probe 3 times of 3); the serving code now refuses "
                        "to load GPU packages without it (compiled_blocks.tcmalloc_preloaded)")
    args = p.parse_args()
    if args.tcmalloc:
        import os

        library = str(args.tcmalloc.resolve())
        if library not in os.environ.get("LD_PRELOAD", ""):     # preloading needs a fresh process: start it again
            env = {**os.environ, "LD_PRELOAD": library}
            os.execve(sys.executable, [sys.executable, "-m", "bench.aot_probe", *sys.argv[1:]], env)
    sys.path[:0] = [str(args.comfyui.resolve()), str(REPO / "comfy_nodes")]
    import comfy.options

    comfy.options.enable_args_parsing()
    sys.argv = [str(args.comfyui / "main.py")]
    import torch
    import comfy.ops
    import comfy.model_management  # noqa: F401  (ComfyUI's device setup, as in the server)
    from comfy.ldm.flux.model import Flux
    from flux_fast import policy
    from flux_fast import compiled_blocks as cb
    from flux_fast.compiled_blocks import CompiledBlocks

    res: dict = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "size": [args.width, args.height],
                 "txt_tokens": args.txt_tokens, "compute": args.compute}
    device = torch.device("cuda:0")
    t = time.perf_counter()
    with torch.device(device):
        model = Flux(**FLUX_DEV, dtype=torch.bfloat16, device=device, operations=comfy.ops.manual_cast)
    g = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=g, device=device, dtype=torch.float32).mul_(0.02))
            param.requires_grad_(False)
    if args.compute == "fp8_rowwise":
        # The served state of `compute = fp8_rowwise`: the blocks' Linear weights stay in the checkpoint's fp8
        # (ComfyUI casts them per layer eagerly; the package reads them as they are).
        for blocks in (model.double_blocks, model.single_blocks):
            for module in blocks.modules():
                if isinstance(module, torch.nn.Linear) and policy.fp8_eligible(module.in_features, module.out_features):
                    module.weight.data = module.weight.data.to(torch.float8_e4m3fn)
    model.eval()
    res["model_init_s"] = round(time.perf_counter() - t, 2)
    b, h, w = 1, args.height // 8, args.width // 8
    x = torch.randn(b, 16, h, w, generator=g, device=device, dtype=torch.bfloat16)
    ctx = torch.randn(b, args.txt_tokens, 4096, generator=g, device=device, dtype=torch.bfloat16)
    y = torch.randn(b, 768, generator=g, device=device, dtype=torch.bfloat16)
    ts = torch.full((b,), 0.5, device=device, dtype=torch.bfloat16)
    guidance = torch.full((b,), 3.5, device=device, dtype=torch.bfloat16)

    def eager():
        return model(x, ts, ctx, y=y, guidance=guidance)

    sync = torch.cuda.synchronize
    with torch.inference_mode():
        res["eager_s"] = timed(eager, args.runs, sync)
        print("eager", res, flush=True)
        reference = eager().float()

    plan = policy.make_plan(args.compute, True, "auto", {})
    compiled = CompiledBlocks(plan, args.compute, device, torch.bfloat16, Flux, FLUX_DEV, "probe",
                              env={"FLUX_FAST_ARTIFACTS_DIR": str(args.out.with_name(args.out.stem + "-artifacts")),
                                   "FLUX_FAST_ARTIFACTS_SECRET": "probe"})

    def call():
        return compiled.model_call(lambda *a, **k: model(*a, **k), model, (x, ts, ctx), {"y": y, "guidance": guidance})

    t = time.perf_counter()
    with torch.inference_mode():
        compiled.begin_run()
        call()                                   # resolves: starts the build, runs eager
        compiled.end_run()
        build = cb._BUILDS.get(compiled.wanted)
        while build is not None and build.poll() == "running":
            if time.perf_counter() - t > args.build_timeout_s:
                break
            time.sleep(1)
        res["build_wall_s"] = round(time.perf_counter() - t, 1)
        res["build_log_tail"] = build.tail() if build else None
        res["build_exit"] = build.exit_status() if build else None
        res["build_report"] = build_report(build)        # read before the load cleans the build's folder up
        res["child_preload"] = str(args.tcmalloc) if args.tcmalloc else None
        print("built", res["build_wall_s"], res["build_log_tail"], flush=True)
        try:
            res["build_log"] = build.log_path.read_text(errors="replace").splitlines()[-60:] if build else None
        except OSError:
            res["build_log"] = None
        compiled.begin_run()
        t = time.perf_counter()
        call()                                   # resolves: loads, binds, checks
        res["first_compiled_call_s"] = round(time.perf_counter() - t, 2)
        res["status_after_load"] = compiled.status()
        res["compiled_series_s"] = []
        res["compiled_s"] = timed(call, args.runs, sync, res["compiled_series_s"])
        out = call().float()
        if args.profile:
            res["profile"] = {"eager": kernel_table(torch, eager), "compiled": kernel_table(torch, call)}
        compiled.end_run()
        res["rel_l2_vs_eager"] = round(((out - reference).norm() / reference.norm()).item(), 5)
        print("compiled", res["first_compiled_call_s"], res["compiled_s"], res["rel_l2_vs_eager"],
              res["status_after_load"], flush=True)
        # Another size and a batch: the same packages, no build, no recompile (dynamic batch and token count).
        res["other_shapes"] = []
        for bw, bh, bb in ((1024, 1024, 1), (args.width, args.height, 2)):
            xs = torch.randn(bb, 16, bh // 8, bw // 8, generator=g, device=device, dtype=torch.bfloat16)
            cs = torch.randn(bb, args.txt_tokens, 4096, generator=g, device=device, dtype=torch.bfloat16)
            ys = torch.randn(bb, 768, generator=g, device=device, dtype=torch.bfloat16)
            tt = torch.full((bb,), 0.5, device=device, dtype=torch.bfloat16)
            gg = torch.full((bb,), 3.5, device=device, dtype=torch.bfloat16)
            ref = model(xs, tt, cs, y=ys, guidance=gg).float()
            before = dict(compiled.counts)
            compiled.begin_run()
            def run(xs=xs, tt=tt, cs=cs, ys=ys, gg=gg):
                return compiled.model_call(lambda *a, **k: model(*a, **k), model, (xs, tt, cs),
                                           {"y": ys, "guidance": gg})
            got = run().float()
            seconds = timed(run, 3, sync)
            compiled.end_run()
            res["other_shapes"].append({
                "size": [bw, bh], "batch": bb, "compiled_s": seconds,
                "eager_s": timed(lambda: model(xs, tt, cs, y=ys, guidance=gg), 3, sync),
                "rel_l2_vs_eager": round(((got - ref).norm() / ref.norm()).item(), 5),
                "eager_block_calls": compiled.counts["eager"] - before["eager"]})
        lists = compiled.lists
        t = time.perf_counter()
        for _ in range(20):
            for runners in lists.values():
                runners.refresh()
        res["weights_check_per_call_ms"] = round((time.perf_counter() - t) / 20 * 1000, 3)
    res["speedup"] = round(res["eager_s"] / res["compiled_s"], 3) if res.get("compiled_s") else None
    res["status"] = compiled.status()
    args.out.write_text(json.dumps(res, indent=1))
    print(json.dumps({k: v for k, v in res.items() if k not in ("status_after_load",)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
