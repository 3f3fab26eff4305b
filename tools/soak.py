"""`python -m tools.soak`: a bounded soak of the whole worker with mixed, repeated and hostile jobs, on loopback.

Why: the unit and integration tiers prove each behaviour once; a worker in production meets them interleaved,
hundreds of times. This starts the worker exactly as production does (`bash start.sh --rp_serve_api`, bound to
127.0.0.1, ComfyUI on CPU with the random-weight stand-ins of tools/standins.py), sends `--count` jobs through its
local Runpod API (/runsync) in a fixed, seeded order, and reports:

* worker deaths: the start.sh process group or ComfyUI gone, or the API not answering;
* refreshes on caller mistakes: jobs that are the caller's fault but made the worker ask to be replaced. The local
  API drops `refresh_worker` from a failed job's answer, so a refresh is read from the handler's log line for it
  (or, for handlers older than that line, from the sentences `comfyui_unavailable` used to carry);
* outcome mismatches: a job that should succeed failed, or the reverse;
* growth of ComfyUI's input, output and temp folders (files and bytes) and the RSS of the handler and ComfyUI,
  sampled along the run.

Bounds: at most 1000 jobs and `--max-seconds` of sending; every job has a timeout; nothing leaves 127.0.0.1 (the
only URL jobs point at loopback and must be refused). Needs a ComfyUI checkout of the pinned release (v0.33.0) (`--comfyui-path` or
COMFYUI_PATH) and an interpreter with its deps (`--comfyui-python` or COMFYUI_PYTHON).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
MAX_JOBS = 1000


# ---- the jobs ------------------------------------------------------------------------------------------------

def _png_b64(size: int = 16, wrap: bool = False) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size), (200, 30, 30)).save(buf, format="PNG")
    text = base64.b64encode(buf.getvalue()).decode()
    return "\n".join(text[i:i + 76] for i in range(0, len(text), 76)) if wrap else text


def _tiny(prefix: str, size: int = 64, batch: int = 1) -> dict:
    return {"1": {"class_type": "EmptyImage", "inputs": {"width": size, "height": size, "batch_size": batch, "color": 0}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}}}


def _invert(image_name: str) -> dict:
    return {"1": {"class_type": "LoadImage", "inputs": {"image": image_name}},
            "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
            "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "soak/invert"}}}


def _tenfold_ui(levels: int = 6) -> dict:
    defs = [{"id": f"sg{i}", "nodes": [{"id": n, "type": f"sg{i + 1}" if i + 1 < levels else "Note", "mode": 0}
                                       for n in range(10)], "links": []} for i in range(levels)]
    return {"nodes": [{"id": 1, "type": "sg0", "mode": 0}], "links": [], "definitions": {"subgraphs": defs}}


def _coerced_bomb(spelling: str) -> dict:
    """EmptyImage past the limits, its values spelled as ComfyUI still reads them as numbers."""
    big: Any = {"strings": "3000", "wrapped": {"__value__": 3000}, "floats": 3000.0}.get(spelling, 3000)
    graph = _tiny("soak/coerced", size=64)
    graph["1"]["inputs"].update(width=big, height=big, batch_size="5" if spelling == "strings" else 5)
    if spelling == "primitive":  # a link through a primitive node with an input it does not declare
        graph["1"]["inputs"]["width"] = ["9", 0]
        graph["9"] = {"class_type": "PrimitiveInt", "inputs": {"value": 3000, "extra": 1}}
    return graph


def _repeat_chain(levels: int = 4, amount: int = 8) -> dict:
    """RepeatLatentBatch chained: each amount within the batch limit, the product (8^4) far past it."""
    graph = {"1": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}}}
    for level in range(levels):
        graph[str(level + 2)] = {"class_type": "RepeatLatentBatch", "inputs": {"samples": [str(level + 1), 0], "amount": amount}}
    graph["99"] = {"class_type": "SaveLatent", "inputs": {"samples": [str(levels + 1), 0], "filename_prefix": "soak/l"}}
    return graph


def _scale_chain(levels: int = 4) -> dict:
    """ImageScaleBy x4 chained: 64 px to 16384 px."""
    graph = {"1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}}}
    for level in range(levels):
        graph[str(level + 2)] = {"class_type": "ImageScaleBy", "inputs": {"image": [str(level + 1), 0],
                                                                         "upscale_method": "nearest-exact", "scale_by": 4.0}}
    graph["99"] = {"class_type": "SaveImage", "inputs": {"images": [str(levels + 1), 0], "filename_prefix": "soak/s"}}
    return graph


def _text_doubling(levels: int = 30) -> dict:
    """StringConcatenate fed itself twice per level: 2^30 characters."""
    graph = {"1": {"class_type": "PrimitiveString", "inputs": {"value": "ab"}}}
    for level in range(levels):
        prev = [str(level + 1), 0]
        graph[str(level + 2)] = {"class_type": "StringConcatenate", "inputs": {"string_a": prev, "string_b": prev, "delimiter": ""}}
    graph["99"] = {"class_type": "PreviewAny", "inputs": {"source": [str(levels + 1), 0]}}
    return graph


def _fast_path_override() -> dict:
    """The shipped FLUX graph at 256 px, 1 step, its FluxFastPatch asked for 22 GiB of bf16 copies and a new compile."""
    graph = json.loads((REPO / "workflows" / "flux1-dev-t2i.api.json").read_text())
    small = {"FluxFastPatch": {"upcast_weights": "always", "compute": "fp8_rowwise", "compile": False},
             "EmptySD3LatentImage": {"width": 256, "height": 256}, "ModelSamplingFlux": {"width": 256, "height": 256},
             "KSampler": {"steps": 1}, "SaveImage": {"filename_prefix": "soak/fast"}}
    for node in graph.values():
        node["inputs"].update(small.get(node["class_type"], {}))
    return graph


def _torch_compile() -> dict:
    return {"1": {"class_type": "UNETLoader", "inputs": {"unet_name": "flux1-dev-fp8-e4m3fn.safetensors", "weight_dtype": "default"}},
            "2": {"class_type": "TorchCompileModel", "inputs": {"model": ["1", 0], "backend": "inductor"}}}


def _url_cache_name() -> dict:
    """A LoRA named by its place in the URL cache, as if another caller's private LoRA were anyone's."""
    graph = json.loads((REPO / "workflows" / "flux1-dev-t2i.api.json").read_text())
    model = next(nid for nid, n in graph.items() if n["class_type"] == "UNETLoader")
    graph["90"] = {"class_type": "LoraLoaderModelOnly", "inputs": {
        "model": [model, 0], "lora_name": "_url_cache/url-" + "ab" * 32 + ".safetensors", "strength_model": 1.0}}
    return graph


def _gui(mutate: Callable[[dict], None] | None = None) -> dict:
    ui = json.loads((REPO / "workflows" / "flux1-dev-t2i.ui.json").read_text())
    if mutate:
        mutate(ui)
    return ui


def _deep(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = [value]
    return value


@dataclass
class Kind:
    name: str
    make: Callable[[int], dict]
    ok: bool  # whether the job should succeed
    caller_fault: bool = True  # a failure here is the caller's (or ComfyUI's refusal), never a reason to recycle
    weight: int = 1


def job_kinds(tiny_repeat: dict, flux: bool) -> list[Kind]:
    kinds = [
        Kind("custom_tiny", lambda i: {"workflow": _tiny(f"soak/t{i}")}, True, weight=6),
        Kind("custom_repeated", lambda i: {"workflow": tiny_repeat}, True, weight=6),
        Kind("custom_jpeg", lambda i: {"workflow": _tiny(f"soak/j{i}", 96), "output_format": "jpeg"}, True, weight=2),
        Kind("input_image_b64", lambda i: {"workflow": _invert(f"soak-{i % 7}.png"),
                                           "images": [{"name": f"soak-{i % 7}.png", "image": _png_b64(wrap=bool(i % 2))}]},
             True, weight=3),
        Kind("invalid_width", lambda i: {"prompt": "x", "width": 250}, False, weight=2),
        Kind("unknown_field_newline", lambda i: {"prompt": "x", "bad\nfield" + "y" * 10_000: 1}, False),
        Kind("missing_prompt", lambda i: {}, False),
        Kind("class_type_list", lambda i: {"workflow": {**_tiny(f"soak/c{i}"), "2": {"class_type": ["SaveImage"], "inputs": {}}}}, False, weight=2),
        Kind("inputs_string", lambda i: {"workflow": {**_tiny(f"soak/s{i}"), "2": {"class_type": "SaveImage", "inputs": "abc"}}}, False),
        Kind("dangling_link", lambda i: {"workflow": {**_tiny(f"soak/d{i}"), "2": {"class_type": "SaveImage", "inputs": {"images": ["99", 0], "filename_prefix": "x"}}}}, False),
        Kind("batch_64", lambda i: {"workflow": _tiny(f"soak/b{i}", batch=64)}, False),
        Kind("pixels_huge", lambda i: {"workflow": _tiny(f"soak/p{i}", size=16384)}, False),
        Kind("subgraph_bomb", lambda i: {"workflow": _tenfold_ui()}, False),
        Kind("deep_json", lambda i: {"workflow": {"1": {"class_type": "PrimitiveString", "inputs": {"value": {"__value__": _deep(200)}}}}}, False),
        Kind("gui_mode_x", lambda i: {"workflow": _gui(lambda ui: ui["nodes"][0].__setitem__("mode", "x"))}, False),
        Kind("gui_inputs_string", lambda i: {"workflow": _gui(lambda ui: ui["nodes"][1].__setitem__("inputs", "abc"))}, False),
        Kind("gui_inf_slot", lambda i: {"workflow": _gui(lambda ui: ui["links"][0].__setitem__(2, float("inf")))}, False),
        Kind("missing_model", lambda i: {"workflow": _missing_model()}, False),
        Kind("save_outside", lambda i: {"workflow": _tiny("../outside/escape")}, False),
        Kind("url_loopback", lambda i: {"workflow": _invert("u.png"), "images": [{"name": "u.png", "image": "http://127.0.0.1:9/x.png"}]}, False),
        Kind("bad_base64", lambda i: {"workflow": _invert("b.png"), "images": [{"name": "b.png", "image": "!!notbase64!!"}]}, False),
        # round 2: limits read as ComfyUI reads values, sizes followed through chains, the deployer's fast path
        *[Kind(f"coerced_{sp}", lambda i, sp=sp: {"workflow": _coerced_bomb(sp)}, False)
          for sp in ("strings", "wrapped", "floats", "primitive")],
        Kind("repeat_latent_chain", lambda i: {"workflow": _repeat_chain()}, False),
        Kind("scale_by_chain", lambda i: {"workflow": _scale_chain()}, False),
        Kind("text_doubling", lambda i: {"workflow": _text_doubling()}, False),
        Kind("torch_compile_node", lambda i: {"workflow": _torch_compile()}, False),
        Kind("lora_url_cache_name", lambda i: {"workflow": _url_cache_name()}, False),
        Kind("unknown_node_type", lambda i: {"workflow": {**_tiny(f"soak/u{i}"), "3": {"class_type": "NoSuchNode", "inputs": {}}}}, False),
    ]
    if flux:
        kinds.append(Kind("flux_256", lambda i: {"prompt": f"soak {i}", "width": 256, "height": 256,
                                                 "num_inference_steps": 1, "seed": i}, True, weight=0))
        kinds.append(Kind("flux_fast_path_override", lambda i: {"workflow": _fast_path_override()}, True, weight=0))
    return kinds


def _missing_model() -> dict:
    graph = json.loads((REPO / "workflows" / "flux1-dev-t2i.api.json").read_text())
    loader = next(nid for nid, n in graph.items() if n["class_type"] == "UNETLoader")
    graph[loader]["inputs"]["unet_name"] = "does-not-exist.safetensors"
    return graph


def schedule(kinds: list[Kind], count: int, seed: int, flux_jobs: int) -> list[Kind]:
    """Every kind at least once, the rest drawn by weight; FLUX generations (slow on CPU) spread evenly."""
    rng = random.Random(seed)
    weighted = [k for k in kinds for _ in range(k.weight)]
    order = [k for k in kinds if k.weight > 0]
    order += [rng.choice(weighted) for _ in range(max(count - len(order), 0))]
    rng.shuffle(order)
    order = order[:count]
    flux = [k for k in kinds if k.name.startswith("flux_")]
    for n in range(flux_jobs if flux else 0):
        order[(n + 1) * len(order) // (flux_jobs + 1)] = flux[n % len(flux)]
    return order


# ---- measuring ----------------------------------------------------------------------------------------------

def folder_stats(path: Path) -> dict[str, int]:
    files = [p for p in path.rglob("*") if p.is_file()] if path.exists() else []
    return {"files": len(files), "bytes": sum(p.stat().st_size for p in files)}


def group_rss(pgid: int) -> dict[str, int]:
    """RSS in bytes of the handler and ComfyUI processes of the worker's process group."""
    out: dict[str, int] = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            if int(stat[2]) != pgid:
                continue
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            rss = next(int(line.split()[1]) * 1024 for line in (proc / "status").read_text().splitlines()
                       if line.startswith("VmRSS:"))
        except (OSError, IndexError, StopIteration, ValueError):
            continue
        role = "comfyui" if "main.py" in cmd else "handler" if "-m handler" in cmd else None
        if role:
            out[role] = out.get(role, 0) + rss
    return out


