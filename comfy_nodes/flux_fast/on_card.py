"""The diffusion model built on the card it runs on (FluxFastUNETLoader), as ComfyUI's checkpoint loader does.

Why and when: policy.load_to_card_decision. ComfyUI's UNETLoader builds the model in host memory, copies the file's
tensors into it, and the first sampling run moves it to the card; its checkpoint loader instead builds a model on
the GPU when the card has the room, then records it as loaded. This gives UNETLoader's files the same treatment.

How, without touching ComfyUI's code: ComfyUI's own UNETLoader runs unchanged inside PyTorch's `torch.device(card)`
context, so every parameter its model code creates without naming a device is created on the card; the file's
tensors (safetensors' memory map of the page cache; `load_torch_file` names the host explicitly) are copied into
them once. Then `load_models_gpu(force_full_load=True)` records the model as loaded, the step ComfyUI's checkpoint
loader takes after a build on the GPU; nothing is left to move. A model the card cannot hold now, a ComfyUI on
dynamic VRAM or on the CPU, and FLUX_FAST_LOAD_TO_CARD=off get ComfyUI's loader as it is.

Shapes: `load(run, inputs)`: `run()` calls ComfyUI's UNETLoader with `inputs` ({"unet_name", "weight_dtype"}) and
returns its outputs, a 1-tuple holding a ModelPatcher; `load` returns the same. `last()`: where the last load built
its model and why ({"model", "built": "card" | "host", "reason", "seconds"}), for GET /flux_fast/status.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Callable

from .policy import RESIDENT_ROOM_GB, load_to_card_decision, resolve_load_to_card, resolve_margin

log = logging.getLogger("flux_fast.on_card")
_LAST: dict[str, Any] = {"built": "not run yet"}


def last() -> dict[str, Any]:
    return dict(_LAST)


def _record(name: str, built: str, reason: str, seconds: float | None = None) -> None:
    _LAST.clear()
    _LAST.update(model=name, built=built, reason=reason, seconds=None if seconds is None else round(seconds, 3))


def load(run: Callable[[], tuple], inputs: dict[str, Any]) -> tuple:
    import comfy.memory_management
    import comfy.model_management as mm
    import folder_paths

    device = mm.get_torch_device()
    on_gpu = getattr(device, "type", "cpu") == "cuda"
    path = folder_paths.get_full_path("diffusion_models", str(inputs.get("unet_name", "")))
    if path is None:                      # ComfyUI's loader names the missing file
        return run()
    free = mm.get_free_memory(device) - mm.extra_reserved_memory() if on_gpu else 0
    build_here, why = load_to_card_decision(
        resolve_load_to_card(os.environ), on_gpu, bool(getattr(comfy.memory_management, "aimdo_enabled", False)),
        free, os.path.getsize(path), resolve_margin(os.environ, RESIDENT_ROOM_GB))
    name = str(inputs.get("unet_name"))
    if not build_here:
        log.debug("flux_fast: %s: %s", name, why)
        _record(name, "host", why)
        return run()
    t0 = time.perf_counter()
    out = build(run, device, name)
    if out is None:
        _record(name, "host", "the build on the card failed (see the log); built as ComfyUI does")
        return run()
    built = time.perf_counter()
    mm.load_models_gpu([out[0]], force_full_load=True)
    log.info("flux_fast: %s: %s (%.2f s, %.2f s to record it as loaded)", name, why, built - t0,
             time.perf_counter() - built)
    _record(name, "card", why, time.perf_counter() - t0)
    return out


def build(run: Callable[[], tuple], device: Any, name: str) -> tuple | None:
    """ComfyUI's loader (`run`) with every tensor its model code creates without naming a device created on `device`;
    None, after a warning, where that fails (another process took the room since it was measured, or model code
    that needs its tensors on the host): the caller then loads as ComfyUI does, and the job keeps its model."""
    import torch

    import comfy.model_management as mm

    try:
        with torch.device(device):
            return run()
    except Exception as exc:  # noqa: BLE001 - whatever it was, ComfyUI's own way is left
        log.warning("flux_fast: building %s on the card failed (%s: %s); loading it as ComfyUI does", name,
                    exc.__class__.__name__, str(exc)[:200])
        mm.soft_empty_cache()
        return None
