"""Run the benchmark scenarios on a GPU machine and write results.json + BENCHMARKS.md.

One invocation (`python -m bench ...`) generates full-size stand-in weights if they are missing, then for each
scenario: starts ComfyUI the way start.sh does (own process, 127.0.0.1, a models/custom-nodes paths file),
builds the real handler (`handler.job.Worker`) against it, optionally warms up as the worker does before it
reports ready, sends a first request and N warm requests (a new prompt and seed each), runs one exactness
probe (fixed prompt and seed, final latent saved too), and stops ComfyUI. Peak GPU memory comes from polling
nvidia-smi for the whole life of the ComfyUI process. Each scenario's figures are written as soon as it ends,
so a run cut short still leaves everything measured so far.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import graphs, loras as bench_loras, stats
from .report import render

log = logging.getLogger("bench")
REPO = Path(__file__).resolve().parent.parent
WORKFLOW = "flux1-dev-t2i"
EXACT_PROMPT = "a red lighthouse on a cliff at dusk, waves, cinematic light"
EXACT_SEED = 1234
PROMPTS = [
    "a lighthouse at dusk, cinematic, vertical", "a fox in a snowy forest, morning light",
    "an astronaut reading in a library, warm tones", "a bowl of ramen, studio photo, top view",
    "a sailing ship in a storm, oil painting", "a neon street in the rain at night",
    "a mountain lake with reflections, autumn", "a robot watering plants on a balcony",
    "a medieval market square, crowded, sunny", "a close-up of a hummingbird, macro photo",
]


@dataclass
class Scenario:
    name: str
    fast: bool                      # graph with the FluxFastPatch node
    warmup: bool                    # worker warm-up before the first request (what the shipped worker does)
    warm_runs: int = 5
    exactness: bool = True
    env: dict[str, str] = field(default_factory=dict)
    cap_gib: float | None = None    # hard GPU memory cap in the ComfyUI process (+ --reserve-vram to match)
    extra_args: list[str] = field(default_factory=list)
    # Extra warm-up sizes after the default one, and the size the measured requests use (None: SIZE).
    warmup_sizes: tuple[tuple[int, int], ...] = ()
    request_size: tuple[int, int] | None = None
    budget_s: float = 150.0         # rough time it needs; skipped when less is left
    num_images: int = 1             # images per request (the `num_images` field)
    loras: bool = False             # the LoRA request sequence and probes of bench/loras.py instead of warm_runs
    profile: bool = False           # profile sampling runs inside ComfyUI (bench/custom_nodes/bench_profile)
    note: str = ""


SCENARIOS = {
    "baseline": Scenario("baseline", fast=False, warmup=False, budget_s=95,
                         note="plain graph, ComfyUI defaults, no warm-up (the issue's baseline)"),
    "shipped": Scenario("shipped", fast=True, warmup=True, budget_s=100,
                        note="shipped graph: FluxFastPatch compute=default (bf16), compile on, warm-up"),
    "fp8": Scenario("fp8", fast=True, warmup=True, env={"FLUX_FAST_COMPUTE": "fp8_rowwise"}, budget_s=110,
                    note="opt-in FLUX_FAST_COMPUTE=fp8_rowwise"),
    "fp8-profile": Scenario("fp8-profile", fast=True, warmup=True, env={"FLUX_FAST_COMPUTE": "fp8_rowwise"},
                            warm_runs=3, exactness=False, profile=True, budget_s=140,
                            note="fp8 with sampling runs 3-6 profiled inside ComfyUI (host and GPU per step); its "
                                 "timings carry the profiler's overhead"),
    "shipped-profile": Scenario("shipped-profile", fast=True, warmup=True, warm_runs=3, exactness=False, profile=True,
                                budget_s=130, note="shipped (bf16) with sampling runs 3-6 profiled inside ComfyUI"),
    "autotune": Scenario("autotune", fast=True, warmup=True, env={"FLUX_FAST_COMPILE_MODE": "max-autotune-no-cudagraphs"},
                         budget_s=330, note="shipped with compile mode max-autotune-no-cudagraphs"),
    "sizes": Scenario("sizes", fast=True, warmup=True, warmup_sizes=((1024, 1024),), request_size=(768, 1344),
                      env={"WARMUP_SIZES": "832x1536,1024x1024"},
                      warm_runs=3, exactness=False, budget_s=120,
                      note="shipped; warm-up at 832x1536 then 1024x1024; requests at 768x1344, a size never warmed up"),
    "newsize": Scenario("newsize", fast=True, warmup=True, request_size=(768, 1344), warm_runs=3, exactness=False,
                        budget_s=90, note="shipped; warm-up at 832x1536 only; requests at 768x1344 (never warmed up)"),
    "tiled": Scenario("tiled", fast=True, warmup=True, env={"FLUX_FAST_DECODE": "tiled"}, warm_runs=3,
                      exactness=False, budget_s=90, note="shipped with FLUX_FAST_DECODE=tiled (the baseline's decode)"),
    "nocompile": Scenario("nocompile", fast=True, warmup=True, env={"FLUX_FAST_COMPILE": "0"}, warm_runs=3,
                          exactness=True, budget_s=90, note="ablation: bf16 upcast and one-pass decode, no torch.compile"),
    "shipped-24g": Scenario("shipped-24g", fast=True, warmup=True, cap_gib=24, warm_runs=3, exactness=False,
                            budget_s=110, note="shipped, hard 24 GiB cap"),
    # What a 16 GB card runs since 2026-12-07 (session 13): dynamic VRAM on (start.sh, under 18 GiB) for T5, CLIP and
    # the VAE, the fp8 DiT made resident by FluxFastPatch (policy.resident_decision) and run through the compiled
    # blocks. Measured as "shipped-16g-mixed" (FLUX_FAST_VRAM_MARGIN_GB=0) before it became the default.
    "shipped-16g": Scenario("shipped-16g", fast=True, warmup=True, cap_gib=16, warm_runs=3, exactness=False,
                            budget_s=150, note="shipped, hard 16 GiB cap: dynamic VRAM for the text encoders and the "
                                               "VAE, the fp8 DiT resident and compiled"),
    # Issue 18's 16 GiB experiment: the state start.sh avoids today (14.99 s with the in-process compile, whose guards
    # failed on the partly loaded model). With the packages, each block runs compiled wherever its weights are on
    # the card at the call (they are bound per call), so the question is what ComfyUI's reloads cost now.
    "shipped-16g-static": Scenario("shipped-16g-static", fast=True, warmup=True, cap_gib=16, warm_runs=3,
                                   exactness=False, budget_s=150, extra_args=["--disable-dynamic-vram"],
                                   note="shipped, hard 16 GiB cap, dynamic VRAM off: fp8 DiT kept on the card "
                                        "where it fits, compiled blocks where their weights are there"),
    # The 16 GiB default before session 13, for comparison: everything left to dynamic VRAM, every step eager.
    "shipped-16g-dynamic": Scenario("shipped-16g-dynamic", fast=True, warmup=True, cap_gib=16, warm_runs=3,
                                    exactness=False, budget_s=150, env={"FLUX_FAST_VRAM_MARGIN_GB": "6"},
                                    note="shipped, hard 16 GiB cap, the DiT left to dynamic VRAM too "
                                         "(FLUX_FAST_VRAM_MARGIN_GB=6): eager"),
    "baseline-lora": Scenario("baseline-lora", fast=False, warmup=False, loras=True, warm_runs=0, exactness=False,
                              budget_s=130, note="plain graph with LoRAs: bench/loras.py's request sequence and probes"),
    "lora": Scenario("lora", fast=True, warmup=True, loras=True, warm_runs=0, exactness=False, budget_s=150,
                     note="shipped graph with LoRAs: the same sequence; probes compared with baseline-lora's"),
    "batch4": Scenario("batch4", fast=True, warmup=True, num_images=4, warm_runs=3, exactness=False, budget_s=110,
                       note="shipped, num_images=4 per request (time per image = request / 4)"),
    "startup": Scenario("startup", fast=True, warmup=False, warm_runs=0, exactness=False, budget_s=70,
                        note="ComfyUI start to HTTP ready only, per flag set (no requests)"),
    "baseline-24g": Scenario("baseline-24g", fast=False, warmup=False, cap_gib=24, warm_runs=3, exactness=False,
                             budget_s=120, note="baseline, hard 24 GiB cap"),
    "baseline-16g": Scenario("baseline-16g", fast=False, warmup=False, cap_gib=16, warm_runs=3, exactness=False,
                             budget_s=160, note="baseline, hard 16 GiB cap"),
}

# What start.sh passes besides the address and the paths file (COMFYUI_ARGS may add more).
START_FLAGS = ["--disable-auto-launch"]
DEFAULT_TCMALLOC = Path("/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4")  # where start.sh looks


def start_sh_defaults() -> tuple[list[str], dict[str, str]]:
    """The ComfyUI flags and allocator settings start.sh applies by default, read from start.sh itself.

    Scenarios of the shipped worker start ComfyUI with these (the baseline with ComfyUI's defaults), so the
    bench measures what production runs and cannot drift from it. Returns (COMFYUI_PERF_ARGS split into flags,
    {"TCMALLOC_RELEASE_RATE": ...}); the tcmalloc library itself is only preloaded where one is given.
    """
    import re
    import shlex

    text = (REPO / "start.sh").read_text()
    perf = re.search(r'COMFYUI_PERF_ARGS="\$\{COMFYUI_PERF_ARGS:-(.*?)\}"', text)
    rate = re.search(r'TCMALLOC_RELEASE_RATE="\$\{TCMALLOC_RELEASE_RATE:-([0-9.]+)\}"', text)
    if not perf or not rate:
        raise RuntimeError("start.sh no longer sets COMFYUI_PERF_ARGS and TCMALLOC_RELEASE_RATE defaults; update bench")
    return shlex.split(perf.group(1)), {"TCMALLOC_RELEASE_RATE": rate.group(1)}


def start_sh_dynamic_vram_flags(card_gib: float) -> list[str]:
    """start.sh's COMFYUI_DYNAMIC_VRAM=auto for a card of card_gib GiB (a capped scenario stands for a smaller card,
    which nvidia-smi would not report), read from start.sh's own threshold."""
    import re

    found = re.search(r"^RESIDENT_DIT_MIN_GIB=([0-9]+)$", (REPO / "start.sh").read_text(), re.M)
    if not found:
        raise RuntimeError("start.sh no longer sets RESIDENT_DIT_MIN_GIB; update bench")
    return ["--disable-dynamic-vram"] if card_gib >= int(found.group(1)) else []


