"""Convert a ComfyUI GUI ("UI format") workflow into the API format that `POST /prompt` accepts.

ComfyUI's server only understands the API format (`{id: {class_type, inputs, _meta}}`); the conversion from
the LiteGraph serialisation the GUI saves (`nodes`, `links`, `widgets_values`) lives in the browser
(`graphToPrompt` in ComfyUI_frontend). A caller who submits a saved GUI file to a headless worker has no
browser, so this module reproduces that conversion in Python from the same inputs the browser uses: the
saved graph plus the node definitions from ComfyUI's `/object_info`.

What it reproduces (the behaviour of frontend 1.48.7, the one ComfyUI v0.33.0 pins; checked template by template
with tools.frontend_compare):

* widget values are mapped by position onto the widget-making inputs in `input_order` (required, then
  optional); socket-only types and `forceInput` inputs make no widget; V1 list combos and V3 "COMBO" do, and
  so does a multi-type input ("FLOAT,INT") through its `widgetType`;
* the frontend-only extra values: the "control after generate" combo after seed-like inputs (plus the
  filter-list string after a controlled combo) and the upload widget of image/video upload combos;
* links override widget values ("converted widgets"); list values are wrapped as `{"__value__": [...]}`;
* legacy `Reroute` nodes and native reroutes, `PrimitiveNode` (its value is copied into its targets),
  muted (mode 2) nodes, bypassed (mode 4) nodes (same slot first, then the first input of a matching type),
  subgraphs from `definitions.subgraphs` (flattened with `outer:inner` ids), notes and other virtual nodes;
* a subgraph node's shown values: `widgets_values` fill the definition's promoted widgets (its inputs that feed an
  inner widget, in definition order) by position, also where the saved instance lists fewer inputs; an inner socket
  fed by an unset subgraph input reads the widget the same input feeds;
* the widgets the frontend defines itself (`WIDGETS`: COLOR, CURVE, PAINTER, BOUNDING_BOX, IMAGECOMPARE...), those
  its extensions add (`INJECTED_INPUTS`, `NODE_WIDGET_EXTENSIONS`: the 3D viewer's, CustomCombo's options and
  index); a view only the browser renders (Load3D) is refused, naming the node;
* subgraph node ids made unique across the file as the frontend does on load (they are half of a prompt id);
* muted and bypassed instances of the root graph skip their inner nodes; nested ones queue them, as the browser does;
* inputs linked to nodes that were not emitted are dropped, exactly as the browser does.

Frontend-only text transforms (dynamic prompts `{a|b}`, `%date:...%` in file name prefixes) are not applied:
the browser applies them as it queues, the saved file holds the raw text, and the server passes it through.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Any

from . import node_packs
from .errors import MissingNodeError, WorkflowError, safe_text
from .graph_rules import WorkflowLimits, too_many_nodes

log = logging.getLogger(__name__)

MODE_ALWAYS = 0
MODE_NEVER = 2  # "muted": not run, links from it are dropped
MODE_BYPASS = 4  # "bypassed": inputs are passed through to matching outputs

SUBGRAPH_INPUT_ID = "-10"  # id of a subgraph's input node in its link table
SUBGRAPH_OUTPUT_ID = "-20"

# Frontend-only node types: never sent to the server. Reroute and PrimitiveNode take part in link
# resolution; notes are pure annotation.
REROUTE_TYPE = "Reroute"
PRIMITIVE_TYPE = "PrimitiveNode"
VIRTUAL_TYPES = frozenset({REROUTE_TYPE, PRIMITIVE_TYPE, "Note", "MarkdownNote"})



@dataclass(frozen=True)
class _WidgetType:
    """How the frontend draws one input type as a widget: its `ComfyWidgets` entry (frontend scripts/widgets.ts)."""

    fallback: Any = None  # the value it starts with when the input declares no default
    default_path: tuple[str, ...] | None = ("default",)  # where in the input's options its default is; None: never
    saved: bool = True  # kept in `widgets_values`; IMAGECOMPARE's value never is, and is sent all the same
    helpers: tuple[str, ...] = ()  # frontend-only widgets drawn right after it: saved, never sent


# Input types the frontend draws a widget for, and so sends a value for. Everything else (MODEL, CLIP, IMAGE, custom
# types) is a socket. The frontend-defined types (COLOR, CURVE, PAINTER...) are drawn by the frontend's own widgets,
# and their values are sent like any other widget's.
WIDGETS: dict[str, _WidgetType] = {
    "INT": _WidgetType(0), "FLOAT": _WidgetType(0.0), "STRING": _WidgetType(""), "BOOLEAN": _WidgetType(False),
    "COMBO": _WidgetType(None),  # without a default: its first option (_default_for)
    "MARKDOWN": _WidgetType(""),
    "TEXTAREA": _WidgetType("", default_path=("options", "default")),
    "COLOR": _WidgetType("#000000"),
    "IMAGECOMPARE": _WidgetType(["", ""], default_path=None, saved=False),
    "BOUNDING_BOX": _WidgetType({"x": 0, "y": 0, "width": 512, "height": 512}, helpers=("x", "y", "width", "height")),
    "CHART": _WidgetType({}, default_path=("options", "data")),
    "GALLERIA": _WidgetType([], default_path=("options", "images")),
    "PAINTER": _WidgetType(""),
    "COMPOSITOR": _WidgetType({}),
    "CURVE": _WidgetType({"points": [[0, 0], [1, 1]], "interpolation": "monotone_cubic"}),
    "RANGE": _WidgetType({"min": 0.0, "max": 1.0}),
    "BOUNDING_BOXES": _WidgetType([]),
    "COLORS": _WidgetType([]),
    "PREVIEW_3D": _WidgetType(""),  # the 3D viewer's widget (frontend extension load3d): the file it shows
}
# Inputs frontend extensions add to a class's definition before drawing it (extensions/core/load3d.ts, saveMesh.ts):
# their widgets come after the class's own required ones, are saved, and are sent, though the server never reads them.
INJECTED_INPUTS: dict[str, tuple[tuple[str, Any], ...]] = {
    "Preview3D": (("image", ["PREVIEW_3D"]),),
    "SaveGLB": (("image", ["PREVIEW_3D"]),),
}
WIDGET_TYPES = frozenset(WIDGETS)
# Widgets whose value the GUI renders in the browser as it queues (the 3D viewer's screenshots, uploaded to the GUI's
# own ComfyUI): no saved value stands for them, so a workflow that runs such a node cannot be converted.
BROWSER_RENDERED_TYPES = frozenset({"LOAD_3D"})
DYNAMIC_COMBO_TYPE = "COMFY_DYNAMICCOMBO_V3"  # a combo whose value decides which further inputs the node has
CONTROL_VALUES = frozenset({"fixed", "increment", "decrement", "randomize", "increment-wrap"})
# Input option keys that make the frontend add an upload widget (its value, e.g. "image", is saved too).
UPLOAD_OPTION_KEYS = ("image_upload", "video_upload", "audio_upload", "animated_image_upload", "file_upload")
UPLOAD_VALUES = frozenset({"image", "video", "audio", "file", "upload", "", None})
# The frontend adds a control widget to INT inputs with these names even without `control_after_generate`.
IMPLICIT_SEED_NAMES = frozenset({"seed", "noise_seed"})
NODE_MODES = frozenset({0, 1, 2, 3, 4})  # always, on event, never (muted), on trigger, bypass
# A link followed through more reroutes, bypassed nodes and subgraph boundaries than this is refused: each hop
# is a Python frame, and the interpreter's limit is about 1000. A reroute is two hops (its input, its output).
MAX_LINK_HOPS = 300
# Hops over all of a workflow's links together (~1 s of CPU): a node with 50,000 inputs, each through a chain of
# reroutes, fits a request's size and would otherwise cost minutes.
MAX_TOTAL_LINK_HOPS = 1_000_000


class WorkflowConversionError(WorkflowError):
    """A UI-format workflow cannot be converted; the message names the node and what is wrong with it."""

    code = "workflow_conversion_error"

    def __init__(self, message: str, details: dict[str, Any] | None = None, *, node_id: str | None = None):
        merged = dict(details or {})
        if node_id is not None:
            merged.setdefault("node_id", node_id)
        super().__init__(message, merged)
        self.node_id = node_id


# The workflow uses node types this ComfyUI does not have: the one refusal of a missing class (node_packs.missing_node),
# which names the node id, class and title and, from the node's `properties` (cnr_id, aux_id, ver), the pack's line.
UnknownNodeTypeError = MissingNodeError


# --------------------------------------------------------------------------------------------------------------
# Format detection


def is_ui_format(obj: Any) -> bool:
    """True for a GUI-saved workflow (`nodes` list), False for an API-format prompt or anything else."""
    return isinstance(obj, dict) and isinstance(obj.get("nodes"), list) and "class_type" not in obj


# --------------------------------------------------------------------------------------------------------------
# Widgets from /object_info


@dataclass(frozen=True)
class _WidgetSlot:
    """One entry of a node's widget list, in the order the frontend creates widgets (and saves values)."""

    name: str
    serialize: bool  # False for frontend-only widgets (control, filter list, upload): value never sent
    optional: bool = False  # present in some frontend versions only; matched by value
    saved: bool = True  # False: never in `widgets_values` (loading skips it), its default is sent
    accepts: frozenset | None = None  # values an optional slot may hold
    default: Any = None
    # A dynamic combo (V3 DynamicCombo): option key -> the inputs that option adds. The frontend draws their widgets
    # right after the combo, named "<combo>.<input>", once the combo holds that key.
    dynamic: Any = None

    def expand(self, value: Any) -> list["_WidgetSlot"]:
        """The widgets a dynamic combo adds after itself when it holds `value` (none for other slots)."""
        if not self.dynamic or not _hashable_in(value, frozenset(self.dynamic)):
            return []
        return _slots_for(_option_inputs(self.dynamic[value]), prefix=f"{self.name}.")


