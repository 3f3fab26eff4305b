"""tools.frontend_compare: which differences from the frontend's own export count as "runs the same".

The upgrade check gates on that figure, so a difference that changes what ComfyUI runs must never be hidden in it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from handler.ui_to_api import convert
from tools.frontend_compare import compare, percentages, report

FIXTURES = Path(__file__).resolve().parent / "fixtures"
OBJECT_INFO = json.loads((FIXTURES / "object_info.json").read_text())
NAMES = ["frontend_widgets", "muted_bypassed", "reroutes_primitives"]


def _corpus(tmp_path: Path) -> tuple[Path, Path]:
    templates, exported = tmp_path / "templates", tmp_path / "frontend"
    templates.mkdir()
    exported.mkdir()
    for name in NAMES:
        shutil.copy(FIXTURES / "ui" / f"{name}.json", templates)
        prompt = convert(json.loads((FIXTURES / "ui" / f"{name}.json").read_text()), OBJECT_INFO)
        (exported / f"{name}.json").write_text(json.dumps(prompt))
    return templates, exported


def _edit(exported: Path, name: str, edit) -> None:
    path = exported / f"{name}.json"
    prompt = json.loads(path.read_text())
    edit(prompt)
    path.write_text(json.dumps(prompt))


def test_a_title_difference_runs_the_same_and_an_input_difference_does_not(tmp_path):
    templates, exported = _corpus(tmp_path)
    _edit(exported, "frontend_widgets", lambda p: p["4"]["_meta"].update(title="ColorToRGBInt"))
    _edit(exported, "muted_bypassed", lambda p: p["3"]["inputs"].update(width=512))
    result = compare(templates, exported, OBJECT_INFO)
    assert result["equal"] == ["reroutes_primitives.json"]
    assert result["runs_same"] == ["frontend_widgets.json"]
    assert sorted(result["differ"]) == ["frontend_widgets.json", "muted_bypassed.json"]
    strict, same = percentages(result)
    assert round(strict, 1) == 33.3 and round(same, 1) == 66.7
    assert "ImageScale input width" in report(result)


def test_a_file_with_a_title_and_an_input_difference_does_not_run_the_same(tmp_path):
    templates, exported = _corpus(tmp_path)

    def both(prompt):
        prompt["4"]["_meta"]["title"] = "ColorToRGBInt"
        prompt["7"]["inputs"]["index"] = 0

    _edit(exported, "frontend_widgets", both)
    assert compare(templates, exported, OBJECT_INFO)["runs_same"] == []