def worker_process_settings(tcmalloc: Path | None, card_gib: float) -> tuple[list[str], dict[str, str]]:
    """(flags, env) of a ComfyUI started by start.sh on a card of card_gib: its perf flags, its dynamic-VRAM rule,
    and tcmalloc with its release rate."""
    flags, alloc_env = start_sh_defaults()
    flags += start_sh_dynamic_vram_flags(card_gib)
    env = {"LD_PRELOAD": str(tcmalloc), **alloc_env} if tcmalloc else {}
    return flags, env


# ComfyUI start variants the "startup" scenario compares (two starts each): ComfyUI's defaults, and start.sh's.
STARTUP_VARIANTS = ("defaults", "start.sh")


# ---- processes ------------------------------------------------------------------------------------------
class GpuMemoryPoller:
    """Peak `memory.used` of GPU 0 via `nvidia-smi -lms`, for the life of one scenario."""

    def __init__(self, interval_ms: int = 200):
        self.peak_mib = 0
        self.proc: subprocess.Popen | None = None
        self.interval_ms = interval_ms
        self._thread: threading.Thread | None = None

    def __enter__(self):
        if shutil.which("nvidia-smi"):
            self.proc = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0",
                 "-lms", str(self.interval_ms)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self._thread = threading.Thread(target=self._read, daemon=True)
            self._thread.start()
        return self

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.peak_mib = max(self.peak_mib, int(line.strip()))
            except ValueError:
                pass

    def __exit__(self, *exc):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_paths_file(path: Path, models: Path) -> None:
    """The extra_model_paths.yaml start.sh passes, pointed at the stand-ins and our custom nodes."""
    path.write_text(
        "bench:\n"
        f"  base_path: {models}\n"
        "  diffusion_models: diffusion_models\n"
        "  text_encoders: text_encoders\n"
        "  vae: vae\n"
        "  loras: loras\n"
        "  custom_nodes: |\n"
        f"    {REPO / 'comfy_nodes'}\n"
        f"    {REPO / 'bench' / 'custom_nodes'}\n"
    )


