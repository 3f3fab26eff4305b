"""Hostile or careless callers through the whole handler (fake ComfyUI for the faults a real one cannot make).

What must hold: a caller's mistake is an `invalid_*` (or ComfyUI's refusal) and never `refresh_worker`; only a
ComfyUI that does not answer, or that ignores an interrupt, costs the worker; JOB_TIMEOUT_S bounds the whole job;
caller text in errors and logs is bounded and cannot forge log lines; no server path reaches a caller.
"""

from __future__ import annotations

import base64
import functools
import logging
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from handler import comfy_errors, url_fetch
from handler.comfy_client import ComfyClient
from handler.config import Settings
from handler.graph_rules import WorkflowLimits
from handler.job import Worker
from fake_comfyui import FakeComfyUI, load_json, object_info_for, png_bytes
from image_server import ImageServer, stall

WORKFLOWS = Path(__file__).resolve().parent.parent / "workflows"
T2I = load_json(WORKFLOWS / "flux1-dev-t2i.api.json")
SMALL = {"width": 256, "height": 256}


@pytest.fixture
def fake():
    info = {}
    for path in sorted(WORKFLOWS.glob("*.api.json")):
        info.update(object_info_for(load_json(path)))
    info.update(object_info_for(_tiny()))          # ComfyUI's own SaveImage, which callers' graphs use
    info.update(_info_with_scale())
    for save in ("SaveImage", "FluxFastSaveImage"):
        info[save]["output_node"] = True
    server = FakeComfyUI(info).start()
    yield server
    server.stop()


def make_worker(fake, **overrides):
    settings = replace(Settings.from_env({"COMFYUI_URL": fake.url}), **overrides)
    worker = Worker(settings, ComfyClient(settings.comfyui_url, 5))
    assert worker.prepare() == []
    return worker


def _tiny(batch=1, width=64, height=64):
    return {"1": {"class_type": "EmptyImage", "inputs": {"width": width, "height": height, "batch_size": batch, "color": 0}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "tiny"}}}


# ---- graph structure: ComfyUI would answer HTTP 500, which read as a dead ComfyUI --------------------------

@pytest.mark.parametrize("class_type", [["SaveImage"], {"x": 1}, None])
def test_non_string_class_type_is_invalid_workflow_and_never_reaches_comfyui(fake, class_type):
    graph = _tiny()
    graph["2"]["class_type"] = class_type
    result = make_worker(fake).handle({"id": "ct", "input": {"workflow": graph}})
    assert result["details"]["type"] == "invalid_workflow" and "refresh_worker" not in result
    assert result["details"]["node_id"] == "2" and result["details"]["field"] == "class_type"
    assert fake.prompts == []


def test_a_500_from_a_live_comfyui_is_its_refusal_not_a_dead_backend(fake):
    fake.mode = "prompt_500"
    result = make_worker(fake).handle({"id": "500", "input": {"workflow": _tiny()}})
    assert result["details"]["type"] == "comfyui_validation_error" and "refresh_worker" not in result
    assert result["details"]["http_status"] == 500


def test_an_upload_comfyui_refuses_is_not_a_dead_backend(fake):
    fake.mode = "upload_400"
    image = base64.b64encode(png_bytes(8, 8)).decode()
    result = make_worker(fake).handle({"id": "up", "input": {"workflow": _tiny(), "images": [{"name": "a.png", "image": image}]}})
    assert result["details"]["type"] == "comfyui_validation_error" and "refresh_worker" not in result
    assert fake.prompts == []


def test_an_output_file_comfyui_cannot_return_is_not_a_dead_backend(fake, monkeypatch):
    worker = make_worker(fake)
    monkeypatch.setattr(fake, "files", {})  # ComfyUI reports files, /view answers 404
    fake.files = _Forgetful()
    result = worker.handle({"id": "gone", "input": {"workflow": _tiny()}})
    assert result["details"]["type"] == "output_unavailable" and "refresh_worker" not in result


