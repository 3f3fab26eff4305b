"""What ComfyUI's own garbage collection costs a reply, with and without flux_fast's gc.freeze (gc_freeze.py).

Why: on the H100 worker two requests in five took 0.2-0.35 s longer in their last node, plain ComfyUI's as well.
ComfyUI's prompt worker runs `gc.collect()` after a prompt (at most every 10 s) right after sending the message
that ends it, and a full collection over a started ComfyUI's ~540,000 objects holds the GIL for ~0.3 s. This
starts a real ComfyUI (the pinned release, this repo's nodes through extra_model_paths.yaml: tools/comfy_server.py)
on the CPU, once with FLUX_FAST_GC_FREEZE=0 and once with the default, and sends a graph that needs no model
(EmptyImage -> SaveImage at 832x1536) through the handler's own ComfyClient, each prompt more than 10 s after the
last, so that ComfyUI's collection is due after every one. Reports each prompt's seconds from POST to the
`executing: null` message, and the last node's.

Usage: python -m bench.gc_pause --comfyui PATH [--python PY] [--prompts 5] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from handler.comfy_client import ComfyClient  # noqa: E402
from tools.comfy_server import ComfyServer  # noqa: E402

GRAPH = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 832, "height": 1536, "batch_size": 1, "color": 0}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "gc_pause"}},
}


def variant(comfyui: Path, python: str, freeze: str, prompts: int, gap_s: float) -> dict:
    # --cache-none: the same graph again must run again, not come from ComfyUI's cache.
    with ComfyServer(comfyui, python, extra_args=("--cache-none",), placeholders=False, ready_timeout_s=180,
                     env={"FLUX_FAST_GC_FREEZE": freeze, "PYTHONUNBUFFERED": "1"}) as server:
        client = ComfyClient(server.url, 30)
        client.run(GRAPH, timeout_s=60)                       # the first prompt: its collection is due after it
        rows = []
        for _ in range(prompts):
            time.sleep(gap_s)                                 # ComfyUI collects at most every 10 s
            started = time.monotonic()
            result = client.run(GRAPH, timeout_s=60)
            rows.append({"reply_s": round(time.monotonic() - started, 4),
                         "save_node_s": result.node_seconds.get("2")})
        frozen = [line for line in server.log_text().splitlines() if "kept out of garbage collection" in line]
    return {"FLUX_FAST_GC_FREEZE": freeze, "frozen_log": frozen[-1][-120:] if frozen else None, "prompts": rows,
            "reply_median_s": round(statistics.median(r["reply_s"] for r in rows), 4),
            "save_node_median_s": round(statistics.median(r["save_node_s"] or 0 for r in rows), 4)}


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