class ComfyProcess:
    # Where ComfyUI's processes keep bytecode (PYTHONPYCACHEPREFIX), set once per run by prime_bytecode: the image
    # ships ComfyUI's and its packages' bytecode, so a start here must not pay for compiling ~2,400 modules.
    pycache: Path | None = None

    def __init__(self, comfyui: Path, python: str, port: int, workdir: Path, paths_file: Path,
                 env: dict[str, str], extra_args: list[str]):
        self.url = f"http://127.0.0.1:{port}"
        self.output_dir = workdir / "output"
        self.log_path = workdir / "comfyui.log"
        fe = workdir / "empty-frontend"
        fe.mkdir(parents=True, exist_ok=True)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.argv = [python, "main.py", "--listen", "127.0.0.1", "--port", str(port), *START_FLAGS,
                     "--front-end-root", str(fe), "--output-directory", str(self.output_dir),
                     "--extra-model-paths-config", str(paths_file), *extra_args]
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        if self.pycache:
            self.env.pop("PYTHONDONTWRITEBYTECODE", None)
            self.env["PYTHONPYCACHEPREFIX"] = str(self.pycache)
        self.cwd = comfyui
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.log_file = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdout=self.log_file,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout_s: float) -> float:
        import requests

        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout_s:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.proc.returncode}; see {self.log_path}")
            try:
                if requests.get(self.url + "/system_stats", timeout=2).status_code == 200:
                    return time.perf_counter() - t0
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"ComfyUI not ready after {timeout_s} s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log_file.close()


# ---- handler ----------------------------------------------------------------------------------------------
def import_handler() -> str:
    """Import the real handler. The GPU image has neither the runpod SDK nor boto3: where they are missing,
    stub the few names the handler imports from them at module level (URL pinning, S3 upload; neither is
    exercised here). Progress goes to our own recorder, not to runpod. Returns what was used, for the report."""
    import importlib
    import types

    used = []
    try:
        import runpod

        used.append(f"runpod {getattr(runpod, '__version__', '?')}")
    except ImportError:
        import requests.adapters

        _stub("runpod.serverless.utils.rp_ssrf", PinnedIPAdapter=requests.adapters.HTTPAdapter)
        sys.modules["runpod.serverless"].progress_update = lambda job, progress: None
        used.append("runpod SDK not installed: stubbed (handler.job.Worker called directly with stub jobs)")
    try:
        import boto3  # noqa: F401
    except ImportError:
        class _BotoError(Exception):
            pass

        _stub("boto3", client=None, session=types.SimpleNamespace())
        _stub("botocore.config", Config=lambda *a, **k: None)
        _stub("botocore.exceptions", BotoCoreError=_BotoError, ClientError=_BotoError)
        used.append("boto3 not installed: stubbed (no bucket)")
    importlib.import_module("handler.job")
    return "; ".join(used)