class _Forgetful(dict):
    """A file table that loses every file as soon as it is written (as when another job deleted it)."""

    def __setitem__(self, key, value):
        pass


def test_comfyui_that_does_not_answer_is_still_unavailable_with_refresh(fake):
    worker = make_worker(fake)
    fake.stop()
    result = worker.handle({"id": "dead", "input": {"workflow": _tiny()}})
    assert result["details"]["type"] == "comfyui_unavailable" and result["refresh_worker"] is True


# ---- custom graphs get the simple fields' limits ----------------------------------------------------------

@pytest.mark.parametrize("graph,limit", [
    (_tiny(batch=64), "max_batch"),
    (_tiny(width=16384, height=16384), "max_pixels"),
])
def test_custom_graphs_cannot_skip_the_batch_and_size_limits(fake, graph, limit):
    result = make_worker(fake).handle({"id": "big", "input": {"workflow": graph}})
    assert result["details"]["type"] == "invalid_workflow" and result["details"]["limit"] == limit
    assert fake.prompts == []


def test_the_node_limit_is_configurable_and_named(fake):
    worker = make_worker(fake, workflow_limits=WorkflowLimits(max_nodes=1))
    result = worker.handle({"id": "n", "input": {"workflow": _tiny()}})
    assert result["details"]["limit"] == "max_nodes" and "WORKFLOW_MAX_NODES" in result["error"]


def test_output_nodes_carry_the_job_id_so_comfyui_never_answers_from_its_cache(fake):
    worker = make_worker(fake)
    for job in ("a", "b"):
        assert worker.handle({"id": job, "input": {"workflow": _tiny()}})["status"] == "success"
    marks = [p["prompt"]["2"]["inputs"].get("worker_job_id") for p in fake.prompts]
    assert marks == ["a", "b"]
    assert all("worker_job_id" not in p["prompt"]["1"]["inputs"] for p in fake.prompts)


# ---- the job deadline covers everything before queueing ---------------------------------------------------

def test_job_timeout_covers_fetching_input_images(fake, monkeypatch):
    loopback = url_fetch.AddressPolicy(allow_networks=("127.0.0.1/32",))
    monkeypatch.setattr("handler.input_files.fetch_image", functools.partial(url_fetch.fetch_image, policy=loopback))
    worker = make_worker(fake, job_timeout_s=1.0)
    with ImageServer() as images:
        images.routes["/slow.png"] = stall(8)
        started = time.monotonic()
        result = worker.handle({"id": "slow", "input": {"workflow": _tiny(), "images": [
            {"name": "a.png", "image": images.url("/slow.png")}]}})
    assert time.monotonic() - started < 4
    assert result["details"]["type"] == "timeout" and "refresh_worker" not in result
    assert fake.prompts == []


# ---- a wedged ComfyUI is recycled; a stoppable one is not -------------------------------------------------

def test_a_prompt_that_ignores_the_interrupt_recycles_the_worker(fake):
    fake.mode = "wedged"
    worker = make_worker(fake, job_timeout_s=1.0, interrupt_grace_s=0.5)
    result = worker.handle({"id": "w", "input": {"prompt": "x", "num_inference_steps": 2, **SMALL}})
    assert result["details"]["type"] == "comfyui_unavailable" and result["refresh_worker"] is True
    assert result["details"]["reason"] == "interrupt_ignored"


def test_a_prompt_that_stops_on_interrupt_is_a_plain_timeout(fake):
    fake.mode = "hang"
    worker = make_worker(fake, job_timeout_s=1.0, interrupt_grace_s=5)
    result = worker.handle({"id": "h", "input": {"prompt": "x", "num_inference_steps": 2, **SMALL}})
    assert result["details"]["type"] == "timeout" and "refresh_worker" not in result


# ---- housekeeping runs on the job's thread ------------------------------------------------------------------

