"""What a caller's graph may do on this worker, checked (and its file names rewritten) before ComfyUI sees it.

Why here: ComfyUI trusts whoever queues a prompt. LoadImage's VALIDATE_INPUTS only checks that the file exists
(so `/etc/x.png`, `../../x.png` or `x.png [output]` return that file as the job's output, `/dev/zero` is read
whole and the process is OOM-killed, and two different errors tell a caller whether any path exists); save
nodes write model files of gigabytes where later jobs' loaders find them; and a later job could name an earlier
caller's upload. The worker runs graphs from untrusted callers, so the graph is checked first, generically:

* Node classes (caller graphs only): with an allow-list (WORKFLOW_ALLOWED_NODES) only those classes; otherwise
  the classes whose output sizes the worker bounds (graph_sizes.CALLER_NODES) plus WORKFLOW_EXTRA_NODES, except
  `DENIED_NODES` (save nodes that write model weights, loaders that read ComfyUI's shared folders or take a raw
  path, torch.compile nodes) plus WORKFLOW_DENIED_NODES. A class this ComfyUI does not have is refused with
  node_packs.missing_node (every missing node listed; the custom_nodes.txt line where the graph says its pack).
* Custom node pack classes (a `python_module` under custom_nodes.) go through every rule here like core ones, and
  one more: a pack class with a text input whose name says it holds a file, folder, path or URL is refused unless
  the deployer names it in WORKFLOW_ALLOWED_PACK_NODES (packs read and write where they like; core classes with
  such inputs are known and handled below). Allowed, its path inputs still take relative paths only.
* Values are read as ComfyUI reads them (graph_values.py): `{"__value__": x}` is x, a STRING input is str() of
  its value, a link from a primitive node is that node's value. The checked value is what the graph runs with.
* The fast path (FluxFastPatch) runs as the deployer configured it (FLUX_FAST_*): a caller's graph has its
  `compute`, `compile` and `upcast_weights` inputs set back to the values that defer to that configuration
  (`DEPLOYER_INPUTS`), so a caller cannot force 22 GiB of bf16 copies or a new compile.
* LoRAs a caller's graph names by URL (`pending`) are resolved after this check (loras.py); names in the LoRA
  URL cache (`hidden_prefix`) are refused like names that are not there: those files are private to their URL.
* Every input that names a file, found from the running ComfyUI's /object_info rather than a list of node names
  (an upload input or a prefix must be a literal: a link from a string node could compute any path):
  - upload inputs (an `image_upload`, `audio_upload`, `video_upload`, `file_upload`... flag: LoadImage,
    LoadImageMask, LoadAudio, LoadVideo, Load3D, custom loaders alike) take only the plain name of a file the
    caller uploaded in this job (`images`), rewritten to that job's own input subfolder; an upload input that
    reads another folder (`image_folder`: LoadImageOutput) is refused;
  - other combo inputs (model loaders' file lists, and every other list of choices) take only a value of the
    list, fresh from ComfyUI when the cached list lacks it (ComfyUI itself skips this check for V3 nodes and for
    inputs a node validates itself);
  - `filename_prefix` inputs (every save node) must be a relative path without `..`; they are rewritten into the
    job's own output subfolder, so the job's files can be found and deleted after it (job_files.py), and so
    ComfyUI's cache never answers a repeated graph with a file an earlier job consumed and deleted;
  - other text inputs whose name says path, file, folder or directory must be relative paths without `..`;
  - a literal value given to an input without a widget (WebcamCapture's WEBCAM, Load3D's LOAD_3D,
    RecordAudio's AUDIO_RECORD: each carries a raw path) is refused: those inputs must come from links.
* Shipped workflows are trusted for their classes and lists (checked at start-up), but their upload inputs and
  prefixes are rewritten the same way, so every job's files live in its own folders.

A broken rule raises WorkflowPolicyError (details.type `invalid_workflow`) naming the node id, class_type and
input; no rule depends on whether a file exists, so refusals never reveal the worker's disk.
"""