def _input_spec_type(spec: Any) -> str:
    """"COMBO" for a V1 list combo, otherwise the declared type name."""
    if isinstance(spec, (list, tuple)) and spec:
        head = spec[0]
        if isinstance(head, list):
            return "COMBO"
        return str(head)
    return str(spec)


def _widget_kind(spec: Any) -> str:
    """The widget an input gets: a multi-type input ("FLOAT,INT", V3 MultiType) names its widget in `widgetType`."""
    widget_type = _input_options(spec).get("widgetType")
    return widget_type if isinstance(widget_type, str) and widget_type else _input_spec_type(spec)


def _input_options(spec: Any) -> dict[str, Any]:
    if isinstance(spec, (list, tuple)) and len(spec) > 1 and isinstance(spec[1], dict):
        return spec[1]
    return {}


def _default_for(spec: Any) -> Any:
    """The value the frontend's widget for `spec` starts with (a fresh copy: list and dict values are mutable)."""
    opts = _input_options(spec)
    kind = _widget_kind(spec)
    widget = WIDGETS.get(kind, _WidgetType())
    found: Any = opts if widget.default_path else None
    for key in widget.default_path or ():
        found = found.get(key) if isinstance(found, dict) else None
    if found is not None or (widget.default_path == ("default",) and "default" in opts):
        return copy.deepcopy(found)
    if kind == "COMBO":
        options = spec[0] if isinstance(spec[0], list) else opts.get("options") or []
        return options[0] if options else None
    return copy.deepcopy(widget.fallback)


def _ordered_inputs(info: dict[str, Any], section: str) -> list[tuple[str, Any]]:
    specs = (info.get("input") or {}).get(section) or {}
    order = (info.get("input_order") or {}).get(section) or list(specs)
    names = [n for n in order if n in specs] + [n for n in specs if n not in order]
    return [(n, specs[n]) for n in names]


def _dynamic_options(spec: Any) -> dict[str, Any] | None:
    """A V3 DynamicCombo's options as {key: inputs}, or None when `spec` is not one."""
    if _input_spec_type(spec) != DYNAMIC_COMBO_TYPE:
        return None
    options = _input_options(spec).get("options")
    if not isinstance(options, list):
        return {}
    return {o["key"]: o.get("inputs") or {} for o in options
            if isinstance(o, dict) and _hashable(o.get("key")) and o.get("key") is not None}


def _option_inputs(inputs: Any) -> list[tuple[str, list[tuple[str, Any]]]]:
    """The (section, [(name, spec)]) of one dynamic combo option, in the order the frontend adds them."""
    if not isinstance(inputs, dict):
        return []
    return [(section, list((inputs.get(section) or {}).items())) for section in ("required", "optional")
            if isinstance(inputs.get(section) or {}, dict)]


def widget_slots(info: dict[str, Any]) -> list[_WidgetSlot]:
    """The widget list the frontend builds for a node class, including its frontend-only widgets. A dynamic
    combo's own inputs are not in it: they depend on the value it holds (`_WidgetSlot.expand`)."""
    injected = list(INJECTED_INPUTS.get(info.get("name"), ()))
    return _slots_for([(section, _ordered_inputs(info, section) + (injected if section == "required" else []))
                       for section in ("required", "optional")])