def _stub(dotted: str, **names: Any) -> None:
    import types

    parts = dotted.split(".")
    for i in range(1, len(parts) + 1):
        name = ".".join(parts[:i])
        if name not in sys.modules:
            sys.modules[name] = types.ModuleType(name)
            if i > 1:
                setattr(sys.modules[".".join(parts[:i - 1])], parts[i - 1], sys.modules[name])
    for key, value in names.items():
        setattr(sys.modules[dotted], key, value)


class ProgressRecorder:
    def __init__(self):
        self.events: list[tuple[float, int]] = []

    def __call__(self, job: dict, progress: dict) -> None:
        if "Sampler" in str(progress.get("class_type")):
            self.events.append((time.perf_counter(), int(progress["value"])))


SIZE = {"width": 832, "height": 1536, "num_inference_steps": 28}


def request(worker, recorder: ProgressRecorder, job_id: str, prompt: str, seed: int, steps: int | None = None,
            size: tuple[int, int] | None = None, loras: list[dict] | None = None, num_images: int = 1) -> dict:
    recorder.events = []
    fields = {**SIZE, "prompt": prompt, "seed": seed}
    if num_images > 1:
        fields["num_images"] = num_images
    if loras:
        fields["loras"] = loras
    if size:
        fields["width"], fields["height"] = size
    if steps:
        fields["num_inference_steps"] = steps
    t0 = time.perf_counter()
    response = worker.handle({"id": job_id, "input": fields})
    wall = time.perf_counter() - t0
    if "error" in response:
        raise RuntimeError(f"{job_id}: {response['error']} {json.dumps(response.get('details'))[:2000]}")
    t = response["timings"]
    execution = t.get("comfyui_execution_s") or 0.0
    return {
        "wall_s": round(wall, 3),
        "execution_s": execution,
        "outputs_s": t.get("outputs_s"),
        "queued_s": t.get("comfyui_queue_s"),
        "handler_overhead_s": round(wall - execution - (t.get("outputs_s") or 0.0), 4),
        "s_per_step": stats.seconds_per_step(recorder.events),
        "nodes_s": {v["class_type"]: v["seconds"] for v in (t.get("nodes_s") or {}).values()},
        "response_bytes": len(json.dumps(response)),
    }


# ---- exactness -------------------------------------------------------------------------------------------
def exactness_probe(client, graph: dict, output_dir: Path, store: Path, steps: int) -> dict:
    """Fixed prompt and seed; keep the decoded image and the final latent for comparison across scenarios."""
    import numpy as np
    from PIL import Image
    from safetensors.numpy import load_file

    g = graphs.set_inputs(graph, "CLIPTextEncode", text=EXACT_PROMPT)
    g = graphs.set_inputs(g, "KSampler", seed=EXACT_SEED, steps=steps)
    g = graphs.set_inputs(g, "EmptySD3LatentImage", width=SIZE["width"], height=SIZE["height"])
    g = graphs.set_inputs(g, "ModelSamplingFlux", width=SIZE["width"], height=SIZE["height"])
    for save in graphs.FAST_SAVE:
        g = graphs.set_inputs(g, save, filename_prefix=f"exact_{store.stem}")
    g = graphs.with_latent_output(g, prefix=f"exact_{store.stem}")
    result = client.run(g, timeout_s=600)
    image = latent = None
    for out in result.outputs.values():
        for item in out.get("images", []) or []:
            image = np.asarray(Image.open(output_dir / item.get("subfolder", "") / item["filename"]).convert("RGB"))
        for item in out.get("latents", []) or []:
            latent = load_file(str(output_dir / item.get("subfolder", "") / item["filename"]))["latent_tensor"]
    if latent is None:  # SaveLatent reports no "latents" UI output in some versions: find the file
        found = sorted(output_dir.rglob(f"exact_{store.stem}*.latent"))
        latent = load_file(str(found[-1]))["latent_tensor"] if found else None
    np.savez_compressed(store, image=image, latent=latent.astype(np.float32) if latent is not None else np.zeros(0))
    return {"stored": store.name}


def compare(reference: Path, candidate: Path) -> dict:
    import numpy as np

    a, b = np.load(reference), np.load(candidate)
    out = {}
    for key, peak in (("image", 255.0), ("latent", None)):
        x, y = a[key].astype(np.float64), b[key].astype(np.float64)
        if x.size == 0 or x.shape != y.shape:
            out[key] = {"error": f"shapes {x.shape} vs {y.shape}"}
            continue
        diff = np.abs(x - y)
        mse = float((diff ** 2).mean())
        rng = peak if peak else float(np.abs(x).max())
        out[key] = {"max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
                    "psnr_db": stats.psnr(rng, mse),
                    "rel_l2": float(np.linalg.norm(x - y) / max(np.linalg.norm(x), 1e-12))}
    return out


