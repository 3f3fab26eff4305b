"""Keep ComfyUI's own garbage collection off the path of a request's reply.

Why: after each prompt, at most every 10 s, ComfyUI's prompt worker runs `gc.collect()` (main.py, prompt_worker).
A full collection walks every object the process tracks, and a started ComfyUI tracks ~540,000 of them, nearly all
created by its imports (torch, transformers, ComfyUI's nodes): 0.31 s a collection on this project's CI CPU, during
which no other thread of the process runs. The prompt worker sends the `executing: null` message that ends a job
just before that collection, from another thread than the server's event loop, which must still take the GIL to
put the message on the websocket; when the collection wins that race the reply waits for it. On the H100 worker,
two requests in five lost 0.17-0.35 s that way, plain ComfyUI's as well (BENCHMARKS.md, "Single-threaded runners":
the PNG save's 0.20 against 0.42-0.55 s). The first job of a cold start pays it as well: ComfyUI's first collection
is due after its first prompt (the warm-up the job cancels).

What it does: `gc.freeze()` once, when ComfyUI's server imports these nodes, moves the objects that exist then into
the permanent generation that collections skip. Objects created later (models, their modules and tensors, each
prompt's data) are still collected as before, so a model ComfyUI unloads is freed as it was. What is frozen are
objects that live as long as the process (modules, classes, functions, their dicts); a reference cycle among them
that became garbage later would not be reclaimed, a few objects at most. FLUX_FAST_GC_FREEZE=0 turns it off
(policy.py).

`python -m bench.gc_pause` measures it against a real ComfyUI on the CPU.
"""

from __future__ import annotations

import gc
import logging
import time

log = logging.getLogger("flux_fast")


def freeze() -> int:
    """Move every object the collector tracks now into the permanent generation; return how many are frozen."""
    started = time.perf_counter()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info("flux_fast: %d objects of ComfyUI's start kept out of garbage collection (%.3f s)", frozen,
             time.perf_counter() - started)
    return frozen
