"""The warm-up: a few-step generation at start that loads the models while no job is there, and gives way to the
first job that arrives.

Why it runs beside the Runpod loop (handler/__main__.py) and not before it: a worker takes jobs as soon as ComfyUI
answers. It is still one job at a time: the warm-up is a job of the worker (Worker.handle holds one lock for every
job), so a job that arrives waits for it, never runs beside it (they would share ComfyUI's folders, whose
clean-up counts what appeared while a job ran as that job's, and one HTTP session). Why it gives way: Runpod starts a worker because jobs are waiting, so the first job usually arrives while
the warm-up is still loading. Queued behind it, that job waited for the warm-up's sampling, decode and PNG too
(1.9 s of the first image in bench.coldstart run 4), work whose only purpose was to make a later job faster. So the
first job cancels the warm-up's ComfyUI prompt: deleted while still queued, interrupted while running (ComfyUI
stops at the next node or sampling step). What it already loaded stays loaded and cached, and the job loads the
rest itself. Its sampling run is also where the fast path finds its compiled blocks, or starts building them in a
child process on the first worker of a GPU model (comfy_nodes/flux_fast/compiled_blocks.py).

Shapes: WARMUP_STEPS steps of the default workflow at each WARMUP_SIZES entry (Settings). A warm-up that fails on
its own (not because it gave way) means this worker cannot generate: `on_failure` ends it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from .config import Settings
from .errors import WorkerError

log = logging.getLogger("handler.warmup")

Handle = Callable[[dict[str, Any]], dict[str, Any]]


class WarmUp:
    """One warm-up thread, and the hook that makes it give way to the first job."""

    def __init__(self, worker: Any, settings: Settings, on_failure: Callable[[], None], client: Any = None):
        """`client`: the ComfyUI client give_way cancels through, its own HTTP session (the warm-up's job holds the
        worker's client while it runs); defaults to the worker's (tests)."""
        self.worker, self.settings, self.on_failure = worker, settings, on_failure
        self.client = client if client is not None else getattr(worker, "client", None)
        self.gave_way = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> threading.Thread:
        def run() -> None:
            if not warm_up(self.worker, self.settings, stop=self.gave_way.is_set) and not self.gave_way.is_set():
                log.error("warm-up failed: this worker cannot generate images; exiting so that Runpod replaces it")
                self.on_failure()

        self.thread = threading.Thread(target=run, name="warm-up", daemon=True)
        self.thread.start()
        return self.thread

    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def give_way(self) -> None:
        """Before a job: if the warm-up is still running, cancel its prompt; the job then waits for the warm-up's
        run to end (Worker.handle runs one job at a time, the warm-up included) and runs next.

        Safe to cancel whatever ComfyUI has queued or running at this instant: the worker runs one job at a
        time and this runs before the job queues anything, so while the warm-up lives every prompt is its own."""
        if not self.running() or self.gave_way.is_set():
            return
        self.gave_way.set()
        client = self.client
        try:
            prompt_ids = client.queued_prompt_ids()
            for prompt_id in prompt_ids:
                client.cancel(prompt_id)
            log.info("warm-up gives way to the first job (%d prompt(s) cancelled; the models it loaded stay loaded)",
                     len(prompt_ids))
        except WorkerError as err:      # the job itself will find out whether ComfyUI is usable
            log.warning("could not cancel the warm-up: %s", err.message)

    def before_each_job(self, handle: Handle) -> Handle:
        def wrapped(job: dict[str, Any]) -> dict[str, Any]:
            self.give_way()
            return handle(job)

        return wrapped


def warm_up(worker: Any, settings: Settings, stop: Callable[[], bool] = lambda: False) -> bool:
    """Run the default workflow with few steps, once per WARMUP_SIZES entry, so the models are on the GPU before
    the first job needs them and the fast path loads its compiled blocks (or starts building them in a child
    process). One size covers every size (the blocks take any batch, size and prompt length); more entries are for
    workflows of your own that benefit from loading at another size.

    No second run at the same size: a card that swaps models (16 GB) reaches another model state on its second
    generation, whose blocks are built or loaded then like any other state's. Returns whether every run succeeded;
    `stop()` true ends it early (the first job arrived), and what was cut short then is not a failure.
    """
    gate = getattr(worker, "preload_gate", None)
    for index, (width, height) in enumerate(settings.warmup_sizes):
        if gate is not None:
            # Wait for ComfyUI's start-up preload here, not inside the job: a first job that arrives meanwhile
            # finds nothing queued to cancel, so the warm-up must see that it gave way before it queues (bench
            # run of 2026-12-07: a warm-up queued after the preload delayed the first job by its 0.95 s).
            gate.wait()
        if stop():
            return True
        log.info("warming up: %d step(s) of %s at %dx%d", settings.warmup_steps, settings.default_workflow, width, height)
        result = worker.handle({"id": f"warmup-{index}-{width}x{height}", "input": {
            "prompt": f"warmup {index}", "num_inference_steps": settings.warmup_steps, "seed": index, "width": width,
            "height": height}})
        if stop():
            log.info("warm-up stopped: it gave way to a job")
            return True
        if "error" in result:
            log.error("warm-up run failed: %s", result["error"])
            return False
        log.info("warm-up done in %.1f s", result["timings"]["total_s"])
    return True
