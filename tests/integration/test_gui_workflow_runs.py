"""A workflow edited in the ComfyUI GUI runs on the worker: the shipped UI-format file, changed the way a GUI user
changes it (a Reroute, a PrimitiveNode driving the seed, a bypassed node, a muted preview), is submitted as
`input.workflow` with the simple fields and generates for real on the stand-in weights.

The PNG ComfyUI saved carries the API graph it ran (`prompt` text chunk) and the caller's UI graph (`workflow`
chunk), so the test reads back exactly what was executed: the reroute resolved, the primitive's seed applied,
the bypassed and muted nodes gone, and the caller's fields written to the titled nodes.
"""

from __future__ import annotations

import base64
import copy
import io
import json
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[2]


def _edited_like_in_the_gui() -> dict:
    ui = copy.deepcopy(json.loads((REPO / "workflows" / "flux1-dev-t2i.ui.json").read_text()))
    nodes = {n["id"]: n for n in ui["nodes"]}
    links = {l[0]: l for l in ui["links"]}

    def node(node_id, type_, inputs, outputs, widgets=None, mode=0):
        entry = {"id": node_id, "type": type_, "pos": [0, 0], "size": [200, 80], "flags": {}, "order": node_id,
                 "mode": mode, "inputs": inputs, "outputs": outputs, "properties": {}}
        if widgets is not None:
            entry["widgets_values"] = widgets
        ui["nodes"].append(entry)
        nodes[node_id] = entry

    def link(link_id, origin, oslot, target, tslot, type_):
        entry = [link_id, origin, oslot, target, tslot, type_]
        ui["links"].append(entry)
        links[link_id] = entry

    vae_link = next(l for l in ui["links"] if l[1] == 3)          # VAELoader -> decode
    image_link = next(l for l in ui["links"] if l[1] == 10)       # decode -> save
    # 1. A Reroute between the VAE loader and the decoder.
    node(20, "Reroute", [{"name": "", "type": "*", "link": vae_link[0]}], [{"name": "", "type": "VAE", "links": [30]}])
    vae_link[3], vae_link[4] = 20, 0
    link(30, 20, 0, 10, 1, "VAE")
    next(i for i in nodes[10]["inputs"] if i["name"] == "vae")["link"] = 30
    nodes[3]["outputs"][0]["links"] = [vae_link[0]]
    # 2. A PrimitiveNode driving the sampler's seed widget.
    node(21, "PrimitiveNode", [], [{"name": "INT", "type": "INT", "links": [31], "widget": {"name": "seed"}}], [424242, "fixed"])
    nodes[9]["inputs"].append({"name": "seed", "type": "INT", "link": 31, "widget": {"name": "seed"}})
    link(31, 21, 0, 9, len(nodes[9]["inputs"]) - 1, "INT")
    # 3. A bypassed ImageInvert between decode and save (mode 4 passes the image through).
    node(22, "ImageInvert", [{"name": "image", "type": "IMAGE", "link": image_link[0]}],
         [{"name": "IMAGE", "type": "IMAGE", "links": [32]}], [], mode=4)
    image_link[3], image_link[4] = 22, 0
    link(32, 22, 0, 11, 0, "IMAGE")
    nodes[11]["inputs"][0]["link"] = 32
    # 4. A muted PreviewImage hanging off the decoder.
    node(23, "PreviewImage", [{"name": "images", "type": "IMAGE", "link": 33}], [], [], mode=2)
    link(33, 10, 0, 23, 0, "IMAGE")
    nodes[10]["outputs"][0]["links"] = [image_link[0], 33]
    ui["last_node_id"], ui["last_link_id"] = 23, 33
    return ui


def test_gui_edited_ui_workflow_runs_with_simple_fields(worker):
    ui = _edited_like_in_the_gui()
    response = worker.runsync({"workflow": ui, "prompt": "edited in the GUI", "width": 256, "height": 256,
                               "num_inference_steps": 2})
    assert response.get("status") == "COMPLETED", response
    output = response["output"]
    image = Image.open(io.BytesIO(base64.b64decode(output["image"]["image_base64"])))
    assert image.format == "PNG" and image.size == (256, 256)

    ran = json.loads(image.info["prompt"])
    by_class = {n["class_type"]: (nid, n["inputs"]) for nid, n in ran.items()}
    assert "Reroute" not in by_class and "PrimitiveNode" not in by_class
    assert "ImageInvert" not in by_class and "PreviewImage" not in by_class
    assert by_class["FluxFastDecode"][1]["vae"] == ["3", 0]                 # through the reroute
    assert by_class["FluxFastSaveImage"][1]["images"] == [by_class["FluxFastDecode"][0], 0]  # around the bypass
    assert by_class["KSampler"][1]["seed"] == 424242                        # from the primitive
    assert by_class["KSampler"][1]["steps"] == 2
    assert by_class["CLIPTextEncode"][1]["text"] == "edited in the GUI"
    assert by_class["EmptySD3LatentImage"][1]["width"] == 256
    # Dragged back into the GUI, the PNG reopens what ran: the fields are in the widgets (issue 11) ...
    reopened = json.loads(image.info["workflow"])
    widgets = {n.get("title"): n.get("widgets_values") for n in reopened["nodes"]}
    assert widgets["Prompt"] == ["edited in the GUI"] and widgets["Image size"] == [256, 256, 1]
    assert widgets["Sampler"][2] == 2
    # ... and converts to the graph ComfyUI ran, but for the worker's per-job rewrites.
    assert _as_run(reopened, worker) == _without_job_rewrites(ran)


def test_png_of_a_gui_workflow_with_simple_fields_reopens_the_prompt_seed_and_steps_that_ran(worker):
    """The shipped GUI file plus prompt, seed and steps: the PNG's workflow chunk carries those values."""
    ui = json.loads((REPO / "workflows" / "flux1-dev-t2i.ui.json").read_text())
    response = worker.runsync({"workflow": ui, "prompt": "round trip", "seed": 987654321, "width": 256,
                               "height": 256, "num_inference_steps": 2})
    assert response.get("status") == "COMPLETED", response
    image = Image.open(io.BytesIO(base64.b64decode(response["output"]["image"]["image_base64"])))
    reopened = json.loads(image.info["workflow"])
    sampler = next(n for n in reopened["nodes"] if n.get("title") == "Sampler")
    assert sampler["widgets_values"][:3] == [987654321, "randomize", 2]
    assert next(n for n in reopened["nodes"] if n.get("title") == "Prompt")["widgets_values"] == ["round trip"]
    assert reopened["id"] == ui["id"] and len(reopened["nodes"]) == len(ui["nodes"])
    assert _as_run(reopened, worker) == _without_job_rewrites(json.loads(image.info["prompt"]))


def _as_run(ui: dict, worker) -> dict:
    """What the GUI would queue for `ui`, by the worker's converter against the worker's own ComfyUI."""
    import urllib.request

    from handler.ui_to_api import convert

    with urllib.request.urlopen(f"{worker.comfyui_url}/object_info", timeout=60) as answer:
        object_info = json.loads(answer.read())
    return _without_job_rewrites(convert(ui, object_info))


def _without_job_rewrites(prompt: dict) -> dict:
    """Drop what the worker changes per job: save prefixes moved into the job's folder, the job mark."""
    from handler.graph_rules import JOB_MARK_INPUT

    return {nid: {**n, "inputs": {k: v for k, v in n["inputs"].items() if k not in ("filename_prefix", JOB_MARK_INPUT)}}
            for nid, n in prompt.items()}
