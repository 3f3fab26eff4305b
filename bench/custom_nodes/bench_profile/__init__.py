"""Benchmark-only ComfyUI custom node package: profiles one sampling run inside the ComfyUI process.

Why: the fp8 package computes a step in 0.134 s on its own (bench.aot_probe, H100) while a worker's step took 0.154
s; what the serving process does around the model call only shows from inside it. With BENCH_PROFILE_DIR set, the
calls of ComfyUI's `comfy.sample.sample` in this process from the BENCH_PROFILE_FROM-th (default 3: after the
warm-up and the run that loads the compiled blocks), BENCH_PROFILE_COUNT of them (default 4), run under
torch.profiler, CPU and CUDA, and each one's summary lands in BENCH_PROFILE_DIR/run-<n>.json:
wall and GPU-busy time (the union of kernel intervals) per step, the GPU's idle gaps by size, kernel families
(bench/kernels.py), the top kernels and the top host ops. Loaded by the bench's ComfyUI processes only
(bench/run.py's extra_model_paths); never shipped. It wraps `comfy.sample.sample` because that is the one call the
KSampler node makes per run and a bench instrument must not need a node in the measured graph.
"""

import json
import logging
import os
import sys
import time
from pathlib import Path

log = logging.getLogger("bench_profile")
NODE_CLASS_MAPPINGS = {}

GAP_BUCKETS_MS = (0.01, 0.1, 1.0, 10.0)


def gpu_busy_and_gaps(spans: list[tuple[float, float]]) -> tuple[float, dict[str, list[float]]]:
    """(busy microseconds: the union of the kernel intervals, {">= X ms": [count, total ms]} of the idle gaps
    between them)."""
    busy, gaps = 0.0, {f">= {b} ms": [0, 0.0] for b in GAP_BUCKETS_MS}
    end = None
    for start, stop in sorted(spans):
        if end is not None and start > end:
            gap_ms = (start - end) / 1000
            for bucket in reversed(GAP_BUCKETS_MS):
                if gap_ms >= bucket:
                    entry = gaps[f">= {bucket} ms"]
                    entry[0] += 1
                    entry[1] = round(entry[1] + gap_ms, 3)
                    break
        if end is None or start > end:
            busy += stop - start
            end = stop
        elif stop > end:
            busy += stop - end
            end = stop
    return busy, gaps


def _summary(prof, wall_s: float, steps: int, kernels_module) -> dict:
    """The run's per-step figures; `kernels_module` is bench.kernels (imported once the repository is on the path)."""
    kernels, spans = kernels_module.tally(prof)
    busy_us, gaps = gpu_busy_and_gaps(spans)
    host = sorted(prof.key_averages(), key=lambda a: -a.self_cpu_time_total)[:30]
    steps = max(steps, 1)
    return {
        "wall_s": round(wall_s, 3), "steps": steps, "wall_ms_per_step": round(wall_s * 1000 / steps, 2),
        "gpu_busy_ms_per_step": round(busy_us / 1000 / steps, 2),
        "gpu_idle_ms_per_step": round((wall_s * 1e6 - busy_us) / 1000 / steps, 2),
        "idle_gaps": gaps, "kernels": sum(c for c, _ in kernels.values()),
        "families_ms": kernels_module.families_ms(kernels), "top_kernels": kernels_module.top_kernels(kernels),
        "top_host_ops": [{"name": a.key[:140], "calls": a.count, "self_cpu_ms": round(a.self_cpu_time_total / 1000, 2),
                          "cpu_ms": round(a.cpu_time_total / 1000, 2)} for a in host],
    }


def _install(directory: Path, first: int, count: int) -> None:
    import comfy.sample
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))    # the repository, for bench.kernels
    from bench import kernels

    original = comfy.sample.sample
    calls = {"n": 0}

    def sample(model, noise, steps, *args, **kwargs):
        calls["n"] += 1
        run = calls["n"]
        if not first <= run < first + count:
            return original(model, noise, steps, *args, **kwargs)
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        started = time.perf_counter()
        with profile(activities=activities) as prof:
            out = original(model, noise, steps, *args, **kwargs)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
        wall = time.perf_counter() - started
        try:
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / f"run-{run}.json"
            path.write_text(json.dumps(_summary(prof, wall, int(steps), kernels), indent=1))
            log.warning("bench: sampling run %d profiled (%.2f s) -> %s", run, wall, path)
        except Exception:
            log.exception("bench: writing the profile of sampling run %d failed", run)
        return out

    comfy.sample.sample = sample
    log.warning("bench: sampling runs %d-%d of this process will be profiled into %s", first, first + count - 1,
                directory)


_dir = os.environ.get("BENCH_PROFILE_DIR", "").strip()
if _dir:
    _install(Path(_dir), int(os.environ.get("BENCH_PROFILE_FROM", "") or 3),
             int(os.environ.get("BENCH_PROFILE_COUNT", "") or 4))
