"""ComfyUI's failure payloads turned into `WorkerError`s a caller can act on.

Validation failures (HTTP 400 from POST /prompt, or a 200 that still carries `node_errors`) become
`ComfyValidationError` with, per node id, its class_type and, per failing input, the input name, ComfyUI's error
type and message; a missing model file also lists the files that loader can see. Execution failures (an
`execution_error` message) become `ComfyExecutionError` with node id, node type and ComfyUI's message, never the
traceback. Absolute file-system paths in ComfyUI's messages (SaveImage names its output folder when it refuses a
prefix, loaders name model folders) are replaced by `<server path>`: a caller learns what is wrong, never where the
server keeps its files.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from .errors import ComfyExecutionError, ComfyValidationError, MissingNodeError, WorkflowError

_MAX_MESSAGE_CHARS = 600
# An absolute POSIX path: a '/' that does not continue a word, a URL or another path, then one or more segments.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/(?:[^\s/'\",;:()\[\]{}<>]+/)*[^\s/'\",;:()\[\]{}<>]+/?")
# (class_type, input_name) -> the values that input accepts on this ComfyUI, or None when unknown.
OptionsLookup = Callable[[str, str], "list[Any] | None"]


def validation_error(body: dict[str, Any], options: OptionsLookup | None = None) -> ComfyValidationError | WorkflowError:
    body = body if isinstance(body, dict) else {"error": {"message": str(body)[:500]}}
    top = body.get("error") if isinstance(body.get("error"), dict) else {}
    if top.get("type") == "missing_node_type":
        # ComfyUI >= 0.12 stops at the first node whose class it does not have, before any input validation, and
        # names it only in extra_info (node_errors is empty): the same invalid_workflow the handler raises itself.
        extra = top.get("extra_info") if isinstance(top.get("extra_info"), dict) else {}
        if extra.get("class_type"):
            return MissingNodeError(extra.get("node_id"), extra.get("class_type"), extra.get("node_title"))
        return WorkflowError(_cut(scrub_paths(f"ComfyUI rejected the workflow: {top.get('message') or 'a node has no class'}")),
                             {"node_id": extra.get("node_id"), "rule": "every node needs an installed class_type"})
    nodes: dict[str, Any] = {}
    sentences: list[str] = []
    # ComfyUI's own shapes, read defensively: a custom node's validation can put anything in them.
    node_errors = body.get("node_errors") if isinstance(body.get("node_errors"), dict) else {}
    for node_id, entry in node_errors.items():
        entry = entry if isinstance(entry, dict) else {"errors": [{"message": entry}]}
        class_type = entry.get("class_type")
        errors = []
        raw_errors = entry.get("errors") if isinstance(entry.get("errors"), list) else [{"message": entry.get("errors")}]
        for err in raw_errors:
            err = err if isinstance(err, dict) else {"message": err}
            extra = err.get("extra_info") if isinstance(err.get("extra_info"), dict) else {}
            item = {
                "input_name": extra.get("input_name"),
                "type": err.get("type"),
                "message": err.get("message"),
                "details": err.get("details"),
            }
            if "received_value" in extra:
                item["received_value"] = extra["received_value"]
            if err.get("type") == "value_not_in_list" and options and isinstance(extra.get("input_name"), str):
                available = options(class_type, extra["input_name"])
                if available is not None:
                    item["available"] = available
            errors.append(item)
            sentences.append(_sentence(node_id, class_type, item))
        nodes[str(node_id)] = {"class_type": class_type, "errors": errors}
    if not sentences:
        sentences.append(f"{top.get('message') or 'invalid prompt'}: {top.get('details') or ''}".strip(": "))
    summary = "ComfyUI rejected the workflow: " + "; ".join(sentences)
    return ComfyValidationError(
        _cut(scrub_paths(summary)),
        scrub_paths({
            "comfyui_error": {k: top.get(k) for k in ("type", "message", "details")},
            "node_errors": nodes,
        }),
    )


def _sentence(node_id: str, class_type: str | None, item: dict[str, Any]) -> str:
    where = f"node {node_id} ({class_type})"
    if item.get("input_name"):
        where += f" input '{item['input_name']}'"
    text = f"{where}: {item.get('message')}"
    if item.get("details"):
        text += f" ({item['details']})"
    if "available" in item:
        shown = ", ".join(map(str, item["available"][:20])) or "none: the folder is empty"
        text += f"; available: {shown}"
    return text


def execution_error(data: dict[str, Any]) -> ComfyExecutionError:
    node_id = str(data.get("node_id"))
    node_type = data.get("node_type")
    exc_type = data.get("exception_type") or "Exception"
    message = str(data.get("exception_message") or "").strip()
    first_line = message.splitlines()[0] if message else ""
    return ComfyExecutionError(
        _cut(scrub_paths(f"ComfyUI failed while running node {node_id} ({node_type}): {exc_type}: {first_line}")),
        scrub_paths({
            "node_id": node_id,
            "node_type": node_type,
            "exception_type": exc_type,
            "exception_message": _cut(message),
        }),
    )


def scrub_paths(value: Any) -> Any:
    """`value` (a string, or lists and dicts of them) with every absolute path replaced by `<server path>`."""
    if isinstance(value, str):
        return _ABSOLUTE_PATH.sub("<server path>", value)
    if isinstance(value, dict):
        return {k: scrub_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_paths(v) for v in value]
    return value


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE_CHARS else text[: _MAX_MESSAGE_CHARS - 3] + "..."