from __future__ import annotations

import copy
import logging
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from . import graph_sizes, node_packs
from .errors import WorkflowPolicyError
from .graph_values import UNKNOWN, Reader, coerce, declared_inputs, unwrap, widget_type
from .ui_to_api import WIDGET_TYPES

log = logging.getLogger(__name__)

# Node classes a caller's graph may not use (WORKFLOW_DENIED_NODES adds to them; WORKFLOW_ALLOWED_NODES, when set,
# replaces the whole rule with its own list).
DENIED_NODES = frozenset({
    # write model weights (GBs) into output/, where ComfyUI's loaders also look (output/checkpoints, ...)
    "CheckpointSave", "CLIPSave", "VAESave", "ModelSave", "ImageOnlyCheckpointSave", "LoraSave", "SaveLoRA",
    # write into a folder of output/ the caller names, outside the job's own subfolder (never cleaned up)
    "SaveImageDataSetToFolder", "SaveImageTextDataSetToFolder", "SaveTrainingDataset",
    # read ComfyUI's shared folders, not this job's uploads
    "LoadImageOutput",  # output/: every job's results
    "LoadTrainingDataset",  # output/ datasets other jobs saved
    "LoadImageDataSetFromFolder", "LoadImageTextDataSetFromFolder",  # input/ subfolders: other jobs' uploads
    "LoadVideoDataSetFromFolder", "LoadVideoTextDataSetFromFolder",
    "LoadLatent",  # input/*.latent
    # take a raw path through a non-list input
    "WebcamCapture", "Load3D", "RecordAudio",
    # trace and compile on ComfyUI's execution thread, beyond any interrupt; the fast path compiles as configured
    "TorchCompileModel",
})

# Inputs of our fast-path node a caller's graph may not choose: set back to the values that defer to FLUX_FAST_*.
DEPLOYER_INPUTS = {"FluxFastPatch": {"compute": "default", "compile": True, "upcast_weights": "auto"}}

# Input types a caller may give a literal value: those the GUI draws a widget for (the converter's one table), and
# "*"; any other type is a socket fed by a link. Not PAINTER, GALLERIA and PREVIEW_3D: their values name files in
# ComfyUI's temp, input or output folders that the GUI wrote, and a caller's graph reads only its own job's files.
_WIDGET_TYPES = (WIDGET_TYPES - {"PAINTER", "GALLERIA", "PREVIEW_3D"}) | {"*"}
# Text inputs whose name says they hold a path: "file", "model_file", "image_path", "output_dir", "folder"...
_PATH_WORDS = re.compile(r"(^|_)(paths?|files?|filename|folders?|dirs?|directory)(_|$)", re.IGNORECASE)
# Text inputs whose name says they hold a URL: "url", "image_url", "uri", "link"...
_URL_WORDS = re.compile(r"(^|_)(urls?|uris?|links?|https?)(_|$)", re.IGNORECASE)
_ANNOTATION = re.compile(r"\s*\[(input|output|temp)\]\s*$", re.IGNORECASE)
_MAX_PREFIX_CHARS = 200

# (class_type, input_name) -> that input's current options from ComfyUI, or None when unknown.
OptionsLookup = Callable[[str, str], "list[Any] | None"]


