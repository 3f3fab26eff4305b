"""ComfyUI, started with the worker's flags, sees the stand-ins under the production names and our nodes.

Cheap (no generation): these catch a broken models layout or extra-paths file before the slow tests run.
"""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _options(comfyui, node: str, input_name: str) -> list:
    status, info = comfyui.get(f"/object_info/{node}")
    assert status == 200, info
    spec = info[node]["input"]["required"][input_name]
    # classic combo: [[options...], {...}]; v3 combo: ["COMBO", {"options": [...]}]
    return spec[0] if isinstance(spec[0], list) else spec[1]["options"]


def test_loaders_list_the_standins_under_the_production_file_names(comfyui):
    assert "flux1-dev-fp8-e4m3fn.safetensors" in _options(comfyui, "UNETLoader", "unet_name")
    clips = _options(comfyui, "DualCLIPLoader", "clip_name1")
    assert "t5xxl_fp8_e4m3fn.safetensors" in clips and "clip_l.safetensors" in clips
    assert "ae.safetensors" in _options(comfyui, "VAELoader", "vae_name")


def test_every_node_type_of_the_shipped_workflow_is_available(comfyui):
    graph = json.loads((REPO / "workflows" / "flux1-dev-t2i.api.json").read_text())
    status, info = comfyui.get("/object_info")
    assert status == 200
    missing = sorted({node["class_type"] for node in graph.values()} - set(info))
    assert not missing, f"ComfyUI lacks node types the shipped workflow uses: {missing}"