def _slots_for(sections: list[tuple[str, list[tuple[str, Any]]]], prefix: str = "") -> list[_WidgetSlot]:
    slots: list[_WidgetSlot] = []
    for _section, entries in sections:
        upload_after: list[_WidgetSlot] = []
        for bare_name, spec in entries:
            name = prefix + bare_name
            kind = _widget_kind(spec)
            opts = _input_options(spec)
            dynamic = _dynamic_options(spec)
            if dynamic is not None:
                keys = list(dynamic)
                default = opts.get("default", keys[0] if keys else None)
                slots.append(_WidgetSlot(name, True, default=default, dynamic=dynamic))
                continue
            widget = WIDGETS.get(kind)
            if widget is None or opts.get("forceInput"):
                continue
            slots.append(_WidgetSlot(name, True, default=_default_for(spec), saved=widget.saved))
            slots.extend(_WidgetSlot(f"{name}:{helper}", False) for helper in widget.helpers)
            control = opts.get("control_after_generate")
            if control is None and kind == "INT" and name in IMPLICIT_SEED_NAMES:
                # Newer frontends add the control for these names; older ones do not: match by value.
                slots.append(_WidgetSlot(f"{name}:control", False, optional=True, accepts=CONTROL_VALUES))
            elif control and kind in ("INT", "FLOAT"):
                slots.append(_WidgetSlot(f"{name}:control", False))
            elif control and kind == "COMBO":
                slots.append(_WidgetSlot(f"{name}:control", False))
                slots.append(_WidgetSlot(f"{name}:control_filter", False))
            if kind == "COMBO" and any(opts.get(k) for k in UPLOAD_OPTION_KEYS):
                # The upload widget is added after the section's other inputs (frontend uploadImage.ts).
                upload_after.append(_WidgetSlot(f"{name}:upload", False, optional=True, accepts=UPLOAD_VALUES))
        slots.extend(upload_after)
    return slots


def match_values(slots: list[_WidgetSlot], values: list[Any]) -> list[tuple[_WidgetSlot, Any]] | None:
    """Assign saved values to widget slots, deciding for each optional slot whether it was saved.

    Returns None when no assignment uses up exactly all values. Prefers taking an optional slot when its
    value fits, so a seed's "randomize" never lands on the next widget. A dynamic combo's value brings in the
    widgets of the option it selects, right after it, as the frontend does while it loads the saved values.
    """

    def walk(slots: list[_WidgetSlot], si: int, vi: int) -> list[tuple[_WidgetSlot, Any]] | None:
        if si == len(slots):
            return [] if vi == len(values) else None
        slot = slots[si]
        if not slot.saved:
            return walk(slots, si + 1, vi)
        if slot.optional:
            if vi < len(values) and (slot.accepts is None or _hashable_in(values[vi], slot.accepts)):
                rest = walk(slots, si + 1, vi + 1)
                if rest is not None:
                    return [(slot, values[vi]), *rest]
            return walk(slots, si + 1, vi)
        if vi >= len(values):
            return None
        added = slot.expand(values[vi])
        if added:
            slots = [*slots[:si + 1], *added, *slots[si + 1:]]
        rest = walk(slots, si + 1, vi + 1)
        return None if rest is None else [(slot, values[vi]), *rest]

    return walk(list(slots), 0, 0)


def _hashable_in(value: Any, accepted: frozenset) -> bool:
    try:
        return value in accepted
    except TypeError:
        return False


def _custom_combo_values(saved: list[Any]) -> dict[str, Any]:
    """CustomCombo's widgets, which the frontend builds itself (extensions/core/customWidgets.ts): `choice`, a hidden
    `index`, then `option1`, `option2`... Loading sets the options in order, and setting the last one to a value
    adds an empty one after it, so the options are the saved values up to the first empty one (an empty one is
    always last). `index` is computed, never read: where `choice` stands among the options, -1 when nowhere. The
    server passes all of them to the node (it accepts every input), which outputs `choice` and `index`."""
    choice = saved[0] if saved else ""
    options: list[Any] = []
    for value in [*saved[2:], ""]:
        options.append(value)
        if value in ("", None):
            break
    index = next((i for i, value in enumerate(options) if value == choice and type(value) is type(choice)), -1)
    return {"choice": choice, "index": index, **{f"option{i}": value for i, value in enumerate(options, 1)}}


# Nodes whose widgets a frontend extension builds beyond what /object_info declares.
NODE_WIDGET_EXTENSIONS = {"CustomCombo": _custom_combo_values}


def widget_values_by_name(
    node_id: str, class_type: str, info: dict[str, Any], saved: Any
) -> dict[str, Any]:
    """Map a node's saved `widgets_values` (list or dict) to `{input name: value}` for the API prompt."""
    extension = NODE_WIDGET_EXTENSIONS.get(class_type)
    if extension is not None and isinstance(saved, list):
        return extension(saved)
    slots = widget_slots(info)
    if saved is None:
        saved = []
    if isinstance(saved, dict):
        # Some custom nodes save their widgets by name.
        return {s.name: saved.get(s.name, s.default) for s in _final_slots(slots, saved) if s.serialize}
    if not isinstance(saved, list):
        raise WorkflowConversionError(
            f"Node {node_id} ({class_type}) has widgets_values of type {type(saved).__name__}; "
            "expected a list or an object.",
            {"class_type": class_type},
            node_id=node_id,
        )
    matched = match_values(slots, saved)
    if matched is None:
        # Fewer values than widgets (an older save of a node that gained inputs) or more (a frontend widget
        # we do not know). Assign greedily like the frontend does and keep defaults for what is missing.
        log.warning(
            "node %s (%s): %d saved widget values for %d widgets; mapping by position",
            node_id, class_type, len(saved), len(slots),
        )
        matched = []
        vi = 0
        pending = list(slots)
        while pending:
            slot = pending.pop(0)
            if not slot.saved:
                continue
            if slot.optional and not (vi < len(saved) and _hashable_in(saved[vi], slot.accepts or frozenset())):
                continue
            value = saved[vi] if vi < len(saved) else slot.default
            pending[:0] = slot.expand(value)
            if vi < len(saved):
                matched.append((slot, saved[vi]))
                vi += 1
            elif slot.dynamic:
                matched.append((slot, value))  # a default that selects an option: its widgets come with it
    assigned = {slot.name: value for slot, value in matched if slot.serialize}
    return {slot.name: assigned.get(slot.name, slot.default) for slot in _final_slots(slots, assigned) if slot.serialize}


def _final_slots(slots: list[_WidgetSlot], assigned: dict[str, Any]) -> list[_WidgetSlot]:
    """The node's widgets once every dynamic combo holds its assigned (else default) value, nested ones included."""
    out: list[_WidgetSlot] = []
    for slot in slots:
        out.append(slot)
        if slot.dynamic:
            out.extend(_final_slots(slot.expand(assigned.get(slot.name, slot.default)), assigned))
    return out


def _wrap(value: Any) -> Any:
    """List widget values would read as links in the API format; the server unwraps `__value__`."""
    return {"__value__": value} if isinstance(value, list) else value


# --------------------------------------------------------------------------------------------------------------
# Graph model: every node of the root graph and of every subgraph instance, keyed by execution id


@dataclass(frozen=True)
class _Link:
    id: str
    origin_id: str
    origin_slot: int
    target_id: str
    target_slot: int
    type: Any


