"""`python -m tools.frontend_compare --templates DIR --frontend DIR --object-info FILE`: the converter's API prompt
against the real frontend's own export (tools.frontend_export) for every template, with each difference listed.

Why: "equal to what the GUI would queue" is the converter's whole promise. Two prompts are equal when they hold the
same nodes with the same class, title and inputs; what is legitimately free is normalised away: key order, and a
link's source id written as a number or a string. Everything else is reported per node and input, grouped by the
node class and input where it happens, so each kind of difference can be explained (or fixed) once.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path
from typing import Any

from .converter_corpus import run_corpus, template_files


# Differences that change nothing ComfyUI runs, each with the reason; a file differing only in these "runs the same".
EXPLAINED = {
    "title": "the frontend titles an untitled node from the English locale bundled with it, which lags the server's "
             "display names (LTXVConcatAVLatent, 'Seedance 2.0' for 2.5, Recraft without 'V3'); the converter uses "
             "the server's display name, and ComfyUI never reads `_meta.title` to run a node",
}


def _norm(value: Any) -> Any:
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int)) and isinstance(value[1], int) \
            and not isinstance(value[1], bool):
        return [str(value[0]), value[1]]
    if isinstance(value, float) and value.is_integer():
        return int(value)  # JSON from JavaScript writes 1.0 as 1
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_norm(v) for v in value]
    return value


def differences(ours: dict[str, Any], theirs: dict[str, Any]) -> list[tuple[str, str, str, Any, Any]]:
    """(node id, class, what, ours, theirs) for every way the two prompts differ."""
    out: list[tuple[str, str, str, Any, Any]] = []
    for node_id in sorted(set(ours) | set(theirs)):
        a, b = ours.get(node_id), theirs.get(node_id)
        if a is None or b is None:
            cls = (a or b).get("class_type")
            out.append((node_id, cls, "node only in " + ("ours" if b is None else "frontend"), None, None))
            continue
        cls = b.get("class_type")
        if a.get("class_type") != cls:
            out.append((node_id, cls, "class_type", a.get("class_type"), cls))
            continue
        if (a.get("_meta") or {}).get("title") != (b.get("_meta") or {}).get("title"):
            out.append((node_id, cls, "title", (a.get("_meta") or {}).get("title"), (b.get("_meta") or {}).get("title")))
        ia, ib = a.get("inputs") or {}, b.get("inputs") or {}
        for name in list(ia) + [n for n in ib if n not in ia]:
            va, vb = _norm(ia.get(name, "<absent>")), _norm(ib.get(name, "<absent>"))
            if va != vb:
                out.append((node_id, cls, f"input {name}", ia.get(name, "<absent>"), ib.get(name, "<absent>")))
    return out


def compare(templates: Path, frontend: Path, object_info: dict[str, Any]) -> dict[str, Any]:
    corpus = run_corpus(template_files(templates), object_info)
    equal, differ, frontend_failed, no_export = [], {}, [], []
    for name, ours in sorted(corpus.converted.items()):
        stem = name[:-len(".json")]
        exported = frontend / f"{stem}.json"
        if (frontend / f"{stem}.error.txt").exists():
            frontend_failed.append(name)
            continue
        if not exported.exists():
            no_export.append(name)
            continue
        diffs = differences(ours, json.loads(exported.read_text(encoding="utf-8")))
        if diffs:
            differ[name] = diffs
        else:
            equal.append(name)
    runs_same = sorted(name for name, diffs in differ.items() if all(d[2] in EXPLAINED for d in diffs))
    return {"corpus": corpus, "equal": equal, "differ": differ, "runs_same": runs_same,
            "frontend_failed": frontend_failed, "no_export": no_export}


def percentages(result: dict[str, Any]) -> tuple[float, float]:
    """(% of compared templates strictly equal, % that run the same: equal but for EXPLAINED differences)."""
    compared = len(result["equal"]) + len(result["differ"])
    if not compared:
        return 0.0, 0.0
    return (100.0 * len(result["equal"]) / compared,
            100.0 * (len(result["equal"]) + len(result["runs_same"])) / compared)


def report(result: dict[str, Any], examples: int = 2) -> str:
    equal, differ = result["equal"], result["differ"]
    compared = len(equal) + len(differ)
    strict, same = percentages(result)
    lines = [f"compared {compared} templates that both sides exported: {len(equal)} equal ({strict:.1f}%), "
             f"{len(differ)} differ, {len(result['runs_same'])} of them only in what ComfyUI never reads "
             f"({same:.1f}% run the same); frontend threw on {len(result['frontend_failed'])}, "
             f"no frontend export for {len(result['no_export'])}"]
    lines += [f"  explained, '{what}': {why}" for what, why in EXPLAINED.items()]
    kinds: dict[tuple[str, str], list[tuple[str, Any, Any, str]]] = collections.defaultdict(list)
    for name, diffs in differ.items():
        for node_id, cls, what, a, b in diffs:
            kinds[(cls, what)].append((name, a, b, node_id))
    for (cls, what), hits in sorted(kinds.items(), key=lambda kv: -len({h[0] for h in kv[1]})):
        files = sorted({h[0] for h in hits})
        lines.append(f"- {cls} {what}: {len(files)} files, e.g.")
        for name, a, b, node_id in hits[:examples]:
            lines.append(f"    {name} node {node_id}: ours {json.dumps(a)[:160]} | frontend {json.dumps(b)[:160]}")
    for name in result["frontend_failed"]:
        lines.append(f"frontend threw: {name}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.frontend_compare", description=__doc__.split("\n\n")[0])
    p.add_argument("--templates", type=Path, required=True)
    p.add_argument("--frontend", type=Path, required=True, help="the --out folder of tools.frontend_export")
    p.add_argument("--object-info", type=Path, required=True, help="/object_info of the server the export used")
    p.add_argument("--examples", type=int, default=2)
    p.add_argument("--json", type=Path, help="also write the per-file differences here")
    args = p.parse_args(argv)
    result = compare(args.templates, args.frontend, json.loads(args.object_info.read_text(encoding="utf-8")))
    print(report(result, args.examples))
    if args.json:
        args.json.write_text(json.dumps({"equal": result["equal"], "differ": result["differ"],
                                         "frontend_failed": result["frontend_failed"]}, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
