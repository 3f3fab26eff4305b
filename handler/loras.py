"""The `loras` input: validate it, make each entry a file name ComfyUI lists, and splice loader nodes into the graph.

`loras: [{"name": "style.safetensors" | "url": "https://...", "strength": 0..2 (default 1), "sha256": "..."}]`,
at most MAX_LORAS. Each entry becomes one LoraLoaderModelOnly node (model-only: FLUX LoRAs are trained for the
DiT, and the shipped workflows' text encoders stay shared and cached across requests).

Where the nodes go (`insert`): on the model edge, found generically from ComfyUI's /object_info rather than by
node id: the one node that outputs MODEL without taking one (the loader) starts the edge; the edge is followed
through FAST_PATH_NODES (our FluxFastPatch) and the LoRA chain is inserted right after them, feeding every node
that consumed the model there. Why after FluxFastPatch and not before: ComfyUI patches LoRA weights into the
ModelPatcher's modules at load time whichever order the nodes are in (the LoRA node and FluxFastPatch each
clone the ModelPatcher and the clone keeps both the weight patches and the fast path's callbacks and wrappers;
compiled blocks read the weights the patcher patched in place). But ComfyUI re-executes a node when its inputs
change: with the LoRA after it, FluxFastPatch's output stays cached across requests whatever LoRA (or none)
each one asks for, so switching LoRAs never rebuilds the fast path's wrappers; before it, every LoRA change
would re-run FluxFastPatch on a new model object.

A `name` must be a file ComfyUI lists in its loras folders (fresh from ComfyUI); a `url` is downloaded into the
LoRA cache (lora_cache.py). Either way the file's keys are checked (lora_files.py) before anything runs. A caller's
own workflow may also put an https URL in a LoRA loader node's `lora_name` (`url_inputs`): it is fetched and
checked the same way and replaced by the cached file's name.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from .errors import InputError, WorkflowError
from .lora_cache import LoraCache
from .lora_files import LoraFileError, check_file

log = logging.getLogger(__name__)

MAX_LORAS = 4
STRENGTH_MIN, STRENGTH_MAX, STRENGTH_DEFAULT = 0.0, 2.0, 1.0
LOADER_CLASS = "LoraLoaderModelOnly"
LORA_INPUT = "lora_name"
FAST_PATH_NODES = frozenset({"FluxFastPatch"})
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ENTRY_FIELDS = ("name", "url", "strength", "sha256")
_URL_MAX_CHARS = 4096


@dataclass(frozen=True)
class LoraSpec:
    field: str            # "loras[0]": how errors name this entry
    name: str | None
    url: str | None
    strength: float
    sha256: str | None = None
    node_id: str | None = None  # the workflow node whose `lora_name` held the URL

    @property
    def url_field(self) -> str:
        """How errors name the URL: `loras[0].url`, or the workflow node input that held it."""
        return f"{self.field}.url" if self.field.startswith("loras[") else self.field


def parse(raw: Any) -> tuple[LoraSpec, ...]:
    """Validate the `loras` field; raise InputError naming the entry and the rule."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InputError("loras", raw, "must be a list of {\"name\" or \"url\", \"strength\"} objects")
    if len(raw) > MAX_LORAS:
        raise InputError("loras", f"{len(raw)} entries", f"must hold at most {MAX_LORAS} LoRAs")
    specs = []
    for i, entry in enumerate(raw):
        field = f"loras[{i}]"
        if not isinstance(entry, dict):
            raise InputError(field, entry, "must be an object such as {\"name\": \"style.safetensors\", \"strength\": 0.8}")
        unknown = sorted(k for k in entry if k not in _ENTRY_FIELDS)
        if unknown:
            raise InputError(f"{field}.{unknown[0]}", entry[unknown[0]], f"unknown field; accepted: {', '.join(_ENTRY_FIELDS)}")
        name, url = entry.get("name"), entry.get("url")
        if (name is None) == (url is None):
            raise InputError(field, entry, "must give exactly one of 'name' (a file in the LoRA folder) or 'url'")
        if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > 255):
            raise InputError(f"{field}.name", name, "must be the file name of a LoRA ComfyUI lists (1-255 characters)")
        if url is not None and (not isinstance(url, str) or not url.strip() or len(url) > _URL_MAX_CHARS):
            raise InputError(f"{field}.url", url, f"must be an https URL of a .safetensors file (at most {_URL_MAX_CHARS} characters)")
        strength = entry.get("strength", STRENGTH_DEFAULT)
        if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not STRENGTH_MIN <= strength <= STRENGTH_MAX:
            raise InputError(f"{field}.strength", strength, f"must be a number from {STRENGTH_MIN:g} to {STRENGTH_MAX:g}")
        sha256 = entry.get("sha256")
        if sha256 is not None:
            if url is None:
                raise InputError(f"{field}.sha256", sha256, "is only accepted with 'url'")
            if not isinstance(sha256, str) or not _SHA256.match(sha256.lower()):
                raise InputError(f"{field}.sha256", sha256, "must be 64 hexadecimal characters")
            sha256 = sha256.lower()
        specs.append(LoraSpec(field, name, url.strip() if url else None, float(strength), sha256))
    return tuple(specs)