@dataclass
class _Scope:
    """One graph: the root workflow, or one instance of a subgraph definition."""

    path: tuple[str, ...]  # execution ids of the subgraph instances from the root down to this graph
    nodes: dict[str, dict[str, Any]]
    links: dict[str, _Link]
    definition: dict[str, Any] | None = None
    instance: "_Node | None" = None  # the subgraph node (in the parent scope) this scope is an instance of
    _fed: dict[int, list[_Link]] | None = None  # definition input slot -> the links it feeds (fed_by_input)
    _from: dict[str, list[_Link]] | None = None  # origin node id -> its links (links_from)
    _to_output: dict[int, _Link] | None = None  # definition output slot -> the link into it (output_link)
    _promoted: list[int] | None = None  # _promoted_slots, once per scope

    # Each index is built once per scope, so that a graph's size never makes a lookup quadratic.

    def links_from(self, origin_id: str) -> list[_Link]:
        if self._from is None:
            self._from = {}
            for link in self.links.values():
                self._from.setdefault(link.origin_id, []).append(link)
        return self._from.get(origin_id, [])

    def output_link(self, slot: int) -> _Link | None:
        """The link into the definition's output `slot` (the first in the links table, as the frontend finds it)."""
        if self._to_output is None:
            self._to_output = {}
            for link in self.links.values():
                if link.target_id == SUBGRAPH_OUTPUT_ID:
                    self._to_output.setdefault(link.target_slot, link)
        return self._to_output.get(slot)

    def fed_by_input(self, definition_slot: int) -> list[_Link]:
        """The links from the definition's input `definition_slot`, in the order of the input's `linkIds`, then in
        the links table's; built once per scope, so a graph's size never makes this quadratic."""
        if self._fed is None:
            self._fed = {}
            for link in self.links.values():
                if link.origin_id == SUBGRAPH_INPUT_ID:
                    self._fed.setdefault(link.origin_slot, []).append(link)
        links = self._fed.get(definition_slot, [])
        declared = (self.definition or {}).get("inputs")
        entry = declared[definition_slot] if isinstance(declared, list) and 0 <= definition_slot < len(declared) else {}
        order = entry.get("linkIds") if isinstance(entry, dict) and isinstance(entry.get("linkIds"), list) else []
        rank = {_id(i): n for n, i in enumerate(order) if _hashable(i)}
        return sorted(links, key=lambda link: rank.get(link.id, len(rank)))


@dataclass
class _Node:
    scope: _Scope
    raw: dict[str, Any]
    id: str  # id within its scope
    exec_id: str  # "outer:inner" path id
    type: str
    mode: int
    subgraph: _Scope | None = None  # for a subgraph instance: its inner scope
    widget_overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def inputs(self) -> list[dict[str, Any]]:
        return self.raw.get("inputs") or []

    @property
    def outputs(self) -> list[dict[str, Any]]:
        return self.raw.get("outputs") or []

    def label(self) -> str:
        title = self.raw.get("title")
        shown = f", {title[:100] + ('...' if len(title) > 100 else '')!r}" if title else ""  # bounded; repr escapes
        return f"{self.exec_id} ({safe_text(self.type, 100)}{shown})"


def _id(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _with_unique_node_ids(subgraphs: list[Any], workflow: dict[str, Any]) -> list[dict[str, Any]]:
    """The subgraph definitions with their node ids made unique across the whole file, as the frontend does on load
    (litegraph subgraphDeduplication.ts), since a prompt's node ids are `<instance>:<inner id>`.

    Ids are taken in file order, root nodes' numeric ids first; an inner node whose id is already taken gets the next
    free id after the graph's last node id (`state.lastNodeId`, or `last_node_id` in a version 0.4 file), which
    every id kept also raises. The definition's links follow. Copies: the caller's workflow is not changed.
    """
    def numeric(value: Any) -> int | None:
        key = _id(value)
        return int(key) if key.lstrip("-").isdigit() and str(int(key)) == key else None

    state = workflow.get("state")
    last = 0
    if workflow.get("version") != 0.4 and isinstance(state, dict) and _is_number(state.get("lastNodeId")):
        last = max(0, int(state["lastNodeId"]))
    if _is_number(workflow.get("last_node_id")):
        last = int(workflow["last_node_id"])
    root_nodes = workflow.get("nodes") if isinstance(workflow.get("nodes"), list) else []
    used_numbers = {int(n["id"]) for n in root_nodes
                    if isinstance(n, dict) and _is_number(n.get("id")) and float(n["id"]).is_integer()}
    used_keys = {str(n) for n in used_numbers}
    out = []
    for definition in subgraphs:
        if not isinstance(definition, dict):
            continue
        if not isinstance(definition.get("nodes"), list) or not isinstance(definition.get("links") or [], list):
            out.append(definition)  # malformed: refused, with the field named, where it is read
            continue
        remap: dict[str, int] = {}
        nodes = []
        for node in definition["nodes"]:
            if not isinstance(node, dict) or node.get("id") is None or not _hashable(node["id"]):
                nodes.append(node)
                continue
            key = _id(node["id"])
            if key in used_keys:
                while True:
                    last += 1
                    if last not in used_numbers:
                        break
                remap[key] = last
                used_numbers.add(last)
                used_keys.add(str(last))
                nodes.append({**node, "id": last})
                continue
            used_keys.add(key)
            number = numeric(node["id"])
            if number is not None:
                used_numbers.add(number)
                last = max(last, number)
            nodes.append(node)
        if remap:
            definition = {**definition, "nodes": nodes, "links": [_remapped_link(link, remap)
                                                                  for link in definition.get("links") or []]}
        out.append(definition)
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value and abs(value) < 2**53


def _remapped_link(link: Any, remap: dict[str, int]) -> Any:
    if isinstance(link, dict):
        return {**link, **{k: remap[_id(link[k])] for k in ("origin_id", "target_id") if k in link
                           and _hashable(link[k]) and _id(link[k]) in remap}}
    if isinstance(link, list) and len(link) >= 4:
        patched = list(link)
        for i in (1, 3):
            if _hashable(patched[i]) and _id(patched[i]) in remap:
                patched[i] = remap[_id(patched[i])]
        return patched
    return link


def _parse_links(raw_links: Any, where: str) -> dict[str, _Link]:
    links: dict[str, _Link] = {}
    if raw_links is not None and not isinstance(raw_links, list):
        raise _malformed(f"The 'links' of {where} must be a list, not {type(raw_links).__name__}.", {"field": "links"})
    for position, raw in enumerate(raw_links or []):
        if raw is None:
            continue
        try:
            if not isinstance(raw, (dict, list)):
                raise TypeError(f"it is a {type(raw).__name__}")
            if isinstance(raw, dict):  # version 1 (and subgraph definitions)
                link = _Link(
                    _id(raw["id"]), _id(raw["origin_id"]), _slot_index(raw["origin_slot"]),
                    _id(raw["target_id"]), _slot_index(raw["target_slot"]), raw.get("type"),
                )
            else:  # version 0.4: [id, origin_id, origin_slot, target_id, target_slot, type]
                if len(raw) < 5:
                    raise IndexError(f"it has {len(raw)} items")
                link = _Link(_id(raw[0]), _id(raw[1]), _slot_index(raw[2]), _id(raw[3]), _slot_index(raw[4]),
                             raw[5] if len(raw) > 5 else None)
        except (KeyError, IndexError, TypeError, ValueError, OverflowError) as exc:
            reason = f"it has no {exc}" if isinstance(exc, KeyError) else safe_text(exc, 120)
            raise _malformed(
                f"The links table of {where} has a malformed entry at position {position} ({reason}): a link is "
                "[id, origin_id, origin_slot, target_id, target_slot, type], or an object with those keys, the slots "
                "whole numbers.", {"field": "links", "position": position}) from None
        links[link.id] = link
    return links


def _slot_index(value: Any) -> int:
    """A link's slot as the GUI writes it: a whole number (not true, not 0.5)."""
    if isinstance(value, bool) or not (isinstance(value, int) or isinstance(value, float) and value.is_integer()):
        raise ValueError(f"slot {safe_text(value, 40)!s} is not a whole number")
    return int(value)


def _node_map(raw_nodes: Any, where: str) -> dict[str, dict[str, Any]]:
    if not isinstance(raw_nodes, list):
        raise _malformed(f"The 'nodes' of {where} must be a list.", {"field": "nodes"})
    nodes: dict[str, dict[str, Any]] = {}
    for raw in raw_nodes:
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), (int, float, str)) or isinstance(raw.get("id"), bool) \
                or not isinstance(raw.get("type"), str) or not raw["type"]:
            shown = {k: raw.get(k) for k in ("id", "type")} if isinstance(raw, dict) else type(raw).__name__
            raise _malformed(f"{where[:1].upper()}{where[1:]} has a node without an id or a type: {safe_text(shown, 80)}.",
                             {"field": "nodes"})
        _check_node_shape(raw, where)
        nodes[_id(raw["id"])] = raw
    return nodes


