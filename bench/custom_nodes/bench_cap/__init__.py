"""Benchmark-only ComfyUI custom node package: a hard GPU memory cap for the whole ComfyUI process.

Why: the issue's 24 GB / 16 GB card figures are measured on an 80 GB card by capping what PyTorch's allocator
may take (`torch.cuda.set_per_process_memory_fraction`), with `--reserve-vram` so ComfyUI also plans for the
smaller card. ComfyUI imports custom nodes before it loads any model, so doing it at import time caps every
allocation that matters. Read from BENCH_CUDA_MEM_CAP_GIB; absent or empty means no cap. Never shipped.
"""

import logging
import os

log = logging.getLogger("bench_cap")
NODE_CLASS_MAPPINGS = {}

_cap = os.environ.get("BENCH_CUDA_MEM_CAP_GIB", "").strip()
if _cap:
    import torch

    if torch.cuda.is_available():
        total = torch.cuda.get_device_properties(0).total_memory
        fraction = min(1.0, float(_cap) * 1024 ** 3 / total)
        torch.cuda.set_per_process_memory_fraction(fraction, 0)
        log.warning("bench: GPU memory capped at %s GiB (fraction %.4f of %.1f GiB)", _cap, fraction, total / 1024 ** 3)
