"""FLUX's transformer blocks run from ahead-of-time compiled packages: the serving process loads and calls
them, and never traces or compiles (aot_build.py does that, in a process of its own).

Why: torch.compile in a thread of the serving process made sampling fail (tracing patches `nn.Module.__call__`
process-wide; torch.compile is not thread-safe), and under load its compile arrived minutes late. PyTorch's regional
AOT recipe turns the compile into an artifact: one package per block type, weights not baked in.

One `CompiledBlocks` per patched model:

1. At the first model call of a sampling run (ComfyUI has loaded the weights by then), the served state is read:
   each block list's parameter dtypes and device, as ComfyUI and weights.py left them (bf16 copies on a roomy card,
   fp8 where the upcast was declined). That state and the build (GPU, torch, ComfyUI, attention function, this
   package's source) make the artifact key.
2. Packages for the key already loaded: used. Else packages from the baked or shared folder (artifacts.py) or from
   this worker's finished build: each list's package is loaded once (its program takes a block's parameters as
   inputs, after the activations), and block 0 of each list is checked against the eager block on a small input, so
   a package that loads but computes wrong is set aside. Else a build starts in a child process (one at a time;
   aot_build.py) and the run stays eager; a later run picks the build up. A build that fails by itself is noted,
   signed, in the shared folder, and a worker that finds a recent note serves eager without building (artifacts.py).
   A worker that died while loading packages from the shared folder leaves a marker behind; the next one sets those
   packages aside rather than crash in turn.
3. A run keeps the path resolved at its first call: one image never mixes paths.
4. At every model call each block's current parameters are read (ComfyUI sets new ones when it patches a LoRA,
   restores backups, reloads or moves weights; weights.py swaps bf16 copies in and out) and passed to the package
   with the block's activations: nothing is bound, so nothing can go stale. A block whose parameters do not fit the
   package (another dtype, left on the CPU by a partial load, a LoRA applied per call through weight functions)
   runs eager on its own. A call the package was not built for (an attention mask, transformer patches, another
   input dtype or rank) runs the eager block too.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Callable

import torch

from .aot_build import MAX_BATCH, compare_outputs, load_package, read_build
from .artifacts import ArtifactFolder, Package, folders
from .policy import Plan, artifact_key, traced_sdpa

log = logging.getLogger("flux_fast")

LISTS = ("double_blocks", "single_blocks")
# The activations of a block call, in the package's input order (aot_build.py), and the other keyword arguments a
# call may carry as long as they are None.
ARG_NAMES = {"double_blocks": ("img", "txt", "vec", "pe"), "single_blocks": ("x", "vec", "pe")}
ALLOWED_NONE = {"attn_mask", "modulation_dims", "modulation_dims_img", "modulation_dims_txt"}
MAX_TOKENS = 1 << 16
BUILD_VRAM_BYTES = 3 * 2**30  # free device memory the build's child process needs (one block of each type, a CUDA
                              # context, example activations); with less, the build waits for a later run

_LIVE: "weakref.WeakSet[CompiledBlocks]" = weakref.WeakSet()
# Per process, by key: ComfyUI re-creates the patched model whenever the graph above FluxFastPatch changes (another
# LoRA, a reloaded file), and a new CompiledBlocks must find the build in flight or its result, not start again.
_BUILDS: dict[str, "_Build"] = {}
_PACKAGES: dict[str, tuple[dict[str, Package], str]] = {}    # verified packages, and where they came from
_FAILED: dict[str, str] = {}                                 # keys whose build or packages failed, and why
_SOURCES = ("aot_build.py", "compiled_blocks.py", "fp8.py", "policy.py")


def statuses() -> list[dict[str, Any]]:
    return [c.status() for c in list(_LIVE)]


def traced_in_process() -> int:
    """What torch.compile's machinery has done in this process: frames dynamo traced plus inductor's own events
    (graph compiles, cache lookups, pattern passes). 0 on a worker that only loads packages: the serving process
    must never trace or compile (the old background compile broke sampling that way)."""
    utils = sys.modules.get("torch._dynamo.utils")
    if utils is None:
        return 0
    return int(sum(utils.counters["frames"].values()) + sum(utils.counters["inductor"].values()))


# ---- the served state and the key -----------------------------------------------------------------------------
def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _weight_functions(module: torch.nn.Module) -> int:
    return len(getattr(module, "weight_function", ()) or ()) + len(getattr(module, "bias_function", ()) or ())


def block_state(block: torch.nn.Module, device: torch.device) -> dict[str, str] | None:
    """{param name: dtype} of a block that a package can serve (every parameter on `device`, no per-call weight
    functions), else None."""
    state = {}
    for name, param in block.named_parameters():
        if param.device != device:
            return None
        state[name] = _dtype_name(param.dtype)
    if any(_weight_functions(m) for m in block.modules()):
        return None
    return state


def _jsonable(config: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in config.items():
        try:
            json.dumps(v)
        except TypeError:
            continue          # e.g. the weight dtype: the spec's parameter dtypes say it
        out[k] = v
    return out


def build_fields(plan: Plan, compute: str, device: torch.device) -> dict[str, str]:
    """Everything compiled code depends on besides the model's own spec."""
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
    sources = b"".join((here / name).read_bytes() for name in _SOURCES)
    if device.type == "cuda":
        gpu, capability = torch.cuda.get_device_name(device), "%d.%d" % torch.cuda.get_device_capability(device)
    else:
        gpu, capability = f"cpu-{platform.machine()}", "cpu"     # its instruction set: host_cpu
    return {"gpu": gpu, "capability": capability, "torch": torch.__version__,
            "torch_git": str(torch.version.git_version), "cuda": str(torch.version.cuda), "triton": triton_version,
            "python": "%d.%d" % sys.version_info[:2], "comfyui": comfy_version, "compile_mode": plan.compile_mode,
            "compute": compute, "source": hashlib.sha256(sources).hexdigest()[:16], "host_cpu": host_cpu_features()}