def _check_node_shape(raw: dict[str, Any], where: str) -> None:
    """The fields of a saved node the converter reads, with the types the GUI writes; anything else is the
    caller's error, named by node and field (not a crash in the converter)."""
    node_id = _id(raw["id"])

    def bad(field: str, rule: str) -> WorkflowError:
        return _malformed(
            f"Node {safe_text(node_id, 64)} ({safe_text(raw['type'], 64)}) of {where}: '{field}' {rule}.",
            {"node_id": node_id, "field": field},
        )

    if isinstance(raw["id"], float) and not raw["id"].is_integer() \
            or isinstance(raw["id"], str) and (len(raw["id"]) > 64 or not raw["id"].isprintable()):
        raise bad("id", "must be an integer or a short printable string")
    mode = raw.get("mode")
    if mode is not None and (isinstance(mode, bool) or not isinstance(mode, int) or mode not in NODE_MODES):
        raise bad("mode", "must be one of 0 (always), 2 (muted) or 4 (bypassed)")
    if raw.get("title") is not None and not isinstance(raw["title"], str):
        raise bad("title", "must be a string")
    widgets = raw.get("widgets_values")
    if widgets is not None and not isinstance(widgets, (list, dict)):
        raise bad("widgets_values", "must be a list or an object")
    for key in ("inputs", "outputs"):
        slots = raw.get(key)
        if slots is None:
            continue
        if not isinstance(slots, list):
            raise bad(key, f"must be a list of slot objects, not {type(slots).__name__}")
        for index, slot in enumerate(slots):
            if not isinstance(slot, dict):
                raise bad(f"{key}[{index}]", "must be an object")
            if (key == "inputs" or slot.get("name") is not None) and not isinstance(slot.get("name"), str):
                raise bad(f"{key}[{index}].name", "must be a string (the input's name, which the graph is keyed by)")
            if not _hashable(slot.get("type")):
                raise bad(f"{key}[{index}].type", "must be a type name")
            widget = slot.get("widget")
            if widget is not None and not (isinstance(widget, dict) and isinstance(widget.get("name", ""), str)):
                raise bad(f"{key}[{index}].widget", "must be an object with a string 'name'")
            if key == "inputs":
                link = slot.get("link")
                if link is not None and not _is_link_id(link):
                    raise bad(f"inputs[{index}].link", "must be a link id (an integer) or null")


def _check_definition_shape(definition: dict[str, Any]) -> None:
    """A subgraph definition's `inputs` and `outputs` as the GUI writes them (lists of objects, each name a
    string): the converter looks inputs up by name, so anything else is the caller's error, named."""
    where = f"subgraph {safe_text(definition.get('name') or definition.get('id'), 64)!r}"
    for key in ("inputs", "outputs"):
        entries = definition.get(key)
        if entries is None:
            continue
        if not isinstance(entries, list):
            raise _malformed(f"The '{key}' of {where} must be a list of objects, not {type(entries).__name__}.",
                             {"field": f"definitions.subgraphs.{key}"})
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict) or (entry.get("name") is not None and not isinstance(entry["name"], str)):
                raise _malformed(f"'{key}[{index}]' of {where} must be an object whose 'name' is a string.",
                                 {"field": f"definitions.subgraphs.{key}[{index}]"})


def _hashable(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float))


def _is_link_id(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, (int, str))


def _malformed(message: str, details: dict[str, Any] | None = None) -> WorkflowError:
    """A UI workflow whose JSON is not shaped as the GUI saves it: the caller's error (`invalid_workflow`)."""
    return WorkflowError("Input 'workflow' is not a valid ComfyUI GUI workflow: " + message[0].lower() + message[1:],
                         details)


