"""The shipped image-to-image workflow, picked by name, on a real ComfyUI: an input image sent as base64 is
uploaded, scaled to the requested size, encoded and re-noised by `strength`; the simple fields still apply."""

from __future__ import annotations

import base64
import io
import json

from PIL import Image


def _gradient_png(width: int, height: int) -> str:
    image = Image.new("RGB", (width, height))
    image.putdata([(x * 255 // width, y * 255 // height, 128) for y in range(height) for x in range(width)])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_img2img_by_name_with_an_uploaded_image(worker):
    response = worker.runsync({
        "workflow_name": "flux1-dev-img2img", "prompt": "the same scene at night", "input_image": "scene.png",
        "images": [{"name": "scene.png", "image": _gradient_png(320, 240)}],
        "strength": 0.5, "width": 256, "height": 256, "num_inference_steps": 2, "seed": 7,
    })
    assert response.get("status") == "COMPLETED", response
    output = response["output"]
    image = Image.open(io.BytesIO(base64.b64decode(output["image"]["image_base64"])))
    assert image.size == (256, 256) and output["seed"] == 7
    ran = {n["class_type"]: n["inputs"] for n in json.loads(image.info["prompt"]).values()}
    # the caller's name, moved into the job's own input folder
    assert ran["LoadImage"]["image"].endswith("/scene.png") and ran["LoadImage"]["image"] != "scene.png"
    assert ran["KSampler"]["denoise"] == 0.5 and ran["KSampler"]["seed"] == 7
    assert (ran["ImageScale"]["width"], ran["ImageScale"]["height"]) == (256, 256)


def test_img2img_without_its_input_image_is_refused_before_anything_runs(worker):
    response = worker.runsync({"workflow_name": "flux1-dev-img2img", "prompt": "x"})
    assert response.get("status") == "FAILED" and "input_image" in response["error"]
