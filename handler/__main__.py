"""`python -m handler [runpod flags]`: configure, wait for ComfyUI, check the workflows, then start Runpod.

The runpod SDK parses its own flags from sys.argv (`--rp_serve_api`, `--rp_api_port`, `--test_input`, ...), so
this module takes none of its own. Exit codes: 2 bad configuration, 1 ComfyUI not usable (start.sh then stops
the container so Runpod replaces the worker).
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
        warm_up(worker, settings)

    import runpod

    runpod.serverless.start({"handler": worker.handle})
    return 0


def warm_up(worker: Worker, settings: Settings) -> bool:
    """Run the default workflow before the first job, so the models load and torch.compile builds its graphs.

    Once per WARMUP_SIZES entry (the fast path compiles with dynamic shapes, so one size warms up every size;
    more entries are for workflows of your own whose compiled graphs are per shape), then once more at the first
    size with another prompt. Why the second run: the first generation after start finds every model unloaded,
    every later one finds what the previous one left. On a card that has to swap models (16 GB), that second
    state differs (ComfyUI's partial loading marks modules for on-the-fly casting), and the compiled blocks
    recompiled for it on the first *request* after ready (BENCHMARKS.md, 16 GiB cap: 17.2 s against 9.1 s warm). Paying it
    here costs one short generation where memory is plenty. Returns whether every run succeeded.
    """
    runs = [(w, h, "warmup") for w, h in settings.warmup_sizes]
    if runs:
        runs.append((*settings.warmup_sizes[0], "warmup, second run"))
    for index, (width, height, prompt) in enumerate(runs):
        log.info("warming up: %d step(s) of %s at %dx%d", settings.warmup_steps, settings.default_workflow, width, height)
        result = worker.handle({"id": f"warmup-{index}-{width}x{height}", "input": {
            "prompt": prompt, "num_inference_steps": settings.warmup_steps, "seed": index, "width": width,
            "height": height}})
        if "error" in result:
            log.warning("warm-up failed (the worker still starts): %s", result["error"])
            return False
        log.info("warm-up done in %.1f s", result["timings"]["total_s"])
    return True


if __name__ == "__main__":
    sys.exit(main())
