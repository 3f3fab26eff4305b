"""Cold start as a caller meets it: from start.sh's first instant to the first image back through the local Runpod API.

Each variant starts the worker exactly as the image does (`bash start.sh --rp_serve_api`, ComfyUI and the handler as
separate processes), while a client POSTs /runsync from the first instant, retrying until the API accepts. Timed
from the moment start.sh is launched: `ready` (the API accepts a request), `first image` (the response arrives), then
requests back to back as a scale-up's queue sends them (shipped variants), each marked compiled or eager by the
fast path's own counters, until a few ran compiled or --load-window-s passed; failed requests are counted. Every
line the worker prints is timestamped on arrival, so each phase (model prefetch, ComfyUI's imports, model loads, the
build or the packages' load, the first generation) can be read off the same clock.

Variants (run in this order; each gets fresh inductor and Triton caches, as a new container has):
  baseline            plain ComfyUI graph (no FluxFastPatch, VAEDecodeTiled), ComfyUI's defaults, no warm-up
  shipped-nocache     the shipped worker, no compiled blocks yet (the first worker of a GPU model): it builds them
                      in a child process while it serves eager
  shipped-artifacts   the shipped worker with the blocks the previous variant published, signed, to the shared
                      folder (every later worker of the endpoint)
  shipped-colddisk    as shipped-artifacts with the model files evicted from the page cache
  baseline-colddisk   baseline with the model files evicted from the page cache
  noprefetch-colddisk shipped-colddisk without the boot-time prefetch (what it buys)
  shipped-colddisk-1mib  shipped-colddisk with the prefetch reading 1 MiB at a time (PREFETCH_READ_MIB=1): fewer bytes
                      queued ahead of ComfyUI's own reads on a disk without an I/O scheduler
  shipped-highvram    as shipped-artifacts with ComfyUI's --highvram (the DiT read straight onto the card)
  shipped-hostload    as shipped-artifacts with FLUX_FAST_LOAD_TO_CARD=off: the DiT built in host memory and moved at
                      the first sampling run, as ComfyUI's UNETLoader does (what building it on the card buys)
  shipped-preload     as shipped-artifacts with the start-up preload (FLUX_FAST_PRELOAD: models load while ComfyUI starts)
The page cache is emptied for the model files with posix_fadvise(DONTNEED) (and vm.drop_caches where allowed), and
the fraction still cached is measured with mincore(2) before the start, so a run that could not evict says so.

    python -m bench.coldstart --comfyui .comfyui --out OUT [--variants ...] [--size 832x1536 --steps 28]
Needs the runpod SDK and ComfyUI's dependencies importable by the current interpreter; full-size stand-in weights
are generated into <comfyui>/models by tools.standins when missing.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import mmap
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from . import graphs

REPO = Path(__file__).resolve().parent.parent
WORKFLOW = "flux1-dev-t2i"
PROMPTS = ["a lighthouse at dusk, cinematic, vertical", "a fox in a snowy forest, morning light",
           "an astronaut reading in a library, warm tones", "a bowl of ramen, studio photo, top view",
           "a sailing ship in a storm, oil painting", "a neon street in the rain at night"]
VARIANTS = {
    "baseline": {"shipped": False, "cold_disk": False},
    "shipped-nocache": {"shipped": True, "cold_disk": False, "clear_artifacts": True},
    "shipped-artifacts": {"shipped": True, "cold_disk": False},
    "shipped-colddisk": {"shipped": True, "cold_disk": True},
    "baseline-colddisk": {"shipped": False, "cold_disk": True},
    "noprefetch-colddisk": {"shipped": True, "cold_disk": True, "env": {"PREFETCH_MODELS": "0"}},
    # Session 13's cold disk: ComfyUI listened at 18.9 s beside the 16 MiB reads (10.0 s warm); ionice does nothing
    # where the disk has no scheduler. Smaller reads queue less ahead of its imports' page faults.
    "shipped-colddisk-1mib": {"shipped": True, "cold_disk": True, "env": {"PREFETCH_READ_MIB": "1"}},
    # ComfyUI's --highvram: the DiT's offload device is the card, so v0.33.0's load_diffusion_model_state_dict moves
    # the freshly built (uninitialised) model there and then copies the file's tensors straight into it, instead of
    # into host memory and onto the card at the first sampling run; models then stay on the card. Read from the
    # source, not measured: the first move copies 11 GiB of uninitialised host memory, which may cost what it saves.
    "shipped-highvram": {"shipped": True, "cold_disk": False, "comfy_args": "--highvram"},
    "shipped-hostload": {"shipped": True, "cold_disk": False, "env": {"FLUX_FAST_LOAD_TO_CARD": "off"}},
    # With the start-up preload (comfy_nodes/flux_fast/preload.py, off by default): the default workflow's models load
    # while ComfyUI starts. (Run 2026-12-07, as the default then: first image 22.09 s against 19.78 s without.)
    "shipped-preload": {"shipped": True, "cold_disk": False,
                        "env": {"FLUX_FAST_PRELOAD": str(REPO / "workflows" / f"{WORKFLOW}.api.json")}},
}
# Phases read off the worker's log: (name, text that marks it; the first line containing it counts, or ending
# with it when the text ends in "$").
PHASES = [
    ("prefetch_done", "prefetch: read"),
    ("preload_started", "flux_fast: preloading"),
    ("preload_ready", "flux_fast: preload ready"),
    ("comfyui_listening", "To see the GUI go to"),
    ("handler_saw_comfyui", "ComfyUI answered after"),
    ("warmup_started", "warming up:"),
    ("text_encoder_load_requested", "Requested to load FluxClipModel"),
    ("dit_load_requested", "Requested to load Flux$"),
    ("dit_built_on_card", "built on the card ("),
    ("upcast_done", "fp8 tensors now held in"),
    ("build_started", "building them in a child process"),
    ("build_failed", "compiled-block build failed"),
    ("card_checked", "GiB card"),              # start.sh asked nvidia-smi (before ComfyUI starts)
    ("api_listening", "Uvicorn running on"),
    ("warmup_done", "warm-up done in"),
    ("warmup_gave_way", "warm-up gives way"),
    ("compiled_ready", "compiled blocks loaded in"),
    ("artifacts_published", "artifacts published"),
]


# ---- page cache -------------------------------------------------------------------------------------------
def cached_fraction(path: Path) -> float:
    """Share of `path`'s pages in the page cache: mincore(2) on a read-only mapping (no page is touched)."""
    size = path.stat().st_size
    if size == 0:
        return 1.0
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if addr in (None, ctypes.c_void_p(-1).value):
            return float("nan")
        try:
            vec = (ctypes.c_ubyte * pages)()
            if libc.mincore(ctypes.c_void_p(addr), ctypes.c_size_t(size), vec) != 0:
                return float("nan")
            return sum(v & 1 for v in vec) / pages
        finally:
            libc.munmap(ctypes.c_void_p(addr), ctypes.c_size_t(size))
    finally:
        os.close(fd)


