"""The start-up preload: the default workflow's models loaded while ComfyUI is still importing.

Why: a cold worker's first image waited for ComfyUI's whole start (8.2 s to listening on an H100, mostly imports)
and only then loaded its models: T5 and CLIP 1.1 s, the DiT 0.9 s, the DiT's move to the card and its bf16 copies
1.7 s, the compiled blocks 0.4 s (BENCHMARKS.md, "Cold start"). None of that needs ComfyUI's server, only its
model code, which is imported seconds before the server listens. Here it runs in those seconds.

How: ComfyUI runs each custom node folder's prestartup_script.py before it imports torch. Ours loads this module
(stdlib only at import) under the name ComfyUI's loader later gives it inside the flux_fast package, so the nodes
find this same registry, and calls `start`. One thread then:

1. waits until ComfyUI's main module has done its own set-up (the PromptServer exists: torch imported, the device
   chosen, dynamic VRAM settled), while ComfyUI goes on importing its node modules;
2. runs ComfyUI's own loader node (UNETLoader, DualCLIPLoader, VAELoader, ...) for each FluxFast loader node of the
   workflow in FLUX_FAST_PRELOAD whose inputs are all plain values; where ComfyUI keeps models resident (not
   dynamic VRAM), it loads each onto the card as a prompt would (ComfyUI's load_models_gpu);
3. once the flux_fast package is imported (it calls `attach`), applies each FluxFastPatch node fed straight by a
   preloaded loader, with the workflow's inputs, loads the patched DiT (its bf16 copies included) and resolves its
   compiled blocks (loads the packages, or starts their build).

The first prompt's FluxFast loader nodes and FluxFastPatch take these objects, once each (`take`,
`take_patched`); from then on ComfyUI's own output cache keeps them, as for any loader's output. A prompt that takes
none of them (a caller's workflow of other nodes) releases them when it is queued (`on_prompt`), so a worker that
serves other models never holds two copies.

ComfyUI's model management is not thread-safe, so this thread never runs beside a prompt: the handler queues no
prompt before /flux_fast/status says the preload settled (handler/readiness.py), a prompt posted to ComfyUI directly
meanwhile (the GUI) is held in `on_prompt` until it has, and the FluxFast nodes wait for it too. A failure anywhere
leaves the nodes to load as ComfyUI does; it never fails a job.

Shapes: FLUX_FAST_PRELOAD: the path of an API-format workflow (a JSON object of node id -> {"class_type",
"inputs"}); unset or empty (the default): no preload.

Measured (H100, bench.coldstart): not a gain, so it is off by default. The first run (session 11) found each load
2-2.5x slower in this thread than in a prompt; on a 2-core CPU machine Linux's schedstat named two causes, both
removed since (BENCHMARKS.md, "The start-up preload on the CPU"): the package-loading head start
(flux_fast/__init__.py) ran inductor's CPU probe beside the loads, and the handler polled /flux_fast/status 20 times a
second; it now asks once and ComfyUI holds the answer (`wait_seconds`). The second run (session 13) shows the loads
at a prompt's speed (T5 and CLIP 1.73 s beside ComfyUI's last imports, the DiT 0.85 s, the VAE 0.35 s, the patch with
its move to the card, bf16 copies and packages 2.60 s; `Usage`: no wait for a core) and still no gain: first image
19.02 s against 16.83 s, 10.90 s against 10.46 s counted from the PromptServer's creation (this start was slower).
What bounds it is ComfyUI's order: its loaders and model management exist only ~1 s before it listens, and without
the preload the first job is queued right then and runs the same loads itself.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger("flux_fast.preload")

ENV_PRELOAD = "FLUX_FAST_PRELOAD"

# Our loader node -> the ComfyUI loader node it runs. The one table of loaders: loaders.py makes the node classes
# from it, and the workflow is read against it here.
LOADERS: dict[str, str] = {
    "FluxFastDualCLIPLoader": "DualCLIPLoader",
    "FluxFastCLIPLoader": "CLIPLoader",
    "FluxFastUNETLoader": "UNETLoader",
    "FluxFastVAELoader": "VAELoader",
}
PATCH_NODE = "FluxFastPatch"
# How long a node waits for a preload still under way before it loads by itself (a cold disk can be slow; the
# preload reads the same files, so waiting is never slower than loading twice).
WAIT_S = 600.0
POLL_S = 0.01
# The longest one status request may wait for the preload to settle (/flux_fast/status?wait_s=N).
STATUS_WAIT_MAX_S = 60.0
# The states of a preload still at work, as /flux_fast/status reports them (the handler's gate waits while it is).
WAITING, LOADING = "waiting for ComfyUI", "loading"
BUSY = (WAITING, LOADING)


@dataclass
class Item:
    node: str
    class_type: str
    inputs: dict[str, Any]
    state: str = "pending"
    seconds: float | None = None
    # Where the item's seconds went (`Usage.since`): wall far above this thread's CPU means it waited, on the GIL,
    # the card or the disk, or for a core (run_wait_s); the other threads and child processes say what else ran.
    cpu: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        return key_of(self.class_type, self.inputs)


@dataclass
class Spec:
    """What a workflow asks to preload: loader nodes in the order they load, and FluxFastPatch nodes fed by them."""
    loaders: list[Item] = field(default_factory=list)
    patches: list[tuple[Item, str]] = field(default_factory=list)   # (the patch node, the node id of its loader)


def key_of(class_type: str, inputs: dict[str, Any]) -> str:
    return json.dumps([class_type, inputs], sort_keys=True, default=str)


def _plain(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None


def spec_of(workflow: Any) -> Spec:
    """The preload a workflow asks for. Only nodes whose inputs are all plain values: a link would need the graph
    run. Text encoders first, then the diffusion model, then the rest: the order a FLUX prompt uses them in."""
    spec = Spec()
    if not isinstance(workflow, dict):
        return spec
    for node_id, node in workflow.items():
        if not isinstance(node, dict) or node.get("class_type") not in LOADERS:
            continue
        inputs = node.get("inputs")
        if isinstance(inputs, dict) and all(_plain(v) for v in inputs.values()):
            spec.loaders.append(Item(str(node_id), node["class_type"], dict(inputs)))
    order = {"FluxFastDualCLIPLoader": 0, "FluxFastCLIPLoader": 0, "FluxFastUNETLoader": 1}
    spec.loaders.sort(key=lambda item: order.get(item.class_type, 2))
    loader_ids = {item.node for item in spec.loaders if item.class_type == "FluxFastUNETLoader"}
    for node_id, node in workflow.items():
        if not isinstance(node, dict) or node.get("class_type") != PATCH_NODE:
            continue
        inputs = dict(node.get("inputs") or {})
        source = inputs.pop("model", None)
        if (isinstance(source, list) and len(source) == 2 and str(source[0]) in loader_ids
                and source[1] == 0 and all(_plain(v) for v in inputs.values())):
            spec.patches.append((Item(str(node_id), PATCH_NODE, inputs), str(source[0])))
    return spec


class Preload:
    """The registry and its thread. One per ComfyUI process (`current`)."""

    def __init__(self, workflow_path: str):
        self.workflow_path = workflow_path
        self.state, self.reason = WAITING, ""
        self.spec = Spec()
        self.started = time.perf_counter()
        self.finished_s: float | None = None
        self.done = threading.Event()
        self.attached = threading.Event()
        self._patch: Callable[[Any, dict[str, Any]], tuple[Any, bool]] | None = None
        self._prepare: Callable[[Any], None] | None = None
        self._objects: dict[str, tuple] = {}
        self._patched: dict[tuple[int, str], Any] = {}
        self._lock = threading.Lock()
        self._when_done: list[Callable[[], None]] = []

    # ---- ComfyUI's side --------------------------------------------------------------------------------------
    def start(self) -> None:
        try:
            with open(self.workflow_path, encoding="utf-8") as f:
                self.spec = spec_of(json.load(f))
        except (OSError, ValueError) as exc:
            self._finish("failed", f"could not read {ENV_PRELOAD}={self.workflow_path}: {exc}")
            return
        if not self.spec.loaders:
            self._finish("nothing to preload", f"{self.workflow_path} has no FluxFast loader node with plain inputs")
            return
        threading.Thread(target=self._run, name="flux_fast-preload", daemon=True).start()

    def attach(self, patch: Callable[[Any, dict[str, Any]], tuple[Any, bool]], prepare: Callable[[Any], None]) -> None:
        """Called by the flux_fast package when ComfyUI imports it: how to apply FluxFastPatch and how to get a
        patched model's compiled blocks ready. This module cannot import the package itself (it is loaded first)."""
        self._patch, self._prepare = patch, prepare
        self.attached.set()

    # ---- the nodes' side -------------------------------------------------------------------------------------
    def take(self, class_type: str, inputs: dict[str, Any]) -> tuple | None:
        """The preloaded output of a loader node with these inputs, once; None where there is none."""
        if not self.done.wait(WAIT_S):
            log.warning("flux_fast: the preload is still running after %.0f s; %s loads by itself", WAIT_S, class_type)
            return None
        with self._lock:
            out = self._objects.pop(key_of(class_type, inputs), None)
        if out is not None:
            log.info("flux_fast: %s takes its preloaded model", class_type)
        return out

    def take_patched(self, model: Any, inputs: dict[str, Any]) -> Any | None:
        with self._lock:
            return self._patched.pop((id(model), key_of(PATCH_NODE, inputs)), None)

    def on_prompt(self, json_data: dict) -> dict:
        """ComfyUI's on_prompt hook, run as a prompt is posted: a prompt that takes none of the preloaded models
        releases them. A prompt posted while the preload still loads (a GUI user's, straight to ComfyUI; the handler
        waits before it posts) is held here until the preload is done, so it never runs beside it."""
        try:
            if not self.done.is_set():
                log.info("flux_fast: a prompt was posted while the preload loads; it is queued when that is done")
                self.done.wait(WAIT_S)
            with self._lock:
                held = set(self._objects)
            if held and self.done.is_set():
                prompt = json_data.get("prompt") if isinstance(json_data, dict) else None
                wanted = {key_of(n.get("class_type"), n.get("inputs") or {}) for n in (prompt or {}).values()
                          if isinstance(n, dict) and n.get("class_type") in LOADERS}
                if not wanted & held:
                    self.release("a prompt that uses none of them was queued")
        except Exception:  # a hook must never stop a prompt
            log.exception("flux_fast: preload on_prompt check failed")
        return json_data

    def release(self, why: str) -> None:
        with self._lock:
            count = len(self._objects)
            self._objects.clear()
            self._patched.clear()
        if count:
            self.state, self.reason = "released", why
            log.info("flux_fast: %d preloaded model(s) released: %s", count, why)

    def when_done(self, callback: Callable[[], None]) -> None:
        """Call `callback` (from the preload's thread, so it must only hand over) once the preload has settled; at
        once if it has. How a status request held by ComfyUI's event loop learns it may answer."""
        with self._lock:
            if not self.done.is_set():
                self._when_done.append(callback)
                return
        callback()

    def status(self) -> dict[str, Any]:
        return {"state": self.state, "reason": self.reason, "workflow": self.workflow_path,
                "seconds_after_start": self.finished_s,
                "items": [{"node": i.node, "class_type": i.class_type, "state": i.state, "seconds": i.seconds,
                           "cpu": i.cpu}
                          for i in self.spec.loaders + [p for p, _ in self.spec.patches]],
                "unclaimed": len(self._objects)}

    # ---- the thread ------------------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            if not _wait_until(_comfyui_set_up, WAIT_S):
                self._finish("failed", "ComfyUI's server was not created in time")
                return
            self.state = LOADING
            log.info("flux_fast: preloading %s (%.1f s after ComfyUI's prestartup)",
                     ", ".join(f"{i.class_type} {i.node}" for i in self.spec.loaders), time.perf_counter() - self.started)
            import torch

            # A prompt runs its nodes under inference mode (ComfyUI's executor); so does this thread, so the tensors
            # it makes are the ones a prompt's loaders make, and no load pays autograd's bookkeeping.
            with torch.inference_mode():
                self._load_all()
        except Exception as exc:  # the nodes then load as ComfyUI does
            log.exception("flux_fast: preload failed")
            self.release(f"preload failed: {exc.__class__.__name__}")
            self._finish("failed", f"{exc.__class__.__name__}: {str(exc)[:300]}")

    def _load_all(self) -> None:
        """Load each loader node's models, then apply each FluxFastPatch fed by one (under inference mode)."""
        loaded: dict[str, tuple] = {}
        # A model FluxFastPatch takes goes to the card once, as the patched clone (as in a prompt): moving the
        # plain model first and then the clone loaded it twice (bench run of 2026-12-07).
        patched = {source for _, source in self.spec.patches}
        for item in self.spec.loaders:
            out = self._timed(item, lambda item=item: self._load(item, to_card=item.node not in patched))
            if out is not None:
                loaded[item.node] = out
                with self._lock:
                    self._objects[item.key] = out
        if self.spec.patches and self.attached.wait(WAIT_S):
            for item, source in self.spec.patches:
                if source in loaded:
                    self._timed(item, lambda item=item, source=source: self._apply(item, loaded[source][0]))
        self._finish("ready", f"{len(self._objects)} model(s) ready for the first prompt")

    def _timed(self, item: Item, work: Callable[[], Any]) -> Any:
        started = Usage.now()
        item.state = "loading"
        try:
            out = work()
        except Exception as exc:
            item.state = f"failed: {exc.__class__.__name__}: {str(exc)[:200]}"
            log.warning("flux_fast: preloading %s %s failed (%s); it loads when a prompt runs it", item.class_type,
                        item.node, item.state)
            return None
        item.cpu = Usage.now().since(started)
        item.seconds = item.cpu["wall_s"]
        item.state = "done"
        log.info("flux_fast: preloaded %s %s in %.2f s (CPU seconds: %s)", item.class_type, item.node, item.seconds,
                 ", ".join(f"{k} {v}" for k, v in item.cpu.items() if k != "wall_s"))
        return out

    def _load(self, item: Item, to_card: bool) -> tuple:
        import nodes

        cls = nodes.NODE_CLASS_MAPPINGS[LOADERS[item.class_type]]
        out = getattr(cls(), cls.FUNCTION)(**item.inputs)
        if to_card:
            _to_card(out[0])
        return out

    def _apply(self, item: Item, model: Any) -> Any:
        assert self._patch is not None and self._prepare is not None
        patched, applied = self._patch(model, item.inputs)
        if applied:
            _to_card(patched)
            self._prepare(patched)
        with self._lock:
            self._patched[(id(model), item.key)] = patched
        return patched

    def _finish(self, state: str, reason: str) -> None:
        self.state, self.reason = state, reason
        self.finished_s = round(time.perf_counter() - self.started, 2)
        log.info("flux_fast: preload %s: %s", state, reason)
        with self._lock:
            self.done.set()
            callbacks, self._when_done = self._when_done, []
        for callback in callbacks:
            try:
                callback()
            except Exception:  # a closed event loop (ComfyUI stopping) must not fail the preload
                log.exception("flux_fast: a preload waiter could not be told")


