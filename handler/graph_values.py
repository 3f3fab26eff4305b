"""An input of a caller's graph, read exactly as ComfyUI v0.33.0 will read it.

Why: every limit the worker puts on a caller's graph (batch, pixels, frames, text length, paths, list values)
is only as good as its reading of the value. ComfyUI's validation (execution.py `validate_inputs`) does not use
the JSON as written: for a literal (anything but a link) it first unwraps `{"__value__": x}` (the form GUI exports
use for list values), then converts by the input's declared type: `int(x)` for INT, `float(x)` for FLOAT, `str(x)`
for STRING, `bool(x)` for BOOLEAN, and writes the result back into the prompt that runs. So `"3000"`, `3000.7`,
`True`, `{"__value__": "3000"}` and `" 3_000 "` are all the integer 3000 to ComfyUI, and a rule that compares the
raw JSON against a limit is bypassed by spelling the number differently. A value that does not convert makes
ComfyUI refuse the whole prompt, so such a graph never runs.

A link `["<node id>", <slot>]` passes the output of the node it names, computed at run time and not converted
again. The worker evaluates only the primitive nodes (PrimitiveInt, PrimitiveFloat, PrimitiveString,
PrimitiveStringMultiline, PrimitiveBoolean), whose output is their `value` input read the same way (inputs a class
does not declare never reach it, so an extra input on a primitive changes nothing). Anything else linked is
`UNKNOWN`: the rule that needs the value decides whether that is allowed.

This module is the only place that reads a value for a rule; workflow_policy.py and graph_sizes.py both use it.
"""

from __future__ import annotations

from typing import Any, Mapping

# Node classes whose single output is their `value` input, as ComfyUI reads it.
PRIMITIVES = frozenset({"PrimitiveInt", "PrimitiveFloat", "PrimitiveString", "PrimitiveStringMultiline",
                        "PrimitiveBoolean"})
_MAX_HOPS = 64  # primitive -> primitive -> ... ; a longer chain (or a cycle, which ComfyUI refuses) is UNKNOWN


class _Marker:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


UNKNOWN = _Marker("UNKNOWN")  # computed at run time by a node the worker does not evaluate
INVALID = _Marker("INVALID")  # ComfyUI cannot convert it, so it refuses the prompt: the graph never runs
MISSING = _Marker("MISSING")  # the node does not have the input


def is_link(value: Any) -> bool:
    """ComfyUI reads every list input as a link (graph_rules checks that it is a well-formed one)."""
    return isinstance(value, list) and len(value) == 2


DYNAMIC_COMBO = "COMFY_DYNAMICCOMBO_V3"  # a V3 combo whose value decides which further inputs the node has


def declared_inputs(object_info: Mapping[str, Any], class_type: Any,
                    inputs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The inputs a class declares (required and optional), name -> spec; empty for an unknown class.

    With the node's `inputs`, a dynamic combo (V3 DynamicCombo: SaveVideo's `codec`) is read as ComfyUI reads it: a
    combo of its option keys, plus the inputs of the option the node chose, named `<combo>.<input>` (nested combos
    alike). Inputs of options it did not choose are not declared: they never reach the node.
    """
    info = object_info.get(class_type) if isinstance(class_type, str) else None
    specs = _required_and_optional(info.get("input") if isinstance(info, dict) else None)
    return _expand_dynamic(specs, inputs, "", depth=0) if inputs is not None else specs


def _required_and_optional(sections: Any) -> dict[str, Any]:
    specs: dict[str, Any] = {}
    for section in ("required", "optional"):
        specs.update((sections.get(section) if isinstance(sections, dict) else None) or {})
    return specs


def _expand_dynamic(specs: Mapping[str, Any], inputs: Mapping[str, Any], prefix: str, depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in specs.items():
        full = prefix + name
        if input_type(spec) != DYNAMIC_COMBO or depth > 8:
            out[full] = spec
            continue
        extra = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
        options = [o for o in extra.get("options") or [] if isinstance(o, dict) and "key" in o]
        out[full] = ["COMBO", {**{k: v for k, v in extra.items() if k != "options"}, "options": [o["key"] for o in options]}]
        chosen = unwrap(inputs.get(full))
        for option in options:
            if option["key"] == chosen and not isinstance(chosen, (list, dict)):
                out.update(_expand_dynamic(_required_and_optional(option.get("inputs")), inputs, f"{full}.", depth + 1))
    return out


def input_type(spec: Any) -> Any:
    """The declared type of an input spec: "INT", "STRING", a list of choices, "COMBO", "IMAGE"..."""
    return spec[0] if isinstance(spec, (list, tuple)) and spec else None


def widget_type(spec: Any) -> Any:
    """The widget a literal is typed into: a multi-type input ("STRING,FILE_3D_GLB,...", V3 MultiType) names it in
    `widgetType`; ComfyUI passes such a literal on unconverted, so only the widget says it holds text."""
    extra = spec[1] if isinstance(spec, (list, tuple)) and len(spec) > 1 and isinstance(spec[1], dict) else {}
    return extra.get("widgetType") or input_type(spec)


def unwrap(value: Any) -> Any:
    """ComfyUI's first step on a literal: `{"__value__": x}` is x."""
    if isinstance(value, dict) and "__value__" in value:
        return value["__value__"]
    return value


def coerce(kind: Any, value: Any) -> Any:
    """A literal as ComfyUI passes it to a node whose input is declared `kind`; INVALID where ComfyUI refuses."""
    value = unwrap(value)
    try:
        if kind == "INT":
            return int(value)
        if kind == "FLOAT":
            return float(value)
        if kind == "STRING":
            return str(value)
        if kind == "BOOLEAN":
            return bool(value)
    except (TypeError, ValueError, OverflowError):
        return INVALID
    return value


class Reader:
    """Reads inputs of one graph against one /object_info."""

    def __init__(self, graph: Mapping[str, Any], object_info: Mapping[str, Any]):
        self.graph = graph
        self.object_info = object_info

    def value(self, node_id: str, name: str) -> Any:
        """The value node `node_id`'s input `name` will have when ComfyUI runs the graph (or a marker)."""
        return self._read(node_id, name, _MAX_HOPS)

    def literal(self, node_id: str, name: str, raw: Any) -> Any:
        """`raw` (a literal of that input) converted as ComfyUI converts it."""
        node = self.graph.get(node_id)
        spec = declared_inputs(self.object_info, node.get("class_type") if isinstance(node, dict) else None).get(name)
        return coerce(input_type(spec), raw)

    def source(self, link: list) -> tuple[str, Any] | None:
        """(node id, class_type) of the node a link names, or None when it names none."""
        node = self.graph.get(link[0]) if isinstance(link[0], str) else None
        return (link[0], node.get("class_type")) if isinstance(node, dict) else None

    def _read(self, node_id: str, name: str, hops: int) -> Any:
        node = self.graph.get(node_id)
        inputs = node.get("inputs") if isinstance(node, dict) else None
        if not isinstance(inputs, dict) or name not in inputs:
            return MISSING
        raw = inputs[name]
        if is_link(raw):
            return self._linked(raw, hops)
        return self.literal(node_id, name, raw)

    def _linked(self, link: list, hops: int) -> Any:
        found = self.source(link)
        if found is None or hops <= 0:
            return UNKNOWN
        source_id, class_type = found
        if class_type not in PRIMITIVES or link[1] != 0:
            return UNKNOWN
        return self._read(source_id, "value", hops - 1)


def known(value: Any) -> bool:
    return not isinstance(value, _Marker)