def evict(paths: list[Path]) -> dict[str, Any]:
    """Drop the files' pages from the page cache; returns what is still cached afterwards."""
    os.sync()
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("1\n")
        dropped = True
    except OSError:
        dropped = False
    return {"drop_caches": dropped, "cached_after": {p.name: round(cached_fraction(p), 3) for p in paths}}


# ---- one start --------------------------------------------------------------------------------------------
class LogClock:
    """Reads the worker's output, stamping each line with seconds since start.sh was launched."""

    def __init__(self, proc: subprocess.Popen, t0: float, path: Path):
        self.lines: list[tuple[float, str]] = []
        self.path = path
        self._thread = threading.Thread(target=self._read, args=(proc, t0), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen, t0: float) -> None:
        with open(self.path, "w") as out:
            for raw in proc.stdout:
                t = time.perf_counter() - t0
                line = raw.rstrip("\n")
                self.lines.append((t, line))
                out.write(f"{t:8.3f} {line}\n")
                out.flush()

    def first(self, text: str) -> float | None:
        if text.endswith("$"):
            return next((round(t, 2) for t, line in list(self.lines) if line.rstrip().endswith(text[:-1])), None)
        return next((round(t, 2) for t, line in list(self.lines) if text in line), None)

    def wait_for(self, text: str, timeout_s: float) -> float | None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            t = self.first(text)
            if t is not None:
                return t
            time.sleep(0.1)
        return None