def http_json(method: str, url: str, body: Any = None, timeout: float = 30.0) -> tuple[int, Any]:
    """(status, parsed JSON body) of one request; HTTP error statuses are returned, not raised."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- the run -------------------------------------------------------------------------------------------------

@dataclass
class Report:
    jobs: int = 0
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)
    refreshes_on_caller_mistakes: list[str] = field(default_factory=list)
    refreshes_total: int = 0
    worker_deaths: list[str] = field(default_factory=list)
    seconds: float = 0.0
    job_seconds_max: float = 0.0
    internal_errors: int = 0  # handler "unexpected failure" lines: an internal_error answer
    folders_start: dict[str, Any] = field(default_factory=dict)
    folders_end: dict[str, Any] = field(default_factory=dict)
    rss_samples: list[dict[str, Any]] = field(default_factory=list)


def start_worker(args: argparse.Namespace, work: Path) -> tuple[subprocess.Popen, str, str, Path]:
    dirs = {name: work / name for name in ("output", "input", "frontend", "tempbase")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    yaml = work / "standins.yaml"
    yaml.write_text(f"standins:\n  base_path: {args.standins_dir}\n  diffusion_models: diffusion_models\n"
                    "  text_encoders: text_encoders\n  vae: vae\n")
    api_port, comfy_port = free_port(), free_port()
    comfy_args = ["--cpu", "--front-end-root", str(dirs["frontend"]), "--input-directory", str(dirs["input"]),
                  "--temp-directory", str(dirs["tempbase"]), "--extra-model-paths-config", str(yaml)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNPOD_")}
    env.update(COMFYUI_PATH=str(args.comfyui_path), COMFYUI_PYTHON=args.comfyui_python, HANDLER_PYTHON=sys.executable,
               COMFYUI_URL=f"http://127.0.0.1:{comfy_port}", COMFYUI_ARGS=" ".join(comfy_args),
               COMFYUI_OUTPUT_DIR=str(dirs["output"]), COMFY_READY_TIMEOUT_S="300", JOB_TIMEOUT_S=str(args.job_timeout))
    log = open(work / "worker.log", "wb")
    process = subprocess.Popen(["bash", str(REPO / "start.sh"), "--rp_serve_api", "--rp_api_host", "127.0.0.1",
                                "--rp_api_port", str(api_port)], cwd=REPO, env=env, stdout=log,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    api = f"http://127.0.0.1:{api_port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the worker exited with {process.returncode} before it was ready; see {work / 'worker.log'}")
        try:
            if http_json("GET", f"{api}/openapi.json", timeout=5)[0] == 200:
                return process, api, f"http://127.0.0.1:{comfy_port}", work
        except OSError:
            pass
        time.sleep(1)
    stop(process)
    raise SystemExit("the worker did not answer within 300 s")


def stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(60)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def folders(work: Path) -> dict[str, Any]:
    return {"input": folder_stats(work / "input"), "output": folder_stats(work / "output"),
            "temp": folder_stats(work / "tempbase" / "temp")}


def run(args: argparse.Namespace) -> Report:
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    process, api, comfy_url, work = start_worker(args, work)
    report = Report()
    kinds = job_kinds(_tiny(f"soak/repeat-{uuid.uuid4().hex[:6]}"), flux=args.flux_jobs > 0)
    plan = schedule(kinds, args.count, args.seed, args.flux_jobs)
    report.folders_start = folders(work)
    started = time.monotonic()
    log_path = work / "worker.log"
    try:
        for index, kind in enumerate(plan):
            if time.monotonic() - started > args.max_seconds:
                print(f"stopping after {index} jobs: --max-seconds {args.max_seconds} reached", file=sys.stderr)
                break
            job_started = time.monotonic()
            refreshes_before = _refresh_lines(log_path)
            try:
                status, body = http_json("POST", f"{api}/runsync", {"input": kind.make(index)}, timeout=args.job_timeout + 60)
            except OSError as exc:
                report.worker_deaths.append(f"job {index} ({kind.name}): API did not answer: {exc}")
                break
            elapsed = time.monotonic() - job_started
            report.job_seconds_max = max(report.job_seconds_max, elapsed)
            report.jobs += 1
            ok = status == 200 and isinstance(body, dict) and body.get("status") == "COMPLETED"
            counts = report.by_kind.setdefault(kind.name, {"ok": 0, "failed": 0})
            counts["ok" if ok else "failed"] += 1
            if ok != kind.ok:
                shown = (body.get("error") if isinstance(body, dict) else body) or status
                report.mismatches.append(f"job {index} ({kind.name}): expected {'success' if kind.ok else 'failure'}, "
                                         f"got {str(shown)[:200]}")
            error = body.get("error") if isinstance(body, dict) else None
            refreshed = _refresh_lines(log_path) > refreshes_before or bool(error and _UNAVAILABLE.search(error))
            if refreshed:
                report.refreshes_total += 1
                if kind.caller_fault:
                    report.refreshes_on_caller_mistakes.append(f"job {index} ({kind.name}): {str(body)[:200]}")
            if process.poll() is not None:
                report.worker_deaths.append(f"after job {index} ({kind.name}): start.sh exited {process.returncode}")
                break
            if index % 10 == 0 or index == len(plan) - 1:
                alive = _comfy_alive(comfy_url)
                if not alive:
                    report.worker_deaths.append(f"after job {index} ({kind.name}): ComfyUI does not answer")
                    break
                report.rss_samples.append({"job": index, **group_rss(process.pid), **{
                    f"{name}_files": stats["files"] for name, stats in folders(work).items()}})
        report.seconds = round(time.monotonic() - started, 1)
        report.internal_errors = log_path.read_text(errors="replace").count("] unexpected failure")
        time.sleep(1)
        report.folders_end = folders(work)
    finally:
        stop(process)
    print(f"worker log: {log_path}", file=sys.stderr)
    return report


_REFRESH_LINE = "asking Runpod to replace this worker"
# What comfyui_unavailable answers said before the handler logged _REFRESH_LINE (to soak older handlers too).
_UNAVAILABLE = re.compile(r"did not answer|stopped answering|ComfyUI answered \w+ \S+ with HTTP|could not queue the "
                          r"workflow \(HTTP|could not return the output file|refused the upload of")


def _refresh_lines(log_path: Path) -> int:
    """Handler log lines for answers that carry refresh_worker (`comfyui_unavailable`)."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return 0
    return text.count(_REFRESH_LINE)


