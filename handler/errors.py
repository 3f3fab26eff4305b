"""Exception types the worker raises, and their one conversion into a Runpod response.

Every failure a caller can cause or see is a `WorkerError` with a one-sentence `message` and a JSON-safe
`details` dict. `job.handle` turns it into `{"error": message, "details": {...}}`; nothing else reaches the
caller, so tracebacks, hostnames and secrets stay in the worker's log.
"""

from __future__ import annotations

from typing import Any

_MAX_VALUE_CHARS = 80


def describe_value(value: Any) -> str:
    """A short, safe rendering of a caller's value for an error sentence (long prompts are cut)."""
    text = repr(value)
    if len(text) > _MAX_VALUE_CHARS:
        text = text[: _MAX_VALUE_CHARS - 3] + "..."
    return text


class WorkerError(Exception):
    """Base class: a failure with a caller-facing sentence and structured details."""

    code = "worker_error"

    def __init__(self, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_response(self) -> dict[str, Any]:
        return {"error": self.message, "details": {"type": self.code, **self.details}}


class ConfigError(WorkerError):
    """An environment variable is malformed; raised at start, never during a job."""

    code = "config_error"


class InputError(WorkerError):
    """The caller's input breaks a rule. Names the field, the value and the rule."""

    code = "invalid_input"

    def __init__(self, field: str, value: Any, rule: str, *, show_value: bool = True):
        shown = describe_value(value) if show_value else "the value given"
        super().__init__(
            f"Input '{field}' = {shown} is invalid: {rule}.",
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
        where = f"node {node_id} ({class_type})" + (f" input '{input_name}'" if input_name else "")
        shown = f" = {describe_value(value)}" if input_name else ""
        super().__init__(
            f"Workflow {where}{shown} is refused: {rule}.",
            {"node_id": node_id, "class_type": class_type, "input": input_name, "rule": rule,
             **({"value": value} if input_name and _is_small(value) else {}),
             **({"available": available} if available is not None else {})},
        )


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
