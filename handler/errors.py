"""Exception types the worker raises, and their one conversion into a Runpod response.

Every failure a caller can cause or see is a `WorkerError` with a one-sentence `message` and a JSON-safe
`details` dict. `job.handle` turns it into `{"error": message, "details": {...}}`; nothing else reaches the
caller, so tracebacks, hostnames and secrets stay in the worker's log.
"""

from __future__ import annotations

import math
import re
import reprlib
from typing import Any

_MAX_VALUE_CHARS = 80
MAX_MESSAGE_CHARS = 2000  # an error sentence; longer ones are cut (a caller's text can be megabytes)
MAX_DETAIL_CHARS = 1000  # any one string (or key) inside `details`
MAX_FIELD_CHARS = 100  # a field name shown back to the caller
# Characters that would end or rewrite a log line (newlines, escape sequences, Unicode line separators), and lone
# UTF-16 surrogates (a string cut inside an emoji), which no UTF-8 response or log can carry.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")  # inputs.py refuses them; here they are escaped


def safe_text(text: Any, limit: int = 200) -> str:
    """Caller-controlled text fit for an error sentence or a log line: cut to `limit` characters first (so the
    cost is bounded whatever the size), then control characters escaped (a newline in a field name must not
    start a forged log line)."""
    text = str(text)
    if len(text) > limit:
        text = f"{text[:limit]}...({len(text)} characters)"
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def describe_value(value: Any) -> str:
    """A short, safe rendering of a caller's value for an error sentence (long prompts are cut). reprlib keeps
    the cost bounded: a caller's value can be megabytes long or nested hundreds of levels deep. Scalars JSON
    spells differently from Python read as the caller sent them (null, true, NaN)."""
    text = _JSON_SCALARS.get(value) if isinstance(value, (bool, type(None))) else None
    if isinstance(value, float) and not math.isfinite(value):
        text = _non_finite(value)
    if text is None:
        text = _REPR.repr(value)
    if len(text) > _MAX_VALUE_CHARS:
        text = text[: _MAX_VALUE_CHARS - 3] + "..."
    return text


_JSON_SCALARS = {None: "null", True: "true", False: "false"}


def _non_finite(value: float) -> str:
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict = 4, 2 * _MAX_VALUE_CHARS, 2 * _MAX_VALUE_CHARS, 8, 6


def bounded(value: Any, depth: int = 0) -> Any:
    """`details` made safe to return and log: every string and key cut to MAX_DETAIL_CHARS, long lists cut,
    nesting cut (details can echo what a caller sent); lone surrogates escaped and NaN or Infinity given as text,
    so that the response stays valid UTF-8 and valid JSON for every client."""
    if isinstance(value, str):
        value = value if len(value) <= MAX_DETAIL_CHARS else value[:MAX_DETAIL_CHARS] + "..."
        return LONE_SURROGATE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), value)
    if isinstance(value, float) and not math.isfinite(value):
        return _non_finite(value)
    if depth > 8:
        return "..."
    if isinstance(value, dict):
        return {bounded(str(k), depth + 1): bounded(v, depth + 1) for k, v in list(value.items())[:200]}
    if isinstance(value, (list, tuple)):
        return [bounded(v, depth + 1) for v in value[:200]]
    return value


class WorkerError(Exception):
    """Base class: a failure with a caller-facing sentence and structured details."""

    code = "worker_error"

    def __init__(self, message: str, details: dict[str, Any] | None = None):
        # Every sentence and detail can carry caller text; bound and escape it once, here, so neither the
        # response nor the log line that repeats it can be flooded or forged.
        message = safe_text(message, MAX_MESSAGE_CHARS - 40)  # with the "...(N characters)" it may add
        super().__init__(message)
        self.message = message
        self.details = bounded(details or {})

    def to_response(self) -> dict[str, Any]:
        return {"error": self.message, "details": {"type": self.code, **self.details}}


class ConfigError(WorkerError):
    """An environment variable is malformed; raised at start, never during a job."""

    code = "config_error"