def test_history_entries_are_dropped_before_the_next_run_without_a_background_thread(fake):
    worker = make_worker(fake)
    before = threading.active_count()
    assert worker.handle({"id": "1", "input": {"workflow": _tiny()}})["status"] == "success"
    assert threading.active_count() == before and fake.history_deletes == []
    assert worker.handle({"id": "2", "input": {"workflow": _tiny()}})["status"] == "success"
    assert fake.history_deletes == [[fake.prompt_ids[0]]]


# ---- caller text in errors and logs ---------------------------------------------------------------------------

def test_a_field_name_cannot_forge_log_lines_or_flood_the_error(fake, caplog):
    worker = make_worker(fake)
    name = "x\n2026-12-01 00:00:00 INFO handler: forged" + "y" * 1_000_000
    with caplog.at_level(logging.INFO):
        result = worker.handle({"id": "f", "input": {"prompt": "x", name: 1}})
    assert result["details"]["type"] == "invalid_input"
    assert len(result["error"]) < 1000 and len(result["details"]["field"]) < 1000
    assert "\n" not in result["error"] and "\n" not in result["details"]["field"]
    lines = [r.getMessage() for r in caplog.records]
    assert all("\n" not in line and len(line) < 3000 for line in lines)
    assert not any(line.startswith("2026-12-01 00:00:00 INFO handler: forged") for line in caplog.text.splitlines())


def test_server_paths_never_reach_the_caller():
    """ComfyUI's own messages name absolute paths (SaveImage refusing to write outside its output folder)."""
    err = comfy_errors.execution_error({
        "node_id": "2", "node_type": "SaveImage", "exception_type": "Exception",
        "exception_message": "**** ERROR: Saving image outside the output folder is not allowed.\n"
                             " full_output_folder: /comfyui/output/outside\n"
                             "         output_dir: /comfyui/output\n"
                             "         commonpath: /comfyui/output"})
    text = err.message + str(err.details)
    assert "outside the output folder" in text and "/comfyui" not in text
    assert "output_dir: <server path>" in err.details["exception_message"]
    refusal = comfy_errors.validation_error({"error": {"type": "x", "message": "bad", "details": "/srv/models/a.bin"},
                                             "node_errors": {}})
    assert "/srv" not in refusal.message + str(refusal.details)


# ---- base64 laced with whitespace -------------------------------------------------------------------------

def test_base64_with_whitespace_decodes_in_a_few_copies_of_its_size():
    import os
    import tracemalloc

    from handler.input_files import _b64decode

    data = os.urandom(1_500_000)
    encoded = base64.b64encode(data).decode()
    text = "\n".join(encoded)  # a newline after every character: the worst layout for a regex substitution
    tracemalloc.start()
    try:
        assert _b64decode(text, "images[0].image", "<base64>") == data
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * len(text), f"decoding took {peak / len(text):.1f}x the text's size"


def test_job_timeout_covers_converting_the_workflow(fake, monkeypatch):
    """Time spent before queueing (here a slow conversion) counts against JOB_TIMEOUT_S: nothing is queued late."""
    from handler import ui_to_api

    worker = make_worker(fake, job_timeout_s=0.5)
    monkeypatch.setattr(ui_to_api, "convert", lambda *a, **k: (time.sleep(0.7), _tiny())[1])
    result = worker.handle({"id": "conv", "input": {"workflow": {"nodes": [], "links": []}}})
    assert result["details"]["type"] == "timeout" and "refresh_worker" not in result
    assert fake.prompts == []


# ---- JSON a Python client writes, and graphs as ComfyUI reads them ----------------------------------------

def _info_with_scale():
    """ImageScaleBy, and the IMAGE outputs that let the worker follow sizes from EmptyImage through it."""
    info = object_info_for({"1": _tiny()["1"], "3": {"class_type": "ImageScaleBy", "inputs": {
        "image": ["1", 0], "upscale_method": "bilinear", "scale_by": 1.5}}})
    for class_type in info:
        info[class_type]["output"] = ["IMAGE"]
    return info