def post(url: str, body: dict, timeout_s: float) -> dict:
    import requests

    response = requests.post(url, json=body, timeout=timeout_s)
    response.raise_for_status()
    return response.json()


# --soak: what a busy endpoint's queue mixes (sizes, step counts, batches), cycled with periods that never line up,
# so each size meets each step count and batch; every shape is one the compiled blocks take without a rebuild
# (dynamic token count, batches of 1 and 2+), so a request that runs eager once the packages are loaded is a finding.
SOAK_SIZES = [(832, 1536), (1024, 1024), (1536, 832), (768, 1344), (512, 512)]
SOAK_STEPS = [8, 4, 12, 6]
SOAK_IMAGES = [1, 1, 2]


def request_body(index: int, args) -> dict:
    body = {"prompt": PROMPTS[index % len(PROMPTS)], "seed": 1000 + index, "width": args.width,
            "height": args.height, "num_inference_steps": args.steps}
    if args.mixed:
        (body["width"], body["height"]), body["num_inference_steps"], body["num_images"] = (
            SOAK_SIZES[index % len(SOAK_SIZES)], SOAK_STEPS[index % len(SOAK_STEPS)], SOAK_IMAGES[index % len(SOAK_IMAGES)])
    return {"input": body}


def check_shape(output: dict, body: dict) -> None:
    """A reply whose images are not the size and count asked for is a failure, not a success."""
    want = (body["input"]["width"], body["input"]["height"])
    images = output.get("images") or [output.get("image") or {}]
    got = [(i.get("width"), i.get("height")) for i in images]
    count = body["input"].get("num_images", 1)
    if len(got) != count or any(g != want for g in got):
        raise RuntimeError(f"asked for {count} image(s) of {want[0]}x{want[1]}, got {got}")


def image_of(reply: dict) -> dict:
    output = reply.get("output") or {}
    if reply.get("status") != "COMPLETED" or "error" in output or "image" not in output:
        raise RuntimeError(f"request failed: {json.dumps(reply)[:1500]}")
    return output