class _Converter:
    def __init__(self, workflow: dict[str, Any], object_info: dict[str, Any], limits: WorkflowLimits,
                 packs: node_packs.PackRecord | None = None):
        self.packs = packs
        self.workflow = workflow
        self.object_info = object_info
        self.limits = limits
        definitions = _object_or_none(workflow.get("definitions"), "definitions")
        subgraphs = (definitions or {}).get("subgraphs")
        if subgraphs is not None and not isinstance(subgraphs, list):
            raise _malformed("'definitions.subgraphs' must be a list.", {"field": "definitions.subgraphs"})
        self.definitions = {_id(d.get("id")): d for d in _with_unique_node_ids(subgraphs or [], workflow)}
        for definition in self.definitions.values():
            _check_definition_shape(definition)
        extra = _object_or_none(workflow.get("extra"), "extra")
        self.group_nodes = _object_or_none((extra or {}).get("groupNodes"), "extra.groupNodes") or {}
        self.by_exec_id: dict[str, _Node] = {}
        self.order: list[_Node] = []
        self.hops = 0  # link-resolution steps so far (MAX_TOTAL_LINK_HOPS)

    # ---- expansion ------------------------------------------------------------------------------------------

    def expand(self) -> None:
        root = _Scope((), _node_map(self.workflow.get("nodes"), "the workflow"), _parse_links(self.workflow.get("links"), "the workflow"))
        self._check_expanded_size(root)
        self._expand_scope(root, parent_mode=MODE_ALWAYS, stack=())

    def _check_expanded_size(self, root: _Scope) -> None:
        """Count the nodes the expansion will make, and the subgraph nesting, before making any.

        Why first: each subgraph instance is a copy of its definition, so definitions that hold ten instances of
        the next grow tenfold per level (6 KB of JSON became a million nodes and 2 GB). Counting per definition
        (memoised) costs one pass over the JSON; the recursion stops at the depth limit, never at Python's.
        """
        limits = self.limits
        sizes: dict[str, tuple[int, int]] = {}  # definition id -> (nodes it expands to, nesting below it)

        def definition_size(def_id: str, depth: int, stack: tuple[str, ...]) -> tuple[int, int]:
            if depth > limits.max_subgraph_depth:
                raise too_deep()
            if def_id in stack:
                raise WorkflowConversionError(
                    f"Subgraph {safe_text(def_id, 64)} contains itself.", {"subgraph": def_id})
            known = sizes.get(def_id)
            if known is None:
                definition = self.definitions[def_id]
                where = f"subgraph {safe_text(definition.get('name') or def_id, 64)!r}"
                nodes = _node_map(definition.get("nodes") or [], where)
                known = scope_size(nodes.values(), depth, (*stack, def_id))
                sizes[def_id] = known
            if depth + known[1] > limits.max_subgraph_depth:
                raise too_deep()
            return known

        def too_deep() -> WorkflowError:
            return WorkflowError(
                f"Input 'workflow' nests subgraphs more than {limits.max_subgraph_depth} deep, over this worker's "
                f"limit (WORKFLOW_MAX_SUBGRAPH_DEPTH).",
                {"field": "workflow", "limit": "max_subgraph_depth", "max_subgraph_depth": limits.max_subgraph_depth},
            )

        def scope_size(nodes: Any, depth: int, stack: tuple[str, ...]) -> tuple[int, int]:
            total, below = 0, 0
            for raw in nodes:
                total += 1
                child = _id(raw["type"])
                if child in self.definitions:
                    size, height = definition_size(child, depth + 1, stack)
                    total += size
                    below = max(below, height + 1)
                if total > limits.max_nodes:
                    raise too_many_nodes(total, limits, at_least=True)
            return total, below

        scope_size(root.nodes.values(), 0, ())

    def _expand_scope(self, scope: _Scope, parent_mode: int, stack: tuple[str, ...]) -> None:
        for node_id, raw in scope.nodes.items():
            mode = int(raw.get("mode") or 0)
            if parent_mode in (MODE_NEVER, MODE_BYPASS) and mode == MODE_ALWAYS:
                # Inside a muted or bypassed subgraph instance of the root graph nothing runs.
                mode = MODE_NEVER
            node = _Node(scope, raw, node_id, ":".join((*scope.path, node_id)), raw["type"], mode)
            self.by_exec_id[node.exec_id] = node
            self.order.append(node)
            definition = self.definitions.get(node.type)
            if definition is not None:
                if node.type in stack:
                    raise WorkflowConversionError(
                        f"Node {node.label()} is a subgraph that contains itself.", {"subgraph": node.type},
                        node_id=node.exec_id,
                    )
                where = f"subgraph {definition.get('name') or node.type!r}"
                inner = _Scope(
                    (*scope.path, node_id), _node_map(definition.get("nodes") or [], where),
                    _parse_links(definition.get("links"), where), definition, node,
                )
                node.subgraph = inner
                # The frontend (graphToPrompt) skips the inner nodes of muted and bypassed instances of the root graph
                # only: inside a subgraph, a muted or bypassed instance passes its inputs through as any node does,
                # but its inner nodes are queued with their own modes, and ComfyUI runs those an output needs.
                inherited = mode if not scope.path or parent_mode in (MODE_NEVER, MODE_BYPASS) else MODE_ALWAYS
                self._expand_scope(inner, inherited, (*stack, node.type))
            elif node.type in self.group_nodes or node.type.startswith(("workflow>", "workflow/")):
                raise WorkflowConversionError(
                    f"Node {node.label()} is a legacy group node, which this converter does not flatten; open the "
                    "workflow in the ComfyUI GUI, convert the group node to a subgraph (or ungroup it), save, and "
                    "submit it again.",
                    {"class_type": node.type},
                    node_id=node.exec_id,
                )

    # ---- checks ---------------------------------------------------------------------------------------------

    def check_types(self) -> None:
        missing = [
            n for n in self.order
            if n.mode not in (MODE_NEVER, MODE_BYPASS)
            and n.subgraph is None
            and n.type not in VIRTUAL_TYPES
            and n.type not in self.object_info
        ]
        if not missing:
            return
        # A node of an unknown class cannot be converted (its widgets are mapped from /object_info), so the refusal
        # is made here, before conversion, with the node's pack properties the GUI saved.
        found = [{"node_id": n.exec_id, "class_type": n.type, "title": n.raw.get("title"),
                  "properties": n.raw.get("properties")} for n in missing]
        first = found[0]
        raise node_packs.missing_node(first["node_id"], first["class_type"], first["title"], first["properties"],
                                      self.packs, found)

    # ---- primitive nodes ------------------------------------------------------------------------------------

    def apply_primitives(self) -> None:
        """PrimitiveNode writes its value into every widget it is linked to (frontend `applyToGraph`)."""
        for node in self.order:
            if node.type != PRIMITIVE_TYPE:
                continue
            values = node.raw.get("widgets_values")
            if not isinstance(values, list) or not values:
                continue
            value = values[0]
            for link in node.scope.links_from(node.id):
                target = node.scope.nodes.get(link.target_id)
                if target is None:
                    continue
                target_inputs = target.get("inputs") or []
                if not 0 <= link.target_slot < len(target_inputs):
                    continue
                slot = target_inputs[link.target_slot]
                widget_name = (slot.get("widget") or {}).get("name")
                if not widget_name:
                    continue
                exec_id = ":".join((*node.scope.path, link.target_id))
                self.by_exec_id[exec_id].widget_overrides[widget_name] = value

    # ---- link resolution (after litegraph's ExecutableNodeDTO) ------------------------------------------------

    def resolve_input(self, node: _Node, slot: int, visited: set[str], want_type: Any = None) -> tuple | None:
        """Where input `slot` of `node` really comes from.

        Returns None (nothing connected: keep the widget value), ("widget", value) (a subgraph widget value),
        or ("link", origin_exec_id, origin_slot).
        """
        key = f"{node.exec_id}[I]{slot}"
        self._check_hops(node, visited)
        if key in visited:
            raise WorkflowConversionError(
                f"Node {node.label()}: circular link while resolving input {slot}.", node_id=node.exec_id
            )
        visited.add(key)
        inputs = node.inputs
        if not 0 <= slot < len(inputs):
            raise WorkflowConversionError(
                f"Node {node.label()} has no input slot {slot}.", {"slot": slot}, node_id=node.exec_id
            )
        inp = inputs[slot]
        link_id = inp.get("link")
        if link_id is None:
            return None
        link = node.scope.links.get(_id(link_id))
        if link is None:
            raise WorkflowConversionError(
                f"Node {node.label()} input '{safe_text(inp.get('name'), 100)}' refers to link "
                f"{safe_text(link_id, 40)}, which is not in the "
                "workflow's links table.",
                {"input": inp.get("name"), "link": link_id},
                node_id=node.exec_id,
            )
        scope = node.scope
        if scope.instance is not None and link.origin_id == SUBGRAPH_INPUT_ID:
            return self._resolve_from_subgraph_input(node, inp, link, visited)
        origin = self.by_exec_id.get(":".join((*scope.path, link.origin_id)))
        if origin is None:
            raise WorkflowConversionError(
                f"Node {node.label()} input '{inp.get('name')}' is linked to node {link.origin_id}, which is not in "
                "the workflow.",
                {"input": inp.get("name"), "origin_id": link.origin_id},
                node_id=node.exec_id,
            )
        return self.resolve_output(origin, link.origin_slot, want_type if want_type is not None else inp.get("type"), visited)

    def _resolve_from_subgraph_input(self, node: _Node, inp: dict, link: _Link, visited: set[str]) -> tuple | None:
        instance = node.scope.instance
        assert instance is not None
        outer_inputs = instance.inputs
        outer_slot = _instance_slot(instance, link.origin_slot)
        saved = 0 <= outer_slot < len(outer_inputs)
        if saved and outer_inputs[outer_slot].get("link") is not None:
            return self.resolve_input(instance, outer_slot, visited)
        # Unconnected outside: the value the instance shows for it, if it saved one.
        value = self._promoted_widget_value(instance, outer_slot) if saved else _MISSING
        if value is _MISSING:
            value = _definition_widget_value(instance, link.origin_slot)
        if value is _MISSING and not inp.get("widget"):
            # A socket (PreviewAny's source, a switch's branch) reads what the instance shows for that input: the
            # promoted widget, which is the first inner widget the same input feeds, at its own value.
            value = self._inner_widget_value(node.scope, link.origin_slot)
        return None if value is _MISSING else ("widget", value)

    def _inner_widget_value(self, scope: _Scope, definition_slot: int) -> Any:
        for link in scope.fed_by_input(definition_slot):
            target = self.by_exec_id.get(":".join((*scope.path, link.target_id)))
            inputs = target.inputs if target is not None else []
            widget = (inputs[link.target_slot].get("widget") or {}) if 0 <= link.target_slot < len(inputs) else {}
            info = self.object_info.get(target.type) if target is not None else None
            if not widget.get("name") or info is None:
                continue
            values = widget_values_by_name(target.exec_id, target.type, info, target.raw.get("widgets_values"))
            values.update(target.widget_overrides)
            if widget["name"] in values:
                return values[widget["name"]]
        return _MISSING

    def _promoted_widget_value(self, instance: _Node, slot: int) -> Any:
        """The value of the widget a subgraph instance shows for input `slot`, if it saved one."""
        inputs = instance.inputs
        if not inputs[slot].get("widget"):
            return _MISSING
        saved = instance.raw.get("widgets_values")
        widget_slots_idx = [i for i, x in enumerate(inputs) if x.get("widget")]
        if isinstance(saved, dict):
            name = inputs[slot].get("name")
            return saved.get(name, _MISSING)
        if not isinstance(saved, list) or len(saved) != len(widget_slots_idx):
            return _MISSING
        return saved[widget_slots_idx.index(slot)]

    def resolve_output(self, node: _Node, slot: int, want_type: Any, visited: set[str]) -> tuple | None:
        key = f"{node.exec_id}[O]{slot}"
        self._check_hops(node, visited)
        if key in visited:
            raise WorkflowConversionError(
                f"Node {node.label()}: circular link while resolving output {slot}.", node_id=node.exec_id
            )
        visited.add(key)
        if node.mode == MODE_BYPASS:
            index = self._bypass_slot(node, slot, want_type)
            if index < 0:
                log.info("bypassed node %s has no input matching type %s for output %d", safe_text(node.label()),
                         safe_text(want_type), slot)
                return None
            return self.resolve_input(node, index, visited)
        if node.subgraph is not None:
            return self._resolve_subgraph_output(node, slot, want_type, visited)
        if node.type in VIRTUAL_TYPES:
            if slot < len(node.inputs):  # Reroute: output n forwards input n
                return self.resolve_input(node, slot, visited, want_type)
            return None  # PrimitiveNode and friends: the value was copied into the target widget
        return ("link", node.exec_id, slot)

    def _bypass_slot(self, node: _Node, slot: int, want_type: Any) -> int:
        inputs = node.inputs
        if want_type in ("*", "", None):
            return slot if len(inputs) > slot else (0 if inputs else -1)
        outputs = node.outputs
        out_type = outputs[slot].get("type") if 0 <= slot < len(outputs) else want_type
        if slot < len(inputs):
            t = inputs[slot].get("type")
            if _valid_connection(t, out_type) and _valid_connection(t, want_type):
                return slot
        for i, x in enumerate(inputs):
            if x.get("type") == want_type:
                return i
        for i, x in enumerate(inputs):
            if _valid_connection(x.get("type"), out_type) and _valid_connection(x.get("type"), want_type):
                return i
        return -1

    def _resolve_subgraph_output(self, node: _Node, slot: int, want_type: Any, visited: set[str]) -> tuple | None:
        inner = node.subgraph
        assert inner is not None
        link = inner.output_link(slot)
        if link is None:
            return None
        if link.origin_id == SUBGRAPH_INPUT_ID:  # an input wired straight to an output
            outer = node.inputs
            index = _instance_slot(node, link.origin_slot)
            if 0 <= index < len(outer) and outer[index].get("link") is not None:
                return self.resolve_input(node, index, visited)
            return None
        origin = self.by_exec_id.get(":".join((*inner.path, link.origin_id)))
        if origin is None:
            raise WorkflowConversionError(
                f"Subgraph node {node.label()}: output {slot} comes from inner node {link.origin_id}, which "
                "is not in the subgraph.",
                {"slot": slot},
                node_id=node.exec_id,
            )
        return self.resolve_output(origin, link.origin_slot, want_type, visited)

    def _check_hops(self, node: _Node, visited: set[str]) -> None:
        self.hops += 1
        if len(visited) > MAX_LINK_HOPS:
            raise WorkflowError(
                f"Input 'workflow': a link followed to node {safe_text(node.label(), 120)} takes more than "
                f"{MAX_LINK_HOPS} steps through reroutes, bypassed nodes and subgraph boundaries (a reroute is two: "
                "its input and its output).",
                {"node_id": node.exec_id, "limit": "max_link_hops", "max_link_hops": MAX_LINK_HOPS},
            )
        if self.hops > MAX_TOTAL_LINK_HOPS:
            raise WorkflowError(
                f"Input 'workflow': its links take more than {MAX_TOTAL_LINK_HOPS:,} steps through reroutes, bypassed "
                f"nodes and subgraph boundaries in all (the last at node {safe_text(node.label(), 120)}); a GUI "
                "workflow needs far fewer.",
                {"node_id": node.exec_id, "limit": "max_total_link_hops", "max_total_link_hops": MAX_TOTAL_LINK_HOPS},
            )

    # ---- emission -------------------------------------------------------------------------------------------

    def emit(self) -> dict[str, Any]:
        prompt: dict[str, Any] = {}
        for node in self.order:
            if node.mode in (MODE_NEVER, MODE_BYPASS) or node.subgraph is not None or node.type in VIRTUAL_TYPES:
                continue
            info = self.object_info[node.type]
            _refuse_browser_rendered(node, info)
            inputs: dict[str, Any] = {
                name: _wrap(value)
                for name, value in widget_values_by_name(node.exec_id, node.type, info, node.raw.get("widgets_values")).items()
            }
            for name, value in node.widget_overrides.items():
                if name in inputs:
                    inputs[name] = _wrap(value)
            for i, inp in enumerate(node.inputs):
                resolved = self.resolve_input(node, i, set())
                if resolved is None:
                    continue
                name = (inp.get("widget") or {}).get("name") or inp.get("name")
                if resolved[0] == "widget":
                    inputs[name] = _wrap(resolved[1])
                else:
                    inputs[name] = [resolved[1], int(resolved[2])]
            title = node.raw.get("title") or info.get("display_name") or node.type
            prompt[node.exec_id] = {
                "class_type": node.type,
                "inputs": _in_declared_order(inputs, info),
                "_meta": {"title": title},
            }
        # Inputs linked to nodes that were not emitted (muted, or missing) are dropped, as in the browser.
        for entry in prompt.values():
            for name, value in list(entry["inputs"].items()):
                if isinstance(value, list) and len(value) == 2 and value[0] not in prompt:
                    log.info("dropping input %s of %s: its source %s is not run", safe_text(name), entry["class_type"],
                             safe_text(value[0]))
                    del entry["inputs"][name]
        return prompt