# ---- names ----------------------------------------------------------------------------------------------------

def resolve(specs: Iterable[LoraSpec], *, listed: Callable[[], list[str] | None], search_dirs: Iterable[Path],
            cache: LoraCache | None, cache_prefix: str, deadline_s: Callable[[], float],
            max_urls: int | None = None, max_bytes: int | None = None,
            logger: logging.Logger | logging.LoggerAdapter = log) -> list[tuple[str, float]]:
    """(name ComfyUI lists, strength) per LoRA. `listed` returns ComfyUI's current loras list; `search_dirs` are
    the local folders where a listed name's file is read for the key check; `deadline_s` what is left of the job;
    `max_urls` and `max_bytes` bound the job's URLs and what they may download together (LORA_JOB_MAX_URLS,
    LORA_JOB_MAX_BYTES); `logger` carries the job id.

    Files in the URL cache (`cache_prefix`) are private to the URL that filled them: a `name` there is refused as
    if it were not there, and the lists of available LoRAs shown in refusals leave them out."""
    specs = list(specs)
    if not specs:
        return []
    urls = list(dict.fromkeys(spec.url for spec in specs if spec.url is not None))
    if max_urls is not None and len(urls) > max_urls:
        first = next(spec for spec in specs if spec.url == urls[max_urls])
        raise InputError(first.url_field, first.url, f"is LoRA URL {max_urls + 1} of this job (the `loras` field and "
                         f"the workflow's loader nodes together); this worker allows {max_urls} (LORA_JOB_MAX_URLS)")
    budget = max_bytes
    available = listed()
    if available is None:
        raise WorkflowError("LoRAs cannot be used: this ComfyUI has no LoraLoaderModelOnly node or no loras folder.",
                            {"node": LOADER_CLASS})
    resolved = []
    for spec in specs:
        if spec.name is not None:
            name = spec.name
            private = bool(cache_prefix) and name.startswith(cache_prefix)
            if name not in available or private:
                shown = [n for n in available if not (cache_prefix and n.startswith(cache_prefix))]
                raise InputError(f"{spec.field}.name", name,
                                 "must be a LoRA file this worker has; available: " + (", ".join(shown[:50]) or "none"))
            path = _local_file(name, search_dirs)
            if path is None:
                logger.warning("LoRA %s: %s is listed by ComfyUI but not found in LORA_DIRS; its keys are not checked",
                            spec.field, name)
            else:
                try:
                    check = check_file(path)
                except LoraFileError as exc:
                    raise InputError(f"{spec.field}.name", name, f"must be a FLUX LoRA ComfyUI can apply: the file {exc}") from None
                logger.info("LoRA %s: %s, %d of %d keys apply to the DiT", spec.field, name, check.matched, check.tensors)
        else:
            if cache is None:
                raise InputError(spec.url_field, spec.url, "cannot be used: this worker has no LoRA cache folder "
                                 "(set LORA_CACHE_DIR to a folder inside ComfyUI's loras search path)")
            got = cache.get(spec.url, field=spec.url_field, sha256=spec.sha256, deadline_s=deadline_s(),
                            max_bytes=budget, logger=logger)
            if budget is not None:
                budget -= got.downloaded
            name = f"{cache_prefix}{got.path.name}"
            if name not in available:
                available = listed() or []
                if name not in available:
                    raise WorkflowError(
                        f"The LoRA downloaded for {spec.field} is not visible to ComfyUI as '{name}': LORA_CACHE_DIR "
                        "must be a subfolder of a loras folder ComfyUI searches.", {"field": spec.field, "name": name})
        resolved.append((name, spec.strength))
    return resolved


def _local_file(name: str, search_dirs: Iterable[Path]) -> Path | None:
    for folder in search_dirs:
        candidate = folder / name
        try:
            if candidate.resolve().is_relative_to(folder.resolve()) and candidate.is_file():
                return candidate
        except OSError:
            continue
    return None


