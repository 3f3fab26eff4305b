"""`{"input": {"action": "info"}}`: what this worker can run, so a power user can write a workflow that will.

Answers with the ComfyUI and PyTorch versions, the GPU(s), the model files ComfyUI sees per folder, the custom node
packages and their node classes, the node packs baked into the image (`node_packs`: each with its custom_nodes.txt
pin, its node classes and whether they are loaded), the shipped workflows with their named parameters, and the fast path's state
(whether the FLUX blocks run compiled yet, or why not: a worker whose compile failed serves uncompiled and says so here).

Like every other message a caller gets, the answer carries no server paths (the fast path's status names artifact
files and repeats compile errors: scrubbed to `<server path>`), and LoRAs downloaded by URL are not listed: each
is private to the URL that filled it (lora_cache.py).
"""

from __future__ import annotations

from typing import Any

from .comfy_client import ComfyClient
from .comfy_errors import scrub_paths
from .node_packs import PackRecord
from .workflow import Template

MODEL_FOLDERS = ("checkpoints", "diffusion_models", "text_encoders", "vae", "loras", "clip_vision", "controlnet", "upscale_models")


def describe(client: ComfyClient, templates: dict[str, Template], hidden_prefix: str = "",
             packs: PackRecord | None = None) -> dict[str, Any]:
    """`hidden_prefix`: the LoRA URL cache's prefix in the loras folder (LoraSettings.cache_prefix); `packs`: the
    custom node packs the build installed (custom_nodes.txt), listed with their pins and node classes."""
    stats = client.system_stats()
    system = stats.get("system", {})
    available_folders = set(client.model_folders())
    models = {folder: client.models(folder) for folder in MODEL_FOLDERS if folder in available_folders}
    if hidden_prefix and isinstance(models.get("loras"), list):
        models["loras"] = [n for n in models["loras"] if not (isinstance(n, str) and n.startswith(hidden_prefix))]
    custom_nodes: dict[str, list[str]] = {}
    object_info = client.object_info(refresh=True)
    for class_name, info in object_info.items():
        module = str(info.get("python_module", ""))
        if module.startswith("custom_nodes."):
            package = module.split(".")[1]
            custom_nodes.setdefault(package, []).append(class_name)
    return {
        "status": "success",
        "comfyui_version": system.get("comfyui_version"),
        "pytorch_version": system.get("pytorch_version"),
        "python_version": system.get("python_version"),
        "devices": [
            {"name": d.get("name"), "type": d.get("type"), "vram_total": d.get("vram_total"), "vram_free": d.get("vram_free")}
            for d in stats.get("devices", [])
        ],
        "models": models,
        "custom_nodes": {package: sorted(names) for package, names in sorted(custom_nodes.items())},
        "node_packs": (packs or PackRecord()).describe(object_info),
        "workflows": {
            name: {"parameters": sorted(t.parameters)} for name, t in sorted(templates.items())
        },
        "fast_path": scrub_paths(client.fast_path_status()),
    }
