"""Node packs against a real ComfyUI: the build step's load probe, and a worker that runs a pack's node and refuses
a missing one (tools/install_node_packs.py, handler/node_packs.py).

Packs made by the tests are installed into a custom_nodes folder of the session (given to ComfyUI through an
extra-paths file, as the GUI's would be; ComfyUI's own tree is not touched). With NODE_PACKS_REAL_LIST naming a
custom_nodes.txt of rgthree-comfy, ComfyUI-KJNodes and ComfyUI-GGUF (any git URLs, e.g. local mirrors, at their
commits), a FLUX workflow using a node of each runs end to end on the stand-ins; without it that test is skipped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, ServerPool, Worker  # tests/integration/conftest.py (rootdir-relative import)

INSTALLER = REPO / "tools" / "install_node_packs.py"
REAL_LIST = os.environ.get("NODE_PACKS_REAL_LIST")

INVERT = '''
class PackInvert:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",)}}
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"
    CATEGORY = "test-packs"
    def run(self, image):
        return (1.0 - image,)

class PackReadFolder:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"folder": ("STRING", {"default": ""})}}
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"
    CATEGORY = "test-packs"
    def run(self, folder):
        raise RuntimeError("never reached: the policy refuses it")

NODE_CLASS_MAPPINGS = {"PackInvert": PackInvert, "PackReadFolder": PackReadFolder}
'''


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


def _pack(root: Path, name: str, init: str) -> str:
    repo = root / name
    repo.mkdir(parents=True)
    (repo / "__init__.py").write_text(init)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "pack")
    return f"file://{repo} {_git(repo, 'rev-parse', 'HEAD')}"


def _install(comfyui_path: Path, python: str, list_text: str, work: Path) -> tuple[subprocess.CompletedProcess, Path, Path]:
    listing, custom_nodes, record = work / "custom_nodes.txt", work / "custom_nodes", work / "node_packs.json"
    listing.write_text(list_text)
    result = subprocess.run([python, str(INSTALLER), "--list", str(listing), "--comfyui", str(comfyui_path),
                             "--python", python, "--custom-nodes", str(custom_nodes), "--record", str(record)],
                            cwd=REPO, capture_output=True, text=True, timeout=1800)
    return result, custom_nodes, record


@contextlib.contextmanager
def _pack_worker(server_pool: ServerPool, custom_nodes: Path, record: Path, env: dict[str, str]):
    """A worker like the session's, with the packs' folder given to ComfyUI and the record to the handler."""
    server_pool.close()  # one heavy server at a time
    setup = server_pool.setup
    yaml = setup.work_dir / f"packs_{custom_nodes.parent.name}.yaml"
    yaml.write_text(setup.model_paths_yaml.read_text() + f"packs:\n  custom_nodes: {custom_nodes}\n")
    pool = ServerPool(dataclasses.replace(setup, model_paths_yaml=yaml))
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env, NODE_PACKS_RECORD=str(record))
    try:
        yield Worker(pool.worker())
    finally:
        pool.close()
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        os.environ.pop("NODE_PACKS_RECORD", None)


def test_the_build_fails_naming_every_pack_whose_nodes_do_not_load(comfyui_path, comfyui_python, tmp_path):
    listing = "\n".join([_pack(tmp_path / "src", "good-pack", INVERT),
                         _pack(tmp_path / "src", "broken-pack", "import a_module_nobody_installed\n"),
                         _pack(tmp_path / "src", "empty-pack", "NODE_CLASS_MAPPINGS = {}\n")]) + "\n"
    result, _, record = _install(comfyui_path, comfyui_python, listing, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "'broken-pack' (import failed)" in result.stdout and "'empty-pack' (registered no node class)" in result.stdout
    assert "good-pack'" not in result.stdout.split("did not load")[1].split("\n")[0]
    assert not record.exists()


def test_a_pack_node_runs_through_the_worker_and_a_missing_one_is_refused_with_its_line(
        comfyui_path, comfyui_python, server_pool, tmp_path):
    result, custom_nodes, record = _install(comfyui_path, comfyui_python,
                                            _pack(tmp_path / "src", "test-pack", INVERT) + "\n", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    pack = json.loads(record.read_text())["packs"][0]
    assert pack["name"] == "test-pack" and pack["classes"] == ["PackInvert", "PackReadFolder"]
    with _pack_worker(server_pool, custom_nodes, record, {"WORKFLOW_EXTRA_NODES": "PackInvert,PackReadFolder"}) as worker:
        info = worker.runsync({"action": "info"})["output"]
        assert [(p["name"], p["pin"], p["node_classes"], p["loaded"]) for p in info["node_packs"]] == [
            ("test-pack", pack["pin"], ["PackInvert", "PackReadFolder"], True)]
        graph = {"1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
                 "2": {"class_type": "PackInvert", "inputs": {"image": ["1", 0]}},
                 "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "packs"}}}
        body = worker.runsync({"workflow": graph, "legacy_image": False})
        assert body.get("status") == "COMPLETED", body
        assert body["output"]["images"][0]["width"] == 64 and body["output"]["outputs"][0]["node_id"] == "3"
        # a class no pack provides: refused before queueing, naming the node and, from the GUI node, the line
        ui = {"nodes": [{"id": 12, "type": "GetImageSizeAndCount", "mode": 0, "title": "Size", "widgets_values": [],
                         "properties": {"cnr_id": "comfyui-kjnodes", "ver": "1.1.7"}}], "links": [], "version": 0.4}
        refused = worker.runsync({"workflow": ui})
        details = refused["output"]["details"] if "output" in refused else refused
        text = json.dumps(refused)
        # (the local API's FAILED answer carries the error sentence only, not its details)
        assert refused.get("status") == "FAILED" and "Workflow node 12 (GetImageSizeAndCount" in text, details
        assert "'comfyui-kjnodes@1.1.7' to custom_nodes.txt" in text, details
        # a pack class with a path input: refused unless WORKFLOW_ALLOWED_PACK_NODES names it
        folder = {"1": {"class_type": "PackReadFolder", "inputs": {"folder": "x"}},
                  "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "p"}}}
        text = json.dumps(worker.runsync({"workflow": folder}))
        assert "Workflow node 1 (PackReadFolder)" in text and "WORKFLOW_ALLOWED_PACK_NODES" in text


def _flux_with_real_packs(t2i: dict) -> dict:
    graph = json.loads(json.dumps(t2i))
    graph["2"]["class_type"] = "DualCLIPLoaderGGUF"  # ComfyUI-GGUF: loads the safetensors text encoders too
    graph["2"]["inputs"].pop("device", None)
    graph["7"]["inputs"].update(width=256, height=256)
    graph["8"]["inputs"].update(width=256, height=256)
    graph["9"]["inputs"].update(steps=2, seed=7)
    graph["13"] = {"class_type": "GetImageSizeAndCount", "inputs": {"image": ["10", 0]}}  # KJNodes
    graph["14"] = {"class_type": "Display Any (rgthree)", "inputs": {"source": ["13", 1]}}  # rgthree
    graph["11"]["inputs"]["images"] = ["13", 0]
    return graph


@pytest.mark.skipif(not REAL_LIST, reason="NODE_PACKS_REAL_LIST (a custom_nodes.txt of rgthree-comfy, "
                                          "ComfyUI-KJNodes and ComfyUI-GGUF) not set: real packs not verified")
def test_a_flux_workflow_using_three_real_packs_runs_end_to_end(comfyui_path, comfyui_python, server_pool, tmp_path):
    result, custom_nodes, record = _install(comfyui_path, comfyui_python, Path(REAL_LIST).read_text(), tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    packs = {p["name"]: p for p in json.loads(record.read_text())["packs"]}
    assert {"rgthree-comfy", "ComfyUI-KJNodes", "ComfyUI-GGUF"} <= set(packs)
    t2i = json.loads((REPO / "workflows" / "flux1-dev-t2i.api.json").read_text())
    extra = "DualCLIPLoaderGGUF,GetImageSizeAndCount,Display Any (rgthree)"
    with _pack_worker(server_pool, custom_nodes, record, {"WORKFLOW_EXTRA_NODES": extra}) as worker:
        info = worker.runsync({"action": "info"})["output"]
        assert all(p["loaded"] for p in info["node_packs"]), info["node_packs"]
        body = worker.runsync({"workflow": _flux_with_real_packs(t2i), "legacy_image": False})
        assert body.get("status") == "COMPLETED", body
        output = body["output"]
        assert output["images"][0]["width"] == 256 and output["images"][0]["height"] == 256
        ran = {entry["class_type"] for entry in output["timings"]["nodes_s"].values()}
        assert {"DualCLIPLoaderGGUF", "GetImageSizeAndCount", "KSampler"} <= ran, ran
