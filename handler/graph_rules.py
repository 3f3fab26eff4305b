"""Rules every caller-supplied graph must pass before ComfyUI sees it, and the per-job mark on its output nodes.

Why here and not in ComfyUI: ComfyUI trusts its graph. A node whose `class_type` is a list makes POST /prompt
answer HTTP 500 (the worker would take that for a dead ComfyUI and ask to be replaced); `EmptyLatentImage` with a
batch of 64 at 8192x8192 is valid to ComfyUI and takes the GPU (or the host's memory) down with it; a graph of a
million nodes costs gigabytes before any timeout applies. So the shape of the graph (an object of nodes, each with
a string `class_type` and an `inputs` object, every link `["<node id in the graph>", <output index>]`), its size,
the nesting depth of its JSON and its numbers (finite: NaN, which Python clients write by default, cannot be sent
on to ComfyUI as JSON) are checked here, each refusal a `WorkflowError` (`invalid_workflow`) naming
the node and the field. What the graph makes (batches, pixels, frames, text) is bounded by graph_sizes.py.

The limits (`WorkflowLimits`, read from WORKFLOW_* variables by config.py) default to what the simple fields
allow: batches up to 4 (`num_images`), images up to 2048x2048 pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from .errors import WorkflowError, describe_value, safe_text

# Key the per-job mark goes under in each output node's inputs. ComfyUI ignores inputs a node does not declare
# (validation and execution read only declared ones) but its cache signature includes every input.
JOB_MARK_INPUT = "worker_job_id"


@dataclass(frozen=True)
class WorkflowLimits:
    """Bounds on a caller's graph (README: WORKFLOW_MAX_NODES, WORKFLOW_MAX_SUBGRAPH_DEPTH, WORKFLOW_MAX_BATCH,
    WORKFLOW_MAX_PIXELS, WORKFLOW_MAX_TEXT_CHARS)."""

    max_nodes: int = 2000  # after subgraphs are expanded; GUI workflows rarely pass a few hundred
    max_subgraph_depth: int = 16  # subgraphs inside subgraphs
    max_batch: int = 4  # as num_images
    max_pixels: int = 2048 * 2048  # width x height of one image, as the simple fields' largest size
    max_json_depth: int = 64  # nesting of the workflow JSON itself; GUI files use about 10 levels
    max_text_chars: int = 100_000  # any one string a node gets or makes (a prompt is tokenized whole)


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """Whether `value` nests deeper than `limit` levels, found without recursion (a caller can send 900 levels,
    which would make copy.deepcopy, json.dumps or any recursive walk raise RecursionError)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def check_workflow_json(workflow: Any, limits: WorkflowLimits) -> None:
    """The first check on `input.workflow`, before anything walks it recursively."""
    if json_depth_exceeds(workflow, limits.max_json_depth):
        raise WorkflowError(
            f"Input 'workflow' nests more than {limits.max_json_depth} levels deep; a ComfyUI workflow needs far fewer.",
            {"field": "workflow", "limit": "max_json_depth", "max_json_depth": limits.max_json_depth},
        )
    where = non_finite_number(workflow)
    if where is not None:
        path, value = where
        field = f"workflow.{path}" if path else "workflow"
        rule = "numbers must be finite: JSON has no NaN or Infinity (Python's json.dumps writes them unless allow_nan=False)"
        raise WorkflowError(f"Input '{safe_text(field, 100)}' = {describe_value(value)} is invalid: {rule}.",
                            {"field": field, "rule": rule, "value": value})


