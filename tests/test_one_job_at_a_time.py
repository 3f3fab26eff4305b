"""One job at a time, the warm-up included (issue 19, item 6), and our own GETs to ComfyUI read as ComfyUI meant
them (item 8): a real Worker against the fake ComfyUI of tests/fake_comfyui.py."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest

from handler.comfy_client import ComfyClient
from handler.config import Settings
from handler.errors import ComfyUnavailableError, ComfyValidationError
from handler.job import Worker
from fake_comfyui import FakeComfyUI, load_json, object_info_for

WORKFLOWS = Path(__file__).resolve().parent.parent / "workflows"


@pytest.fixture
def fake():
    info = {}
    for path in sorted(WORKFLOWS.glob("*.api.json")):
        info.update(object_info_for(load_json(path)))
    server = FakeComfyUI(info).start()
    yield server
    server.stop()


def test_the_warm_up_and_the_first_job_never_run_beside_each_other(fake):
    settings = replace(Settings.from_env({"COMFYUI_URL": fake.url}))
    worker = Worker(settings, ComfyClient(settings.comfyui_url, 5))
    assert worker.prepare() == []
    inside, overlaps, results = [], [], []
    warm_inside, job_entered, release = threading.Event(), threading.Event(), threading.Event()
    original = worker._handle

    def recording(job, job_id, jlog):
        if inside:
            overlaps.append((inside[0], job_id))
        inside.append(job_id)
        try:
            if job_id.startswith("warmup"):
                warm_inside.set()
                release.wait(10)         # the warm-up's prompt is still running...
            else:
                job_entered.set()
            return original(job, job_id, jlog)
        finally:
            inside.remove(job_id)

    worker._handle = recording
    job = {"prompt": "x", "width": 256, "height": 256, "num_inference_steps": 1}
    warm = threading.Thread(target=lambda: results.append(worker.handle({"id": "warmup-0", "input": job})))
    warm.start()
    assert warm_inside.wait(10)
    first = threading.Thread(target=lambda: results.append(worker.handle({"id": "job-1", "input": job})))
    first.start()
    job_entered.wait(1.0)    # ...the first job arrives (today: it runs at once, beside the warm-up)
    release.set()
    warm.join(20)
    first.join(20)
    assert overlaps == []
    assert [r.get("status") for r in results] == ["success", "success"]


def test_an_http_error_from_a_comfyui_that_answers_is_not_a_dead_comfyui(fake, monkeypatch):
    client = ComfyClient(fake.url, 5)
    monkeypatch.setattr(client, "_request", _answering(client._request, "/history/", 500))
    with pytest.raises(ComfyValidationError) as err:
        client.history("abc")
    assert err.value.details["http_status"] == 500
    monkeypatch.setattr(client, "_request", _answering(client._request, "/object_info", 404))
    with pytest.raises(ComfyValidationError):
        client.object_info(refresh=True)


def test_an_http_error_from_a_comfyui_that_stopped_answering_is_still_unavailable(fake, monkeypatch):
    client = ComfyClient(fake.url, 5)
    monkeypatch.setattr(client, "_request", _answering(client._request, "/history/", 503))
    monkeypatch.setattr(client, "alive", lambda: False)
    with pytest.raises(ComfyUnavailableError):
        client.history("abc")


def _answering(request, prefix: str, status: int):
    """`request` with every path under `prefix` answered by `status` (a live ComfyUI's own HTTP error)."""
    import requests

    def fake_request(method, path, **kwargs):
        response = request(method, path, **kwargs)
        if path.startswith(prefix):
            broken = requests.Response()
            broken.status_code, broken._content, broken.request, broken.url = status, b"{}", response.request, response.url
            return broken
        return response

    return fake_request