@dataclass(frozen=True)
class NodeRules:
    """Which node classes caller graphs may use: `allowed` when set (WORKFLOW_ALLOWED_NODES, wins outright);
    else the classes whose sizes the worker bounds plus `extra`, minus `denied`."""

    allowed: frozenset[str] | None = None
    denied: frozenset[str] = DENIED_NODES
    extra: frozenset[str] = frozenset()
    hidden_prefix: str = ""  # combo values under this prefix (the LoRA URL cache) are never a caller's to name
    # Custom node pack classes with path or URL inputs the deployer allows (WORKFLOW_ALLOWED_PACK_NODES).
    pack_path_nodes: frozenset[str] = frozenset()
    packs: node_packs.PackRecord = node_packs.PackRecord()

    def pack_refusal(self, class_type: str, info: Mapping[str, Any]) -> str | None:
        """A custom node class with a text input naming a file, folder, path or URL, not allowed by the deployer."""
        if not str(info.get("python_module") or "").startswith("custom_nodes.") or class_type in self.pack_path_nodes:
            return None
        named = [name for name, spec in declared_inputs({class_type: info}, class_type).items() if _names_a_place(name, spec)]
        if not named:
            return None
        return (f"node class '{class_type}' comes from a custom node pack and its input(s) {', '.join(named)} "
                "name a file, folder, path or URL; a deployer can allow the class with WORKFLOW_ALLOWED_PACK_NODES")

    def refusal(self, class_type: str) -> str | None:
        if self.allowed is not None:
            if class_type not in self.allowed:
                return f"node class '{class_type}' is not in this worker's allow-list (WORKFLOW_ALLOWED_NODES)"
            return None
        if class_type in self.denied:
            return (f"node class '{class_type}' is not allowed on this worker (it writes model files, reads files "
                    "outside this job's uploads or compiles on ComfyUI's thread)")
        if class_type not in graph_sizes.CALLER_NODES and class_type not in self.extra:
            return (f"node class '{class_type}' is not one whose output size this worker can bound; a deployer can "
                    "allow it with WORKFLOW_EXTRA_NODES")
        return None


@dataclass(frozen=True)
class JobNames:
    """How this job's files are named inside ComfyUI's folders."""

    folder: str  # the job's own subfolder of input/, output/ (and what the prefixes are put under)
    uploads: Mapping[str, str]  # caller's plain name -> the value LoadImage must get ("<folder>/<name>")

    def output_prefix(self, prefix: str) -> str:
        return f"{self.folder}/{prefix}"


def enforce(graph: dict[str, Any], object_info: Mapping[str, Any], names: JobNames, *,
            rules: NodeRules | None, options: OptionsLookup | None = None,
            pending: frozenset[tuple[str, str]] = frozenset()) -> dict[str, Any]:
    """Check `graph` against the policy and return a copy with file names rewritten to this job's folders.

    `rules` None marks a shipped (trusted) workflow: classes and lists are not checked, names still rewritten.
    `options` looks up a combo's current list when the cached `object_info` lacks a value (models added since).
    `pending`: (node id, input) of LoRA URLs, left for loras.py to replace with their cached files' names.
    Raises WorkflowPolicyError at the first broken rule.
    """
    out = copy.deepcopy(graph)
    reader = Reader(graph, object_info)
    if rules is not None:
        _refuse_missing(graph, object_info, rules.packs)
    for node_id, node in out.items():
        class_type = node.get("class_type") if isinstance(node, dict) else None
        if not isinstance(class_type, str) or not isinstance(node.get("inputs", {}), dict):
            raise WorkflowPolicyError(str(node_id), class_type if isinstance(class_type, str) else None, None, None,
                                      "must be an object with a string 'class_type' and an 'inputs' object")
        info = object_info.get(class_type)
        if rules is not None:
            reason = rules.refusal(class_type) or rules.pack_refusal(class_type, info or {})
            if reason:
                raise WorkflowPolicyError(node_id, class_type, None, None, reason)
        if info is None:
            continue
        inputs = node.get("inputs") or {}
        specs = declared_inputs(object_info, class_type, inputs)
        if rules is not None and class_type in DEPLOYER_INPUTS:
            fixed = {k: v for k, v in DEPLOYER_INPUTS[class_type].items() if k in specs}
            if any(inputs.get(k) != v for k, v in fixed.items()):
                log.info("node %s (%s): the caller's fast-path settings are replaced by the deployer's", node_id,
                         class_type)
            inputs.update(fixed)
        for name, value in list(inputs.items()):
            if name not in specs or (node_id, name) in pending:
                continue  # inputs the class does not declare never reach it; pending LoRA URLs: loras.py
            if _is_link(value):
                if rules is not None and _names_a_job_file(name, specs[name]):
                    # Another node could compute any path (a string node feeding LoadImage): only a literal can
                    # be checked and moved into the job's folders.
                    raise WorkflowPolicyError(node_id, class_type, name, value,
                                              "must be written in the node itself, not linked from another node's "
                                              "output, so the worker can check it and keep the job's files apart")
                if rules is not None and _is_path_text(name, specs[name]):
                    linked = reader.value(node_id, name)
                    if linked is UNKNOWN:
                        raise WorkflowPolicyError(node_id, class_type, name, value,
                                                  "names a path, so it must be written in the node or given by a "
                                                  "primitive node, where the worker can check it")
                    _check_input(node_id, class_type, name, linked, specs[name], names, rules, options)
                continue
            checked = _check_input(node_id, class_type, name, value, specs[name], names, rules, options)
            if isinstance(checked, (list, dict)) and checked == unwrap(value):
                checked = value  # as sent: unwrapped, a {"__value__": [...]} literal would read as a link
            if checked != value:
                log.debug("node %s (%s) input %r: %r -> %r", node_id, class_type, name, value, checked)
            inputs[name] = checked
    return out