# ---- one scenario ------------------------------------------------------------------------------------------
def run_startup(args, work: Path, res: dict) -> None:
    """Start ComfyUI (page cache already warm) with each flag set twice; record start-to-ready."""
    sdir = work / "startup"
    sdir.mkdir(parents=True, exist_ok=True)
    paths = sdir / "extra_model_paths.yaml"
    write_paths_file(paths, args.models)
    res["start_to_ready_s"] = {}
    for name in STARTUP_VARIANTS:
        flags, env = worker_process_settings(args.tcmalloc, gpu_total_gib()) if name == "start.sh" else ([], {})
        times = []
        for _ in range(2):
            proc = ComfyProcess(args.comfyui, args.python, free_port(), sdir, paths, env,
                                list(args.comfy_args) + flags)
            proc.start()
            try:
                times.append(round(proc.wait_ready(120), 2))
            finally:
                proc.stop()
        res["start_to_ready_s"][name] = times
    summarize(res)


def run_scenario(sc: Scenario, args, work: Path, results: dict, res: dict) -> dict:
    if sc.name == "startup":
        return run_startup(args, work, res)
    from handler.comfy_client import ComfyClient
    from handler.config import Settings
    from handler.job import Worker

    sdir = work / sc.name
    shutil.rmtree(sdir, ignore_errors=True)
    wf_dir = sdir / "workflows"
    wf_dir.mkdir(parents=True)
    shipped = json.loads((REPO / "workflows" / f"{WORKFLOW}.api.json").read_text())
    graph = shipped if sc.fast else graphs.without_fast_path(shipped)
    (wf_dir / f"{WORKFLOW}.api.json").write_text(json.dumps(graph, indent=1))
    shutil.copy(REPO / "workflows" / f"{WORKFLOW}.params.json", wf_dir)
    paths = sdir / "extra_model_paths.yaml"
    write_paths_file(paths, args.models)

    # Compiled blocks shared across scenarios as across the workers of one endpoint (signed; artifacts.py).
    env = {"TORCHINDUCTOR_CACHE_DIR": str(work / "inductor-cache"), "TORCH_LOGS": "recompiles",
           "FLUX_FAST_ARTIFACTS_DIR": str(work / "flux-fast-artifacts"), "FLUX_FAST_ARTIFACTS_SECRET": "bench",
           "FLUX_FAST_BAKED_ARTIFACTS_DIR": "", **sc.env}
    if sc.profile:
        env["BENCH_PROFILE_DIR"] = str(sdir / "profile")
    if not sc.fast:
        # Plain ComfyUI: our nodes are on its path (the plain graph does not use them), so their one process-wide
        # effect, the garbage-collection freeze at import, is turned off.
        env["FLUX_FAST_GC_FREEZE"] = "0"
    extra = list(args.comfy_args) + list(sc.extra_args)
    if sc.fast:  # the shipped worker: ComfyUI as start.sh starts it
        flags, proc_env = worker_process_settings(args.tcmalloc, sc.cap_gib or gpu_total_gib())
        extra, env = flags + extra, {**proc_env, **env}
    if sc.cap_gib:
        env["BENCH_CUDA_MEM_CAP_GIB"] = str(sc.cap_gib)
        total_gib = gpu_total_gib()
        extra += ["--reserve-vram", f"{max(0.0, total_gib - sc.cap_gib):.2f}"]
    res.update({"note": sc.note, "env": sc.env, "comfy_args": extra, "cap_gib": sc.cap_gib,
                "request_size": list(sc.request_size or (SIZE["width"], SIZE["height"]))})
    proc = ComfyProcess(args.comfyui, args.python, free_port(), sdir, paths, env, extra)
    with GpuMemoryPoller() as mem:
        proc.start()
        try:
            res["start_to_ready_s"] = round(proc.wait_ready(180), 2)
            settings = Settings.from_env({"COMFYUI_URL": proc.url, "WORKFLOWS_DIR": str(wf_dir),
                                          "COMFYUI_OUTPUT_DIR": str(proc.output_dir), "JOB_TIMEOUT_S": "900",
                                          # Random stand-in weights make incompressible PNGs (4 are 16.6 MB):
                                          # a batch measures generation here, not the inline response limit.
                                          "MAX_RESPONSE_BYTES": str(64 * 2**20 if sc.num_images > 1 else 10 * 10**6),
                                          "LORA_DIRS": str(args.models / "loras"),
                                          "LORA_CACHE_DIR": str(args.models / "loras" / "_url_cache")})
            client = ComfyClient(settings.comfyui_url, 60)
            recorder = ProgressRecorder()
            worker = Worker(settings, client, report_progress=recorder)
            t0 = time.perf_counter()
            problems = worker.prepare()
            res["prepare_s"] = round(time.perf_counter() - t0, 3)
            if problems:
                raise RuntimeError(f"workflow check failed: {problems}")
            if sc.warmup:
                # The worker's own warm-up (handler/__main__.warm_up): it reports ready only after this.
                from handler.warmup import warm_up

                sizes = [(SIZE["width"], SIZE["height"]), *sc.warmup_sizes]
                warm_settings = Settings.from_env({
                    "COMFYUI_URL": proc.url, "WORKFLOWS_DIR": str(wf_dir), "WARMUP_STEPS": str(args.warmup_steps),
                    "WARMUP_SIZES": ",".join(f"{w}x{h}" for w, h in sizes)})
                t0 = time.perf_counter()
                if not warm_up(worker, warm_settings):
                    raise RuntimeError("the worker's warm-up failed (see the log above)")
                warmup_s = time.perf_counter() - t0
                res["warmup"] = {"wall_s": round(warmup_s, 3), "sizes": [f"{w}x{h}" for w, h in sizes]}
                res["ready_to_serve_s"] = round(res["start_to_ready_s"] + res["prepare_s"] + warmup_s, 2)
            if sc.fast and sc.env.get("FLUX_FAST_COMPILE", "1") != "0":
                # The worker serves eager while it compiles in the background; the figures below are the
                # compiled path's, so wait for it (how long the worker takes to get there: bench.coldstart).
                res["compiled_wait_s"] = wait_compiled(proc.url, 300)
                if not any(c.get("state") == "compiled" for c in fast_path_status(proc.url).get("compile") or []):
                    # a build just finished: the next sampling run loads it (timed apart from the figures below)
                    res["load_run"] = request(worker, recorder, "load", PROMPTS[-1], 2, size=sc.request_size)
            res["first"] = request(worker, recorder, "first", PROMPTS[0], 1, size=sc.request_size,
                                   num_images=sc.num_images)
            res["warm"] = []
            for i in range(sc.warm_runs):
                res["warm"].append(request(worker, recorder, f"warm{i}", PROMPTS[(i + 1) % len(PROMPTS)], 100 + i,
                                           size=sc.request_size, num_images=sc.num_images))
                write_results(args.out, results)
            if sc.loras:
                lora_rows(sc, args, work, client, graph, proc, worker, recorder, res)
            if sc.exactness:
                # 28 steps: what the caller sees. 1 step: one model evaluation, which is what "output-preserving"
                # can be judged by with random stand-in weights, whose 28-step trajectory amplifies any rounding
                # difference (see BENCHMARKS.md).
                res["exactness"] = {}
                for tag, steps in (("", SIZE["num_inference_steps"]), ("-1step", 1)):
                    try:
                        store = work / f"exact-{sc.name}{tag}.npz"
                        exactness_probe(client, graph, proc.output_dir, store, steps)
                        ref = (args.reference or work) / f"exact-baseline{tag}.npz"
                        if sc.name != "baseline" and ref.exists():
                            res["exactness"][f"vs_baseline{tag}"] = compare(ref, store)
                    except Exception as exc:
                        log.exception("exactness probe failed")
                        res["exactness"][f"error{tag}"] = f"{type(exc).__name__}: {exc}"
        finally:
            if sc.fast:
                res["fast_path_status"] = fast_path_status(proc.url)
            proc.stop()
            res["peak_gpu_mib"] = mem.peak_mib
            if sc.profile:
                res["profile"] = {path.stem: json.loads(path.read_text())
                                  for path in sorted((sdir / "profile").glob("run-*.json"))}
            res["recompiles"] = sum("Recompiling function" in line
                                    for line in proc.log_path.read_text(errors="replace").splitlines())
            if args.keep_logs:
                shutil.copy(proc.log_path, args.out / f"comfyui-{sc.name}.log")
            summarize(res)
    return res


