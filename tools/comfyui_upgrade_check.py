"""`python -m tools.comfyui_upgrade_check --comfyui PATH [--python PY] [--templates DIR [--frontend DIR]]
[--integration] [--report FILE]`: everything that must hold before the worker moves to another ComfyUI release.

Why one command: a ComfyUI upgrade touches the pins (Dockerfile, CI), the constraints ComfyUI's requirements are
installed under, the node classes and inputs our workflows and handler rely on, the converter's view of the GUI
files that release ships, and the integration tier. Done by hand, one of them is forgotten; here each is a gate
that says PASS, FAIL (with every problem named) or SKIP (with why), and the command exits 1 if any gate failed. A
move to a new release is then: check out the release, run this, fix what it names, change the pins, re-record the
fixtures (`python -m tools.record_object_info`), run it again until it passes.

Gates:
  pins          the checkout's version and commit against the Dockerfile's and CI's pins (which must agree with
                each other; a different checkout is named, not failed: it is the release being tried)
  requirements  every package ComfyUI's requirements.txt names is pinned once: by ComfyUI itself (==) or by
                requirements-comfyui.txt, and where both pin it they agree (torch and friends: the Dockerfile's)
  node classes  the checkout's /object_info against tests/fixtures/object_info.json (what the handler and tests
                were written against): no class or input the fixture has may be gone, no class may gain a required
                input our graphs would lack; and every shipped workflow must pass the handler's own graph check
  converter     (--templates) the UI->API converter over the release's GUI templates: no traceback
  frontend      (--templates and --frontend) the converter against the frontend's own export: >= 98% run the same (equal but for
                what ComfyUI never reads: frontend_compare.EXPLAINED)
  integration   (--integration) the integration tier (tests/integration) against this checkout
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "object_info.json"
# Pinned by the Dockerfile with the CUDA build, not by the constraints file.
TORCH_FAMILY = {"torch", "torchvision", "torchaudio", "triton"}
FRONTEND_EQUAL_MIN = 98.0


@dataclass
class Gate:
    name: str
    state: str = "PASS"                      # PASS, FAIL or SKIP
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def fail(self, problem: str) -> None:
        self.state = "FAIL"
        self.problems.append(problem)

    def render(self) -> str:
        lines = [f"## {self.name}: {self.state}"]
        lines += [f"- FAIL: {p}" for p in self.problems] + [f"- {n}" for n in self.notes]
        return "\n".join(lines)


# ---- pins ---------------------------------------------------------------------------------------------------
def repo_pins(repo: Path = REPO) -> dict[str, dict[str, str | None]]:
    """{"Dockerfile": {"version", "commit"}, "CI": {...}} as the repo pins ComfyUI today."""
    docker = (repo / "Dockerfile").read_text()
    ci = (repo / ".github" / "workflows" / "tests.yml").read_text()

    def find(pattern: str, text: str) -> str | None:
        m = re.search(pattern, text, re.M)
        return m.group(1) if m else None

    return {"Dockerfile": {"version": find(r"^ARG COMFYUI_VERSION=(\S+)", docker),
                           "commit": find(r"^ARG COMFYUI_COMMIT=([0-9a-f]{40})", docker)},
            "CI": {"version": find(r"^\s+COMFYUI_VERSION:\s*(\S+)", ci),
                   "commit": find(r"^\s+COMFYUI_COMMIT:\s*([0-9a-f]{40})", ci)}}


def checkout_version(comfyui: Path) -> tuple[str | None, str | None]:
    """(version as `vX.Y.Z`, commit) of a ComfyUI checkout; the commit is None without git metadata."""
    m = re.search(r'__version__\s*=\s*"([^"]+)"', (comfyui / "comfyui_version.py").read_text())
    version = f"v{m.group(1)}" if m else None
    try:
        commit = subprocess.run(["git", "-C", str(comfyui), "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return version, commit


def check_pins(comfyui: Path, repo: Path = REPO) -> Gate:
    gate = Gate("pins")
    pins = repo_pins(repo)
    if pins["Dockerfile"] != pins["CI"]:
        gate.fail(f"the Dockerfile pins ComfyUI {pins['Dockerfile']} but CI pins {pins['CI']}: one release for both")
    version, commit = checkout_version(comfyui)
    pinned = pins["Dockerfile"]
    if (version, commit or pinned["commit"]) == (pinned["version"], pinned["commit"]):
        gate.notes.append(f"the checkout is the pinned release {version} ({pinned['commit']})")
    else:
        gate.notes.append(f"the checkout is {version} ({commit or 'commit unknown: no git metadata'}); the pins say "
                          f"{pinned['version']} ({pinned['commit']}): change both (Dockerfile ARG COMFYUI_VERSION/"
                          "COMFYUI_COMMIT, .github/workflows/tests.yml env) once every other gate passes")
    return gate


# ---- requirements -------------------------------------------------------------------------------------------
def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-").replace(".", "-")


def _exact(requirement: str) -> str | None:
    m = re.search(r"==\s*([^\s;,]+)", requirement)
    return m.group(1) if m else None


def _requirement_lines(text: str) -> list[str]:
    return [line.split("#", 1)[0].strip() for line in text.splitlines()
            if line.split("#", 1)[0].strip() and not line.strip().startswith("-")]


def requirement_problems(comfy_requirements: str, constraints: str) -> list[str]:
    """Each package ComfyUI requires must end up at one known version (see the module docstring)."""
    pinned = {_name(line): _exact(line) for line in _requirement_lines(constraints)}
    problems = []
    for line in _requirement_lines(comfy_requirements):
        name, theirs = _name(line), _exact(line)
        if name in TORCH_FAMILY:
            continue
        ours = pinned.get(name)
        if theirs and ours and theirs != ours:
            problems.append(f"{name}: ComfyUI pins {theirs}, requirements-comfyui.txt pins {ours}")
        elif not theirs and not ours:
            problems.append(f"{name}: ComfyUI asks for '{line}' and requirements-comfyui.txt pins no version of it")
    return problems


def check_requirements(comfyui: Path, repo: Path = REPO) -> Gate:
    gate = Gate("requirements")
    problems = requirement_problems((comfyui / "requirements.txt").read_text(),
                                    (repo / "requirements-comfyui.txt").read_text())
    for problem in problems:
        gate.fail(problem)
    if not problems:
        gate.notes.append("every package ComfyUI requires is pinned at one version")
    return gate


# ---- node classes -------------------------------------------------------------------------------------------
def _inputs(info: dict[str, Any], section: str) -> dict[str, Any]:
    return dict((info.get("input") or {}).get(section) or {})


def object_info_problems(fixture: dict[str, Any], current: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(problems, notes): what the fixture's classes lost or newly require in `current`."""
    problems, notes = [], []
    for cls, before in sorted(fixture.items()):
        after = current.get(cls)
        if after is None:
            problems.append(f"class {cls} is gone")
            continue
        had = {**_inputs(before, "required"), **_inputs(before, "optional")}
        has = {**_inputs(after, "required"), **_inputs(after, "optional")}
        for name in sorted(set(had) - set(has)):
            problems.append(f"{cls}: input '{name}' is gone")
        for name in sorted(set(_inputs(after, "required")) - set(_inputs(before, "required"))):
            if name not in had:
                problems.append(f"{cls}: new required input '{name}' (graphs written for the fixture lack it)")
        for name in sorted(set(has) - set(had) - set(_inputs(after, "required"))):
            notes.append(f"{cls}: new optional input '{name}'")
    notes.append(f"{len(set(current) - set(fixture))} classes beyond the fixture's {len(fixture)}")
    return problems, notes


