"""What ComfyUI's own garbage collection costs a reply, with and without flux_fast's gc.freeze (gc_freeze.py).

Why: on the H100 worker two requests in five took 0.2-0.35 s longer in their last node, plain ComfyUI's as well.
ComfyUI's prompt worker runs `gc.collect()` after a prompt (at most every 10 s) right after sending the message
that ends it, and a full collection over a started ComfyUI's ~540,000 objects holds the GIL for ~0.3 s. This
starts a real ComfyUI (the pinned release, start.sh's flags, this repo's nodes through extra_model_paths.yaml) on
the CPU, once with FLUX_FAST_GC_FREEZE=0 and once with the default, and sends a graph that needs no model
(EmptyImage -> SaveImage at 832x1536) through the handler's own ComfyClient, each prompt more than 10 s after the
last, so that ComfyUI's collection is due after every one. Reports each prompt's seconds from POST to the
`executing: null` message, and the last node's.

Usage: python -m bench.gc_pause --comfyui PATH [--python PY] [--prompts 5] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from handler.comfy_client import ComfyClient  # noqa: E402

GRAPH = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 832, "height": 1536, "batch_size": 1, "color": 0}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "gc_pause"}},
}
FLAGS = ["--cpu", "--disable-auto-launch", "--preview-method", "none", "--disable-api-nodes", "--cache-none",
         "--database-url", "sqlite:///:memory:"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def variant(comfyui: Path, python: str, freeze: str, prompts: int, gap_s: float) -> dict:
    port = free_port()
    out = Path(tempfile.mkdtemp(prefix="gc-pause-"))
    env = {**os.environ, "FLUX_FAST_GC_FREEZE": freeze, "PYTHONUNBUFFERED": "1"}
    cmd = [python, "main.py", "--listen", "127.0.0.1", "--port", str(port), "--output-directory", str(out),
           "--extra-model-paths-config", str(REPO / "extra_model_paths.yaml"), *FLAGS]
    log = open(out / "comfyui.log", "w")
    proc = subprocess.Popen(cmd, cwd=comfyui, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        client = ComfyClient(f"http://127.0.0.1:{port}", 30)
        deadline = time.monotonic() + 180
        while not client.ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ComfyUI did not start; see {out / 'comfyui.log'}")
            time.sleep(0.1)
        client.run(GRAPH, timeout_s=60)                       # the first prompt: its collection is due after it
        rows = []
        for _ in range(prompts):
            time.sleep(gap_s)                                 # ComfyUI collects at most every 10 s
            started = time.monotonic()
            result = client.run(GRAPH, timeout_s=60)
            rows.append({"reply_s": round(time.monotonic() - started, 4),
                         "save_node_s": result.node_seconds.get("2")})
        log_text = (out / "comfyui.log").read_text(errors="replace")
        frozen = [line for line in log_text.splitlines() if "kept out of garbage collection" in line]
        result = {"FLUX_FAST_GC_FREEZE": freeze, "frozen_log": frozen[-1][-120:] if frozen else None,
                  "prompts": rows, "reply_median_s": round(statistics.median(r["reply_s"] for r in rows), 4),
                  "save_node_median_s": round(statistics.median(r["save_node_s"] or 0 for r in rows), 4)}
        shutil.rmtree(out, ignore_errors=True)      # kept, with ComfyUI's log, only when the variant failed
        return result
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--comfyui", type=Path, required=True)
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--prompts", type=int, default=5)
    p.add_argument("--gap-s", type=float, default=10.5)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    res = {"_env": {"cpus": os.cpu_count(), "python": args.python},
           "variants": [variant(args.comfyui, args.python, f, args.prompts, args.gap_s) for f in ("0", "1")]}
    text = json.dumps(res, indent=1)
    if args.out:
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