def run_variant(name: str, spec: dict, args, env_base: dict, work: Path) -> dict:
    import requests

    vdir = work / name
    shutil.rmtree(vdir, ignore_errors=True)
    vdir.mkdir(parents=True)
    models = model_files(args.comfyui)
    res: dict[str, Any] = {"variant": name, **{k: v for k, v in spec.items() if k != "env"}}
    if spec.get("clear_artifacts"):
        shutil.rmtree(args.artifacts, ignore_errors=True)
    if spec["cold_disk"]:
        res["page_cache"] = evict(models)
    else:
        for path in models:                      # warm: make sure the files are cached, as after a recent start
            with open(path, "rb") as fh:
                while fh.read(64 * 2**20):
                    pass
        res["page_cache"] = {"cached_before": {p.name: round(cached_fraction(p), 3) for p in models}}
    port = args.port
    env = {**env_base, "COMFYUI_PATH": str(args.comfyui), "COMFYUI_PYTHON": sys.executable,
           "HANDLER_PYTHON": sys.executable, "COMFYUI_URL": f"http://127.0.0.1:{port + 1}",
           "COMFYUI_ARGS": f"--front-end-root {work / 'empty-frontend'} {args.comfy_args} {spec.get('comfy_args', '')}"
           .strip(),
           "TORCHINDUCTOR_CACHE_DIR": str(vdir / "inductor"), "TRITON_CACHE_DIR": str(vdir / "triton"),
           "FLUX_FAST_ARTIFACTS_DIR": str(args.artifacts), "FLUX_FAST_ARTIFACTS_SECRET": "bench",
           "FLUX_FAST_BAKED_ARTIFACTS_DIR": "", "COMFYUI_OUTPUT_DIR": str(vdir / "output"),
           "RUNPOD_LOG_LEVEL": "INFO", **spec.get("env", {})}
    if args.mixed:         # two incompressible stand-in PNGs exceed /run's 10 MB; /runsync takes 20
        env["MAX_RESPONSE_BYTES"] = "20000000"
    if spec["shipped"]:
        env.update(WARMUP_STEPS=str(args.warmup_steps), WORKFLOWS_DIR=str(REPO / "workflows"), WARMUP_SIZES=args.size)
        if args.tcmalloc:
            env.update(LD_PRELOAD=str(args.tcmalloc))
    else:
        # Plain ComfyUI: our nodes are on its path (the plain graph does not use them), so their one process-wide
        # effect, the garbage-collection freeze at import, is turned off.
        env.update(WARMUP_STEPS="0", WORKFLOWS_DIR=str(plain_workflows(work)), COMFYUI_PERF_ARGS="",
                   FLUX_FAST_GC_FREEZE="0", FLUX_FAST_PRELOAD="")
    api = f"http://127.0.0.1:{port}/runsync"
    t0 = time.perf_counter()
    proc = subprocess.Popen(["bash", str(REPO / "start.sh"), "--rp_serve_api", "--rp_api_port", str(port),
                             "--rp_api_host", "127.0.0.1"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    clock = LogClock(proc, t0, vdir / "worker.log")
    try:
        accepted = None
        while True:                              # the caller: send as soon as the worker takes requests
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited with {proc.returncode} before it took a request")
            if time.perf_counter() - t0 > args.start_timeout_s:
                raise RuntimeError("worker took no request in time")
            try:
                sent = time.perf_counter()
                reply = post(api, request_body(0, args), timeout_s=600)
                accepted = sent - t0
                break
            except requests.ConnectionError:
                time.sleep(0.05)
        first = image_of(reply)
        res["ready_s"] = round(accepted, 2)
        res["first_image_s"] = round(time.perf_counter() - t0, 2)
        res["first_request"] = summarize_timings(first)
        status_url = f"http://127.0.0.1:{port + 1}/flux_fast/status"
        res["first_request"]["compiled"] = compiled_calls(status_url) > 0 if spec["shipped"] else None
        if spec["shipped"]:
            res.update(back_to_back(api, status_url, t0, args))
        else:
            res["warm"] = timed_requests(api, range(1, args.warm_runs + 1), args)
            if res["warm"]:
                res["warm_median_s"] = round(statistics.median(w["wall_s"] for w in res["warm"]), 3)
        info = post(api, {"input": {"action": "info"}}, timeout_s=60).get("output") or {}
        res["fast_path"] = info.get("fast_path")
    except Exception as exc:
        res["error"] = f"{exc.__class__.__name__}: {exc}"
    finally:
        stop(proc)
        res["phases_s"] = {name: clock.first(text) for name, text in PHASES}
        res["log_tail"] = [line for _, line in clock.lines[-5:]]
    return res


def compiled_calls(status_url: str) -> int:
    """Block calls the worker's ComfyUI has run through compiled blocks so far (comfy_nodes/flux_fast status)."""
    import requests

    try:
        body = requests.get(status_url, timeout=10).json()
    except Exception:
        return 0
    return sum((c.get("block_calls") or {}).get("compiled", 0) for c in body.get("compile") or [])


def back_to_back(api: str, status_url: str, t0: float, args) -> dict[str, Any]:
    """Requests one after the other from the first image on, as a scale-up's queue sends them, until
    --compiled-runs of them ran compiled or --load-window-s passed. Each request: its wall time, KSampler time,
    whether its sampling ran through the compiled blocks, and whether it failed (a failure is counted, not fatal)."""
    done, failures, index = [], [], 1
    before = compiled_calls(status_url)
    while time.perf_counter() - t0 < args.load_window_s:
        t = time.perf_counter()
        body = request_body(index, args)
        try:
            out = image_of(post(api, body, timeout_s=600))
            check_shape(out, body)
        except Exception as exc:
            failures.append({"at_s": round(t - t0, 2), "error": str(exc)[:500]})
            index += 1
            continue
        now = compiled_calls(status_url)
        done.append({"at_s": round(t - t0, 2), "wall_s": round(time.perf_counter() - t, 3),
                     "compiled": now > before, **summarize_timings(out)})
        if args.mixed:
            b = body["input"]
            done[-1]["shape"] = f'{b["width"]}x{b["height"]}x{b["num_images"]}@{b["num_inference_steps"]}'
        before, index = now, index + 1
        if args.soak and len(done) + len(failures) >= args.soak:
            break
        if not args.soak and sum(d["compiled"] for d in done) >= args.compiled_runs:
            break
    eager = [d for d in done if not d["compiled"]]
    compiled = [d for d in done if d["compiled"]]
    first_compiled = next((d for d in done if d["compiled"]), None)
    after = done[done.index(first_compiled):] if first_compiled else []
    return {"eager_after_compiled": [d.get("shape") or d["at_s"] for d in after if not d["compiled"]],
            "warm": eager, "compiled": compiled, "failures": failures, "requests": len(done) + len(failures),
            "requests_before_compiled": done.index(first_compiled) if first_compiled else len(done),
            "compiled_ready_at_s": first_compiled["at_s"] if first_compiled else None,
            "warm_median_s": round(statistics.median(d["wall_s"] for d in eager), 3) if eager else None,
            "compiled_median_s": round(statistics.median(d["wall_s"] for d in compiled), 3) if compiled else None}


def timed_requests(api: str, indices: range, args) -> list[dict]:
    """One request after the other (a new prompt and seed each), with the client's wall time of each."""
    done = []
    for i in indices:
        t = time.perf_counter()
        out = image_of(post(api, request_body(i, args), timeout_s=600))
        done.append({"wall_s": round(time.perf_counter() - t, 3), **summarize_timings(out)})
    return done


def summarize_timings(output: dict) -> dict:
    t = output.get("timings") or {}
    nodes = {v["class_type"]: v["seconds"] for v in (t.get("nodes_s") or {}).values()}
    return {"execution_s": t.get("comfyui_execution_s"), "total_s": t.get("total_s"),
            "queued_s": t.get("comfyui_queue_s"), "nodes_s": nodes}


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def plain_workflows(work: Path) -> Path:
    """A workflows folder whose default is the plain ComfyUI graph (the shipped one minus our nodes)."""
    folder = work / "workflows-plain"
    folder.mkdir(parents=True, exist_ok=True)
    graph = json.loads((REPO / "workflows" / f"{WORKFLOW}.api.json").read_text())
    (folder / f"{WORKFLOW}.api.json").write_text(json.dumps(graphs.without_fast_path(graph), indent=1))
    shutil.copy(REPO / "workflows" / f"{WORKFLOW}.params.json", folder / f"{WORKFLOW}.params.json")
    return folder


def model_files(comfyui: Path) -> list[Path]:
    from handler.prefetch import find_files

    return [p.resolve() for p in find_files(REPO / "models.txt", [comfyui / "models"])]


def disk_rate(paths: list[Path]) -> dict[str, Any]:
    """Sequential read rate of the largest model file from a cold page cache (one reader, 16 MiB chunks)."""
    path = max(paths, key=lambda p: p.stat().st_size)
    evict([path])
    size = path.stat().st_size
    t = time.perf_counter()
    with open(path, "rb", buffering=0) as fh:
        buf = bytearray(16 * 2**20)
        while fh.readinto(buf):
            pass
    seconds = time.perf_counter() - t
    return {"file": path.name, "gib": round(size / 2**30, 2), "seconds": round(seconds, 2),
            "gib_per_s": round(size / 2**30 / seconds, 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--comfyui", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--work", type=Path, default=Path("/tmp/flux-coldstart"))
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--size", default="832x1536")
    p.add_argument("--steps", type=int, default=28)
    p.add_argument("--warmup-steps", type=int, default=2)
    p.add_argument("--warm-runs", type=int, default=2)
    p.add_argument("--compiled-runs", type=int, default=3)
    p.add_argument("--load-window-s", type=float, default=150,
                   help="from start.sh's launch: how long back-to-back requests wait for the compiled path")
    p.add_argument("--start-timeout-s", type=float, default=300)
    p.add_argument("--port", type=int, default=18300)
    p.add_argument("--tcmalloc", type=Path, default=None, help="libtcmalloc_minimal.so.4 (the image preloads it)")
    p.add_argument("--standin-args", default="--full --device cuda")
    p.add_argument("--comfy-args", default="", help="extra ComfyUI flags (--cpu for a CPU smoke run)")
    p.add_argument("--prime", action="store_true", help="one untimed start first (bytecode, page cache)")
    p.add_argument("--soak", type=int, default=0,
                   help="shipped variants: after the first image, N requests back to back whatever the compiled path "
                        "does (within --load-window-s), mixing sizes, step counts and batches (SOAK_*); each reply "
                        "is checked for the images asked for, and requests that ran eager after the first compiled "
                        "one are listed")
    args = p.parse_args(argv)
    args.mixed = args.soak > 0
    args.width, args.height = (int(v) for v in args.size.lower().split("x"))
    args.comfyui, args.out, args.work = args.comfyui.resolve(), args.out.resolve(), args.work.resolve()
    args.artifacts = args.work / "artifacts"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.work / "empty-frontend").mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"_env": environment(), "_args": {"size": args.size, "steps": args.steps,
                                                                 "warmup_steps": args.warmup_steps, "soak": args.soak}}
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tools.standins", *args.standin_args.split(), "--out",
                    str(args.comfyui / "models")], cwd=REPO, check=True)
    results["_standins_s"] = round(time.perf_counter() - t, 1)
    # Bytecode: the image ships compiled bytecode; this machine may not write it (PYTHONDONTWRITEBYTECODE).
    env_base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env_base["PYTHONPYCACHEPREFIX"] = str(args.work / "pycache")
    results["_disk"] = disk_rate(model_files(args.comfyui))
    if args.prime:  # bytecode for every module both processes import, and the files in the page cache
        results["_prime"] = run_variant("prime", VARIANTS["baseline"], argparse.Namespace(
            **{**vars(args), "warm_runs": 0, "compiled_runs": 0, "load_window_s": 0, "steps": 1, "soak": 0,
               "mixed": False}), env_base, args.work)
    for name in [v.strip() for v in args.variants.split(",") if v.strip()]:
        print(f"=== {name}", flush=True)
        results[name] = run_variant(name, VARIANTS[name], args, env_base, args.work)
        r = results[name]
        print(f"    ready {r.get('ready_s')} s, first image {r.get('first_image_s')} s (compiled: "
              f"{(r.get('first_request') or {}).get('compiled')}), eager {r.get('warm_median_s')} s x "
              f"{len(r.get('warm') or [])}, compiled {r.get('compiled_median_s')} s from {r.get('compiled_ready_at_s')} s "
              f"after {r.get('requests_before_compiled')} requests, failures {len(r.get('failures') or [])} "
              f"{r.get('error', '')}", flush=True)
        (args.out / "coldstart.json").write_text(json.dumps(results, indent=1))
        shutil.copy(args.work / name / "worker.log", args.out / f"coldstart-{name}.log")
    (args.out / "coldstart.json").write_text(json.dumps(results, indent=1))
    return 0