def check_node_classes(current: dict[str, Any], server_log: str, repo: Path = REPO,
                       fixture_path: Path = FIXTURE) -> Gate:
    sys.path.insert(0, str(repo))
    from handler.workflow import check_graph

    gate = Gate("node classes")
    if "IMPORT FAILED" in server_log:
        gate.fail("a custom node failed to import:\n" + server_log[-2000:])
    problems, notes = object_info_problems(json.loads(fixture_path.read_text()), current)
    for problem in problems:
        gate.fail(problem)
    gate.notes += notes
    for path in sorted((repo / "workflows").glob("*.api.json")):
        for problem in check_graph(json.loads(path.read_text()), current):
            gate.fail(f"{path.name}: {problem}")
    return gate


# ---- converter, frontend, integration -----------------------------------------------------------------------
def check_converter(templates: Path | None, current: dict[str, Any]) -> tuple[Gate, Any]:
    gate = Gate("converter")
    if templates is None:
        gate.state = "SKIP"
        gate.notes.append("no --templates (the JSON files of the comfyui-workflow-templates release ComfyUI pins)")
        return gate, None
    from .converter_corpus import run_corpus, summary, template_files

    result = run_corpus(template_files(templates), current)
    for name, trace in sorted(result.tracebacks.items()):
        gate.fail(f"{name}: converter traceback: {trace.strip().splitlines()[-1][:300]}")
    gate.notes += summary(result).splitlines()
    return gate, result


