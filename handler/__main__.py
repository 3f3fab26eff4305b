"""`python -m handler [runpod flags]`: configure, wait for ComfyUI, check the workflows, then start Runpod.

Jobs are taken as soon as ComfyUI answers and the shipped workflows check out. The warm-up (WARMUP_STEPS) runs
beside the Runpod loop, not before it: its prompt loads the models while no job is there yet, and ComfyUI queues a
job that arrives meanwhile behind it, so the job waits only for loading it needs anyway. torch.compile happens in
the background inside ComfyUI (comfy_nodes/flux_fast/background_compile.py), so no job waits for a compile.

The runpod SDK parses its own flags from sys.argv (`--rp_serve_api`, `--rp_api_port`, `--test_input`, ...), so
this module takes none of its own. Exit codes: 2 bad configuration, 1 ComfyUI not usable or a failed warm-up
(start.sh then stops the container so Runpod replaces the worker).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Any, Callable

from .comfy_client import ComfyClient
from .config import Settings
from .errors import WorkerError
from .job import Worker
from .readiness import wait_for_comfyui

log = logging.getLogger("handler")


def _runpod_progress(job: dict[str, Any], progress: dict[str, Any]) -> None:
    import runpod

    runpod.serverless.progress_update(job, progress)


def main() -> int:
    try:
        settings = Settings.from_env()
    except WorkerError as err:
        logging.basicConfig(level=logging.INFO)
        log.error("configuration error: %s", err.message)
        return 2
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stdout,
    )
    client = ComfyClient(settings.comfyui_url, settings.http_timeout_s)
    # Progress goes through the Runpod platform only; the local test API has nowhere to send it.
    on_platform = bool(os.environ.get("RUNPOD_WEBHOOK_POST_OUTPUT"))
    worker = Worker(settings, client, report_progress=_runpod_progress if on_platform else None)
    try:
        wait_for_comfyui(client, settings.ready_timeout_s, settings.comfyui_pid)
        problems = worker.prepare()
    except WorkerError as err:
        log.error("ComfyUI is not usable: %s", err.message)
        return 1
    if problems:
        for problem in problems:
            log.error("workflow check failed: %s", problem)
        return 1
    if settings.warmup_steps:
        start_warm_up(worker, settings)

    import runpod

    runpod.serverless.start({"handler": worker.handle})
    return 0


def _exit_worker() -> None:
    # From the warm-up thread: the Runpod loop owns the main thread, so end the process; start.sh then stops
    # ComfyUI and the container exits non-zero, and Runpod replaces the worker.
    logging.shutdown()
    os._exit(1)


def start_warm_up(worker: Worker, settings: Settings, on_failure: Callable[[], None] = _exit_worker) -> threading.Thread:
    """Warm up in a thread beside the Runpod loop. A warm-up that fails means this worker cannot generate (the
    fast path's own failures fall back to plain ComfyUI inside the node), so it must not serve: `on_failure` ends it."""

    def run() -> None:
        if not warm_up(worker, settings):
            log.error("warm-up failed: this worker cannot generate images; exiting so that Runpod replaces it")
            on_failure()

    thread = threading.Thread(target=run, name="warm-up", daemon=True)
    thread.start()
    return thread


def warm_up(worker: Worker, settings: Settings) -> bool:
    """Run the default workflow with few steps, once per WARMUP_SIZES entry, so the models are on the GPU before
    the first job needs them and the fast path captures the inputs it compiles its blocks for (in the background,
    see background_compile.py). One size covers every size (the blocks compile with dynamic shapes); more entries are
    for workflows of your own whose compiled graphs are per shape.

    No second run: a card that swaps models (16 GB) reaches another model state on its second generation, which
    the compiled blocks refuse to recompile for inside a request; that run goes eager and the recompile happens in
    the background. A second warm-up run would only queue behind the first jobs (bench.coldstart run 3: 8 s).
    Returns whether every run succeeded.
    """
    for index, (width, height) in enumerate(settings.warmup_sizes):
        log.info("warming up: %d step(s) of %s at %dx%d", settings.warmup_steps, settings.default_workflow, width, height)
        result = worker.handle({"id": f"warmup-{index}-{width}x{height}", "input": {
            "prompt": f"warmup {index}", "num_inference_steps": settings.warmup_steps, "seed": index, "width": width,
            "height": height}})
        if "error" in result:
            log.error("warm-up run failed: %s", result["error"])
            return False
        log.info("warm-up done in %.1f s", result["timings"]["total_s"])
    return True


if __name__ == "__main__":
    sys.exit(main())