def wait_seconds(raw: str | None) -> float:
    """The `wait_s` of a status request, in [0, STATUS_WAIT_MAX_S]; 0 (answer at once) for anything else."""
    try:
        value = float(raw) if raw is not None else 0.0
    except ValueError:
        return 0.0
    return min(value, STATUS_WAIT_MAX_S) if value > 0 else 0.0     # NaN and negatives: 0


@dataclass
class Usage:
    """CPU use up to one moment, Linux's per-thread counters where there are any. Two of them, `since`, say where a
    load's seconds went; on a 2-core machine they named what slowed the preload (BENCHMARKS.md)."""

    wall: float
    thread: float
    process: float
    children: float                     # finished child processes (os.times)
    run_wait: float | None              # this thread runnable but not running (/proc/thread-self/schedstat)
    threads: dict[int, float]           # native thread id -> CPU seconds (/proc/self/task)

    @classmethod
    def now(cls) -> "Usage":
        times = os.times()
        return cls(time.perf_counter(), time.thread_time(), time.process_time(),
                   times.children_user + times.children_system, _run_wait_s(), _thread_cpu())

    def since(self, start: "Usage") -> dict[str, Any]:
        names = {t.native_id: t.name for t in threading.enumerate()}
        me = threading.get_native_id()
        others = sorted(((round(cpu - start.threads.get(tid, 0.0), 2), tid) for tid, cpu in self.threads.items()
                         if tid != me), reverse=True)
        return {"wall_s": round(self.wall - start.wall, 2), "thread_s": round(self.thread - start.thread, 2),
                "process_s": round(self.process - start.process, 2),
                "children_s": round(self.children - start.children, 2),
                "run_wait_s": (round(self.run_wait - start.run_wait, 2)
                               if self.run_wait is not None and start.run_wait is not None else None),
                "busiest_other_threads": [[names.get(tid, f"native {tid}"), cpu] for cpu, tid in others[:3]
                                          if cpu >= 0.05]}


