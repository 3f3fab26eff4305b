"""The start-up preload (comfy_nodes/flux_fast/preload.py) in the worker start.sh runs, on a real ComfyUI.

What a caller notices: the first job of a fresh worker runs on models that were loaded while ComfyUI started, and
its image is exactly the image a worker without the preload returns; a caller whose first job uses other loaders
gets its image too, and the preloaded copies are let go instead of sitting beside the caller's; a broken preload
setting costs nothing but the preload. Time is not asserted (BENCHMARKS.md measures it on the GPU).
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

from PIL import Image

from bench import graphs
from tools.soak import http_json

from conftest import Worker  # tests/integration/conftest.py (rootdir-relative import)

REPO = Path(__file__).resolve().parents[2]

PRELOAD = {"FLUX_FAST_PRELOAD": str(REPO / "workflows" / "flux1-dev-t2i.api.json")}     # off by default
JOB = {"prompt": "a red bicycle leaning on a wall", "width": 256, "height": 256, "num_inference_steps": 2,
       "seed": 7}
LOADERS = ("FluxFastDualCLIPLoader", "FluxFastUNETLoader", "FluxFastVAELoader")


def _preload(server) -> dict:
    code, body = http_json("GET", f"{server.comfyui_url}/flux_fast/status", timeout=10)
    assert code == 200, body
    return body["preload"]


def _fresh(server_pool, kind: str, env: dict[str, str]) -> Worker:
    return Worker(server_pool.fresh_worker(kind, env))


def _image(reply: dict) -> bytes:
    """The pixels of the job's image (its PNG's text chunks name the job, so the files differ from job to job)."""
    result = reply.get("output") or {}
    assert result.get("status") == "success", reply
    with Image.open(io.BytesIO(base64.b64decode(result["image"]["image_base64"]))) as img:
        return img.convert("RGB").tobytes()


def test_the_first_job_takes_the_preloaded_models_and_its_image_is_unchanged(server_pool):
    worker = _fresh(server_pool, "preload", PRELOAD)
    preloaded = _image(worker.runsync(JOB))
    state = _preload(worker)
    assert state["state"] == "ready", state
    assert state["unclaimed"] == 0, state                      # every preloaded model went to the first job
    done = {item["class_type"]: item["state"] for item in state["items"]}
    assert done == {**{c: "done" for c in LOADERS}, "FluxFastPatch": "done"}, state
    log = worker.log_text()
    for cls in LOADERS:
        assert f"{cls} takes its preloaded model" in log
    assert "waited" in log and "to queue" in log              # the handler queued only after the preload settled
    second = _image(worker.runsync({**JOB, "seed": 8}))        # the next job runs on ComfyUI's cache as usual
    assert second != preloaded

    plain = _fresh(server_pool, "no-preload", {})
    assert _preload(plain)["state"] == "off"
    assert _image(plain.runsync(JOB)) == preloaded             # the same pixels with or without the preload
    assert "takes its preloaded model" not in plain.log_text()


def test_a_first_job_with_other_loaders_releases_the_preload_and_both_kinds_of_job_run(server_pool):
    worker = _fresh(server_pool, "preload-released", PRELOAD)
    shipped = json.loads((REPO / "workflows" / "flux1-dev-t2i.api.json").read_text())
    plain = graphs.without_fast_path(shipped)                  # ComfyUI's own loaders, same files
    assert not any(node["class_type"] in LOADERS for node in plain.values())
    for node in plain.values():                                # small, as JOB: this runs on the CPU
        if node["class_type"] in ("EmptySD3LatentImage", "ModelSamplingFlux"):
            node["inputs"].update(width=256, height=256)
        elif node["class_type"] == "KSampler":
            node["inputs"]["steps"] = 2
    _image(worker.runsync({"workflow": plain}))
    state = _preload(worker)
    assert state["state"] == "released" and state["unclaimed"] == 0, state
    assert "preloaded model(s) released" in worker.log_text()
    _image(worker.runsync(JOB))                                # the shipped workflow loads for itself now


def test_a_preload_workflow_that_cannot_be_read_costs_only_the_preload(server_pool, tmp_path):
    broken = tmp_path / "broken.api.json"          # exists (the handler's start-up check passes), is not JSON
    broken.write_text('{"1": {"class_type": "FluxFastUNETLoader", ')
    worker = _fresh(server_pool, "preload-broken", {"FLUX_FAST_PRELOAD": str(broken)})
    state = _preload(worker)
    assert state["state"] == "failed" and str(broken) in state["reason"], state
    _image(worker.runsync(JOB))
    assert "takes its preloaded model" not in worker.log_text()