def host_cpu_features(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The instruction-set features this process's CPU shows, as one short name: part of every package's key.

    inductor compiles a package's CPU code (for a GPU package, its kernel launcher) with `-march=native`, so a package
    built on a host with AVX-512 or AMX may die with SIGILL on a host without them. Runpod puts one GPU model on
    hosts with different CPUs, and a hypervisor may hide features, so the key holds what `/proc/cpuinfo` reports to
    this process (the flags `-march=native` reads through CPUID), not the CPU's name."""
    flags = ""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith(("flags", "Features")):
                flags = " ".join(sorted(line.split(":", 1)[1].split()))
                break
    except OSError:
        pass
    digest = hashlib.sha256(flags.encode()).hexdigest()[:12] if flags else "unknown"
    return f"{platform.machine()}-{digest}"


def tcmalloc_preloaded(maps: Path = Path("/proc/self/maps")) -> bool:
    """Whether tcmalloc is mapped into this process (start.sh preloads it; the image installs it).

    Why it gates loading GPU packages: on an H100 with torch 2.11, loading an AOTInductor CUDA package in a process
    under glibc's malloc killed the process with no Python error, every time it was tried (3 of 3 loads in
    bench.aot_probe, and the build child's own self-test in an earlier run), while every load in a process with
    tcmalloc preloaded worked (every worker and probe since, 2026-12-07; BENCHMARKS.md). A worker started outside the
    image, or a GUI user's ComfyUI with these nodes, then serves eager and says why instead of dying at its first
    compiled run."""
    try:
        return "libtcmalloc" in maps.read_text()
    except OSError:
        return False


NO_TCMALLOC = ("compiled blocks are loaded on a GPU only in a process with tcmalloc preloaded, as start.sh does "
               "(LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4): without it, loading a package killed "
               "the process (torch 2.11, H100); serving eager")


# ---- one block list's runners ---------------------------------------------------------------------------------
class _ListRunners:
    """One block list's package, loaded once, and for each block the parameters it passes to it on every call."""

    def __init__(self, name: str, package: Package, blocks: torch.nn.ModuleList, device: torch.device,
                 expected: dict[str, str]):
        self.name, self.device = name, device
        self.inputs = package.inputs
        self.dtypes = [getattr(torch, i["dtype"]) for i in self.inputs]
        self.ndims = [i["ndim"] for i in self.inputs]
        self.static = [{d: s for d, s in enumerate(i["shape"]) if d not in i.get("dynamic", ())} for i in self.inputs]
        self.weights = list(package.weights)
        if not self.weights:
            raise ValueError("the package names no weights (built by another version)")
        self.want = [getattr(torch, expected[w]) for w in self.weights]   # the dtypes the package was built for
        self.runner = load_package(package.data, device)
        self.lock = threading.Lock()
        self.targets = []       # per block: [(module, attribute)] in the package's weight order
        self.weighted = []      # per block: its modules that can carry weight functions
        for block in blocks:
            pairs = []
            for weight in self.weights:
                path, _, attr = weight.rpartition(".")
                pairs.append((block.get_submodule(path) if path else block, attr))
            self.targets.append(pairs)
            self.weighted.append([m for m in block.modules() if hasattr(m, "weight_function")])
        self.ok: list[bool] = [False] * len(blocks)
        self.params: list[list[torch.Tensor]] = [[] for _ in blocks]

    def refresh(self) -> int:
        """Each block's current parameters, and whether the package can take them; returns how many blocks can run
        compiled in this model call. ComfyUI replaces parameters when it patches a LoRA, restores backups, reloads
        or moves weights, and weights.py swaps bf16 copies in and out: read afresh on every model call."""
        for i, pairs in enumerate(self.targets):
            tensors = [getattr(m, a) for m, a in pairs]
            fits = not any(_weight_functions(m) for m in self.weighted[i]) and all(
                t is not None and t.device == self.device and t.dtype == d for t, d in zip(tensors, self.want))
            self.ok[i], self.params[i] = fits, tensors if fits else []
        return sum(self.ok)

    def inputs_of(self, args: tuple, kwargs: dict) -> list[torch.Tensor] | None:
        """The call's tensors in package order if the package was built for this call, else None."""
        names = ARG_NAMES[self.name]
        if len(args) > len(names):
            return None
        values = list(args)
        for name in names[len(args):]:
            if name not in kwargs:
                return None
            values.append(kwargs[name])
        for key, value in kwargs.items():
            if key in names:
                continue
            if key == "transformer_options":
                patches = (value or {}).get("patches") or {}
                if patches.get("attn1_patch") or patches.get("attn1_output_patch") or \
                        "optimized_attention_override" in (value or {}):
                    return None
            elif key not in ALLOWED_NONE or value is not None:
                return None
        batch = None
        for k, (t, dtype, ndim, static) in enumerate(zip(values, self.dtypes, self.ndims, self.static)):
            if not isinstance(t, torch.Tensor) or t.dtype != dtype or t.dim() != ndim or t.device != self.device:
                return None
            if any(t.shape[d] != s for d, s in static.items()):
                return None
            if batch is None:
                batch = t.shape[0]
            if t.shape[0] != batch or not 1 <= batch <= MAX_BATCH:
                return None
            if not t.is_contiguous():
                values[k] = t.contiguous()
        pe_len = values[-1].shape[2]
        tokens = values[0].shape[1] + (values[1].shape[1] if self.name == "double_blocks" else 0)
        if pe_len != tokens or tokens > MAX_TOKENS:
            return None
        return values

    def call(self, i: int, tensors: list[torch.Tensor]) -> Any:
        with self.lock:     # the runner is single-threaded (aot_build.load_package): one call at a time
            out = self.runner.loader.boxed_run([*tensors, *self.params[i]])
        return (out[0], out[1]) if self.name == "double_blocks" else out[0]


def _interrupt_check() -> None:
    import comfy.model_management

    comfy.model_management.throw_exception_if_processing_interrupted()


class _Block(torch.nn.Module):
    """Stands in for one eager block during a compiled run: its runner where the call and the weights fit."""

    def __init__(self, owner: "_ListRunners", index: int, eager: torch.nn.Module, counts: dict[str, int]):
        super().__init__()
        object.__setattr__(self, "owner", owner)      # not submodules: the eager block stays the model's
        object.__setattr__(self, "eager", eager)
        object.__setattr__(self, "counts", counts)
        self.index = index

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.owner.ok[self.index]:
            # Eager ComfyUI checks for a cancelled prompt before every op; a compiled block checks once.
            _interrupt_check()
            tensors = self.owner.inputs_of(args, kwargs)
            if tensors is not None:
                self.counts["compiled"] += 1
                return self.owner.call(self.index, tensors)
        self.counts["eager"] += 1
        return self.eager(*args, **kwargs)


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Violation|Exit|Interrupt)\w*(?::|$)")