def _comfy_alive(url: str) -> bool:
    try:
        return http_json("GET", f"{url}/features", timeout=10)[0] == 200
    except OSError:
        return False


def summary(report: Report) -> str:
    rss = report.rss_samples
    first, last = (rss[0], rss[-1]) if rss else ({}, {})
    peak = {role: max((s.get(role, 0) for s in rss), default=0) for role in ("handler", "comfyui")}
    lines = [
        f"jobs sent: {report.jobs} in {report.seconds} s (slowest {report.job_seconds_max:.1f} s)",
        f"worker deaths: {len(report.worker_deaths)} {report.worker_deaths or ''}",
        f"refreshes: {report.refreshes_total}, on caller mistakes: {len(report.refreshes_on_caller_mistakes)}",
        *[f"  {r}" for r in report.refreshes_on_caller_mistakes[:5]],
        f"outcome mismatches: {len(report.mismatches)}, internal errors: {report.internal_errors}",
        *[f"  {m}" for m in report.mismatches[:20]],
        "folders (files, bytes) start -> end: " + ", ".join(
            f"{name} {report.folders_start[name]['files']}/{report.folders_start[name]['bytes']} -> "
            f"{report.folders_end.get(name, {}).get('files')}/{report.folders_end.get(name, {}).get('bytes')}"
            for name in ("input", "output", "temp")),
        "RSS MiB first -> last (peak): " + ", ".join(
            f"{role} {first.get(role, 0) / 2**20:.0f} -> {last.get(role, 0) / 2**20:.0f} ({peak[role] / 2**20:.0f})"
            for role in ("handler", "comfyui")),
        "per kind (ok/failed): " + ", ".join(f"{k} {v['ok']}/{v['failed']}" for k, v in sorted(report.by_kind.items())),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=300, help=f"jobs to send (at most {MAX_JOBS})")
    p.add_argument("--max-seconds", type=float, default=1500, help="stop sending after this long")
    p.add_argument("--job-timeout", type=float, default=300, help="JOB_TIMEOUT_S of the soaked worker")
    p.add_argument("--flux-jobs", type=int, default=2, help="FLUX generations among the jobs, alternating the simple input and a caller graph whose fast-path settings the worker replaces (30-100 s each on CPU)")
    p.add_argument("--seed", type=int, default=12)
    p.add_argument("--comfyui-path", type=Path, default=os.environ.get("COMFYUI_PATH"))
    p.add_argument("--comfyui-python", default=os.environ.get("COMFYUI_PYTHON") or sys.executable)
    p.add_argument("--standins-dir", type=Path, default=Path(os.environ.get("STANDINS_DIR") or REPO / ".cache" / "standins"))
    p.add_argument("--report", type=Path, help="also write the report as JSON here")
    args = p.parse_args(argv)
    if not args.comfyui_path or not (Path(args.comfyui_path) / "main.py").is_file():
        p.error("--comfyui-path (or COMFYUI_PATH) must name a ComfyUI checkout")
    if not 1 <= args.count <= MAX_JOBS:
        p.error(f"--count must be 1..{MAX_JOBS}")
    if not (args.standins_dir / "standins-manifest.json").is_file():
        p.error(f"no stand-in models in {args.standins_dir}: run `python -m tools.standins --out {args.standins_dir}`")
    report = run(args)
    print(summary(report))
    if args.report:
        args.report.write_text(json.dumps(report.__dict__, indent=2, default=str))
    bad = report.worker_deaths or report.refreshes_on_caller_mistakes or report.mismatches or report.internal_errors
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