def _refuse_missing(graph: Mapping[str, Any], object_info: Mapping[str, Any], packs: node_packs.PackRecord) -> None:
    """Every node whose class this ComfyUI does not have, refused at once (the first named, all listed); a graph
    the worker converted from the GUI format carries each node's pack properties in `_meta`."""
    missing = []
    for node_id, node in graph.items():
        class_type = node.get("class_type") if isinstance(node, dict) else None
        if isinstance(class_type, str) and class_type not in object_info:
            meta = node.get("_meta") if isinstance(node.get("_meta"), dict) else {}
            missing.append({"node_id": str(node_id), "class_type": class_type, "title": meta.get("title"),
                            "properties": meta})
    if missing:
        first = missing[0]
        raise node_packs.missing_node(first["node_id"], first["class_type"], first["title"], first["properties"],
                                      packs, missing)


def _names_a_place(name: str, spec: Any) -> bool:
    """A text input of a custom node whose name says file, folder, path, directory or URL."""
    return (widget_type(spec) == "STRING" and name != "filename_prefix"
            and bool(_PATH_WORDS.search(name) or _URL_WORDS.search(name)))


def _check_input(node_id: str, class_type: str, name: str, value: Any, spec: Any, names: JobNames,
                 rules: NodeRules | None, options: OptionsLookup | None) -> Any:
    kind = spec[0] if isinstance(spec, (list, tuple)) and spec else None
    extra = spec[1] if isinstance(spec, (list, tuple)) and len(spec) > 1 and isinstance(spec[1], dict) else {}

    def refuse(rule: str) -> WorkflowPolicyError:
        return WorkflowPolicyError(node_id, class_type, name, value, rule)

    # As ComfyUI reads it: {"__value__": x} is x; a STRING input gets str() of its value. The checked value is
    # written back, so what runs is what was checked.
    value = coerce(kind, value) if kind == "STRING" and not isinstance(unwrap(value), (dict, list)) else unwrap(value)
    if _upload_flagged(spec):
        folder = extra.get("image_folder", "input")
        if folder != "input":
            raise refuse(f"reads ComfyUI's {folder} folder; only files uploaded with this job ('images') can be loaded")
        return _uploaded(value, names, refuse)
    if isinstance(kind, list) or kind == "COMBO":
        if rules is not None:
            _in_list(node_id, class_type, name, value, kind if isinstance(kind, list) else extra.get("options"), options,
                     rules.hidden_prefix)
        return value
    if kind == "STRING" and name == "filename_prefix":
        _relative_path(value, refuse, "must be a relative file name prefix such as 'flux' or 'my/flux'")
        return names.output_prefix(value)
    if rules is None:
        return value
    if _is_path_text(name, spec):
        if isinstance(value, str) and value:
            _relative_path(value, refuse, "must be a relative path inside ComfyUI's folders")
        return value
    if isinstance(kind, str) and widget_type(spec) not in _WIDGET_TYPES:
        raise refuse(f"takes a {kind} from another node's output (a link), not a literal value")
    return value