def render(results: dict[str, Any], title: str) -> list[str]:
    """Markdown rows for one coldstart.json: the caller's view, then where the time went (seconds from start.sh)."""
    env = results.get("_env", {})
    disk = results.get("_disk") or {}
    lines = [f"### {title}", "",
             f"{env.get('gpu', '?')}, torch {env.get('torch', '?')}, Triton {env.get('triton', '?')}, runpod "
             f"{env.get('runpod', '?')}; {results.get('_args', {}).get('size', '?')}, "
             f"{results.get('_args', {}).get('steps', '?')} steps; disk sequential read "
             f"{disk.get('gib_per_s', '?')} GiB/s ({disk.get('gib', '?')} GiB in {disk.get('seconds', '?')} s, one reader).",
             "",
             "| variant | page cache | ready (API takes jobs) | first image | first request: KSampler (compiled?) | "
             "requests before the compiled path | compiled path from | failed requests | eager request (median) | "
             "compiled request (median) | compiled blocks | first request: DiT loader (built on) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in results.items():
        if name.startswith("_") or not isinstance(r, dict):
            continue
        first = r.get("first_request") or {}
        comp = ((r.get("fast_path") or {}).get("compile") or [{}])[0] if r.get("fast_path") else {}
        arts = comp.get("artifacts", "-")
        if comp.get("load_s") is not None:
            arts = f"{arts}; loaded in {comp['load_s']} s"
        shipped = r.get("shipped")
        compiled_flag = {True: "yes", False: "no"}.get(first.get("compiled"), "-")
        nodes = first.get("nodes_s") or {}
        loader = nodes.get("FluxFastUNETLoader", nodes.get("UNETLoader"))
        built = ((r.get("fast_path") or {}).get("load") or {}).get("built")    # on_card.py, the last load's
        lines.append(
            f"| {name} | {'dropped' if r.get('cold_disk') else 'warm'} | {_s(r.get('ready_s'))} | "
            f"{_s(r.get('first_image_s'))} | {_s((first.get('nodes_s') or {}).get('KSampler'))} ({compiled_flag}) | "
            f"{_s(r.get('requests_before_compiled')) if shipped else '-'} | {_s(r.get('compiled_ready_at_s'))} | "
            f"{len(r.get('failures') or [])} of {r.get('requests', len(r.get('warm') or [])) + 1} | "
            f"{_s(r.get('warm_median_s'))} | {_s(r.get('compiled_median_s'))} | {arts if shipped else '-'} | "
            f"{_s(loader)}{f' ({built})' if built else ''} |"
            + (f" ERROR {r['error'][:120]}" if r.get("error") else ""))
    lines += ["", "| variant | prefetch done | preload started | ComfyUI listening | API listening | T5 load asked | "
              "DiT load asked | models loaded (upcast) | compiled blocks loaded | preload ready | "
              "warm-up done (or gave way) | build started |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in results.items():
        if name.startswith("_") or not isinstance(r, dict):
            continue
        p = r.get("phases_s") or {}
        lines.append(f"| {name} | {_s(p.get('prefetch_done'))} | {_s(p.get('preload_started'))} | "
                     f"{_s(p.get('comfyui_listening'))} | {_s(p.get('api_listening'))} | "
                     f"{_s(p.get('text_encoder_load_requested'))} | {_s(p.get('dit_load_requested'))} | "
                     f"{_s(p.get('upcast_done'))} | {_s(p.get('compiled_ready'))} | {_s(p.get('preload_ready'))} | "
                     f"{_s(p.get('warmup_done')) if p.get('warmup_done') else ''}"
                     f"{' (gave way ' + _s(p.get('warmup_gave_way')) + ')' if p.get('warmup_gave_way') else ''} | "
                     f"{_s(p.get('build_started'))} |")
    preloads = [(name, item) for name, r in results.items() if not name.startswith("_") and isinstance(r, dict)
                for item in (((r.get("fast_path") or {}).get("preload") or {}).get("items") or [])]
    if preloads:  # where each preloaded model's seconds went (comfy_nodes/flux_fast/preload.py, Usage)
        lines += ["", "| variant | preloaded | wall | this thread's CPU | waited for a core | the process's CPU | "
                  "busiest other threads (CPU s) | child processes' CPU |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for name, item in preloads:
            cpu = item.get("cpu") or {}
            others = ", ".join(f"{n} {_s(c)}" for n, c in cpu.get("busiest_other_threads") or []) or "-"
            lines.append(f"| {name} | {item.get('class_type')} {item.get('node')} ({item.get('state')}) | "
                         f"{_s(cpu.get('wall_s', item.get('seconds')))} | {_s(cpu.get('thread_s'))} | "
                         f"{_s(cpu.get('run_wait_s'))} | {_s(cpu.get('process_s'))} | {others} | "
                         f"{_s(cpu.get('children_s'))} |")
    return lines


def _s(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)


def environment() -> dict[str, Any]:
    env: dict[str, Any] = {"python": sys.version.split()[0]}
    try:
        import torch

        env.update(torch=torch.__version__, cuda=torch.version.cuda,
                   gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")
        import triton

        env["triton"] = triton.__version__
    except Exception as exc:  # reported, not fatal: the CPU smoke run has no triton
        env["torch_error"] = str(exc)[:200]
    try:
        import runpod

        env["runpod"] = getattr(runpod, "__version__", "?")
    except ImportError:
        env["runpod"] = "missing"
    return env


if __name__ == "__main__":
    sys.exit(main())
