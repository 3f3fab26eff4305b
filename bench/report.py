"""Render results.json (from bench/run.py) as BENCHMARKS.md. Pure Python: `python -m bench.report results.json`.

The hand-written analysis lives in bench/notes.md and is appended, so regenerating the figures never loses it.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from .stats import ratio

NOTES = Path(__file__).with_name("notes.md")
DEFAULT_SIZE = (832, 1536)   # bench/run.py's SIZE: what a result without "request_size" ran at

# (figure, scenario, how to read it from a scenario's results, target, "max" = at most the target)
TARGETS = [
    ("sampling, default path, s/step", "shipped", lambda r: _s(r, "s_per_step_median"), 0.13),
    ("sampling, opt-in fp8, s/step", "fp8", lambda r: _s(r, "s_per_step_median"), 0.09),
    ("warm request, default path, s", "shipped", lambda r: _s(r, "warm_median_s"), 4.5),
    ("warm request, opt-in fp8, s", "fp8", lambda r: _s(r, "warm_median_s"), 3.5),
    ("first request after ready - warm, s", "shipped",
     lambda r: (_s(r, "first_s") - _s(r, "warm_median_s")) if _s(r, "first_s") and _s(r, "warm_median_s") else None, 4.0),
    ("ComfyUI start to ready, s", "shipped", lambda r: r.get("start_to_ready_s"), 8.0),
    ("handler overhead (excl. image fetch+encode), s", "shipped", lambda r: _s(r, "handler_overhead_median_s"), 0.05),
    ("peak GPU memory, shipped, GiB (a 24 GB card holds ~22.5)", "shipped-24g",
     lambda r: r.get("peak_gpu_mib", 0) / 1024 or None, 22.5),
    ("warm request at a 24 GiB cap minus uncapped, s", "shipped-24g", lambda r, all_: _minus_shipped(r, all_), 0.5),
    ("warm request at a 16 GiB cap minus uncapped, s", "shipped-16g", lambda r, all_: _minus_shipped(r, all_), 1.5),
]


def _minus_shipped(r: dict, results: dict):
    """A capped scenario's warm request minus the uncapped shipped one's, when both ran."""
    capped, uncapped = _s(r, "warm_median_s"), _s(results.get("shipped") or {}, "warm_median_s")
    return capped - uncapped if capped is not None and uncapped is not None else None


def _s(r: dict, key: str):
    return (r.get("summary") or {}).get(key)


def _f(v: Any, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if math.isinf(v):
            return "inf"
        return f"{v:.{digits}f}"
    return str(v)


def scenario_rows(results: dict) -> list[str]:
    names = [k for k in results if not k.startswith("_") and k != "startup"]
    base = results.get("baseline", {})
    head = ("| scenario | start to ready s | ready to serve s | first request s | warm median s | vs baseline | "
            "s/step | vs baseline | KSampler s | decode s | save s | text encode s | handler overhead s | "
            "fetch+encode s | peak GPU MiB | response bytes | recompiles |")
    rows = [head, "|" + " --- |" * (head.count("|") - 1)]
    for name in names:
        r = results[name]
        if "error" in r and not r.get("warm"):
            rows.append(f"| {name} | failed: {r['error'][:200]} |")
            continue
        s = r.get("summary") or {}
        nodes = s.get("nodes_median_s") or {}
        # A ratio only where the requests are the baseline's size; another size is another workload.
        same = tuple(r.get("request_size") or DEFAULT_SIZE) == tuple(base.get("request_size") or DEFAULT_SIZE)
        rx = (lambda a, b: _x(ratio(a, b))) if same else (lambda a, b: "-")
        rows.append("| " + " | ".join([
            name, _f(r.get("start_to_ready_s"), 1), _f(r.get("ready_to_serve_s"), 1), _f(s.get("first_s"), 2),
            _f(s.get("warm_median_s"), 2), rx(_s(base, "warm_median_s"), s.get("warm_median_s")),
            _f(s.get("s_per_step_median"), 4), rx(_s(base, "s_per_step_median"), s.get("s_per_step_median")),
            _f(nodes.get("KSampler"), 2), _f(nodes.get("FluxFastDecode", nodes.get("VAEDecodeTiled", nodes.get("VAEDecode"))), 2),
            _f(nodes.get("FluxFastSaveImage", nodes.get("SaveImage")), 2), _f(nodes.get("CLIPTextEncode"), 2),
            _f(s.get("handler_overhead_median_s"), 3), _f(s.get("outputs_median_s"), 3),
            _f(r.get("peak_gpu_mib")), _f(s.get("response_bytes")), _f(r.get("recompiles")),
        ]) + " |")
    return rows


def _x(v: float | None) -> str:
    return f"{v:.2f}x" if v else "-"


def target_rows(results: dict) -> list[str]:
    rows = ["| target | scenario | measured | target | met |", "| --- | --- | --- | --- | --- |"]
    for figure, name, get, target in TARGETS:
        r = results.get(name)
        try:
            value = None
            if isinstance(r, dict):
                value = get(r, results) if get.__code__.co_argcount == 2 else get(r)
        except TypeError:
            value = None
        met = "-" if value is None else ("yes" if value <= target else f"no (+{value - target:.3g})")
        rows.append(f"| {figure} | {name} | {_f(value)} | <= {target} | {met} |")
    return rows


def exactness_rows(results: dict) -> list[str]:
    rows = ["| scenario | steps | image max abs diff (0-255) | image PSNR dB | latent max abs diff | latent PSNR dB | latent rel L2 |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in results.items():
        ex = (r.get("exactness") or {}) if isinstance(r, dict) else {}
        for tag, steps in (("-1step", "1"), ("", "28")):
            vs = ex.get(f"vs_baseline{tag}")
            if not vs:
                continue
            im, la = vs.get("image", {}), vs.get("latent", {})
            rows.append(f"| {name} | {steps} | {_f(im.get('max_abs_diff'), 1)} | {_f(im.get('psnr_db'), 1)} | "
                        f"{_f(la.get('max_abs_diff'), 4)} | {_f(la.get('psnr_db'), 1)} | {_f(la.get('rel_l2'), 4)} |")
    return rows


def startup_rows(results: dict) -> list[str]:
    st = (results.get("startup") or {}).get("start_to_ready_s")
    if not isinstance(st, dict):
        return []
    rows = ["| ComfyUI flags | start to HTTP ready, s (two starts, page cache warm) |", "| --- | --- |"]
    rows += [f"| {name} | {', '.join(_f(t, 1) for t in times)} |" for name, times in st.items()]
    return rows


PROFILES = Path(__file__).with_name("profiles")


def profile_rows(pattern: str, render_one) -> list[str]:
    """Each run kept in bench/profiles/ whose name matches `pattern`, newest first, rendered with its title."""
    lines = []
    for path in sorted(PROFILES.glob(pattern), reverse=True):
        data = json.loads(path.read_text())
        lines += render_one(data, data.get("_title", path.stem)) + [""]
    return lines


def coldstart_rows() -> list[str]:
    """The cold-start runs (bench.coldstart)."""
    from .coldstart import render as render_coldstart

    return profile_rows("coldstart-*.json", render_coldstart)


def lora_rows() -> list[str]:
    """The LoRA runs (bench/run.py's baseline-lora and lora scenarios)."""
    from .loras import rows

    return profile_rows("lora-*.json", rows)


def render(results: dict) -> str:
    env = results.get("_env", {})
    lines = [
        "# Benchmarks",
        "",
        "Generated by `python -m bench` (bench/run.py) from results.json; analysis from bench/notes.md.",
        "",
        f"- GPU: {env.get('gpu', '?')}; torch {env.get('torch', '?')} (CUDA {env.get('cuda', '?')}, "
        f"Triton {env.get('triton') or '?'}, cuDNN "
        f"{env.get('cudnn', '?')}); transformers {env.get('transformers', '?')}; ComfyUI {env.get('comfyui', '?')}; "
        f"Python {env.get('python', '?')}",
        f"- Handler: {env.get('runpod', '?')}",
        "- Workload: FLUX.1-dev stand-in weights of the exact shapes (random values, production file names), "
        "832x1536, 28 steps euler/simple, cfg 1, new prompt and seed for each request, through `handler.job.Worker`.",
    ]
    if "tcmalloc" in env or "bytecode" in env:
        primed = env.get("bytecode") or {}
        lines.append(
            "- Processes: the baseline starts ComfyUI with its defaults; every shipped scenario as start.sh does (its "
            f"COMFYUI_PERF_ARGS, LD_PRELOAD tcmalloc with TCMALLOC_RELEASE_RATE=0: {env.get('tcmalloc', '?')}). "
            + (f"Bytecode primed by one untimed start ({primed.get('primed_s')} s), as the image ships it."
               if primed else "Bytecode not primed: starts include compiling modules from source."))
    if "_standins" in results:
        lines.append(f"- Stand-in generation: {results['_standins'].get('seconds')} s")
    if results.get("_skipped"):
        lines.append(f"- Skipped for lack of time in the run: {', '.join(results['_skipped'])}")
    lines += ["", "## Figures", ""] + scenario_rows(results)
    lines += ["", "## Targets (issue 4)", ""] + target_rows(results)
    ex = exactness_rows(results)
    if len(ex) > 2:
        lines += ["", "## Exactness against the baseline (same prompt, seed and weights)", ""] + ex
    st = startup_rows(results)
    if st:
        lines += ["", "## ComfyUI start", ""] + st
    kept_runs = [
        ("Cold start (issue 9): from start.sh to the first image through the local API",
         "`python -m bench.coldstart` (bench/coldstart.py): seconds from launching start.sh as the image does; "
         "a client POSTs /runsync from the first instant. Baseline = the plain ComfyUI graph with ComfyUI's "
         "defaults and no warm-up, started the same way, in the same run.", coldstart_rows()),
        ("LoRAs on the fast path (issue 11)",
         "`python -m bench --scenarios baseline,baseline-lora,lora` (bench/loras.py): the same requests "
         "through the handler's `loras` field on the plain graph (ComfyUI's defaults) and on the shipped "
         "one, in the same run; then fixed-seed probes compared image for image.", lora_rows()),
    ]
    for heading, intro, rows in kept_runs:
        if rows:
            lines += ["", f"## {heading}", "", intro, ""] + rows
    lines += ["", "## Scenarios", ""]
    for name, r in results.items():
        if not name.startswith("_") and isinstance(r, dict):
            lines.append(f"- **{name}**: {r.get('note', '')}" + (f"; flags {' '.join(r['comfy_args'])}" if r.get("comfy_args") else "")
                         + (f"; ERROR: {r['error'][:300]}" if r.get("error") else ""))
    if NOTES.exists():
        lines += ["", NOTES.read_text().strip()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    results = json.loads(Path(argv[0]).read_text())
    sys.stdout.write(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