def check_frontend(templates: Path | None, frontend: Path | None, current: dict[str, Any]) -> Gate:
    gate = Gate("frontend")
    if templates is None or frontend is None:
        gate.state = "SKIP"
        gate.notes.append("needs --templates and --frontend (tools.frontend_export's output for those templates)")
        return gate
    from .frontend_compare import compare, percentages, report

    result = compare(templates, frontend, current)
    strict, same = percentages(result)
    if same < FRONTEND_EQUAL_MIN:
        gate.fail(f"{same:.1f}% of templates convert to what the frontend's export runs ({strict:.1f}% strictly "
                  f"equal; need {FRONTEND_EQUAL_MIN}%)")
    gate.notes += report(result).splitlines()
    return gate


def check_integration(comfyui: Path, python: str, run: bool) -> Gate:
    gate = Gate("integration")
    if not run:
        gate.state = "SKIP"
        gate.notes.append("not asked for (--integration): run it before changing the pins")
        return gate
    env = {**os.environ, "COMFYUI_PATH": str(comfyui), "COMFYUI_PYTHON": python}
    done = subprocess.run([python, "-m", "pytest", "tests/integration", "-q", "-p", "no:cacheprovider"], cwd=REPO,
                          env=env, capture_output=True, text=True)
    tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
    if done.returncode != 0:
        gate.fail(f"tests/integration exited {done.returncode}")
    gate.notes += tail
    return gate


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.comfyui_upgrade_check", description=__doc__.split("\n\n")[1])
    p.add_argument("--comfyui", type=Path, required=True, help="the ComfyUI checkout to check (its main.py)")
    p.add_argument("--python", default=sys.executable, help="Python with that ComfyUI's requirements")
    p.add_argument("--templates", type=Path, help="the release's GUI template files (tools.converter_corpus)")
    p.add_argument("--frontend", type=Path, help="the frontend's exports of those templates (tools.frontend_export)")
    p.add_argument("--integration", action="store_true", help="also run tests/integration against the checkout")
    p.add_argument("--report", type=Path, help="also write the report here (Markdown)")
    args = p.parse_args(argv)
    comfyui = args.comfyui.resolve()
    from .comfy_server import ComfyServer

    gates = [check_pins(comfyui), check_requirements(comfyui)]
    with ComfyServer(comfyui, args.python) as server:
        current = server.get_json("/object_info")
        server_log = server.log_text()
    gates.append(check_node_classes(current, server_log))
    converter, _ = check_converter(args.templates, current)
    gates += [converter, check_frontend(args.templates, args.frontend, current),
              check_integration(comfyui, args.python, args.integration)]
    failed = [g.name for g in gates if g.state == "FAIL"]
    text = "\n\n".join([f"# ComfyUI upgrade check: {comfyui}", *(g.render() for g in gates),
                        f"**{'FAILED: ' + ', '.join(failed) if failed else 'every gate that ran passed'}**"])
    print(text)
    if args.report:
        args.report.write_text(text + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
