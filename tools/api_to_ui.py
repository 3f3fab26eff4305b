"""Generate the GUI (UI-format) copy of a shipped API-format workflow.

Why: workflows/<name>.api.json is the source of truth the worker runs; workflows/<name>.ui.json is the same
graph as the ComfyUI GUI (frontend 1.48.x, the version ComfyUI v0.33.0 pins) saves it, so users can open it, edit it and submit the saved file.
Writing the UI file by hand drifts as soon as the API graph changes; this script rebuilds it, and the test
suite checks that converting the UI file back (handler.ui_to_api) gives exactly the API file.

The layout is deterministic: a column per dependency depth, nodes stacked in id order within a column.

Usage: python -m tools.api_to_ui workflows/flux1-dev-t2i.api.json --object-info tests/fixtures/object_info.json
       [-o workflows/flux1-dev-t2i.ui.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path
from typing import Any

from handler.ui_to_api import WIDGET_TYPES, _input_options, _input_spec_type, _ordered_inputs, _widget_kind, widget_slots

FRONTEND_VERSION = "1.48.7"
COMFYUI_VERSION = "0.33.0"
COLUMN_WIDTH = 420
ROW_GAP = 50
ORIGIN = (40, 60)
WIDE_NODE_TYPES = {"CLIPTextEncode": (420, 200)}
CONTROL_VALUE = "randomize"  # the GUI's default for seeds: a new seed each time the GUI queues


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


def _sort_key(node_id: str) -> tuple[int, Any]:
    return (0, int(node_id)) if node_id.isdigit() else (1, node_id)


def _node_id(node_id: str) -> Any:
    return int(node_id) if node_id.isdigit() else node_id


def _depths(prompt: dict[str, Any]) -> dict[str, int]:
    depth: dict[str, int] = {}

    def visit(nid: str, stack: tuple[str, ...]) -> int:
        if nid in depth:
            return depth[nid]
        if nid in stack:
            raise ValueError(f"cycle through node {nid}")
        parents = [v[0] for v in prompt[nid]["inputs"].values() if _is_link(v) and v[0] in prompt]
        depth[nid] = 1 + max((visit(p, (*stack, nid)) for p in parents), default=-1)
        return depth[nid]

    for nid in prompt:
        visit(nid, ())
    return depth


def _socket_inputs(info: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, type) of the inputs the GUI draws as sockets, in declaration order."""
    sockets = []
    for section in ("required", "optional"):
        for name, spec in _ordered_inputs(info, section):
            if _widget_kind(spec) not in WIDGET_TYPES or _input_options(spec).get("forceInput"):
                sockets.append((name, _input_spec_type(spec)))
    return sockets