def fast_path_status(url: str) -> dict:
    """The handler client's read of /flux_fast/status; {} where the nodes are not loaded."""
    from handler.comfy_client import ComfyClient

    try:
        return ComfyClient(url, 5).fast_path_status() or {}
    except Exception as exc:  # the figure is optional; the scenario's own result is not
        return {"error": f"{type(exc).__name__}: {exc}"}


def wait_compiled(url: str, timeout_s: float) -> float | None:
    """Seconds until the compiled blocks can serve: loaded already, or built by the child process (the next run
    loads them). None: the build failed or took longer than timeout_s."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout_s:
        status = fast_path_status(url)
        compiled = status.get("compile") or []
        if (status.get("patch") or {}).get("state") in ("passed through", "failed"):
            log.info("no compiled path to wait for: %s", status.get("patch"))
            return None
        if any(c.get("state") == "compiled" or (c.get("build") or {}).get("state") == "done" for c in compiled):
            return round(time.perf_counter() - t0, 1)
        if any(c.get("state") == "failed" or (c.get("build") or {}).get("state") == "failed" for c in compiled):
            log.warning("compiled blocks failed: %s", status)
            return None
        time.sleep(0.5)
    log.warning("compiled blocks not ready after %.0f s", timeout_s)
    return None


def lora_rows(sc: Scenario, args, work: Path, client, graph: dict, proc, worker, recorder, res: dict) -> None:
    """bench/loras.py's request sequence between exactness probes, compared with the plain graph's.

    On the fast path the no-LoRA probe runs before the sequence and again after it: a LoRA patch left behind
    would show as a difference between the two."""
    from handler import loras as handler_loras

    res["exactness"] = {}

    def probe(label: str | None, strength: float, when: str) -> None:
        lg = graph if label is None else handler_loras.insert(
            graph, [(bench_loras.FILES[label][0], strength)], client.object_info())
        for tag, steps in (("", SIZE["num_inference_steps"]), ("-1step", 1)):
            store = work / f"exact-{sc.name}-{label or 'none'}{when}{tag}.npz"
            try:
                exactness_probe(client, lg, proc.output_dir, store, steps)
            except Exception as exc:
                log.exception("LoRA probe failed")
                res["exactness"][f"error {label}{when}{tag}"] = f"{type(exc).__name__}: {exc}"
                continue
            if sc.name == "baseline-lora":
                continue
            refs = ({f"plain with LoRA {label}": work / f"exact-baseline-lora-{label}{tag}.npz"} if label else
                    {f"plain, no LoRA ({when.strip('-')})": work / f"exact-baseline{tag}.npz"})
            if label is None and when == "-after":
                refs["itself before the LoRAs"] = work / f"exact-{sc.name}-none-before{tag}.npz"
            for what, ref in refs.items():
                if ref.exists():
                    res["exactness"][f"{what}{tag}"] = compare(ref, store)

    if sc.fast:
        probe(None, 1.0, "-before")
    res["lora_sequence"] = bench_loras.run_sequence(
        lambda job_id, loras, seed: request(worker, recorder, job_id, PROMPTS[seed % len(PROMPTS)], seed, loras=loras))
    res["lora_summary"] = bench_loras.summarize(res["lora_sequence"])
    for label, strength in bench_loras.PROBES[sc.name]:
        probe(label, strength, "-after" if label is None else "")


def summarize(res: dict) -> None:
    warm = res.get("warm") or []
    res["summary"] = {
        "warm_median_s": stats.median(r["wall_s"] for r in warm),
        "s_per_step_median": stats.median(r["s_per_step"] for r in warm),
        "handler_overhead_median_s": stats.median(r["handler_overhead_s"] for r in warm),
        "outputs_median_s": stats.median(r["outputs_s"] for r in warm),
        "first_s": (res.get("first") or {}).get("wall_s"),
        "nodes_median_s": {k: stats.median(r["nodes_s"].get(k) for r in warm)
                           for k in (warm[0]["nodes_s"] if warm else {})},
        "response_bytes": warm[0]["response_bytes"] if warm else None,
    }


# ---- environment -----------------------------------------------------------------------------------------
def gpu_total_gib() -> float:
    out = subprocess.run(["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits", "-i", "0"],
                         capture_output=True, text=True, check=True).stdout
    return int(out.strip()) / 1024


def environment(args) -> dict:
    env: dict[str, Any] = {"python": platform.python_version(), "host_cpus": os.cpu_count()}
    try:
        env["gpu"] = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                                    capture_output=True, text=True).stdout.strip()
    except OSError:
        env["gpu"] = "none"
    # torch, Triton and CUDA: tests/test_packaging.py holds the Dockerfile's pins to these (issue 10).
    code = ("import torch,transformers,json\ntry:\n import triton; tv=triton.__version__\nexcept ImportError:\n tv=None\n"
            "print(json.dumps({'torch':torch.__version__,'cuda':torch.version.cuda,'triton':tv,"
            "'cudnn':torch.backends.cudnn.version(),'transformers':transformers.__version__}))")
    out = subprocess.run([args.python, "-c", code], capture_output=True, text=True)
    env.update(json.loads(out.stdout) if out.returncode == 0 else {"torch": out.stderr[-300:]})
    ver = args.comfyui / "comfyui_version.py"
    env["comfyui"] = ver.read_text().split("=")[-1].strip().strip('"') if ver.exists() else "?"
    env["tcmalloc"] = str(args.tcmalloc) if args.tcmalloc else "none (glibc malloc)"
    return env


def prime_bytecode(args, results: dict) -> None:
    """One untimed ComfyUI start (`--quick-test-for-ci`) that writes the bytecode of every module a start imports.

    The Docker image carries that bytecode (pip writes it for every package, the Dockerfile compiles ComfyUI's and
    the worker's); a bare GPU machine may not (PYTHONDONTWRITEBYTECODE, read-only site-packages), and compiling
    ~2,400 modules from source added ~8 s to every start measured there. Starts are measured after this.
    """
    ComfyProcess.pycache = args.work / "pycache"
    sdir = args.work / "prime"
    sdir.mkdir(parents=True, exist_ok=True)
    paths = sdir / "extra_model_paths.yaml"
    write_paths_file(paths, args.models)
    proc = ComfyProcess(args.comfyui, args.python, free_port(), sdir, paths, {}, list(args.comfy_args))
    t0 = time.perf_counter()
    out = subprocess.run([*proc.argv, "--quick-test-for-ci"], cwd=proc.cwd, env=proc.env, capture_output=True,
                         text=True, timeout=300)
    results["_env"]["bytecode"] = {"primed_s": round(time.perf_counter() - t0, 1), "rc": out.returncode,
                                   "pycache": str(ComfyProcess.pycache)}
    if out.returncode != 0:
        log.warning("bytecode priming start exited %s: %s", out.returncode, out.stderr[-500:])


def write_results(out: Path, results: dict) -> None:
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    (out / "BENCHMARKS.md").write_text(render(results))


def ensure_models(args, results: dict) -> None:
    manifest = args.models / "standins-manifest.json"
    t0 = time.perf_counter()
    cmd = [args.python, "-m", "tools.standins", *args.standin_args.split(), "--device", args.standin_device,
           "--out", str(args.models)]
    subprocess.run(cmd, cwd=REPO, check=True)
    results["_standins"] = {"seconds": round(time.perf_counter() - t0, 1), "manifest": manifest.exists()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--comfyui", type=Path, required=True, help="ComfyUI checkout (the pinned release, v0.33.0)")
    p.add_argument("--models", type=Path, required=True, help="models dir; full-size stand-ins are generated if absent")
    p.add_argument("--out", type=Path, required=True, help="where results.json, BENCHMARKS.md and logs go")
    p.add_argument("--work", type=Path, default=Path("/tmp/flux-bench"), help="scratch (outputs, caches)")
    p.add_argument("--scenarios", default="baseline,shipped,fp8", help=f"comma list of {', '.join(SCENARIOS)}")
    p.add_argument("--budget-s", type=float, default=560, help="skip scenarios that would not finish in time")
    p.add_argument("--python", default=sys.executable, help="interpreter for ComfyUI")
    p.add_argument("--comfy-args", default="", help="extra ComfyUI flags for every scenario (as COMFYUI_ARGS)")
    p.add_argument("--tcmalloc", type=Path, default=DEFAULT_TCMALLOC if DEFAULT_TCMALLOC.exists() else None,
                   help="libtcmalloc_minimal.so.4 that start.sh preloads (the image's); none: glibc malloc")
    p.add_argument("--warmup-steps", type=int, default=2)
    p.add_argument("--size", default="832x1536", help="WxH (smaller only for a CPU smoke test of the bench)")
    p.add_argument("--steps", type=int, default=28)
    p.add_argument("--standin-args", default="--full", help="size flags for tools.standins")
    p.add_argument("--standin-device", default="cuda")
    p.add_argument("--resume", type=Path, default=None, help="results.json of an earlier run to extend")
    p.add_argument("--keep-logs", action="store_true")
    p.add_argument("--reference", type=Path, default=None,
                   help="folder with exact-baseline.npz and exact-baseline-1step.npz from an earlier run")
    p.add_argument("--seed-artifacts", type=Path, default=None,
                   help="a shared artifacts folder signed with the benches' secret (bench/coldstart.py's "
                        "<work>/artifacts on the same machine): its packages are copied in first, so no scenario "
                        "waits for a build they already hold")
    args = p.parse_args(argv)
    args.comfy_args = args.comfy_args.split()
    args.models, args.out, args.work = args.models.resolve(), args.out.resolve(), args.work.resolve()
    args.tcmalloc = args.tcmalloc.resolve() if args.tcmalloc else None
    w, h = (int(v) for v in args.size.lower().split("x"))
    SIZE.update(width=w, height=h, num_inference_steps=args.steps)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    start = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = json.loads(args.resume.read_text()) if args.resume else {}
    sys.path.insert(0, str(REPO))
    results["_env"] = environment(args) | {"runpod": import_handler()}
    ensure_models(args, results)
    if any(SCENARIOS[n.strip()].loras for n in args.scenarios.split(",") if n.strip()):
        bench_loras.ensure_files(args.models / "loras", args.standin_device)
    prime_bytecode(args, results)
    if args.seed_artifacts and args.seed_artifacts.is_dir():
        shutil.copytree(args.seed_artifacts, args.work / "flux-fast-artifacts", dirs_exist_ok=True)
        results["_seeded_artifacts"] = sorted(p.name for p in args.seed_artifacts.glob("*.json"))
    for name in [s.strip() for s in args.scenarios.split(",") if s.strip()]:
        sc = SCENARIOS[name]
        left = args.budget_s - (time.perf_counter() - start)
        if left < sc.budget_s:
            log.warning("skipping %s: %.0f s left, it needs about %.0f s", name, left, sc.budget_s)
            results.setdefault("_skipped", []).append(name)
            continue
        log.info("=== scenario %s: %s", name, sc.note)
        t0 = time.perf_counter()
        results[name] = {"note": sc.note}
        try:
            run_scenario(sc, args, args.work, results, results[name])
        except Exception as exc:  # one broken scenario must not lose the others' figures
            log.exception("scenario %s failed", name)
            results[name]["error"] = f"{type(exc).__name__}: {exc}"
        results[name]["scenario_s"] = round(time.perf_counter() - t0, 1)
        write_results(args.out, results)
        log.info("=== %s done in %.0f s: %s", name, time.perf_counter() - t0,
                 json.dumps(results[name].get("summary") or results[name].get("error")))
    write_results(args.out, results)
    print(render(results))
    return 0
