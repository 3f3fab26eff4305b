"""ComfyUI's start is kept out of its own garbage collection (comfy_nodes/flux_fast/gc_freeze.py), in the worker
start.sh runs, and FLUX_FAST_GC_FREEZE=0 turns that off.

What a caller notices is the reply: a full collection over the ~540,000 objects of a started ComfyUI holds the
GIL for ~0.3 s right after a prompt, and the message that ends the job can wait behind it (`python -m
bench.gc_pause` measures it: BENCHMARKS.md). Time is not asserted here; what is asserted is that the objects of
the worker's ComfyUI start are frozen (reported by /flux_fast/status) or, with the switch off, that none are.
"""

from __future__ import annotations

from tools.soak import http_json


def _frozen(server) -> int:
    code, body = http_json("GET", f"{server.comfyui_url}/flux_fast/status", timeout=10)
    assert code == 200, body
    return body["gc_frozen"]


def test_the_workers_comfyui_start_is_kept_out_of_garbage_collection_unless_turned_off(server_pool):
    assert _frozen(server_pool.worker()) > 100_000          # torch's and ComfyUI's modules: ~540,000 objects
    assert _frozen(server_pool.fresh_worker("gc-freeze-off", {"FLUX_FAST_GC_FREEZE": "0"})) == 0