def non_finite_number(value: Any) -> tuple[str, float] | None:
    """(path, value) of a NaN or infinite float somewhere in `value` (`6.inputs.cfg`, `nodes[2].pos[0]`), or None.
    Iterative, so any depth is safe."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return path, item
        if isinstance(item, dict):
            stack.extend((f"{path}.{key}" if path else str(key), child) for key, child in item.items())
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", child) for i, child in enumerate(item))
    return None


def check_api_graph(graph: Any, limits: WorkflowLimits) -> dict[str, Any]:
    """Refuse an API-format graph that is not shaped as ComfyUI expects or is larger than the limits; return it."""
    if not isinstance(graph, dict) or not graph:
        raise WorkflowError("Input 'workflow' must be a non-empty object of nodes ({\"<id>\": {\"class_type\", \"inputs\"}}).",
                            {"field": "workflow"})
    if len(graph) > limits.max_nodes:
        raise _too_many(len(graph), limits)
    for node_id, node in graph.items():
        if not isinstance(node, dict):
            raise _bad(node_id, None, f"must be an object with 'class_type' and 'inputs', not {type(node).__name__}")
        class_type = node.get("class_type")
        if not isinstance(class_type, str) or not class_type:
            raise _bad(node_id, "class_type", "must be a non-empty string naming a ComfyUI node type"
                       + ("" if "class_type" in node else " (it is missing)"))
        inputs = node.get("inputs")
        if not isinstance(inputs, dict):
            raise _bad(node_id, "inputs", f"must be an object of input values, not {type(inputs).__name__}", class_type)
        for name, value in inputs.items():
            if isinstance(value, list):
                _check_link(graph, node_id, class_type, name, value)
    return graph


def _check_link(graph: dict[str, Any], node_id: str, class_type: str, name: str, value: list) -> None:
    """ComfyUI reads every list input as a link; a literal list must be wrapped as {"__value__": [...]}."""
    rule = ('must be a link ["<node id>", <output index>] to a node of this graph '
            '(a list value must be wrapped as {"__value__": [...]})')
    if len(value) != 2 or not isinstance(value[0], str) or isinstance(value[1], bool) or not isinstance(value[1], int):
        raise _bad(node_id, f"inputs.{name}", rule, class_type)
    if value[0] not in graph:
        raise _bad(node_id, f"inputs.{name}", f"links to node '{safe_text(value[0], 64)}', which is not in the graph",
                   class_type)
    if value[1] < 0:
        raise _bad(node_id, f"inputs.{name}", "must name an output index of 0 or more", class_type)


def drop_unreachable(graph: Any, object_info: Mapping[str, Any]) -> Any:
    """`graph` without the nodes no output node depends on, as ComfyUI runs it.

    Why: ComfyUI validates and runs only the output nodes (`output_node` in /object_info) and what they link to,
    directly or not; a node nothing reads (a loader left beside the graph, half-wired nodes from an edit) is never
    checked or run. Checked here, such a node would refuse a graph that runs in the caller's own ComfyUI (a LoRA
    this worker does not have, a link to a deleted node). Dropped, it is not sent at all. A graph that is not
    shaped as a graph, or has no output node, is returned as it is, for the checks that name what is wrong.
    Every list-shaped input counts as a link, declared or not, so nothing that might be read is dropped.
    """
    if not isinstance(graph, dict) or not all(
            isinstance(node, dict) and isinstance(node.get("class_type"), str) for node in graph.values()):
        return graph
    stack = [node_id for node_id, node in graph.items()
             if (object_info.get(node["class_type"]) or {}).get("output_node") is True]
    if not stack:
        return graph
    kept: set[str] = set()
    while stack:
        node_id = stack.pop()
        if node_id in kept:
            continue
        kept.add(node_id)
        inputs = graph[node_id].get("inputs")
        for value in (inputs.values() if isinstance(inputs, dict) else ()):
            if isinstance(value, list) and value and isinstance(value[0], str) and value[0] in graph:
                stack.append(value[0])
    return graph if len(kept) == len(graph) else {node_id: node for node_id, node in graph.items() if node_id in kept}


def mark_output_nodes(graph: dict[str, Any], object_info: Mapping[str, Any], job_id: str) -> dict[str, Any]:
    """Give every output node of `graph` this job's id as an extra input, so ComfyUI runs it again.

    Why: ComfyUI caches node results by their inputs. Sent twice, the same graph's SaveImage is not run again and
    ComfyUI reports the file the first job wrote, which that job already consumed and deleted, so the second job
    would get nothing (a /view 404). Marking only the output nodes keeps the rest cached (the sampler does not run
    again) while each job writes, and consumes, its own files. Nothing else about the caller's graph changes:
    ComfyUI passes a node only the inputs it declares. Preview nodes (PreviewImage, PreviewAudio, ...) are left
    alone: they write to ComfyUI's temp folder, which the worker never deletes from, so their cached answer is still
    right, and running them again would only add files there.
    """
    marked = dict(graph)
    for node_id, node in graph.items():
        info = object_info.get(node.get("class_type")) if isinstance(node, dict) else None
        if isinstance(info, dict) and info.get("output_node") and not str(node["class_type"]).startswith("Preview"):
            marked[node_id] = {**node, "inputs": {**node["inputs"], JOB_MARK_INPUT: job_id}}
    return marked


def _too_many(count: int, limits: WorkflowLimits) -> WorkflowError:
    return WorkflowError(
        f"Input 'workflow' has {count} nodes, over this worker's limit of {limits.max_nodes} (WORKFLOW_MAX_NODES).",
        {"field": "workflow", "nodes": count, "limit": "max_nodes", "max_nodes": limits.max_nodes},
    )


def too_many_nodes(count: int, limits: WorkflowLimits, *, at_least: bool = False) -> WorkflowError:
    """The refusal for a graph over WORKFLOW_MAX_NODES (UI workflows: counted before their subgraphs are expanded)."""
    error = _too_many(count, limits)
    if at_least:
        error = WorkflowError(
            f"Input 'workflow' expands to more than {limits.max_nodes} nodes once its subgraphs are expanded, over "
            f"this worker's limit (WORKFLOW_MAX_NODES).",
            {**error.details, "nodes": f">{limits.max_nodes}"},
        )
    return error


def _bad(node_id: str, field: str | None, rule: str, class_type: str | None = None) -> WorkflowError:
    where = f"node {safe_text(node_id, 64)}" + (f" ({safe_text(class_type, 64)})" if class_type else "")
    what = f"'{field}' of {where}" if field else where.capitalize()
    return WorkflowError(f"Input 'workflow' is not a valid API-format graph: {what} {rule}.",
                         {"node_id": node_id, **({"field": field} if field else {})})