def _is_path_text(name: str, spec: Any) -> bool:
    """A text input whose name says it holds a path ("file", "model_file", "image_path", "output_dir"...); a
    multi-type input typed into a text widget (Preview3D's model_file) is one too."""
    return widget_type(spec) == "STRING" and name != "filename_prefix" and bool(_PATH_WORDS.search(name))


def _upload_flagged(spec: Any) -> bool:
    extra = spec[1] if isinstance(spec, (list, tuple)) and len(spec) > 1 and isinstance(spec[1], dict) else {}
    return any(key.endswith("_upload") and flag for key, flag in extra.items())


def _names_a_job_file(name: str, spec: Any) -> bool:
    """An upload input or a save node's prefix: inputs whose value the policy rewrites into the job's folders."""
    kind = spec[0] if isinstance(spec, (list, tuple)) and spec else None
    return _upload_flagged(spec) or (kind == "STRING" and name == "filename_prefix")


def _uploaded(value: Any, names: JobNames, refuse: Callable[[str], WorkflowPolicyError]) -> str:
    """The job-folder name of a caller's plain upload name."""
    uploaded = ", ".join(sorted(names.uploads)) or "none"
    rule = f"must be the plain file name of an image uploaded with this job in 'images' (uploaded: {uploaded})"
    if not isinstance(value, str):
        raise refuse(rule)
    if value.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", value):
        raise refuse(f"{rule}; absolute paths are not allowed")
    if ".." in value:
        raise refuse(f"{rule}; '..' is not allowed")
    if _ANNOTATION.search(value):
        raise refuse(f"{rule}; folder annotations such as ' [output]' or ' [temp]' are not allowed")
    if "/" in value or "\\" in value:
        raise refuse(f"{rule}; folders are not allowed")
    if value not in names.uploads:  # upload names are plain file names (input_files.check_name)
        raise refuse(rule)
    return names.uploads[value]


def _in_list(node_id: str, class_type: str, name: str, value: Any, listed: Any, options: OptionsLookup | None,
             hidden_prefix: str = "") -> None:
    def visible(values: list[Any]) -> list[Any]:
        return [v for v in values if not (hidden_prefix and isinstance(v, str) and v.startswith(hidden_prefix))]

    current = visible(listed if isinstance(listed, list) else [])
    if value in current:
        return
    fresh = visible(found) if (found := options(class_type, name) if options is not None else None) is not None else None
    if fresh is not None and value in fresh:
        return  # e.g. a model file added to the volume after start
    shown = fresh if fresh is not None else current
    listing = ", ".join(map(str, shown[:20])) + (", ..." if len(shown) > 20 else "") if shown else "none"
    raise WorkflowPolicyError(node_id, class_type, name, value,
                              f"must be one of the values this ComfyUI lists for it ({listing})", available=shown)


def _relative_path(value: Any, refuse: Callable[[str], WorkflowPolicyError], rule: str) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_PREFIX_CHARS:
        raise refuse(f"{rule} (a non-empty string of at most {_MAX_PREFIX_CHARS} characters)")
    if "\x00" in value:
        raise refuse(f"{rule}; NUL characters are not allowed")
    if value.startswith(("/", "\\", "~")) or re.match(r"[A-Za-z]:", value):
        raise refuse(f"{rule}; absolute paths are not allowed")
    if any(part == ".." for part in re.split(r"[/\\]", value)):
        raise refuse(f"{rule}; '..' is not allowed")
    if _ANNOTATION.search(value):
        raise refuse(f"{rule}; folder annotations such as ' [output]' or ' [temp]' are not allowed")


def _is_link(value: Any) -> bool:
    # ComfyUI's validation treats any 2-item list as [node_id, output_index].
    return isinstance(value, list) and len(value) == 2
