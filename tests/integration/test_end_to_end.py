"""The worker end to end, as a caller sees it: the local Runpod API of `start.sh`, a real ComfyUI, stand-in weights.

Generations are expensive on CPU (30-100 s each at 256x256, 2 steps), so only two run: one checks the whole
success contract, the other num_images/output_format. Error cases use input that fails before sampling or a
tiny custom graph (EmptyImage -> SaveImage) that needs no model.

Through the local API (`/runsync`) a failed job comes back as {"status": "FAILED", "error": <sentence>}; the
runpod SDK keeps only the sentence there, so these tests check the sentence.
"""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
SMALL = {"width": 256, "height": 256, "num_inference_steps": 2}
MODEL_ID = "black-forest-labs/FLUX.1-dev"


def _decode(image: dict) -> Image.Image:
    img = Image.open(io.BytesIO(base64.b64decode(image["image_base64"], validate=True)))
    img.load()
    return img


def _resolved(out: dict) -> list[dict]:
    """`images` as a client of the list reads it (README): an entry with `same_as` is the field it names."""
    return [out[i["same_as"]] if "same_as" in i else i for i in out["images"]]


def _output(response: dict) -> dict:
    assert response.get("status") == "COMPLETED", response
    return response["output"]


def _error(response: dict) -> str:
    assert response.get("status") == "FAILED", response
    assert isinstance(response.get("error"), str) and response["error"], response
    return response["error"]


def _tiny_graph(filename_prefix: str) -> dict:
    """A graph that needs no model: a 64x64 black image, saved."""
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": filename_prefix}},
    }


def test_production_workflow_returns_the_contract(worker):
    prompt = "a lighthouse at dusk, cinematic, vertical"
    out = _output(worker.runsync({"prompt": prompt, "seed": 123456789, **SMALL}))

    assert out["status"] == "success"
    assert out["model"] == MODEL_ID
    assert out["prompt"] == prompt
    assert out["seed"] == 123456789
    assert isinstance(out["images"], list) and len(out["images"]) == 1
    # Each image's bytes once: `image` (the original diffusers contract) carries them, `images[0]` refers to it.
    assert out["images"][0] == {"same_as": "image", "width": 256, "height": 256, "format": "png"}
    assert json.dumps(out).count('"image_base64"') == 1
    image = out["image"]
    assert (image["width"], image["height"], image["format"]) == (256, 256, "png")
    img = _decode(image)  # what a client of the original handler reads: image.image_base64
    assert img.format == "PNG" and img.size == (256, 256)
    assert base64.b64decode(image["image_base64"]).startswith(b"\x89PNG\r\n\x1a\n")
    # random weights give a meaningless picture, but a NaN anywhere would come out as a uniform black image
    assert img.convert("L").getextrema() != (0, 0)
    assert out["timings"]["total_s"] > 0


def test_comfyui_loaded_the_standins_as_flux_dev_without_key_warnings(worker):
    # runs after the generation above (same session worker); the worker log carries ComfyUI's own log
    log = worker.log_text()
    if "model_type" not in log:
        pytest.skip("no generation has run in this worker yet (run the whole module)")
    assert "model_type FLUX" in log
    for warning in ("unet missing", "unet unexpected", "clip missing", "Missing VAE keys"):
        assert warning not in log, f"ComfyUI logged '{warning}' for the stand-in weights"


def test_bad_input_names_the_field_and_the_worker_serves_the_next_job(worker):
    message = _error(worker.runsync({"prompt": "a red fox", "width": 250, "height": 256}))
    assert "width" in message and "250" in message and "16" in message

    # the next job: two images in one batch, JPEG, random seed (returned)
    out = _output(worker.runsync({"prompt": "a red fox in snow", "num_images": 2, "output_format": "jpeg", **SMALL}))
    assert isinstance(out["seed"], int)
    assert len(out["images"]) == 2
    assert json.dumps(out).count('"image_base64"') == 2  # each image's bytes once
    for image in _resolved(out):
        assert image["format"] == "jpeg"
        img = _decode(image)
        assert img.format == "JPEG" and img.size == (256, 256)


def test_missing_model_file_is_a_validation_error_naming_node_input_and_file(worker):
    graph = json.loads((REPO / "workflows" / "flux1-dev-t2i.api.json").read_text())
    loader = next(nid for nid, node in graph.items() if node["class_type"] == "FluxFastUNETLoader")
    graph[loader]["inputs"]["unet_name"] = "does-not-exist.safetensors"

    message = _error(worker.runsync({"workflow": graph}))
    assert "UNETLoader" in message
    assert "unet_name" in message
    assert "does-not-exist.safetensors" in message
    # and the caller learns what is there instead
    assert "flux1-dev-fp8-e4m3fn.safetensors" in message


def test_node_failing_at_run_time_is_an_execution_error_and_the_worker_serves_the_next_job(worker):
    # h264 needs even sides: SaveVideo fails at run time on a 63x63 image
    graph = _tiny_graph("tiny")
    graph["1"]["inputs"].update(width=63, height=63)
    graph["3"] = {"class_type": "CreateVideo", "inputs": {"images": ["1", 0], "fps": 6.0}}
    graph["4"] = {"class_type": "SaveVideo", "inputs": {"video": ["3", 0], "filename_prefix": "tiny", "format": "mp4",
                                                        "codec": "h264"}}
    message = _error(worker.runsync({"workflow": graph}))
    assert "SaveVideo" in message
    assert re.search(r"\bnode 4\b", message), message
    assert "Traceback" not in message
    # A prefix leaving the output folder is refused before ComfyUI sees the graph (the workflow policy).
    message = _error(worker.runsync({"workflow": _tiny_graph("../outside/escape")}))
    assert "node 2 (SaveImage) input 'filename_prefix'" in message and "'..'" in message

    out = _output(worker.runsync({"workflow": _tiny_graph("tiny")}))
    assert len(out["images"]) == 1
    assert _decode(out[out["images"][0]["same_as"]]).size == (64, 64)
    uniform = _output(worker.runsync({"workflow": _tiny_graph("tiny"), "legacy_image": False}))
    assert "image" not in uniform and _decode(uniform["images"][0]).size == (64, 64)


def test_a_batch_sends_each_images_bytes_once(worker):
    graph = _tiny_graph("batch")
    graph["1"]["inputs"].update(batch_size=2, color=0x336699)
    out = _output(worker.runsync({"workflow": graph}))
    assert len(out["images"]) == 2 and [o["images_index"] for o in out["outputs"]] == [0, 1]
    assert out["images"][0] == {"same_as": "image", "width": 64, "height": 64, "format": "png"}
    first, second = _decode(out["image"]), _decode(out["images"][1])
    assert first.size == second.size == (64, 64)
    assert all(abs(a - b) <= 1 for a, b in zip(first.convert("RGB").getpixel((0, 0)), (0x33, 0x66, 0x99)))
    assert json.dumps(out).count('"image_base64"') == 2  # two images, two copies of bytes


def test_info_reports_what_the_fast_path_did(worker):
    """After a generation, `action: info` says whether the fast path applied and, where it compiles, its state.
    On the CPU it passes the model through (nothing to gain there), and says so rather than pretending."""
    _output(worker.runsync({"prompt": "info after a run", "seed": 7, **SMALL}))
    info = _output(worker.runsync({"action": "info"}))
    fast = info["fast_path"]
    assert fast["patch"]["state"] == "passed through", fast
    assert fast["load"]["built"] == "host" and fast["load"]["reason"] == "no GPU", fast   # on_card.py, on a CPU
    assert fast["compile"] == []