_MISSING = object()


def _refuse_browser_rendered(node: _Node, info: dict[str, Any]) -> None:
    for section in ("required", "optional"):
        for name, spec in _ordered_inputs(info, section):
            if _widget_kind(spec) in BROWSER_RENDERED_TYPES:
                raise WorkflowConversionError(
                    f"Node {node.label()}: input '{name}' is a {_widget_kind(spec)} view that the GUI renders in the "
                    "browser and uploads to its own ComfyUI as it queues; a worker has no browser to render it. "
                    "Remove or bypass the node, or load the rendered images with LoadImage and send them as input "
                    "files.",
                    {"class_type": node.type, "input": name, "input_type": _widget_kind(spec)},
                    node_id=node.exec_id,
                )


def _definition_widget_value(instance: _Node, definition_slot: int) -> Any:
    """The instance's saved value for the definition's input `definition_slot`, read as the frontend reads it.

    The frontend rebuilds a subgraph node's widgets from the definition: each definition input that feeds an inner
    widget becomes a promoted widget, in the definition's order, and the instance's `widgets_values` fill them by
    position. A saved instance often lists fewer inputs than that (only some promoted widgets are kept among its
    `inputs`), while `widgets_values` still holds one value per promoted widget: reading only the saved inputs would
    run the definition's stale inner values (another prompt, seed or model file) instead of what the GUI shows.
    """
    scope = instance.subgraph
    declared = (scope.definition or {}).get("inputs") if scope is not None else None
    saved = instance.raw.get("widgets_values")
    if not isinstance(declared, list) or not 0 <= definition_slot < len(declared):
        return _MISSING
    if isinstance(saved, dict):
        entry = declared[definition_slot]
        return saved.get(entry.get("name"), _MISSING) if isinstance(entry, dict) else _MISSING
    promoted = _promoted_slots(scope)
    if not isinstance(saved, list) or len(saved) != len(promoted) or definition_slot not in promoted:
        return _MISSING
    return saved[promoted.index(definition_slot)]