def api_to_ui(prompt: dict[str, Any], object_info: dict[str, Any], workflow_name: str = "flux1-dev-t2i") -> dict[str, Any]:
    """Build a version-0.4 UI workflow whose conversion is `prompt` (titles kept, ids kept). `workflow_name` (the
    workflow's file stem) seeds its UUID: fixed for diffs, distinct per workflow (the GUI tracks open
    workflows by id, so two files with one id would be taken for the same workflow)."""
    ids = sorted(prompt, key=_sort_key)
    missing = sorted({prompt[i]["class_type"] for i in ids} - set(object_info))
    if missing:
        raise ValueError(f"node types not in object_info: {', '.join(missing)}")
    depth = _depths(prompt)
    order = {nid: i for i, nid in enumerate(sorted(ids, key=lambda n: (depth[n], _sort_key(n))))}

    nodes: dict[str, dict[str, Any]] = {}
    for nid in ids:
        entry = prompt[nid]
        class_type = entry["class_type"]
        info = object_info[class_type]
        api_inputs = entry["inputs"]
        inputs = [
            {"localized_name": name, "name": name, "type": kind, "link": None} for name, kind in _socket_inputs(info)
        ]
        widgets_values = []
        shown: dict[str, Any] = {}
        for slot in widget_slots(info):
            if not slot.saved:
                continue  # the GUI never saves it (IMAGECOMPARE)
            if slot.serialize:
                value = api_inputs.get(slot.name, slot.default)
                if _is_link(value):
                    spec = (info["input"].get("required") or {}).get(slot.name) or info["input"]["optional"][slot.name]
                    inputs.append({"localized_name": slot.name, "name": slot.name, "type": _input_spec_type(spec),
                                   "widget": {"name": slot.name}, "link": None})
                    value = slot.default
                elif isinstance(value, dict) and "__value__" in value:
                    value = value["__value__"]
                widgets_values.append(value)
                shown[slot.name] = value
            elif slot.name.endswith(":control"):
                widgets_values.append(CONTROL_VALUE)
            elif slot.name.endswith(":control_filter"):
                widgets_values.append("")
            elif slot.name.endswith(":upload"):
                widgets_values.append("image")
            elif ":" in slot.name:  # a helper a widget draws after itself: a bounding box's x, y, width, height
                owner, field = slot.name.rsplit(":", 1)
                box = shown.get(owner)
                widgets_values.append(box.get(field, 0) if isinstance(box, dict) else 0)
        outputs = [
            {"localized_name": name, "name": name, "type": kind, "links": []}
            for name, kind in zip(info.get("output_name") or info.get("output") or [], info.get("output") or [])
        ]
        node: dict[str, Any] = {
            "id": _node_id(nid),
            "type": class_type,
            "pos": [0, 0],
            "size": [0, 0],
            "flags": {},
            "order": order[nid],
            "mode": 0,
            "inputs": inputs,
            "outputs": outputs,
            "properties": _properties(class_type, info),
            "widgets_values": widgets_values,
        }
        title = (entry.get("_meta") or {}).get("title")
        if title and title != info.get("display_name"):
            node["title"] = title
        nodes[nid] = node

    links = []
    for nid in ids:
        target = nodes[nid]
        for name, value in prompt[nid]["inputs"].items():
            if not _is_link(value):
                continue
            origin_id, origin_slot = value
            slot_index = next(i for i, x in enumerate(target["inputs"]) if x["name"] == name)
            link_type = nodes[origin_id]["outputs"][origin_slot]["type"]
            link_id = len(links) + 1
            links.append([link_id, _node_id(origin_id), origin_slot, _node_id(nid), slot_index, link_type])
            target["inputs"][slot_index]["link"] = link_id
            nodes[origin_id]["outputs"][origin_slot]["links"].append(link_id)
    for node in nodes.values():
        for out in node["outputs"]:
            if not out["links"]:
                out["links"] = None  # what the GUI saves for an unconnected output

    _layout(nodes, depth)
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{workflow_name}.ui.json")),  # the GUI expects a UUID; fixed for diffs
        "revision": 0,
        "last_node_id": max((n["id"] for n in nodes.values() if isinstance(n["id"], int)), default=0),
        "last_link_id": len(links),
        "nodes": [nodes[nid] for nid in ids],
        "links": links,
        "groups": [],
        "config": {},
        "extra": {"ds": {"scale": 0.75, "offset": [0, 0]}, "frontendVersion": FRONTEND_VERSION},
        "version": 0.4,
    }


def _properties(class_type: str, info: dict[str, Any]) -> dict[str, Any]:
    """What the GUI stores: core nodes carry the core package id and version; local custom nodes do not."""
    if str(info.get("python_module", "nodes")).startswith("custom_nodes"):
        return {"Node name for S&R": class_type}
    return {"cnr_id": "comfy-core", "ver": COMFYUI_VERSION, "Node name for S&R": class_type}


def _layout(nodes: dict[str, dict[str, Any]], depth: dict[str, int]) -> None:
    """Columns by depth; within a column, nodes in id order with their estimated heights."""
    next_y: dict[int, int] = {}
    for nid in sorted(nodes, key=_sort_key):
        node = nodes[nid]
        col = depth[nid]
        if node["type"] in WIDE_NODE_TYPES:
            width, height = WIDE_NODE_TYPES[node["type"]]
        else:
            rows = max(len(node["inputs"]), len(node["outputs"]))
            width, height = 320, 30 + 22 * rows + 26 * len(node["widgets_values"])
        y = next_y.get(col, ORIGIN[1])
        node["pos"] = [ORIGIN[0] + col * COLUMN_WIDTH, y]
        node["size"] = [width, height]
        next_y[col] = y + height + ROW_GAP


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.api_to_ui", description=__doc__.splitlines()[0])
    p.add_argument("api_workflow", type=Path)
    p.add_argument("--object-info", type=Path, required=True, help="saved GET /object_info JSON")
    p.add_argument("-o", "--output", type=Path, help="default: the API file name with .ui.json")
    args = p.parse_args(argv)
    prompt = json.loads(args.api_workflow.read_text(encoding="utf-8"))
    object_info = json.loads(args.object_info.read_text(encoding="utf-8"))
    out = args.output or args.api_workflow.with_name(args.api_workflow.name.replace(".api.json", ".ui.json"))
    ui = api_to_ui(prompt, object_info, workflow_name=args.api_workflow.name.replace(".api.json", ""))
    out.write_text(json.dumps(ui, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