class InputError(WorkerError):
    """The caller's input breaks a rule. Names the field, the value and the rule."""

    code = "invalid_input"

    def __init__(self, field: str, value: Any, rule: str, *, show_value: bool = True):
        field = safe_text(field, MAX_FIELD_CHARS)  # an unknown field's name is the caller's text
        sentence = (f"Input '{field}' = {describe_value(value)} is invalid: {rule}." if show_value
                    else f"Input '{field}' {rule}." if rule.startswith("is ")  # "... is required by ..."
                    else f"Input '{field}' is invalid: {rule}.")
        super().__init__(
            sentence,
            {"field": field, "rule": rule, **({"value": value} if show_value and _is_small(value) else {})},
        )
        self.field = field
        self.rule = rule


def _is_small(value: Any) -> bool:
    return isinstance(value, (int, float, bool, type(None))) or (isinstance(value, str) and len(value) <= 200)


class WorkflowError(WorkerError):
    """A workflow (shipped or submitted) cannot be used: unknown name, broken binding, bad graph."""

    code = "invalid_workflow"


class WorkflowPolicyError(WorkflowError):
    """A caller's graph breaks the workflow policy (handler/workflow_policy.py), found before ComfyUI sees it.

    Names the node id, its class_type and, when one input is at fault, the input, its value (shortened) and the
    rule, so a caller can fix the graph without guessing; the rule never says whether a file exists, so the
    error cannot be used to probe the worker's disk.
    """

    def __init__(self, node_id: str, class_type: Any, input_name: str | None, value: Any, rule: str, *,
                 available: list[Any] | None = None):
        where = (f"node {safe_text(node_id, 64)} ({safe_text(class_type, 100)})"
                 + (f" input '{safe_text(input_name, 100)}'" if input_name else ""))
        shown = f" = {describe_value(value)}" if input_name else ""
        super().__init__(
            f"Workflow {where}{shown} is refused: {rule}.",
            {"node_id": node_id, "class_type": class_type, "input": input_name, "rule": rule,
             **({"value": value} if input_name and _is_small(value) else {}),
             **({"available": available} if available is not None else {})},
        )


class MissingNodeError(WorkflowError):
    """A workflow names a node class this ComfyUI does not have (no installed node pack provides it).

    Raised before queueing where the handler can tell (node_packs.missing_node: the UI converter and the workflow
    policy), and from ComfyUI's own `missing_node_type` refusal (ComfyUI >= 0.12) otherwise, so the caller gets the
    same `invalid_workflow` shape either way: the node id, its class and its title, `hint` where something (a UI
    workflow's pack properties) says how to get the class, `custom_nodes_line` where it says exactly which pack
    (the line a deployer adds to custom_nodes.txt), and `missing`: every
    node of the graph whose class is not installed.
    """

    def __init__(self, node_id: Any, class_type: Any, title: Any = None, *, hint: str | None = None,
                 custom_nodes_line: str | None = None, missing: list[dict[str, Any]] | None = None):
        name = (f"node {safe_text(node_id, 64)} ({safe_text(class_type, 100)})"
                + (f" '{safe_text(title, 100)}'" if title and title != class_type else ""))
        text = f"Workflow {name} needs node type {describe_value(class_type)}, which is not installed on this worker."
        if missing and len(missing) > 1:
            text += f" ({len(missing)} nodes of the workflow need node types that are not installed: see 'missing'.)"
        super().__init__(text + (f" {hint}" if hint else ""),
                         {"node_id": None if node_id is None else str(node_id), "class_type": class_type,
                          "node_title": title, "rule": "the node type must be installed",
                          **({"hint": hint} if hint else {}),
                          **({"custom_nodes_line": custom_nodes_line} if custom_nodes_line else {}),
                          **({"missing": missing} if missing else {})})


class ComfyValidationError(WorkerError):
    """ComfyUI refused the prompt at validation: details carry per-node, per-input errors."""

    code = "comfyui_validation_error"


class ComfyExecutionError(WorkerError):
    """A node raised while ComfyUI ran the prompt."""

    code = "comfyui_execution_error"


class JobTimeoutError(WorkerError):
    """The job ran past its deadline; the prompt was interrupted."""

    code = "timeout"


class ComfyUnavailableError(WorkerError):
    """ComfyUI did not answer or went away; the worker will be replaced."""

    code = "comfyui_unavailable"


class PayloadTooLargeError(WorkerError):
    """The response would exceed Runpod's payload limit and no bucket is configured."""

    code = "payload_too_large"


class OutputUnavailableError(WorkerError):
    """ComfyUI reported an output file it could not return (missing or unreadable). ComfyUI is alive, so the
    worker is not replaced; sending the job again makes the file anew."""

    code = "output_unavailable"