def reason_from_log(text: str, limit: int = 400) -> str:
    """A failed build's reason for `info` and the log: the last exception the child raised and the two lines after
    it (where torch puts the detail), or, with no Python exception (a native crash), the log's last three lines.
    The log's last lines alone are torch's advice, which cut off the error itself ("...atch = L['inputs']...")."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return "no output"
    raised = [i for i, line in enumerate(lines) if _EXCEPTION_LINE.match(line)]
    if raised:
        return " | ".join(lines[raised[-1]:raised[-1] + 3])[:limit]
    return " | ".join(lines[-3:])[-limit:]


# ---- the build in a child process ---------------------------------------------------------------------------
class _Build:
    """aot_build.py in a child process: the serving process only polls it."""

    def __init__(self, spec: dict[str, Any], key: str):
        self.key = key
        self.dir = Path(tempfile.mkdtemp(prefix="flux-fast-build-"))      # 0700: this worker's own
        (self.dir / "spec.json").write_text(json.dumps(spec))
        import comfy.model_management    # `comfy` itself is a namespace package (no __file__)

        comfy_root = Path(comfy.model_management.__file__).resolve().parent.parent
        cmd = [sys.executable, str(Path(__file__).with_name("aot_build.py")), "--comfyui", str(comfy_root),
               "--spec", str(self.dir / "spec.json"), "--out", str(self.dir / "out")]
        nice = shutil.which("nice")
        if nice:                  # the compile's CPU work yields to the serving process's
            cmd = [nice, "-n", "10", *cmd]
        self.started = time.perf_counter()
        self.log_path = self.dir / "build.log"
        with open(self.log_path, "wb") as log_file:
            self.proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         cwd=str(comfy_root))
        self.seconds: float | None = None
        log.info("flux_fast: no compiled blocks for this model state yet; building them in a child process "
                 "(pid %d, log %s); sampling runs eager until they are ready", self.proc.pid, self.log_path)

    def poll(self) -> str:
        """'running', 'done' or 'failed'."""
        code = self.proc.poll()
        if code is None:
            return "running"
        if self.seconds is None:
            self.seconds = round(time.perf_counter() - self.started, 1)
        return "done" if code == 0 and (self.dir / "out" / "build.json").exists() else "failed"

    def stopped_from_outside(self) -> bool:
        """Killed or interrupted (the OOM killer, a stop) rather than failed by itself: no reason not to retry."""
        return self.proc.returncode in (-signal.SIGKILL, -signal.SIGTERM, -signal.SIGINT)

    def exit_status(self) -> str:
        """How the child ended, in words: a crash in native code (SIGSEGV, SIGILL) leaves no Python traceback."""
        code = self.proc.returncode
        if code is None:
            return "still running"
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit code {code}"

    def packages(self) -> dict[str, Package]:
        return read_build(self.dir / "out")[1]

    def tail(self) -> str:
        try:
            return reason_from_log(self.log_path.read_text(errors="replace"))
        except OSError:
            return "no log"

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


@functools.lru_cache(maxsize=1)
def _tcmalloc() -> bool:
    """tcmalloc_preloaded() for this process, read once: what a process preloads cannot change."""
    return tcmalloc_preloaded()


# ---- the owner ----------------------------------------------------------------------------------------------
class CompiledBlocks:
    """Which path each sampling run takes, for one patched model, and everything the compiled path needs."""

    def __init__(self, plan: Plan, compute: str, device: torch.device, io_dtype: torch.dtype,
                 model_class: type, unet_config: dict[str, Any], label: str,
                 env: dict[str, str] | os._Environ = os.environ):
        self.plan, self.compute, self.device, self.io_dtype, self.label = plan, compute, device, io_dtype, label
        self.model_class = f"{model_class.__module__}.{model_class.__qualname__}"
        self.unet_config = _jsonable(unet_config)
        self.folders: list[ArtifactFolder] = folders(env)
        self.fields = build_fields(plan, compute, device)
        self.lists: dict[str, _ListRunners] = {}       # the loaded runners (for `self.key`)
        self._stand_ins: dict[str, tuple[torch.nn.ModuleList, torch.nn.ModuleList]] = {}   # eager list -> _Blocks
        self.key: str | None = None
        self.wanted: str | None = None                   # the key the last run asked for
        self.run_path: str | None = None                # None: not resolved for this run yet
        self.counts = {"compiled": 0, "eager": 0}
        self.state, self.reason = "waiting", "resolves at the first model call"
        self.artifacts = "none yet"
        self.load_s: float | None = None
        self.blocks_ready = ""
        _LIVE.add(self)

    # ---- ComfyUI's calls --------------------------------------------------------------------------------
    def begin_run(self) -> None:
        self.run_path = None

    def end_run(self) -> None:
        self.run_path = None

    def prepare(self, diffusion_model: torch.nn.Module) -> str:
        """Resolve the path a run would take now, outside a run (the start-up preload): what the first model call
        of the next run would load or start, done ahead. That run still resolves its own path (cheaply, when the
        key is the one loaded here)."""
        return self._resolve_safely(diffusion_model)

    def _resolve_safely(self, diffusion_model: torch.nn.Module) -> str:
        try:
            return self._resolve(diffusion_model)
        except Exception as exc:   # never fail a job for a speed-up: eager is plain ComfyUI's path
            self.state, self.reason = "failed", f"{exc.__class__.__name__}: {str(exc)[:300]}; serving eager"
            log.exception("flux_fast: compiled blocks unavailable; this run goes eager")
            return "eager"

    def model_call(self, executor: Callable, diffusion_model: torch.nn.Module, args: tuple, kwargs: dict) -> Any:
        if self.run_path is None:
            self.run_path = self._resolve_safely(diffusion_model)
        if self.run_path != "compiled":
            return executor(*args, **kwargs)
        try:
            ready = {name: runners.refresh() for name, runners in self.lists.items()}
        except Exception as exc:
            self.run_path, self.lists, self.key = "eager", {}, None
            self.state = "failed"
            self.reason = f"reading the blocks' weights failed: {exc.__class__.__name__}: {str(exc)[:300]}"
            log.exception("flux_fast: reading the blocks' weights for the compiled blocks failed; serving eager")
            return executor(*args, **kwargs)
        if not any(ready.values()):
            return executor(*args, **kwargs)
        swapped = {}
        try:
            for name, runners in self.lists.items():
                eager = getattr(diffusion_model, name)
                stand_ins = self._stand_ins.get(name)
                if stand_ins is None or stand_ins[0] is not eager:      # built once per eager list
                    stand_ins = self._stand_ins[name] = (eager, torch.nn.ModuleList(
                        _Block(runners, i, block, self.counts) for i, block in enumerate(eager)))
                swapped[name] = eager
                setattr(diffusion_model, name, stand_ins[1])
            return executor(*args, **kwargs)
        finally:
            for name, eager in swapped.items():
                setattr(diffusion_model, name, eager)

    def status(self) -> dict[str, Any]:
        build = _BUILDS.get(self.wanted or "")
        done = self.artifacts.startswith("built by this worker")
        return {"model": self.label, "state": self.state, "reason": self.reason, "artifacts": self.artifacts,
                "load_s": self.load_s, "blocks": self.blocks_ready, "block_calls": dict(self.counts),
                "build": {"state": build.poll(), "seconds": build.seconds} if build is not None
                else ({"state": "done"} if done else None),
                "traced_in_process": traced_in_process()}

    # ---- resolving a run's path ---------------------------------------------------------------------------
    def _spec(self, diffusion_model: torch.nn.Module) -> dict[str, Any] | None:
        lists = {}
        for name in LISTS:
            blocks = getattr(diffusion_model, name, None)
            if not isinstance(blocks, torch.nn.ModuleList) or not len(blocks):
                continue
            state = next((s for s in (block_state(b, self.device) for b in blocks) if s is not None), None)
            if state is not None:
                lists[name] = {"params": state}
        if not lists:
            return None
        from comfy.ldm.modules import attention

        picked = getattr(attention.optimized_attention, "__name__", "unknown")
        return {"model_class": self.model_class, "unet_config": self.unet_config, "compute": self.compute,
                "io_dtype": _dtype_name(self.io_dtype), "device": str(self.device), "attention": picked,
                "sdpa": traced_sdpa(self.fields["capability"], picked) if self.device.type == "cuda" else "comfy",
                "compile_mode": self.plan.compile_mode, "lists": lists, "comfy_argv": sys.argv[1:]}

    def _key(self, spec: dict[str, Any]) -> str:
        keyed = {k: v for k, v in spec.items() if k != "comfy_argv"}
        digest = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:16]
        return artifact_key({**self.fields, "spec": digest})

    def _resolve(self, diffusion_model: torch.nn.Module) -> str:
        """'compiled' or 'eager' for the run that starts now, loading or building what it can."""
        if self.device.type == "cuda" and not _tcmalloc():
            if self.reason != NO_TCMALLOC:
                log.warning("flux_fast: %s", NO_TCMALLOC)
            self.state, self.reason = "eager", NO_TCMALLOC
            return "eager"
        spec = self._spec(diffusion_model)
        if spec is None:
            self.state, self.reason = "eager", "no block has all its weights on the device (partial load)"
            return "eager"
        key = self.wanted = self._key(spec)
        if key == self.key and self.lists:
            return "compiled"
        if key in _FAILED:
            self.state, self.reason = "failed", _FAILED[key]
            return "eager"
        if key not in _PACKAGES:
            for folder in self.folders:
                died = folder.died_loading(key, time.time())
                if died:
                    folder.reject_key(key, died)
                    folder.record_failure(key, died, time.time())
                    _FAILED[key] = died
                    log.warning("flux_fast: %s", died)
                    self.state, self.reason = "failed", died
                    return "eager"
        packages, where = _PACKAGES.get(key) or self._find(key)
        if packages is None and key in _BUILDS:
            build = _BUILDS[key]
            progress = build.poll()
            if progress == "running":
                self.state, self.reason = "building", "compiled blocks are being built in a child process"
                return "eager"
            del _BUILDS[key]
            if progress == "failed":
                _FAILED[key] = f"the build failed after {build.seconds} s ({build.exit_status()}): {build.tail()}"
                log.warning("flux_fast: compiled-block build failed (log kept at %s): %s", build.log_path, build.tail())
                if not build.stopped_from_outside():
                    for folder in self.folders:
                        folder.record_failure(key, _FAILED[key], time.time())
                self.state, self.reason = "failed", _FAILED[key]
                return "eager"
            packages, where = build.packages(), f"built by this worker in {build.seconds} s"
            for folder in self.folders:
                if not folder.trusted:
                    log.info("flux_fast: %s", folder.write(key, packages))
            build.cleanup()
        if packages is None:
            noted = next((n for n in (f.recent_failure(key, time.time()) for f in self.folders) if n), None)
            if noted:
                _FAILED[key] = noted
                self.state, self.reason = "failed", noted
                return "eager"
            if any(b.poll() == "running" for b in _BUILDS.values()):
                self.state, self.reason = "waiting", f"{where}; another build runs first (one at a time)"
                return "eager"
            if self.device.type == "cuda":
                free = torch.cuda.mem_get_info(self.device)[0]
                if free < BUILD_VRAM_BYTES:
                    self.state, self.reason = "waiting", (
                        f"{where}; the build needs {BUILD_VRAM_BYTES / 2**30:.0f} GiB of free GPU memory beside the "
                        f"served models and {free / 2**30:.1f} GiB are free: bake the packages for this GPU "
                        "(tools.bake_compiled_blocks) or retried at the next run")
                    return "eager"
            try:
                _BUILDS[key] = _Build(spec, key)
            except OSError as exc:
                _FAILED[key] = f"could not start the build: {exc.__class__.__name__}: {exc}"
                self.state, self.reason = "failed", _FAILED[key]
                return "eager"
            self.state, self.reason = "building", f"{where}; building them in a child process"
            return "eager"
        _PACKAGES[key] = (packages, where)
        return self._load(key, spec, packages, where, diffusion_model)

    def _find(self, key: str) -> tuple[dict[str, Package] | None, str]:
        whys = []
        for folder in self.folders:
            packages, why = folder.read(key)
            if packages is not None:
                return packages, why
            whys.append(why)
        return None, "; ".join(whys) or "no artifact folders configured"

    def _load(self, key: str, spec: dict[str, Any], packages: dict[str, Package], where: str,
              diffusion_model: torch.nn.Module) -> str:
        started = time.perf_counter()
        lists: dict[str, _ListRunners] = {}
        markers = [m for m in (f.mark_loading(key, time.time()) for f in self.folders) if m is not None]
        try:
            for name, package in packages.items():
                if name not in spec["lists"]:
                    continue
                runners = _ListRunners(name, package, getattr(diffusion_model, name), self.device,
                                       spec["lists"][name]["params"])
                runners.refresh()
                problem = _check(runners, getattr(diffusion_model, name))
                if problem:
                    raise _BadPackage(f"{name}: {problem}")
                lists[name] = runners
        except Exception as exc:
            why = f"{exc.__class__.__name__}: {str(exc)[:300]}"
            for folder in self.folders:
                if folder.manifest_path(key).exists():
                    folder.reject_key(key, f"package does not work here: {why}")
            _PACKAGES.pop(key, None)
            _FAILED[key] = f"compiled blocks set aside ({why}); serving eager"
            log.warning("flux_fast: %s", _FAILED[key])
            self.state, self.reason = "failed", _FAILED[key]
            return "eager"
        finally:
            for marker in markers:
                marker.unlink(missing_ok=True)
        self.key, self.lists, self._stand_ins = key, lists, {}
        self.load_s = round(time.perf_counter() - started, 2)
        self.artifacts = where
        self.blocks_ready = ", ".join(f"{sum(r.ok)}/{len(r.ok)} {n}" for n, r in lists.items())
        self.state, self.reason = "compiled", f"compiled blocks loaded in {self.load_s} s ({where})"
        log.info("flux_fast: %s; %s compiled", self.reason, self.blocks_ready)
        return "compiled"


class _BadPackage(RuntimeError):
    pass


def _check(runners: _ListRunners, blocks: torch.nn.ModuleList) -> str | None:
    """Block 0 through its runner against the eager block on a small input; a sentence if they disagree."""
    if not runners.ok or not runners.ok[0]:
        return None          # block 0 does not fit the package now (e.g. offloaded): nothing to compare
    g = torch.Generator(device="cpu").manual_seed(0)
    small = [[1, *i["shape"][1:]] for i in runners.inputs]           # batch 1, the build's other sizes
    n_img, n_txt = 16, 8
    if runners.name == "double_blocks":
        small[0][1], small[1][1], small[3][2] = n_img, n_txt, n_img + n_txt
    else:
        small[0][1], small[2][2] = n_img + n_txt, n_img + n_txt
    inputs = [(torch.randn(s, generator=g) * (0.5 if d != torch.float32 else 1.0)).to(d).to(runners.device)
              for s, d in zip(small, runners.dtypes)]
    with torch.inference_mode():
        expected = blocks[0](*[t.clone() for t in inputs], transformer_options={})
        got = runners.call(0, [t.clone() for t in inputs])
    return compare_outputs(expected, got)[1]
