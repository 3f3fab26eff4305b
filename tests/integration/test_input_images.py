"""Input images end to end against a real ComfyUI: base64 and URL images reach a LoadImage node.

The workflow is img2img-shaped but needs no model (LoadImage -> ImageInvert -> SaveImage), so it runs in
seconds on CPU: what is under test is the path of the caller's bytes (validation, URL fetch, upload to ComfyUI's
input folder, LoadImage), not sampling. The handler runs in this process (handler.job.Worker) against the
`comfyui` fixture's server, so the URL test can allow its 127.0.0.1 image server explicitly; the refusal test
uses the real address policy.
"""

from __future__ import annotations

import base64
import io
import sys
import uuid
from pathlib import Path

import pytest
from PIL import Image

from handler import input_files
from handler.comfy_client import ComfyClient
from handler.config import Settings
from handler.job import Worker
from handler.url_fetch import AddressPolicy, fetch_image
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared loopback image server
from image_server import ImageServer, png_bytes, send  # noqa: E402

RED = (200, 30, 30)
INVERTED_RED = (55, 225, 225)


def graph(image_name: str) -> dict:
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": image_name}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": f"it-input/{uuid.uuid4().hex[:8]}"}},
    }


@pytest.fixture
def worker(comfyui):
    settings = Settings.from_env({"COMFYUI_URL": comfyui.base_url})
    return Worker(settings, ComfyClient(comfyui.base_url))


def close_to(pixel: tuple, expected: tuple) -> bool:
    """ComfyUI goes through float32 and truncates back to 8 bits, so allow an off-by-one per channel."""
    return all(abs(a - b) <= 2 for a, b in zip(pixel, expected))


def first_pixel(output: dict) -> tuple:
    data = base64.b64decode(output["image"]["image_base64"])
    with Image.open(io.BytesIO(data)) as img:
        return img.convert("RGB").getpixel((0, 0))


def test_base64_image_feeds_load_image(worker):
    name = f"b64-{uuid.uuid4().hex[:8]}.png"
    out = worker.handle({"id": "it-b64", "input": {
        "workflow": graph(name),
        "images": [{"name": name, "image": base64.b64encode(png_bytes(32, 16, RED)).decode()}],
    }})
    assert out.get("status") == "success", out
    assert (out["images"][0]["width"], out["images"][0]["height"]) == (32, 16)
    assert close_to(first_pixel(out), INVERTED_RED), first_pixel(out)


def test_resending_a_name_replaces_the_file(worker):
    name = f"same-{uuid.uuid4().hex[:8]}.png"
    for color in (RED, (0, 0, 0)):
        out = worker.handle({"id": "it-same", "input": {
            "workflow": graph(name),
            "images": [{"name": name, "image": "data:image/png;base64," + base64.b64encode(png_bytes(8, 8, color)).decode()}],
        }})
        assert out.get("status") == "success", out
    assert close_to(first_pixel(out), (255, 255, 255)), first_pixel(out)


def test_url_image_from_a_local_server_feeds_load_image(worker, monkeypatch):
    def loopback_fetch(url, **kw):
        return fetch_image(url, policy=AddressPolicy(allow_networks=("127.0.0.1/32",)), **kw)

    monkeypatch.setattr(input_files, "fetch_image", loopback_fetch)
    name = f"url-{uuid.uuid4().hex[:8]}.png"
    with ImageServer() as srv:
        srv.routes["/in.png"] = lambda h: send(h, png_bytes(24, 24, RED))
        out = worker.handle({"id": "it-url", "input": {
            "workflow": graph(name), "images": [{"name": name, "image": srv.url("/in.png")}],
        }})
        assert srv.paths_requested() == ["/in.png"]
    assert out.get("status") == "success", out
    assert close_to(first_pixel(out), INVERTED_RED), first_pixel(out)


def test_loopback_url_is_refused_by_the_real_policy(worker, integration_setup):
    name = f"ssrf-{uuid.uuid4().hex[:8]}.png"
    with ImageServer() as srv:
        srv.routes["/in.png"] = lambda h: send(h, png_bytes())
        out = worker.handle({"id": "it-ssrf", "input": {
            "workflow": graph(name), "images": [{"name": name, "image": srv.url("/in.png")}],
        }})
        assert srv.requests == []
    assert out["details"]["field"] == "images[0].image"
    assert "loopback" in out["error"]
    assert not (integration_setup.input_dir / name).exists()


@pytest.mark.parametrize("name", ["../escape.png", "/tmp/abs.png", "sub/dir.png", "..\\x.png"])
def test_path_traversal_names_are_refused_and_nothing_is_written(worker, integration_setup, name):
    out = worker.handle({"id": "it-name", "input": {
        "workflow": graph("unused.png"),
        "images": [{"name": name, "image": base64.b64encode(png_bytes()).decode()}],
    }})
    assert out["details"]["field"] == "images[0].name", out
    assert not (integration_setup.work_dir / "escape.png").exists()
    assert not any(integration_setup.input_dir.rglob("*escape*"))