def _run_wait_s() -> float | None:
    """Seconds the calling thread has spent runnable but not running (/proc/thread-self/schedstat, 2nd field, ns);
    None where the kernel does not say."""
    try:
        with open("/proc/thread-self/schedstat", encoding="ascii") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


def _thread_cpu() -> dict[int, float]:
    """CPU seconds of each of this process's threads (utime + stime of /proc/self/task/*/stat); {} elsewhere."""
    out: dict[int, float] = {}
    try:
        tids = os.listdir("/proc/self/task")
        tick = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return out
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[int(tid)] = (int(fields[11]) + int(fields[12])) / tick
        except (OSError, ValueError, IndexError):
            continue
    return out


def _comfyui_set_up() -> bool:
    server = sys.modules.get("server")
    return getattr(getattr(server, "PromptServer", None), "instance", None) is not None


def _wait_until(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_S)
    return True


def _to_card(loaded: Any) -> None:
    """Load a model onto its device as a prompt would, where ComfyUI keeps models resident. A model under dynamic
    VRAM (T5 and the VAE on a 16 GB card) streams its weights per call, so nothing is moved ahead."""
    import comfy.model_management as mm

    patcher = getattr(loaded, "patcher", loaded)          # CLIP and VAE hold theirs; a MODEL is one
    is_dynamic = getattr(patcher, "is_dynamic", None)
    if not hasattr(patcher, "model_size") or (callable(is_dynamic) and is_dynamic()):
        return
    mm.load_models_gpu([patcher])


current: Preload | None = None


def start(env: dict[str, str] | os._Environ = os.environ) -> Preload | None:
    """From prestartup_script.py: start the preload FLUX_FAST_PRELOAD names, if any."""
    global current
    path = (env.get(ENV_PRELOAD) or "").strip()
    if not path or current is not None:
        return current
    current = Preload(path)
    current.start()
    return current