def _promoted_slots(scope: _Scope) -> list[int]:
    """The definition's inputs that are linked to an inner node's widget input (promoted widgets), in order."""
    if scope._promoted is None:
        scope._promoted = _find_promoted_slots(scope)
    return scope._promoted


def _find_promoted_slots(scope: _Scope) -> list[int]:
    slots = set()
    for link in scope.links.values():
        if link.origin_id != SUBGRAPH_INPUT_ID:
            continue
        inputs = (scope.nodes.get(link.target_id) or {}).get("inputs") or []
        if 0 <= link.target_slot < len(inputs) and isinstance(inputs[link.target_slot], dict) \
                and inputs[link.target_slot].get("widget"):
            slots.add(link.origin_slot)
    return sorted(slots)


def _instance_slot(instance: _Node, definition_slot: int) -> int:
    """The instance input that carries the subgraph definition's input `definition_slot`.

    The frontend rebuilds a subgraph node's inputs from the definition and re-attaches the saved ones by name,
    so a saved instance may list fewer inputs, or list them in another order, than the definition declares.
    """
    declared = (instance.subgraph.definition or {}).get("inputs") if instance.subgraph else None
    if isinstance(declared, list) and 0 <= definition_slot < len(declared) and isinstance(declared[definition_slot], dict):
        name = declared[definition_slot].get("name")
        for index, inp in enumerate(instance.inputs):
            if name is not None and inp.get("name") == name:
                return index
        return -1  # not saved on the instance: nothing connected, no promoted value
    return definition_slot




def _object_or_none(value: Any, field: str) -> dict[str, Any] | None:
    if value is not None and not isinstance(value, dict):
        raise _malformed(f"'{field}' must be an object, not {type(value).__name__}.", {"field": field})
    return value


def _valid_connection(a: Any, b: Any) -> bool:
    """litegraph's isValidConnection: wildcards match anything; comma lists match when they share a type."""
    if a in ("*", "", None, 0) or b in ("*", "", None, 0):
        return True
    sa, sb = str(a).lower(), str(b).lower()
    if sa == sb:
        return True
    return bool(set(sa.split(",")) & set(sb.split(",")))


def _in_declared_order(inputs: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    order: list[str] = []
    for section in ("required", "optional"):
        order.extend(name for name, _ in _ordered_inputs(info, section))
    ranked = {name: i for i, name in enumerate(order)}
    return dict(sorted(inputs.items(), key=lambda kv: ranked.get(kv[0], len(ranked))))


# --------------------------------------------------------------------------------------------------------------
# Public entry point


def convert(workflow: dict[str, Any], object_info: dict[str, Any], limits: WorkflowLimits | None = None, *,
            packs: node_packs.PackRecord | None = None) -> dict[str, Any]:
    """Convert a UI-format workflow to an API-format prompt using ComfyUI's `/object_info`.

    Raises `WorkflowError` (`invalid_workflow`) for JSON that is not shaped as the GUI saves it or is over
    `limits` (nodes after subgraph expansion, subgraph nesting), `MissingNodeError` (node_packs.missing_node, with
    the installed `packs`) when a node type is not installed, and `WorkflowConversionError` (naming the node) for any other graph it cannot convert.
    """
    if not is_ui_format(workflow):
        raise WorkflowConversionError("The workflow is not in the ComfyUI GUI format (it has no 'nodes' list).")
    if not isinstance(object_info, dict):
        raise TypeError("object_info must be the JSON object returned by GET /object_info")
    limits = limits or WorkflowLimits()
    conv = _Converter(workflow, object_info, limits, packs)
    conv.expand()
    conv.check_types()
    conv.apply_primitives()
    prompt = conv.emit()
    if not prompt:
        raise WorkflowConversionError("The workflow has no nodes that ComfyUI can run (all are muted, bypassed or notes).")
    log.debug("converted UI workflow: %d nodes in, %d nodes out", len(conv.order), len(prompt))
    return prompt

