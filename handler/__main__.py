"""`python -m handler [runpod flags]`: configure, wait for ComfyUI, check the workflows, then start Runpod.

Jobs are taken as soon as ComfyUI answers and the shipped workflows check out. The warm-up (WARMUP_STEPS,
handler/warmup.py) runs beside the Runpod loop, not before it: its prompt loads the models while no job is there
yet, and the first job to arrive cancels whatever of it is left. The fast path's compiled blocks are built in a
process of their own and only loaded by ComfyUI (comfy_nodes/flux_fast/compiled_blocks.py), so no job waits for a
compile.

The runpod SDK parses its own flags from sys.argv (`--rp_serve_api`, `--rp_api_port`, `--test_input`, ...), so
this module takes none of its own. Exit codes: 2 bad configuration, 1 ComfyUI not usable or a failed warm-up
(start.sh then stops the container so Runpod replaces the worker).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from .comfy_client import ComfyClient
from .config import Settings
from .errors import WorkerError
from .job import Worker
from .readiness import wait_for_comfyui
from .warmup import WarmUp

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
    try:
        worker = Worker(settings, client, report_progress=_runpod_progress if on_platform else None)
    except WorkerError as err:  # settings only the parts they configure can judge (the bucket's keys)
        log.error("configuration error: %s", err.message)
        return 2
    _import_local_api()
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
    handle = worker.handle
    if settings.warmup_steps:
        # Its own client: the first job cancels the warm-up's prompt while the warm-up's job holds the worker's.
        warm = WarmUp(worker, settings, on_failure=_exit_worker,
                      client=ComfyClient(settings.comfyui_url, settings.http_timeout_s))
        warm.start()
        handle = warm.before_each_job(handle)

    import runpod

    runpod.serverless.start({"handler": handle})
    return 0


def _import_local_api() -> None:
    """With --rp_serve_api, import the SDK's local API server (FastAPI, uvicorn) while ComfyUI is still starting.

    Why: start.sh starts the handler beside ComfyUI, whose start takes ~8 s of imports. The runpod SDK itself is
    imported with the handler's modules (url_fetch), but `runpod.serverless.start` imports its local API server
    only when called, after ComfyUI answered: 0.15 s on the CI CPU between ComfyUI's readiness and the first job of
    every local cold start (`docker compose`, bench.coldstart). On Runpod's queue the SDK imports nothing late.
    """
    if "--rp_serve_api" in sys.argv:
        from runpod.serverless.modules import rp_fastapi  # noqa: F401


def _exit_worker() -> None:
    # From the warm-up thread: the Runpod loop owns the main thread, so end the process; start.sh then stops
    # ComfyUI and the container exits non-zero, and Runpod replaces the worker.
    logging.shutdown()
    os._exit(1)


if __name__ == "__main__":
    sys.exit(main())
