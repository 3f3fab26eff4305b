"""`python -m tools.comfyui_upgrade_check` against the pinned ComfyUI checkout, as a maintainer runs it before a move:
the release the worker pins must pass its own check (a check that fails on the current release would be ignored),
and the report must say which gates ran and which were skipped, and why."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_pinned_release_passes_the_upgrade_check_and_says_what_it_skipped(comfyui_path, comfyui_python, tmp_path):
    report = tmp_path / "report.md"
    done = subprocess.run([sys.executable, "-m", "tools.comfyui_upgrade_check", "--comfyui", str(comfyui_path),
                           "--python", comfyui_python, "--report", str(report)], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = report.read_text()
    for gate in ("pins", "requirements", "node classes"):
        assert f"## {gate}: PASS" in text, text
    assert "## converter: SKIP" in text and "no --templates" in text
    assert "## integration: SKIP" in text
    assert "every gate that ran passed" in text