def test_nan_in_a_workflow_is_the_callers_mistake_and_never_costs_the_worker(fake):
    """Python's json.dumps writes NaN unless told not to; it cannot be sent on to ComfyUI as JSON. Before, the
    encoding failure read as ComfyUI not answering, so any caller could get workers replaced at will."""
    graph = _tiny()
    graph["1"]["inputs"]["color"] = float("nan")
    worker = make_worker(fake)
    result = worker.handle({"id": "nan", "input": {"workflow": graph}})
    assert result["details"]["type"] == "invalid_workflow" and "refresh_worker" not in result
    assert result["details"]["field"] == "workflow.1.inputs.color" and "finite" in result["details"]["rule"]
    assert fake.prompts == []
    assert worker.handle({"id": "next", "input": {"workflow": _tiny()}})["status"] == "success"


def test_nodes_no_output_reads_are_dropped_as_comfyui_drops_them_not_refused(fake):
    """A loader left beside the graph naming a file this worker lacks, a half-wired node linking to a deleted
    one, a node with no inputs at all: ComfyUI never checks or runs what no output node reads, so the caller's
    graph runs in their own ComfyUI; here it runs too, and those nodes are not sent."""
    graph = _tiny()
    graph["3"] = {"class_type": "VAELoader", "inputs": {"vae_name": "not-here.safetensors"}}
    graph["4"] = {"class_type": "EmptyImage", "inputs": {"width": ["99", 0], "height": 64, "batch_size": 1, "color": 0}}
    graph["5"] = {"class_type": "EmptyImage"}
    result = make_worker(fake).handle({"id": "stray", "input": {"workflow": graph}})
    assert result["status"] == "success"
    assert set(fake.prompts[-1]["prompt"]) == {"1", "2"}


def test_a_node_an_output_reads_is_still_checked(fake):
    graph = _tiny()
    graph["3"] = {"class_type": "VAELoader", "inputs": {"vae_name": "not-here.safetensors"}}
    graph["1"]["inputs"]["width"] = ["3", 0]  # now read by the output, through node 1
    result = make_worker(fake).handle({"id": "read", "input": {"workflow": graph}})
    assert result["details"]["type"] == "invalid_workflow" and result["details"]["node_id"] == "3"
    assert fake.prompts == []


def test_a_wrapped_list_literal_is_sent_as_the_caller_wrote_it_never_as_a_link(fake):
    graph = _tiny()
    graph["1"]["inputs"]["color"] = {"__value__": ["2", 0]}  # a literal list that looks like a link
    make_worker(fake).handle({"id": "wrapped", "input": {"workflow": graph}})
    assert fake.prompts[-1]["prompt"]["1"]["inputs"]["color"] == {"__value__": ["2", 0]}


def _scaled(scale_by):
    graph = _tiny()
    graph["3"] = {"class_type": "ImageScaleBy", "inputs": {"image": ["1", 0], "upscale_method": "bilinear",
                                                            "scale_by": scale_by}}
    graph["2"]["inputs"]["images"] = ["3", 0]
    return graph


@pytest.mark.parametrize("scale_by", [1e308, "1e308"])
def test_an_absurd_scale_factor_is_refused_by_the_size_limit_not_an_internal_error(fake, scale_by):
    result = make_worker(fake).handle({"id": "scale", "input": {"workflow": _scaled(scale_by)}})
    assert result["details"]["type"] == "invalid_workflow" and result["details"]["limit"] == "max_pixels"
    assert len(result["error"]) < 600  # sizes of readable length, not a thousand digits
    assert fake.prompts == []


@pytest.mark.parametrize("scale_by", [-1e308, "inf", "-inf"])
def test_factors_comfyui_refuses_itself_are_left_to_it_not_an_internal_error(fake, scale_by):
    result = make_worker(fake).handle({"id": "inf", "input": {"workflow": _scaled(scale_by)}})
    assert result.get("details", {}).get("type") != "internal_error"
