"""`python -m tools.converter_corpus --templates DIR (--object-info FILE | --comfyui-url URL)`: the UI->API converter
over a corpus of GUI workflows (ComfyUI's own templates), counting what converts and why the rest does not.

Why: callers submit workflows saved by whatever GUI they run, and the templates that ship with the ComfyUI we pin
are the broadest set of real GUI files there is. Every file must either convert or be refused with one of the
worker's clear errors (node_type_not_installed naming the missing classes, workflow_conversion_error, ...); any
other exception is a converter bug. The run fails (exit 1) on such a traceback, so the upgrade check can gate on it.

Templates: the JSON files of the comfyui-workflow-templates release the ComfyUI pins (its requirements.txt); from
0.11 on they live in the comfyui-workflow-templates-json wheel (`pip download --no-deps` it and unzip). Files that
are not UI workflows (index.json, locale indexes, ...) are skipped and counted.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from handler.convert import fetch_object_info
from handler.errors import WorkerError
from handler.ui_to_api import convert, is_ui_format


@dataclass
class CorpusResult:
    """Per-file outcomes of one corpus run; `tracebacks` must stay empty."""

    converted: dict[str, dict[str, Any]] = field(default_factory=dict)  # file name -> API prompt
    refused: dict[str, tuple[str, str]] = field(default_factory=dict)  # file name -> (error code, message)
    missing_types: dict[str, list[str]] = field(default_factory=dict)  # file name -> classes not installed
    tracebacks: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # not UI workflows
    # converted, but the converter warned (saved widget values that do not fit the node's widgets): worth a look
    warnings: dict[str, list[str]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return len(self.converted) + len(self.refused) + len(self.tracebacks)

    def counts_by_code(self) -> collections.Counter:
        return collections.Counter(code for code, _ in self.refused.values())

    def missing_class_counts(self) -> collections.Counter:
        return collections.Counter(t for types in self.missing_types.values() for t in types)


def template_files(templates: Path) -> list[Path]:
    """Every *.json under `templates` (a folder of templates, or the unzipped wheel)."""
    return sorted(p for p in templates.rglob("*.json") if p.is_file())


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def run_corpus(files: list[Path], object_info: dict[str, Any]) -> CorpusResult:
    result = CorpusResult()
    collect = _Collect()
    converter_log = logging.getLogger("handler.ui_to_api")
    converter_log.addHandler(collect)
    try:
        for path in files:
            collect.messages = []
            _one(path, object_info, result)
            if collect.messages and path.name in result.converted:
                result.warnings[path.name] = collect.messages
    finally:
        converter_log.removeHandler(collect)
    return result


def _one(path: Path, object_info: dict[str, Any], result: CorpusResult) -> None:
    """Convert one file into `result`: converted, refused with a worker error, skipped, or a traceback."""
    name = path.name
    try:
        workflow = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        result.skipped.append(name)
        return
    if not is_ui_format(workflow):
        result.skipped.append(name)
        return
    try:
        result.converted[name] = convert(workflow, object_info)
    except WorkerError as exc:
        result.refused[name] = (exc.code, exc.message)
        missing = exc.details.get("missing_types")
        if missing:
            result.missing_types[name] = list(missing)
    except Exception:  # noqa: BLE001 - anything else is a converter bug, reported with its traceback
        result.tracebacks[name] = traceback.format_exc()


def summary(result: CorpusResult, top: int = 15) -> str:
    lines = [
        f"UI workflows: {result.total} (skipped {len(result.skipped)} files that are not UI workflows)",
        f"converted:    {len(result.converted)}",
    ]
    for code, n in result.counts_by_code().most_common():
        lines.append(f"refused:      {n} {code}")
    lines.append(f"tracebacks:   {len(result.tracebacks)}")
    lines.append(f"converted with converter warnings (widget values that do not fit): {len(result.warnings)}")
    missing = result.missing_class_counts()
    if missing:
        lines.append(f"missing classes ({len(missing)}), most used first:")
        lines += [f"  {n:4d} {cls}" for cls, n in missing.most_common(top)]
        if len(missing) > top:
            lines.append(f"  ... and {len(missing) - top} more")
    other = {f: m for f, (code, m) in result.refused.items() if f not in result.missing_types}
    for name, message in sorted(other.items()):
        lines.append(f"refused {name}: {message[:300]}")
    for name, messages in sorted(result.warnings.items()):
        lines.append(f"warned {name}: " + "; ".join(m[:200] for m in messages[:3]))
    for name, tb in sorted(result.tracebacks.items()):
        lines.append(f"TRACEBACK {name}:\n{tb}")
    return "\n".join(lines)


def _load_object_info(args: argparse.Namespace) -> dict[str, Any]:
    if args.object_info:
        return json.loads(args.object_info.read_text(encoding="utf-8"))
    return fetch_object_info(args.comfyui_url)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.converter_corpus", description=__doc__.split("\n\n")[0])
    p.add_argument("--templates", type=Path, required=True, help="folder holding the template JSON files")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--object-info", type=Path, metavar="FILE", help="saved GET /object_info of the ComfyUI")
    src.add_argument("--comfyui-url", metavar="URL", help="a running ComfyUI to read /object_info from")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write per-file outcomes here")
    args = p.parse_args(argv)
    result = run_corpus(template_files(args.templates), _load_object_info(args))
    print(summary(result))
    if args.json:
        args.json.write_text(json.dumps({
            "converted": sorted(result.converted), "refused": result.refused,
            "missing_types": result.missing_types, "tracebacks": result.tracebacks, "skipped": result.skipped,
            "warnings": result.warnings,
        }, indent=1) + "\n", encoding="utf-8")
    return 1 if result.tracebacks else 0


if __name__ == "__main__":
    sys.exit(main())
