"""Compiled FLUX blocks from ahead-of-time artifacts, on the worker as start.sh runs it (real ComfyUI, CPU, stand-ins).

What a user would notice, and what this checks:
* a worker without artifacts answers its first request at once (eager) while a child process builds the compiled
  blocks, and switches to them for a later request; the image stays the eager one to bf16 rounding;
* the next worker of the deployment loads the published, signed artifacts and runs compiled from its first request,
  without building anything;
* neither worker's serving process ever traces or compiles (dynamo's frames and inductor's events stay 0): the
  failure mode of the old background compile, whose tracing in a thread of the serving process broke sampling,
  cannot come back.

FLUX_FAST_ON_CPU=1 applies the fast path on the CPU (nothing is gained there; AOTInductor builds C++ instead of
Triton), so the same code path as on a GPU runs here: spec, key, child build, signed publish, load, bind, check.
"""

from __future__ import annotations

import base64
import io
import json
import time

import numpy as np
import pytest
from PIL import Image

from tools.soak import http_json

SMALL = {"width": 256, "height": 256, "num_inference_steps": 2}
BUILD_TIMEOUT_S = 900


def _status(server) -> dict:
    code, body = http_json("GET", f"{server.comfyui_url}/flux_fast/status", timeout=10)
    assert code == 200, body
    return body


def _image(response: dict) -> np.ndarray:
    assert response.get("status") == "COMPLETED", response
    data = base64.b64decode(response["output"]["image"]["image_base64"])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32)


def _generate(server, seed: int) -> np.ndarray:
    status, body = http_json("POST", f"{server.base_url}/runsync",
                             {"input": {"prompt": "a lighthouse at dusk", "seed": seed, **SMALL}}, timeout=900)
    assert status == 200, body
    return _image(body)


def _compiled(status: dict) -> dict:
    assert len(status["compile"]) == 1, status
    return status["compile"][0]


def test_first_worker_builds_in_a_child_and_the_next_runs_compiled_from_its_first_request(server_pool, tmp_path):
    shared, baked = tmp_path / "volume" / "flux-fast", tmp_path / "baked"
    baked.mkdir()
    env = {"FLUX_FAST_ON_CPU": "1", "FLUX_FAST_ARTIFACTS_DIR": str(shared),
           "FLUX_FAST_BAKED_ARTIFACTS_DIR": str(baked), "FLUX_FAST_ARTIFACTS_SECRET": "a-secret-of-this-endpoint"}

    first = server_pool.fresh_worker("aotworker-first", env)
    eager = _generate(first, 7)
    state = _compiled(_status(first))
    assert state["state"] == "building", state        # the request did not wait for a compile
    assert state["block_calls"]["compiled"] == 0, state
    deadline = time.monotonic() + BUILD_TIMEOUT_S
    while (build := _compiled(_status(first))["build"]) and build["state"] == "running":
        assert time.monotonic() < deadline, f"build still running after {BUILD_TIMEOUT_S} s"
        first.assert_alive()
        time.sleep(5)
    assert build and build["state"] == "done", (build, first.log_tail())

    _generate(first, 8)         # picks the build up (ComfyUI would answer the same prompt again from its cache)
    compiled = _generate(first, 7)
    state = _compiled(_status(first))
    assert state["state"] == "compiled", (state, first.log_tail())
    assert state["blocks"] == "1/1 double_blocks, 1/1 single_blocks", state
    assert state["block_calls"]["compiled"] > 0 and state["block_calls"]["eager"] == 0, state
    assert "built by this worker" in state["artifacts"], state
    # The same image as eager to bf16 rounding (the stand-ins' random weights make a noisy picture, which only
    # makes the comparison stricter): per-pixel difference small against a 0-255 range.
    diff = np.abs(compiled - eager)
    assert diff.mean() < 2.0 and np.percentile(diff, 99) < 16, (diff.mean(), np.percentile(diff, 99))
    assert _status(first)["traced_in_process"] == 0
    manifests = list(shared.glob("*.json"))
    assert len(manifests) == 1 and "hmac" in json.loads(manifests[0].read_text()), list(shared.iterdir())

    second = server_pool.fresh_worker("aotworker-second", env)
    again = _generate(second, 7)
    state = _compiled(_status(second))
    assert state["state"] == "compiled" and state["build"] is None, (state, second.log_tail())
    assert "shared folder" in state["artifacts"], state
    assert state["block_calls"]["eager"] == 0 and state["block_calls"]["compiled"] > 0, state
    assert np.abs(again - compiled).mean() < 0.5, "the same compiled blocks gave another image"
    assert _status(second)["traced_in_process"] == 0
    assert "flux_fast: compiled blocks loaded" in second.log_text()


def test_baked_packages_make_a_worker_without_secret_or_volume_compiled_from_its_first_request(server_pool, tmp_path):
    """The deployer's path (tools/bake_compiled_blocks.py, compile-artifacts/README.md): one bake run, then a worker
    that has only the image's folder runs compiled from its first request and builds nothing."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    baked = tmp_path / "compile-artifacts"
    server_pool.stop_current()
    env = server_pool.worker_env({"FLUX_FAST_ON_CPU": "1", "WARMUP_STEPS": "1", "WARMUP_SIZES": "256x256"})
    env.pop("FLUX_FAST_ARTIFACTS_SECRET", None)
    done = subprocess.run([sys.executable, "-m", "tools.bake_compiled_blocks", "--out", str(baked)], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    manifests = list(baked.glob("*.json"))
    assert len(manifests) == 1 and "hmac" not in json.loads(manifests[0].read_text()), done.stdout
    assert len(list(baked.glob("*.pt2"))) == 2

    worker = server_pool.fresh_worker("aotworker-baked", {"FLUX_FAST_ON_CPU": "1", "FLUX_FAST_ARTIFACTS_DIR": "",
                                                          "FLUX_FAST_BAKED_ARTIFACTS_DIR": str(baked)})
    _generate(worker, 11)
    state = _compiled(_status(worker))
    assert state["state"] == "compiled" and state["build"] is None, (state, worker.log_tail())
    assert "baked folder" in state["artifacts"] and state["block_calls"]["eager"] == 0, state
    assert _status(worker)["traced_in_process"] == 0
