"""Hostile or careless requests against a real ComfyUI: the caller's mistakes stay the caller's, the worker stays.

The handler runs in this process (handler.job.Worker) against the `comfyui` fixture's server, with ComfyUI's
output folder local as in production (consumed outputs are deleted), so each test sees the handler's raw answer
(`details.type`, `refresh_worker`), which the local Runpod API does not pass through. The graphs need no model
(EmptyImage -> SaveImage), so they run in seconds on CPU.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from handler.comfy_client import ComfyClient
from handler.config import Settings
from handler.job import Worker

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def worker(comfyui, integration_setup):
    settings = Settings.from_env({"COMFYUI_URL": comfyui.base_url,
                                  "COMFYUI_OUTPUT_DIR": str(integration_setup.output_dir)})
    return Worker(settings, ComfyClient(comfyui.base_url))


def tiny(prefix: str, size: int = 64) -> dict:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": size, "height": size, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}},
    }


def test_the_same_custom_workflow_twice_gets_an_image_both_times(worker, integration_setup):
    """ComfyUI answers an identical graph from its cache with the first job's file name, which the first job
    consumed and deleted: the second job got a /view 404, reported as a dead ComfyUI (refresh_worker)."""
    graph = tiny(f"it-repeat/{uuid.uuid4().hex[:8]}")
    first = worker.handle({"id": "repeat-1", "input": {"workflow": graph}})
    second = worker.handle({"id": "repeat-2", "input": {"workflow": graph}})
    assert first["status"] == "success", first
    assert second["status"] == "success", second
    assert len(second["images"]) == 1 and second["images"][0]["width"] == 64
    leftovers = list((integration_setup.output_dir / "it-repeat").glob("*.png"))
    assert leftovers == []  # each job consumed (deleted) its own file


def test_a_non_string_class_type_is_the_callers_error_and_comfyui_stays_up(worker, comfyui):
    graph = tiny(f"it-ct/{uuid.uuid4().hex[:8]}")
    graph["2"]["class_type"] = ["SaveImage"]
    # What ComfyUI itself does with it: an unhandled exception, HTTP 500 (the old handler read that as a dead
    # ComfyUI and asked for the worker to be replaced).
    status, _ = comfyui.post("/prompt", {"prompt": graph, "client_id": "it"})
    assert status == 500

    result = worker.handle({"id": "ct", "input": {"workflow": graph}})
    assert result["details"]["type"] == "invalid_workflow" and "refresh_worker" not in result, result
    assert result["details"]["field"] == "class_type" and result["details"]["node_id"] == "2"
    assert worker.handle({"id": "after", "input": {"workflow": tiny(f"it-ct/{uuid.uuid4().hex[:8]}")}})["status"] == "success"


def test_a_refused_save_path_does_not_show_server_paths(worker, integration_setup):
    result = worker.handle({"id": "escape", "input": {"workflow": tiny("../outside/escape")}})
    # Refused by the workflow policy before ComfyUI sees it (ComfyUI itself would raise at run time).
    assert result["details"]["type"] == "invalid_workflow" and "refresh_worker" not in result, result
    assert result["details"]["input"] == "filename_prefix"
    text = json.dumps(result)
    assert str(integration_setup.output_dir) not in text and str(integration_setup.work_dir) not in text


def test_a_malformed_gui_workflow_is_invalid_workflow_naming_node_and_field(worker):
    ui = json.loads((REPO / "workflows" / "flux1-dev-t2i.ui.json").read_text())
    node = ui["nodes"][0]
    node["mode"] = "x"
    result = worker.handle({"id": "ui-mode", "input": {"workflow": ui}})
    assert result["details"] == {"type": "invalid_workflow", "node_id": str(node["id"]), "field": "mode"}, result


def test_custom_graphs_keep_to_the_batch_limit(worker, comfyui):
    graph = tiny(f"it-batch/{uuid.uuid4().hex[:8]}")
    graph["1"]["inputs"]["batch_size"] = 64
    result = worker.handle({"id": "batch", "input": {"workflow": graph}})
    assert result["details"]["type"] == "invalid_workflow" and result["details"]["limit"] == "max_batch"
    status, queue = comfyui.get("/queue")
    assert status == 200 and queue["queue_running"] == [] and queue["queue_pending"] == []


def test_nodes_no_output_reads_run_here_as_in_the_callers_comfyui(worker):
    """A loader left beside the graph naming a LoRA this worker lacks, and a half-wired node: ComfyUI v0.33.0
    runs such a graph (its validation starts from the output nodes and never reaches them), and so does the
    worker, without sending them."""
    graph = tiny(f"it-stray/{uuid.uuid4().hex[:8]}")
    graph["3"] = {"class_type": "LoraLoaderModelOnly", "inputs": {"model": ["9", 0], "lora_name": "not-here.safetensors",
                                                                  "strength_model": 1.0}}
    graph["4"] = {"class_type": "EmptyImage", "inputs": {"width": ["99", 0], "height": 64, "batch_size": 1, "color": 0}}
    result = worker.handle({"id": "stray", "input": {"workflow": graph}})
    assert result["status"] == "success", result


def test_nan_in_a_workflow_is_refused_and_comfyui_stays_up(worker):
    graph = tiny(f"it-nan/{uuid.uuid4().hex[:8]}")
    graph["1"]["inputs"]["color"] = float("nan")
    result = worker.handle({"id": "nan", "input": {"workflow": graph}})
    assert result["details"]["type"] == "invalid_workflow" and "refresh_worker" not in result, result
    assert worker.handle({"id": "after", "input": {"workflow": tiny(f"it-nan/{uuid.uuid4().hex[:8]}")}})["status"] == "success"


def _sigmas_graph(*middle: dict) -> dict:
    graph = {"1": {"class_type": "KarrasScheduler", "inputs": {"steps": 6, "sigma_max": 14.6, "sigma_min": 0.03,
                                                               "rho": 7.0}}}
    for index, node in enumerate(middle, start=2):
        graph[str(index)] = {**node, "inputs": {**node["inputs"], "sigmas": [str(index - 1), 0]}}
    graph["9"] = {"class_type": "PreviewAny", "inputs": {"source": [str(len(middle) + 1), 0]}}
    return graph


def test_custom_sampling_nodes_run_and_one_that_multiplies_the_sigmas_is_refused(worker):
    """Schedulers and sigma splits, as FLUX custom-sampling workflows use them, run on the real ComfyUI by default;
    ExtendIntermediateSigmas, which multiplies the sigmas' length, is refused unless the deployer allows it, and
    the next job is served."""
    split = _sigmas_graph({"class_type": "SplitSigmas", "inputs": {"step": 3}})
    result = worker.handle({"id": "sigmas", "input": {"workflow": split}})
    assert result["status"] == "success", result
    assert any(o["kind"] == "text" for o in result["outputs"]), result["outputs"]

    extend = _sigmas_graph({"class_type": "ExtendIntermediateSigmas", "inputs": {
        "steps": 100, "start_at_sigma": -1.0, "end_at_sigma": 12.0, "spacing": "linear"}})
    refused = worker.handle({"id": "extend", "input": {"workflow": extend}})
    assert refused["details"]["type"] == "invalid_workflow" and "WORKFLOW_EXTRA_NODES" in refused["error"], refused
    assert worker.handle({"id": "after", "input": {"workflow": split}})["status"] == "success"
