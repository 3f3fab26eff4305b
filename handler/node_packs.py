"""The custom node packs baked into the image, as the build recorded them, and how a missing one is named.

The build (tools/install_node_packs.py, from custom_nodes.txt) installs each pack, checks that ComfyUI loads its
nodes, and writes a JSON record: each pack's folder name, the custom_nodes.txt line that pinned it (a git URL and
commit, or a registry id and version) and its node classes. The worker reads it once at start (NODE_PACKS_RECORD;
a malformed record stops the worker, no record means no packs) and uses it for:

* `action: info`: each pack with its pin and node classes, and whether they are loaded in the running ComfyUI;
* the refusal of a workflow that needs a class this ComfyUI does not have (`missing_node`): one `MissingNodeError`
  (`invalid_workflow`) naming the node id, class and title, raised before anything is queued, by the UI converter
  (ui_to_api, which cannot convert an unknown node) and by the workflow policy (API graphs) alike. Where a GUI
  workflow's node says which pack it came from (`properties.cnr_id`: registry id, `aux_id`: GitHub owner/repo,
  `ver`: version or commit, as the ComfyUI frontend saves them), the error carries the line to add to
  custom_nodes.txt; where an installed pack should provide the class, it says that pack did not load.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from .errors import ConfigError, MissingNodeError, safe_text

log = logging.getLogger(__name__)

RECORD_VERSION = 1
_COMMIT = re.compile(r"[0-9a-f]{40}")
_REGISTRY_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
_EXACT_VERSION = re.compile(r"\d+(\.\d+){0,3}([.-]?(a|b|rc|alpha|beta|dev|post)\.?\d*)?")
_GITHUB_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}/[A-Za-z0-9_.-]{1,100}")
CORE_ID = "comfy-core"


@dataclass(frozen=True)
class Pack:
    name: str  # its folder under ComfyUI's custom_nodes/
    line: str  # the custom_nodes.txt line that pinned it
    kind: str  # "git" | "registry"
    pin: str  # the commit or the version
    classes: tuple[str, ...] = ()
    import_s: float | None = None


@dataclass(frozen=True)
class PackRecord:
    packs: tuple[Pack, ...] = ()

    def provider(self, class_type: str) -> Pack | None:
        return next((p for p in self.packs if class_type in p.classes), None)

    def describe(self, object_info: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """What `action: info` shows: each pack, its pin and classes, and (given the running ComfyUI's
        /object_info) whether every one of its classes is loaded."""
        out = []
        for pack in self.packs:
            entry: dict[str, Any] = {"name": pack.name, "source": pack.kind, "pin": pack.pin,
                                     "custom_nodes_line": pack.line, "node_classes": list(pack.classes)}
            if object_info is not None:
                entry["loaded"] = all(c in object_info for c in pack.classes)
            out.append(entry)
        return out


def load(path: Path | None) -> PackRecord:
    """The build's record; no file = no packs (the default image). ConfigError when it is not a record."""
    if path is None or not path.is_file():
        return PackRecord()
    try:
        body = json.loads(path.read_text())
        if not isinstance(body, dict) or body.get("version") != RECORD_VERSION or not isinstance(body.get("packs"), list):
            raise ValueError(f"not a version {RECORD_VERSION} record with a 'packs' list")
        packs = tuple(Pack(str(p["name"]), str(p["line"]), str(p["kind"]), str(p["pin"]),
                           tuple(str(c) for c in p.get("classes") or ()),
                           float(p["import_s"]) if p.get("import_s") is not None else None)
                      for p in body["packs"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"NODE_PACKS_RECORD={str(path)!r} is invalid: {exc} (it is written by "
                          "tools/install_node_packs.py at build time).") from None
    log.info("node packs: %s", ", ".join(f"{p.name} ({p.pin}, {len(p.classes)} classes)" for p in packs) or "none")
    return PackRecord(packs)


def suggested_line(properties: Any) -> tuple[str | None, str | None]:
    """(the custom_nodes.txt line, a hint) from a GUI node's pack properties; (None, None) when they say nothing.

    The values are the caller's text: only ids, repos, versions and commits of the expected shapes are echoed."""
    if not isinstance(properties, Mapping):
        return None, None
    cnr_id, aux_id, ver = (properties.get(k) if isinstance(properties.get(k), str) else None
                           for k in ("cnr_id", "aux_id", "ver"))
    cnr_id = cnr_id if cnr_id and _REGISTRY_ID.fullmatch(cnr_id) else None
    aux_id = aux_id if aux_id and _GITHUB_REPO.fullmatch(aux_id) else None
    ver = ver if ver and (_COMMIT.fullmatch(ver) or _EXACT_VERSION.fullmatch(ver)) else None
    if cnr_id == CORE_ID:
        shown = f" {ver}" if ver else ""
        return None, (f"The workflow says it is a core node of ComfyUI{shown}, which this worker's ComfyUI does not "
                      "offer: either it came in a newer ComfyUI release, or it is one of ComfyUI's paid API (partner) "
                      "nodes, which the worker does not load (--disable-api-nodes).")
    if aux_id and ver and _COMMIT.fullmatch(ver):
        line = f"https://github.com/{aux_id} {ver}"
    elif cnr_id and ver and not _COMMIT.fullmatch(ver):
        line = f"{cnr_id}@{ver}"
    elif aux_id:
        return None, (f"The workflow says it comes from github.com/{aux_id}: the deployer can add "
                      f"'https://github.com/{aux_id} <commit>' to custom_nodes.txt and rebuild the image.")
    elif cnr_id:
        return None, (f"The workflow says it comes from the registry pack '{cnr_id}': the deployer can add "
                      f"'{cnr_id}@<version>' to custom_nodes.txt and rebuild the image.")
    else:
        return None, None
    return line, f"The deployer can add the line '{line}' to custom_nodes.txt and rebuild the image."


def missing_node(node_id: Any, class_type: str, title: Any = None, properties: Any = None,
                 packs: PackRecord | None = None,
                 others: Iterable[Mapping[str, Any]] = ()) -> MissingNodeError:
    """The one refusal of a node class this ComfyUI does not have. `others`: every missing node of the graph
    (`{"node_id", "class_type", "title", "properties"}`), listed in the details."""
    title = title if isinstance(title, str) else None
    line, hint = suggested_line(properties)
    provider = packs.provider(class_type) if packs is not None else None
    if provider is not None:
        line, hint = None, (f"Pack '{provider.name}' ({provider.line}) provides it but its nodes are not loaded on "
                            "this worker; the worker's log says why.")
    missing = []
    for other in others:
        other_line, _ = suggested_line(other.get("properties"))
        missing.append({"node_id": safe_text(other.get("node_id"), 64), "class_type": other.get("class_type"),
                        "title": other.get("title") if isinstance(other.get("title"), str) else None,
                        **({"custom_nodes_line": other_line} if other_line else {})})
    return MissingNodeError(node_id, class_type, title, hint=hint, custom_nodes_line=line,
                            missing=missing or None)
