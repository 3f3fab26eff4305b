"""Workflows of our family and how request fields are written into them.

A shipped workflow is `workflows/<name>.api.json` (ComfyUI API format) plus `workflows/<name>.params.json`:
`{"parameters": {"<field>": [{"node": "<node title>", "input": "<input name>"}, ...]}}`. Fields are bound to
node *titles* (`_meta.title`, the title a GUI user sees), never to node ids, so a graph re-saved from the GUI keeps
working. `check_graph` compares a graph with ComfyUI's /object_info at start, so a missing custom node or model
file stops the worker with a message listing what the loader can see, instead of failing every job.
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import WorkflowError

log = logging.getLogger(__name__)

# Loader inputs whose values are model file names; used to list what a loader can see when one is missing.
_MODEL_INPUT_HINT = ("_name", "ckpt_name", "unet_name", "vae_name", "lora_name", "clip_name")


@dataclass(frozen=True)
class Binding:
    node_title: str
    input_name: str


@dataclass(frozen=True)
class Template:
    """A shipped workflow: its API graph and its named parameters."""

    name: str
    graph: dict[str, Any]
    parameters: dict[str, tuple[Binding, ...]]
    required: tuple[str, ...] = ()  # fields a caller must give (e.g. the input image of an img2img workflow)

    def bound_inputs(self) -> set[tuple[str, str]]:
        """(node id, input name) of every input a request fills; their stored values are placeholders."""
        return {(_resolve(self.graph, field, b), b.input_name) for field, bs in self.parameters.items() for b in bs}


def available(workflows_dir: Path) -> list[str]:
    return sorted(p.name[: -len(".api.json")] for p in workflows_dir.glob("*.api.json"))


def load_template(workflows_dir: Path, name: str) -> Template:
    """Load `<name>.api.json` and `<name>.params.json`; the name is checked against the folder listing."""
    names = available(workflows_dir)
    if name not in names:
        raise WorkflowError(
            f"Workflow '{name}' does not exist; shipped workflows: {', '.join(names) or 'none'}.",
            {"workflow_name": name, "available": names},
        )
    graph = _read_json(workflows_dir / f"{name}.api.json")
    params_path = workflows_dir / f"{name}.params.json"
    spec = _read_json(params_path) if params_path.exists() else {}
    parameters = {
        field: tuple(Binding(b["node"], b["input"]) for b in bindings) for field, bindings in spec.get("parameters", {}).items()
    }
    template = Template(name, graph, parameters, tuple(spec.get("required", ())))
    for field, bindings in parameters.items():
        for binding in bindings:
            _resolve(graph, field, binding)  # fail at load, not on the first job
    return template


def fill(graph: dict[str, Any], parameters: dict[str, tuple[Binding, ...]], values: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of `graph` with each value written to every input its field is bound to."""
    filled = copy.deepcopy(graph)
    for field, value in values.items():
        bindings = parameters.get(field)
        if not bindings:
            raise WorkflowError(
                f"Field '{field}' cannot be applied: the workflow has no parameter named '{field}'.",
                {"field": field, "parameters": sorted(parameters)},
            )
        for binding in bindings:
            node_id = _resolve(filled, field, binding)
            filled[node_id]["inputs"][binding.input_name] = value
    return filled


def _resolve(graph: dict[str, Any], field: str, binding: Binding) -> str:
    matches = [nid for nid, node in graph.items() if isinstance(node, dict) and node_title(node) == binding.node_title]
    if len(matches) != 1:
        problem = "no node" if not matches else f"{len(matches)} nodes"
        raise WorkflowError(
            f"Field '{field}' is bound to the node titled '{binding.node_title}', but the workflow has {problem} with that title.",
            {"field": field, "node_title": binding.node_title, "matches": matches},
        )
    node = graph[matches[0]]
    if binding.input_name not in node.get("inputs", {}):
        raise WorkflowError(
            f"Field '{field}' is bound to input '{binding.input_name}' of node '{binding.node_title}' "
            f"({node.get('class_type')}), which has no such input.",
            {"field": field, "node_title": binding.node_title, "input": binding.input_name},
        )
    return matches[0]


def node_title(node: dict[str, Any]) -> str | None:
    meta = node.get("_meta")
    return meta.get("title") if isinstance(meta, dict) else None


def check_graph(graph: dict[str, Any], object_info: dict[str, Any], filled: set[tuple[str, str]] = frozenset()) -> list[str]:
    """Problems that would make every run of `graph` fail on this ComfyUI; empty when it can run.
    Inputs in `filled` are set per request (an input image's name, say), so their stored value is not checked."""
    problems = []
    for node_id, node in graph.items():
        class_type = node.get("class_type")
        info = object_info.get(class_type)
        if info is None:
            problems.append(f"node {node_id}: class '{class_type}' is not installed in this ComfyUI")
            continue
        declared = {}
        for section in ("required", "optional"):
            declared.update(info.get("input", {}).get(section, {}) or {})
        for input_name, value in node.get("inputs", {}).items():
            spec = declared.get(input_name)
            if spec is None:
                problems.append(f"node {node_id} ({class_type}): unknown input '{input_name}'")
                continue
            options = combo_options(spec)
            if (node_id, input_name) in filled:
                continue
            if options is not None and not isinstance(value, list) and value not in options:
                problems.append(
                    f"node {node_id} ({class_type}): {input_name} '{value}' is not available; "
                    f"this ComfyUI offers: {', '.join(map(str, options)) or 'nothing (the folder is empty)'}"
                )
    return problems


def combo_options(spec: Any) -> list[Any] | None:
    """The allowed values of a combo input spec from /object_info (V1 list or V3 "COMBO"), else None."""
    if not isinstance(spec, list) or not spec:
        return None
    if isinstance(spec[0], list):
        return spec[0]
    if spec[0] == "COMBO" and len(spec) > 1 and isinstance(spec[1], dict):
        return spec[1].get("options")
    return None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, json.JSONDecodeError) as exc:
        raise WorkflowError(f"Workflow file {path.name} cannot be read: {exc}.", {"file": path.name}) from None
    if not isinstance(data, dict):
        raise WorkflowError(f"Workflow file {path.name} must hold a JSON object.", {"file": path.name})
    return data
