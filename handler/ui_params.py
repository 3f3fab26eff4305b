"""The GUI workflow a PNG carries must be the one that ran: request fields written into its widgets, or nothing.

Why: a caller may send a GUI-saved workflow plus simple fields (`prompt`, `seed`, `num_inference_steps`...). The
fields are written into the converted API graph (workflow.fill, by node title), and ComfyUI embeds the API graph
as the PNG's `prompt` chunk and `extra_pnginfo.workflow` as its `workflow` chunk, which is what the GUI reopens
when the PNG is dropped on it. Passing the caller's workflow unchanged would reopen the old prompt, seed and
steps, and re-queuing it would make a different image.

So the same title binding is applied to the GUI workflow: each bound input's value is written into the matching
root-graph node's `widgets_values` (the position found the way the converter maps saved values to widgets).
Exactness is then proven, not assumed: the written workflow is converted again and must equal the graph that is
queued. Where it does not (a bound node inside a subgraph, a widget fed by a link or a primitive node, an
ambiguous title, a node the worker changed further, LoRA nodes added), the workflow is left out of the PNG: a
PNG without a workflow is honest, one with the wrong workflow is not.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from . import ui_to_api
from .errors import WorkerError
from .graph_rules import WorkflowLimits
from .workflow import Binding

log = logging.getLogger(__name__)


def workflow_that_ran(ui: dict[str, Any], parameters: dict[str, tuple[Binding, ...]], values: dict[str, Any],
                      ran: dict[str, Any], object_info: dict[str, Any], limits: WorkflowLimits,
                      logger: logging.Logger | logging.LoggerAdapter = log) -> dict[str, Any] | None:
    """`ui` with `values` written into its widgets, if it converts exactly to `ran` (the API graph queued, before
    per-job rewrites); else None, and the reason is logged (`logger` carries the job id)."""
    if not values:
        return ui
    written = copy.deepcopy(ui)
    for field, value in values.items():
        for binding in parameters.get(field, ()):
            problem = _write(written, binding, value, object_info)
            if problem:
                logger.info("the PNG will carry no GUI workflow: field '%s' %s", field, problem)
                return None
    try:
        converted = ui_to_api.convert(written, object_info, limits)
    except WorkerError as err:  # cannot happen for a workflow that converted before; never fail the job for it
        logger.info("the PNG will carry no GUI workflow: the written workflow does not convert (%s)", err.message)
        return None
    if converted != ran:
        logger.info("the PNG will carry no GUI workflow: with the request's values written it does not convert to the "
                 "graph that runs")
        return None
    return written


def _write(ui: dict[str, Any], binding: Binding, value: Any, object_info: dict[str, Any]) -> str | None:
    """Write `value` into the widget of the one root node titled `binding.node_title`; a reason when it cannot."""
    matches = []
    for node in ui.get("nodes", []):
        if not isinstance(node, dict):
            continue
        info = object_info.get(node.get("type"))
        title = node.get("title") or (info or {}).get("display_name") or node.get("type")
        if title == binding.node_title and info is not None:
            matches.append((node, info))
    if len(matches) != 1:
        return f"is bound to the title '{binding.node_title}', held by {len(matches)} root-graph nodes"
    node, info = matches[0]
    saved = node.get("widgets_values")
    if isinstance(saved, dict):
        saved[binding.input_name] = value
        return None
    if not isinstance(saved, list):
        return f"cannot be written into node '{binding.node_title}' (it saved no widget values)"
    slots = ui_to_api.widget_slots(info)
    matched = ui_to_api.match_values(slots, saved)  # the converter's own mapping
    if matched is None:
        return f"cannot be placed among the saved widget values of node '{binding.node_title}'"
    for position, (slot, _old) in enumerate(matched):
        if slot.serialize and slot.name == binding.input_name:
            saved[position] = value
            return None
    return f"has no widget '{binding.input_name}' saved in node '{binding.node_title}'"