def url_inputs(graph: dict[str, Any], object_info: dict[str, Any]) -> tuple[LoraSpec, ...]:
    """A caller's own LoRA loader nodes may name a LoRA by URL in `lora_name`, like the `loras` field: one spec per
    such input (any node class whose `lora_name` is a list input), strength left to the node."""
    specs = []
    for nid, node in graph.items():
        value = node.get("inputs", {}).get(LORA_INPUT) if isinstance(node, dict) else None
        if not (isinstance(value, str) and value.lower().startswith(("https://", "http://"))):
            continue
        info = object_info.get(node.get("class_type")) or {}
        if not any(LORA_INPUT in ((info.get("input") or {}).get(section) or {}) for section in ("required", "optional")):
            continue
        if len(value) > _URL_MAX_CHARS:
            raise InputError(f"workflow node {nid} {LORA_INPUT}", value, f"must be an https URL of at most {_URL_MAX_CHARS} characters")
        specs.append(LoraSpec(f"workflow node {nid} {LORA_INPUT}", None, value.strip(), STRENGTH_DEFAULT, node_id=nid))
    return tuple(specs)


def set_names(graph: dict[str, Any], specs: Iterable[LoraSpec], names: list[tuple[str, float]]) -> dict[str, Any]:
    """A copy of `graph` with each URL of `url_inputs` replaced by the name ComfyUI lists for its cached file."""
    graph = dict(graph)
    by_url = {spec.url: name for spec, (name, _strength) in zip(specs, names)}
    for nid, node in list(graph.items()):
        value = node.get("inputs", {}).get(LORA_INPUT) if isinstance(node, dict) else None
        if isinstance(value, str) and value.strip() in by_url:
            graph[nid] = {**node, "inputs": {**node["inputs"], LORA_INPUT: by_url[value.strip()]}}
    return graph


# ---- graph ----------------------------------------------------------------------------------------------------

def insert(graph: dict[str, Any], loras: list[tuple[str, float]], object_info: dict[str, Any]) -> dict[str, Any]:
    """A copy of `graph` (API format) with one LoraLoaderModelOnly per LoRA on the model edge (module docstring)."""
    if not loras:
        return graph
    graph = {nid: ({**node, "inputs": dict(node.get("inputs", {}))} if isinstance(node, dict) else node)
             for nid, node in graph.items()}
    source = _model_edge(graph, object_info)
    consumers = [(nid, name) for nid, node in graph.items() for name, value in node.get("inputs", {}).items()
                 if _is_link(value) and (str(value[0]), int(value[1])) == source]
    taken = set(graph)
    upstream: list[Any] = [source[0], source[1]]
    for i, (name, strength) in enumerate(loras, 1):
        nid = _free_id(taken, f"lora{i}")
        taken.add(nid)
        graph[nid] = {"class_type": LOADER_CLASS, "_meta": {"title": f"LoRA {i}"},
                      "inputs": {"model": upstream, "lora_name": name, "strength_model": strength}}
        upstream = [nid, 0]
    for nid, input_name in consumers:
        graph[nid]["inputs"][input_name] = list(upstream)
    return graph


def _model_edge(graph: dict[str, Any], object_info: dict[str, Any]) -> tuple[str, int]:
    """(node id, output slot) of the model edge where LoRAs go: the model source's, past the fast-path nodes."""
    sources = []
    for nid, node in graph.items():
        outputs = (object_info.get(node.get("class_type")) or {}).get("output") or []
        if "MODEL" not in outputs:
            continue
        takes_model = any(_is_link(v) and _output_type(graph, v, object_info) == "MODEL" for v in node.get("inputs", {}).values())
        if not takes_model:
            sources.append((nid, list(outputs).index("MODEL")))
    if len(sources) != 1:
        raise WorkflowError(
            f"LoRAs cannot be added to this workflow: it must have exactly one model loader (a node that outputs "
            f"MODEL without taking one), found {len(sources)}.",
            {"field": "loras", "model_sources": [s[0] for s in sources]})
    edge = sources[0]
    while True:
        consumers = [nid for nid, node in graph.items() for v in node.get("inputs", {}).values()
                     if _is_link(v) and (str(v[0]), int(v[1])) == edge]
        if len(consumers) != 1 or graph[consumers[0]].get("class_type") not in FAST_PATH_NODES:
            return edge
        nxt = consumers[0]
        outputs = (object_info.get(graph[nxt]["class_type"]) or {}).get("output") or []
        if "MODEL" not in outputs:
            return edge
        edge = (nxt, list(outputs).index("MODEL"))


def _output_type(graph: dict[str, Any], link: list, object_info: dict[str, Any]) -> str | None:
    node = graph.get(str(link[0]))
    if not isinstance(node, dict):
        return None
    outputs = (object_info.get(node.get("class_type")) or {}).get("output") or []
    slot = int(link[1])
    return outputs[slot] if 0 <= slot < len(outputs) else None


def _is_link(value: Any) -> bool:
    return (isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int))
            and isinstance(value[1], int) and not isinstance(value[1], bool))


def _free_id(taken: set[str], stem: str) -> str:
    candidate, n = stem, 1
    while candidate in taken:
        n += 1
        candidate = f"{stem}_{n}"
    return candidate
