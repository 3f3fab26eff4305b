"""Loader nodes that take their model from the start-up preload (preload.py), else load as ComfyUI does.

Each is ComfyUI's own loader (preload.LOADERS names which) with the same inputs, outputs and file lists, read
from ComfyUI's class when asked, so the GUI shows the same widgets and a workflow moves between the two by
changing only `class_type`. The difference: the first prompt that runs one with the inputs the preload used gets
the preloaded model (loaded while ComfyUI was still starting, already on the card) instead of reading the file
again. Every other call, and every call in a ComfyUI without the preload (a GUI user's), runs ComfyUI's loader;
FluxFastUNETLoader runs it through on_card.py, which builds the model on the card where it would end up there anyway.
"""

from __future__ import annotations

from typing import Any

from . import on_card
from . import preload as _preload
from .preload import LOADERS


def _comfy_class(name: str) -> Any:
    import nodes

    return nodes.NODE_CLASS_MAPPINGS[name]


def _loader_node(ours: str, theirs: str) -> type:
    def INPUT_TYPES(cls):
        return _comfy_class(theirs).INPUT_TYPES()

    def load(self, **inputs):
        current = _preload.current
        if current is not None:
            out = current.take(ours, inputs)
            if out is not None:
                return out
        comfy = _comfy_class(theirs)

        def run() -> tuple:
            return getattr(comfy(), comfy.FUNCTION)(**inputs)

        return on_card.load(run, inputs) if theirs == "UNETLoader" else run()

    comfy = _comfy_class(theirs)
    return type(ours, (), {
        "__doc__": f"ComfyUI's {theirs}, taking the model the start-up preload loaded when there is one.",
        "INPUT_TYPES": classmethod(INPUT_TYPES),
        "RETURN_TYPES": comfy.RETURN_TYPES,
        "RETURN_NAMES": getattr(comfy, "RETURN_NAMES", None) or comfy.RETURN_TYPES,
        "FUNCTION": "load",
        "CATEGORY": getattr(comfy, "CATEGORY", "loaders"),
        "DESCRIPTION": (f"{theirs} that takes its model from the worker's start-up preload when one matches "
                        "(loaded while ComfyUI started); otherwise exactly ComfyUI's loader."),
        "load": load,
    })


def node_classes() -> dict[str, tuple[type, str]]:
    """{name: (class, display name)} for the ComfyUI loaders this ComfyUI has (a release without one lacks ours)."""
    import nodes

    return {ours: (_loader_node(ours, theirs), f"{nodes.NODE_DISPLAY_NAME_MAPPINGS.get(theirs, theirs)} (preloaded)")
            for ours, theirs in LOADERS.items() if theirs in nodes.NODE_CLASS_MAPPINGS}
