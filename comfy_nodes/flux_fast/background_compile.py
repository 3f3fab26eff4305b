"""torch.compile of the DiT's blocks off the request path: model calls run eagerly until the compiled blocks are ready.

Why: compiling takes 15-25 s (seconds with saved artifacts), and a worker that compiled before taking jobs was
ready 30 s after its start, with its first image later than plain ComfyUI's. Here no model call ever waits for a
compile:

1. The first eager model call captures the inputs of one block of each type: a forward pre-hook on the first double
   and the first single block, removed as soon as it fired; the tensors are cloned.
2. A daemon thread builds the torch.compile wrappers (importing inductor off the model-load path), loads the saved
   artifacts of this build (artifacts.py), then calls each compiled block type once with those inputs, in the same
   inference/grad mode and on the same device. Tracing holds the GIL, so the thread pauses while a sampling run is
   in progress (a profile hook, _yield_to_sampling) and compiles in the gaps between runs; inductor's kernel
   compiles run in worker processes. Once each block type ran compiled, the compiled path is ready and the
   artifacts are saved.
3. A sampling run uses the compiled blocks only if they were ready when it began, so one image never mixes paths.
   Compiled calls run under torch.compiler.set_stance("fail_on_recompile"): a model state the graphs were not
   compiled for (a memory-tight card's partial loading, patched weights) raises instead of recompiling inside the
   request; that call and the rest of its run go eager, and the capture is re-armed so that the next compile
   happens in the background too (up to MAX_RECAPTURES times; then the model stays eager and says why).
4. A failure in the thread leaves the model on the eager path (plain ComfyUI speed) with the reason in the log and
   in `statuses()`, which the /flux_fast/status route, and through it the handler's `action: info`, report.

The thread only runs while the main thread uses eager blocks, so the process-wide compiler stance set around
compiled calls never changes under a compile.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time
import weakref
from typing import Any, Callable

import torch

from .artifacts import ArtifactStore

log = logging.getLogger("flux_fast")

_LIVE: "weakref.WeakSet[BackgroundCompiler]" = weakref.WeakSet()
_artifacts_loaded: set[str] = set()     # keys already loaded into this process's caches
MAX_RECAPTURES = 3                      # model states to recompile for before settling for eager
SETTLE_WAIT_S = 30.0                    # longest wait for ComfyUI to finish loading before tracing anyway
MAX_TRACE_ATTEMPTS = 4                  # traces of one block call redone because the weights changed under them


def statuses() -> list[dict[str, Any]]:
    """The state of every live compiler (one per patched model), for the status route."""
    return [c.status() for c in list(_LIVE)]


def is_recompile_refusal(exc: BaseException) -> bool:
    """True for the error torch raises under the fail_on_recompile stance (its only signal is the message)."""
    return isinstance(exc, RuntimeError) and "fail_on_recompile" in str(exc)


class BackgroundCompiler:
    """Owns one model's compiled blocks: when to capture, the compile thread, and which path a model call takes."""

    def __init__(self, block_lists: tuple[str, ...], build: Callable[[], Any], store: ArtifactStore | None,
                 label: str, max_pause_s: float = 120.0, weights: Any = None, batches: bool = True):
        self.block_lists = block_lists          # the diffusion model's block-list attributes, e.g. double_blocks
        self._build = build                     # -> patch.CompiledBlocks, built in the thread (imports inductor)
        self.blocks: Any = None
        self.store = store
        self.label = label
        self.state = "waiting"                  # waiting -> capturing -> compiling -> ready | failed
        self.reason = "compiles in the background after the first model call"
        self.run_compiled = False
        self.compiles = 0
        self.eager_fallbacks = 0
        self.compile_s: float | None = None
        self.artifacts = "not configured (FLUX_FAST_ARTIFACTS_DIR unset)" if store is None else "not read yet"
        self._lock = threading.Lock()
        self._hooks: list[Any] = []
        self._captured: dict[tuple[str, str], tuple[tuple, dict]] = {}   # (block list, signature) -> inputs
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()          # set while no sampling run is in progress
        self._idle.set()
        self.max_pause_s = max_pause_s
        # weights.WeightState (or None): traces wait for settled weights and are redone when an eject overlapped
        self.weights = weights
        self.batches = batches                  # compile for batches of 2+ too (policy FLUX_FAST_COMPILE_BATCHES)
        self.paused_s = 0.0
        _LIVE.add(self)

    # ---- what ComfyUI's thread calls -------------------------------------------------------------------
    def begin_run(self) -> None:
        """At the start of a sampling run: the whole run takes the path that is ready now, and a compile in
        progress pauses until the run ends (see _yield_to_sampling)."""
        self.run_compiled = self.state == "ready"
        self._idle.clear()

    def end_run(self) -> None:
        self._idle.set()

    def model_call(self, executor: Callable, diffusion_model: torch.nn.Module, args: tuple, kwargs: dict) -> Any:
        if self.run_compiled:
            try:
                with torch.compiler.set_stance("fail_on_recompile"), self.blocks.swapped_into(diffusion_model):
                    return executor(*args, **kwargs)
            except RuntimeError as exc:
                if not is_recompile_refusal(exc):
                    raise
                self._recompile_needed(exc)
        capturing = self._arm(diffusion_model)
        try:
            return executor(*args, **kwargs)
        finally:
            if capturing:
                self._finish_capture()

    def status(self) -> dict[str, Any]:
        return {"model": self.label, "state": self.state, "reason": self.reason, "compiles": self.compiles,
                "compile_s": self.compile_s, "paused_s": round(self.paused_s, 2), "eager_fallbacks": self.eager_fallbacks,
                "artifacts": self.artifacts}

    # ---- capture ---------------------------------------------------------------------------------------
    def _arm(self, diffusion_model: torch.nn.Module) -> bool:
        """Hook every eager block, once, so this model call hands over the inputs of each distinct kind of block
        call. Blocks of one type can see inputs that dynamo guards apart (an inference tensor or not, another
        dtype): one capture per distinct signature compiles every entry the real calls will need."""
        with self._lock:
            if self.state != "waiting":
                return False
            self.state, self.reason = "capturing", "capturing block inputs from a model call"
            self._captured = {}
            for name in self.block_lists:
                for block in getattr(diffusion_model, name):
                    self._hooks.append(block.register_forward_pre_hook(self._capture_hook(name), with_kwargs=True))
            return True

    def _capture_hook(self, name: str) -> Callable:
        def hook(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
            signature = _signature((args, kwargs))
            batch = _batch_of((args, kwargs))
            key = (name, f"{signature}|batch {'1' if batch == 1 else '>1'}")
            if key in self._captured:
                return
            self._captured[key] = torch.utils._pytree.tree_map_only(torch.Tensor, _clone, (args, kwargs))
            if batch == 1 and self.batches:
                # Batches compiled ahead: dynamo specialises a dimension of size 1, so batch 1 and batches of 2 or
                # more are two graphs. The same inputs twice over compile the second one (symbolic batch: 2, 3, 4
                # all fit) in the same background compile, so no caller's batch meets a recompile.
                self._captured[(name, f"{signature}|batch >1")] = torch.utils._pytree.tree_map_only(
                    torch.Tensor, lambda t: _doubled(t, 1), self._captured[key])
        return hook

    def _finish_capture(self) -> None:
        """After the capturing call: unhook, and compile what it handed over in a thread of its own."""
        with self._lock:
            for handle in self._hooks:
                handle.remove()
            self._hooks = []
            if not self._captured:
                self.state, self.reason = "waiting", "no block ran in the last model call; capturing from the next"
                return
            self.state, self.reason = "compiling", "compiling in the background; model calls run eager"
            mode = (torch.is_inference_mode_enabled(), torch.is_grad_enabled())
            device = _input_device(self._captured) or torch.device("cpu")
            self._thread = threading.Thread(target=self._compile, args=(mode, device), daemon=True,
                                            name="flux_fast-compile")
            self._thread.start()

    def _recompile_needed(self, exc: BaseException) -> None:
        first_line = str(exc).strip().splitlines()[0][:200]
        detail = " ".join(line.strip() for line in str(exc).strip().splitlines()[1:3])[:300]
        self.eager_fallbacks += 1
        self.run_compiled = False
        with self._lock:
            if self.eager_fallbacks > MAX_RECAPTURES:
                self.state = "failed"
                self.reason = (f"the compiled blocks missed the model's state {self.eager_fallbacks} times; staying "
                               f"eager (plain ComfyUI speed). Last: {detail or first_line}")
                log.warning("flux_fast: %s", self.reason)
                return
            self.state = "waiting"
            self.reason = "the model's state changed since the compile; recompiling in the background"
        log.info("flux_fast: compiled blocks do not fit this model state (%s): this run goes eager, the next "
                 "compile happens in the background", detail or first_line)

    # ---- the thread ------------------------------------------------------------------------------------
    def _compile(self, mode: tuple[bool, bool], device: torch.device) -> None:
        inference, grad = mode
        started = time.perf_counter()
        previous_profile, previous_interval = sys.getprofile(), sys.getswitchinterval()
        sys.setprofile(self._yield_to_sampling)        # this thread only
        # Outside sampling runs (text encode, decode, PNG) both threads run: a short switch interval lets ComfyUI's
        # thread, which drops the GIL in every torch op, take it back in 0.1 ms instead of up to 5 ms.
        sys.setswitchinterval(min(previous_interval, 1e-4))
        try:
            if self.blocks is None:
                self.blocks = self._build()
            self._load_artifacts()
            if device.type == "cuda":
                torch.cuda.set_device(device)
            with torch.inference_mode(inference), torch.set_grad_enabled(grad):
                for (name, _), (args, kwargs) in self._captured.items():
                    self._trace(self.blocks.lists[name][0], args, kwargs)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
        except Exception as exc:  # the eager path keeps serving; say why it stays there
            self.state = "failed"
            self.reason = f"compile failed, model calls stay eager: {exc.__class__.__name__}: {str(exc)[:300]}"
            log.exception("flux_fast: background compile failed; serving uncompiled (plain ComfyUI speed)")
            return
        finally:
            sys.setprofile(previous_profile)
            sys.setswitchinterval(previous_interval)
            self._captured = {}
        self.compiles += 1
        self.compile_s = round(time.perf_counter() - started, 2)
        self._save_artifacts()
        _freeze_gc()
        self.state, self.reason = "ready", (f"compiled in the background in {self.compile_s} s, "
                                            f"{self.paused_s:.1f} s of it paused for sampling runs")
        log.info("flux_fast: compiled blocks ready after %.1f s in the background (%.1f s paused while sampling; "
                 "%s); sampling runs that start from now on use them", self.compile_s, self.paused_s,
                 self.blocks.describe())

    def _trace(self, block: Any, args: tuple, kwargs: dict) -> None:
        """One compiled call of a captured block, on weights ComfyUI is not in the middle of changing.

        The weights are the model's own, and ComfyUI ejects and re-injects the fast path's weight state around every
        load (weights.py) while this thread may be tracing. A trace that an eject overlapped may have read some
        parameters in fp8: dynamo's guards keep such a graph from ever serving the bf16 weights, but it is not the
        graph that will be needed, and inductor may refuse it (no fp8 rms_norm). So wait until the weights are
        settled, and trace again when an eject came in between."""
        for attempt in range(1, MAX_TRACE_ATTEMPTS + 1):
            generation = self._wait_settled()
            try:
                block(*args, **kwargs)
            except Exception:
                if self.weights is None or self.weights.generation == generation or attempt == MAX_TRACE_ATTEMPTS:
                    raise
                log.info("flux_fast: the weights changed during a trace (attempt %d), which failed; tracing again", attempt)
                continue
            if self.weights is None or self.weights.generation == generation:
                return
            log.info("flux_fast: the weights changed during a trace (attempt %d); tracing again", attempt)
        raise RuntimeError(f"the model's weights changed during each of {MAX_TRACE_ATTEMPTS} traces")

    def _wait_settled(self) -> int:
        """Wait until ComfyUI is not loading or patching the weights; returns their generation at that point."""
        if self.weights is None:
            return 0
        # Bounded: a model that is never loaded again has no settled state to wait for, and the generation
        # check still catches a trace that overlapped a change.
        self.weights.settled.wait(SETTLE_WAIT_S)
        return self.weights.generation

    def _yield_to_sampling(self, frame: Any, event: str, arg: Any) -> None:
        """Profile hook of the compile thread: at each Python call, wait while a sampling run is in progress.

        Why: tracing is pure Python and holds the GIL, and every eager torch op of the sampling thread releases
        and retakes it; sharing it made the first request's 28 eager steps take 19 s instead of 6 s on an H200
        (bench.coldstart). Paused, the compile uses the gaps between runs. Each wait is short (a lock this thread
        holds may be one the sampling thread needs), and after max_pause_s in all the compile stops yielding, so a
        worker that is never idle still gets its compiled path.
        """
        if event != "call" or self._idle.is_set() or self.paused_s >= self.max_pause_s:
            return
        t0 = time.perf_counter()
        self._idle.wait(0.5)
        self.paused_s += time.perf_counter() - t0

    def _load_artifacts(self) -> None:
        if self.store is None or self.store.key in _artifacts_loaded:
            return
        payload, why = self.store.read()
        if payload is None:
            self.artifacts = why
            log.info("flux_fast: %s", why)
            return
        t0 = time.perf_counter()
        try:
            torch.compiler.load_cache_artifacts(payload)
        except Exception as exc:
            self.artifacts = self.store.reject(f"torch refused them ({exc.__class__.__name__}: {str(exc)[:200]})")
            return
        _artifacts_loaded.add(self.store.key)
        self.artifacts = f"loaded {why} in {time.perf_counter() - t0:.2f} s"
        log.info("flux_fast: compile artifacts %s", self.artifacts)

    def _save_artifacts(self) -> None:
        if self.store is None:
            return
        try:
            saved = torch.compiler.save_cache_artifacts()
        except Exception as exc:
            log.warning("flux_fast: could not serialise compile artifacts: %s", exc)
            return
        if not saved:
            return
        said = self.store.write(saved[0])
        self.artifacts = f"{self.artifacts}; {said}" if self.store.key in _artifacts_loaded else said
        _artifacts_loaded.add(self.store.key)
        log.info("flux_fast: %s", said)


def _clone(tensor: torch.Tensor) -> torch.Tensor:
    """A copy that the compiled code's guards see as the original: an inference tensor only if the original is one
    (the dispatch keys differ, and a guard on them would fail every real call)."""
    if tensor.is_inference():
        return tensor.detach().clone()
    with torch.inference_mode(False):
        return tensor.detach().clone()


def _batch_of(tree: Any) -> int | None:
    """The batch of a block call: dim 0 of its first tensor input (FLUX blocks take batch-major tensors)."""
    for leaf in torch.utils._pytree.tree_leaves(tree):
        if isinstance(leaf, torch.Tensor) and leaf.dim():
            return leaf.shape[0]
    return None


def _doubled(tensor: torch.Tensor, batch: int) -> torch.Tensor:
    """`tensor` as a batch of two, where its dim 0 is the call's batch; anything else as it is."""
    if tensor.dim() == 0 or tensor.shape[0] != batch:
        return tensor
    if tensor.is_inference():
        return torch.cat((tensor, tensor))
    with torch.inference_mode(False):
        return torch.cat((tensor, tensor))


def _signature(tree: Any) -> str:
    """What dynamo's guards tell block calls apart by, short of sizes (those are dynamic)."""
    leaves, spec = torch.utils._pytree.tree_flatten(tree)
    parts = [f"T{t.dim()}:{t.dtype}:{t.device}:{int(t.is_inference())}:{int(t.requires_grad)}"
             if isinstance(t, torch.Tensor) else type(t).__name__ for t in leaves]
    return f"{spec}|{','.join(parts)}"


def _input_device(captured: dict) -> torch.device | None:
    for leaf in torch.utils._pytree.tree_leaves(list(captured.values())):
        if isinstance(leaf, torch.Tensor):
            return leaf.device
    return None


def _freeze_gc() -> None:
    """Move every live object, the compiled graphs among them, to the GC's permanent generation.

    Why: ComfyUI runs gc.collect() after a prompt at most every 10 s, holding the GIL; with the compiled graphs
    alive that full collection took 1.3-1.8 s on the benchmark machine, during which the server thread could not
    send the prompt's final websocket message. Frozen objects are never scanned again. No collection first: it
    would hold the GIL as long, maybe during a request.
    """
    gc.freeze()
    log.info("flux_fast: %d objects in the GC's permanent generation", gc.get_freeze_count())
