"""Build the compiled FLUX blocks once on a GPU machine, for the image (baked) or the network volume (signed).

The worker builds them itself (the first worker of a GPU model, in a child process, while it serves eager), but a
deployer who wants every worker compiled from its first request, the first one included, runs this once on a
machine with the endpoint's GPU model, image and models:

    python -m tools.bake_compiled_blocks --out /worker/compile-artifacts            # then commit the container layer
    FLUX_FAST_ARTIFACTS_SECRET=... python -m tools.bake_compiled_blocks --out /runpod-volume/.cache/flux-fast --signed

It starts the worker exactly as the image does (start.sh, its flags, the warm-up, which starts the build), waits for
the build, sends one short request (the worker then loads, checks and publishes the blocks to a private signed
folder), and copies them to --out: unsigned for the image's own folder (trusted as the image is; artifacts.py),
signed with FLUX_FAST_ARTIFACTS_SECRET for a volume. The key names the GPU model, torch, ComfyUI, the model state
and the CPU features of the host (a package's launcher is compiled with -march=native), so a worker on another GPU
model or another host CPU ignores them and builds its own.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from comfy_nodes.flux_fast.artifacts import ArtifactFolder
from tools.soak import free_port, http_json  # one copy of the loopback HTTP helpers

REPO = Path(__file__).resolve().parent.parent


def copy_artifacts(source: ArtifactFolder, destination: ArtifactFolder) -> list[str]:
    """Every manifest `source` can verify, written to `destination` (which signs or not as it is set up)."""
    said = []
    for manifest in sorted(source.folder.glob("*.json")):
        key = manifest.name.removesuffix(".json")
        packages, why = source.read(key)
        if packages is None:
            said.append(f"{key}: skipped ({why})")
            continue
        said.append(f"{key}: {destination.write(key, packages)}")
    return said


def _status(url: str) -> list[dict]:
    """The compiled-blocks entries of the worker's /flux_fast/status; [] while ComfyUI does not answer yet."""
    try:
        code, body = http_json("GET", url, timeout=10)
    except OSError:
        return []
    return (body.get("compile") or []) if code == 200 and isinstance(body, dict) else []


def bake(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="flux-fast-bake-"))
    secret = secrets.token_hex(32)                 # this run's own: nothing outside it can sign for it
    api_port, comfy_port = free_port(), free_port()
    env = {**os.environ, "FLUX_FAST_ARTIFACTS_DIR": str(work / "shared"), "FLUX_FAST_ARTIFACTS_SECRET": secret,
           "FLUX_FAST_BAKED_ARTIFACTS_DIR": "", "COMFYUI_URL": f"http://127.0.0.1:{comfy_port}",
           "WARMUP_STEPS": os.environ.get("WARMUP_STEPS", "1")}
    log = open(work / "worker.log", "wb")
    proc = subprocess.Popen(["bash", str(REPO / "start.sh"), "--rp_serve_api", "--rp_api_host", "127.0.0.1",
                             "--rp_api_port", str(api_port)], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    status_url = f"http://127.0.0.1:{comfy_port}/flux_fast/status"
    deadline = time.monotonic() + args.timeout_s
    try:
        while True:                                 # the warm-up's sampling run starts the build
            if proc.poll() is not None or time.monotonic() > deadline:
                print(f"bake: the worker exited or timed out before a build finished; log: {work / 'worker.log'}")
                return 1
            compiled = _status(status_url)
            build = next((c.get("build") for c in compiled if c.get("build")), None)
            if build and build.get("state") == "failed" or any(c.get("state") == "failed" for c in compiled):
                print(f"bake: the build failed: {json.dumps(compiled)[:1500]}")
                return 1
            if build and build.get("state") == "done" or any(c.get("state") == "compiled" for c in compiled):
                break
            time.sleep(2)
        # One short request: the worker loads the build, checks it against the eager blocks, and publishes it.
        # Any size: the packages take every size; a small one keeps this request short.
        body = {"input": {"prompt": "bake", "seed": 1, "num_inference_steps": 1, "width": 256, "height": 256}}
        _, reply = http_json("POST", f"http://127.0.0.1:{api_port}/runsync", body, timeout=args.timeout_s)
        compiled = _status(status_url)
        if not isinstance(reply, dict) or reply.get("status") != "COMPLETED" or not any(c.get("state") == "compiled" for c in compiled):
            print(f"bake: the worker did not run compiled: {json.dumps(compiled)[:1500]}")
            return 1
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
    source = ArtifactFolder(work / "shared", trusted=False, secret=secret.encode())
    if args.signed:
        key = os.environ.get("FLUX_FAST_ARTIFACTS_SECRET", "")
        if not key:
            print("bake: --signed needs FLUX_FAST_ARTIFACTS_SECRET, the endpoint's secret")
            return 2
        destination = ArtifactFolder(args.out, trusted=False, secret=key.encode())
    else:
        destination = ArtifactFolder(args.out, trusted=True)
    for line in copy_artifacts(source, destination):
        print(f"bake: {line}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="the image's compile-artifacts folder, or the volume's")
    p.add_argument("--signed", action="store_true", help="sign with FLUX_FAST_ARTIFACTS_SECRET (a shared folder)")
    p.add_argument("--timeout-s", type=float, default=900)
    return bake(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
