"""tools/comfyui_upgrade_check.py, the one command before a ComfyUI upgrade: each gate must fail on the kind of change
that would break the worker after the move, and name it. Pure functions here; the integration tier runs the whole
command against the pinned checkout."""

import json
import subprocess

from tools import comfyui_upgrade_check as check


def test_the_repo_pins_one_release_in_the_dockerfile_and_ci():
    pins = check.repo_pins()
    assert pins["Dockerfile"] == pins["CI"]
    assert pins["Dockerfile"]["version"].startswith("v") and len(pins["Dockerfile"]["commit"]) == 40


def test_pins_disagreeing_between_dockerfile_and_ci_fail(tmp_path):
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / "Dockerfile").write_text("ARG COMFYUI_VERSION=v0.33.0\nARG COMFYUI_COMMIT=" + "a" * 40 + "\n")
    (tmp_path / ".github" / "workflows" / "tests.yml").write_text(
        "env:\n  COMFYUI_VERSION: v0.38.1\n  COMFYUI_COMMIT: " + "b" * 40 + "\n")
    comfy = tmp_path / "comfyui"
    comfy.mkdir()
    (comfy / "comfyui_version.py").write_text('__version__ = "0.38.1"\n')
    gate = check.check_pins(comfy, tmp_path)
    assert gate.state == "FAIL" and "one release for both" in gate.problems[0]
    assert "the checkout is v0.38.1 (commit unknown" in gate.notes[0]


def test_a_checkout_of_another_release_is_named_with_the_pins_to_change(tmp_path):
    comfy = tmp_path / "comfyui"
    comfy.mkdir()
    (comfy / "comfyui_version.py").write_text('__version__ = "0.38.1"\n')
    subprocess.run(["git", "init", "-q", str(comfy)], check=True)
    gate = check.check_pins(comfy)
    assert gate.state == "PASS"
    assert "the checkout is v0.38.1" in gate.notes[0] and "ARG COMFYUI_VERSION" in gate.notes[0]


def test_requirements_each_package_at_one_version():
    comfy = "comfy-kitchen==0.3.0\nnumpy>=1.25.0\ntorch\nnewpkg>=1\ncomfyui-frontend-package==1.50.0\n# note\n"
    ours = "comfy-kitchen==0.2.31\nnumpy==2.3.5\ncomfyui_frontend_package==1.50.0\n"
    problems = check.requirement_problems(comfy, ours)
    assert problems == [
        "comfy-kitchen: ComfyUI pins 0.3.0, requirements-comfyui.txt pins 0.2.31",
        "newpkg: ComfyUI asks for 'newpkg>=1' and requirements-comfyui.txt pins no version of it",
    ]


def _info(required=None, optional=None):
    return {"input": {"required": required or {}, "optional": optional or {}}}


def test_node_classes_lost_or_newly_required_inputs_fail_new_optional_ones_are_noted():
    fixture = {"KSampler": _info({"seed": ["INT", {}], "cfg": ["FLOAT", {}]}),
               "UNETLoader": _info({"unet_name": [["a"], {}]}),
               "Gone": _info()}
    current = {"KSampler": _info({"seed": ["INT", {}], "noise_mode": [["a"], {}]}, {"denoise2": ["FLOAT", {}]}),
               "UNETLoader": _info({"unet_name": [["a"], {}]}, {"weight_dtype": [["default"], {}]}),
               "NewNode": _info()}
    problems, notes = check.object_info_problems(fixture, current)
    assert problems == ["class Gone is gone", "KSampler: input 'cfg' is gone",
                        "KSampler: new required input 'noise_mode' (graphs written for the fixture lack it)"]
    assert "KSampler: new optional input 'denoise2'" in notes
    assert "UNETLoader: new optional input 'weight_dtype'" in notes
    assert notes[-1] == "1 classes beyond the fixture's 3"


def test_an_input_moved_from_optional_to_required_is_not_a_new_input():
    fixture = {"X": _info({}, {"a": ["INT", {}]})}
    problems, _ = check.object_info_problems(fixture, {"X": _info({"a": ["INT", {}]})})
    assert problems == []


def test_the_shipped_workflows_are_checked_with_the_handlers_own_graph_check():
    fixture = json.loads(check.FIXTURE.read_text())
    current = {k: v for k, v in fixture.items() if k != "KSampler"}
    gate = check.check_node_classes(current, server_log="")
    assert gate.state == "FAIL"
    assert "class KSampler is gone" in gate.problems
    assert any(p.startswith("flux1-dev-t2i.api.json: node") and "'KSampler' is not installed" in p
               for p in gate.problems), gate.problems


def test_a_custom_node_that_failed_to_import_fails_the_gate():
    fixture = json.loads(check.FIXTURE.read_text())
    gate = check.check_node_classes(fixture, server_log="Cannot import comfy_nodes/flux_fast module\nIMPORT FAILED")
    assert gate.state == "FAIL" and "a custom node failed to import" in gate.problems[0]
