"""UI-format workflows, converted by handler.ui_to_api, pass a real ComfyUI's prompt validation.

Needs COMFYUI_PATH (a ComfyUI checkout; COMFYUI_PYTHON runs it, default this interpreter). ComfyUI starts on
CPU with empty placeholder files under the production model names: /prompt validation only checks that a
model name is in the loader's folder list, so no weights are needed. Each accepted prompt is then removed
from the queue and interrupted, so nothing heavy runs.

What this proves beyond the unit tests: the node definitions come from the live /object_info (not the
trimmed fixture), and ComfyUI itself accepts every converted graph (no node_errors).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import zlib
from pathlib import Path

import pytest

from handler.ui_to_api import convert

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "ui"
MODEL_FILES = [
    "diffusion_models/flux1-dev-fp8-e4m3fn.safetensors",
    "text_encoders/t5xxl_fp8_e4m3fn.safetensors",
    "text_encoders/clip_l.safetensors",
    "vae/ae.safetensors",
]
SAMPLES = ["reroutes_primitives.json", "muted_bypassed.json", "subgraph_v1.json"]
COMFYUI_PATH = os.environ.get("COMFYUI_PATH")

pytestmark = pytest.mark.skipif(not COMFYUI_PATH, reason="COMFYUI_PATH is not set: no ComfyUI to validate against")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tiny_png() -> bytes:
    """A valid 8x8 grey PNG, so LoadImage's file check passes without Pillow in the test environment."""
    raw = b"".join(b"\x00" + b"\x80" * 8 for _ in range(8))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _http(url: str, body: dict | None = None, timeout: float = 30.0) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture(scope="module")
def comfy_url(tmp_path_factory):
    base = tmp_path_factory.mktemp("ui-comfy")
    for rel in MODEL_FILES:
        (base / "models" / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / "models" / rel).touch()
    (base / "input").mkdir()
    (base / "input" / "example.png").write_bytes(_tiny_png())
    (base / "fe").mkdir()
    extra = base / "extra_model_paths.yaml"
    extra.write_text(
        f"test_models:\n  base_path: {base / 'models'}\n  diffusion_models: diffusion_models\n"
        "  text_encoders: text_encoders\n  vae: vae\n"
    )
    port = _free_port()
    cmd = [
        os.environ.get("COMFYUI_PYTHON") or sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1",
        "--port", str(port), "--front-end-root", str(base / "fe"), "--disable-auto-launch",
        "--input-directory", str(base / "input"), "--output-directory", str(base / "output"),
        "--extra-model-paths-config", str(extra), "--extra-model-paths-config", str(ROOT / "extra_model_paths.yaml"),
    ]
    log_path = base / "comfyui.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=COMFYUI_PATH, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"ComfyUI exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if _http(url + "/system_stats", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"ComfyUI did not answer within 180 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(base / "output", ignore_errors=True)


@pytest.fixture(scope="module")
def object_info(comfy_url):
    status, body = _http(comfy_url + "/object_info", timeout=60)
    assert status == 200
    return json.loads(body)


def _validate(comfy_url: str, prompt: dict) -> None:
    """POST /prompt and assert ComfyUI accepts it; then take it off the queue so nothing heavy runs."""
    status, body = _http(comfy_url + "/prompt", {"prompt": prompt, "client_id": uuid.uuid4().hex})
    reply = json.loads(body)
    assert status == 200, f"ComfyUI refused the converted prompt: {json.dumps(reply, indent=1)[:3000]}"
    assert reply.get("node_errors") == {}
    prompt_id = reply["prompt_id"]
    _http(comfy_url + "/queue", {"delete": [prompt_id]})
    _http(comfy_url + "/interrupt", {"prompt_id": prompt_id})


@pytest.mark.parametrize("name", SAMPLES)
def test_converted_sample_graph_passes_comfyui_validation(comfy_url, object_info, name):
    workflow = json.loads((FIXTURES / name).read_text())
    _validate(comfy_url, convert(workflow, object_info))


def test_shipped_ui_workflow_converts_with_live_node_definitions_and_validates(comfy_url, object_info):
    ui = json.loads((ROOT / "workflows" / "flux1-dev-t2i.ui.json").read_text())
    expected = json.loads((ROOT / "workflows" / "flux1-dev-t2i.api.json").read_text())
    prompt = convert(ui, object_info)
    strip = lambda g: {k: {**v, "_meta": {"title": v.get("_meta", {}).get("title")}} for k, v in g.items()}  # noqa: E731
    assert strip(prompt) == strip(expected)
    _validate(comfy_url, prompt)


def _ui_node(id, type, inputs=(), outputs=(), widgets=None):
    return {"id": id, "type": type, "pos": [0, 0], "size": [300, 100], "flags": {}, "order": 0, "mode": 0,
            "inputs": [{"name": n, "type": t, "link": link} for n, t, link in inputs],
            "outputs": [{"name": n, "type": t, "links": links} for n, t, links in outputs],
            "properties": {}, "widgets_values": widgets if widgets is not None else []}


def _run(comfy_url: str, prompt: dict, timeout: float = 120.0) -> dict:
    status, body = _http(comfy_url + "/prompt", {"prompt": prompt, "client_id": uuid.uuid4().hex})
    reply = json.loads(body)
    assert status == 200 and reply.get("node_errors") == {}, json.dumps(reply, indent=1)[:3000]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = json.loads(_http(f"{comfy_url}/history/{reply['prompt_id']}")[1]).get(reply["prompt_id"])
        if entry and entry.get("status", {}).get("completed") is not None:
            assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:2000]
            return entry["outputs"]
        time.sleep(0.5)
    pytest.fail("the prompt did not finish")


def test_frontend_defined_widgets_run_on_comfyui_as_the_gui_queues_them(comfy_url, object_info):
    """ImageCompare's `compare_view` (never saved by the GUI, always queued) is a required input: without it ComfyUI
    refuses the node. CustomCombo's INDEX output is the `index` the frontend sends, computed from the options."""
    workflow = {"version": 0.4, "last_node_id": 4, "nodes": [
        _ui_node(1, "EmptyImage", outputs=[("IMAGE", "IMAGE", [1, 2])], widgets=[8, 8, 1, 0]),
        _ui_node(2, "ImageCompare", inputs=[("image_a", "IMAGE", 1), ("image_b", "IMAGE", 2)]),
        _ui_node(3, "CustomCombo", outputs=[("STRING", "STRING", []), ("INDEX", "INT", [3])],
                 widgets=["portrait", 0, "landscape", "portrait", "square"]),
        _ui_node(4, "PreviewAny", inputs=[("source", "*", 3)], widgets=[None, None, None]),
    ], "links": [[1, 1, 0, 2, 0, "IMAGE"], [2, 1, 0, 2, 1, "IMAGE"], [3, 3, 1, 4, 0, "INT"]]}
    prompt = convert(workflow, object_info)
    assert prompt["2"]["inputs"]["compare_view"] == {"__value__": ["", ""]}
    outputs = _run(comfy_url, prompt)
    assert outputs["4"]["text"] == ["1"]
    assert "2" in outputs  # ImageCompare ran and reported its images
