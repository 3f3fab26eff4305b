"""ComfyUI custom nodes of the shipped workflow's fast path for FLUX.1-dev.

* "FluxFastPatch" sits between UNETLoader and ModelSamplingFlux and returns a patched clone of the model
  (ModelPatcher callbacks, object patches and ComfyUI's wrapper API; no ComfyUI code is modified). The defaults
  are output-preserving; ``compute = fp8_rowwise`` is the opt-in that trades a small change in the image for
  speed. See patch.py.
* "FluxFastDecode" replaces VAEDecodeTiled: the whole latent in one pass when the memory ComfyUI estimates for
  it is free, ComfyUI's tiled decode otherwise. See decode.py.
* "FluxFastSaveImage" replaces SaveImage: the same files, pixels and embedded workflow, with a PNG encoder that
  takes milliseconds instead of Pillow's 0.1-0.2 s at level 4. See save.py and png.py.

policy.py holds every decision and environment variable, free of torch so the CPU tests can check them.
gc_freeze.py keeps ComfyUI's own garbage collection, which walks every object of its start, off the replies.
compiled_blocks.py runs the DiT's blocks from ahead-of-time compiled packages, which aot_build.py builds in a
process of its own and artifacts.py keeps across workers (only what this deployment built is loaded).

GET /flux_fast/status on ComfyUI's server reports what the fast path is doing (the handler's `action: info` shows
it): whether the patch applied or passed the model through and why, and each compiled model's state. Routes are
how ComfyUI extensions expose state; it is added only inside a running ComfyUI.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from . import on_card, preload
from .policy import (COMPUTE_CHOICES, DECODE_CHOICES, UPCAST_CHOICES, PolicyError, make_plan, resolve_compile,
                     resolve_decode, resolve_gc_freeze)

log = logging.getLogger("flux_fast")


class FluxFastPatch:
    """Keep FLUX's weights in the compute layout, optionally compute in fp8, and torch.compile the DiT."""

    CATEGORY = "advanced/model"
    FUNCTION = "patch"
    RETURN_TYPES = ("MODEL",)
    DESCRIPTION = ("Speeds up FLUX sampling on CUDA GPUs: bf16 weights held on the GPU instead of a per-step "
                   "fp8 cast (when VRAM allows), transformer blocks compiled ahead of time, and opt-in fp8 "
                   "row-wise matmuls. "
                   "Passes the model through unchanged on CPU.")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL",),
                "compute": (list(COMPUTE_CHOICES), {
                    "default": "default",
                    "tooltip": "default: FLUX_FAST_COMPUTE or bf16. bf16 keeps the image; fp8_rowwise is faster "
                               "and changes it slightly; off passes the model through."}),
                "compile": ("BOOLEAN", {
                    "default": True,
                    "tooltip": "Run the transformer blocks compiled ahead of time (built once per GPU model in a "
                               "separate process; FLUX_FAST_COMPILE=0 disables)."}),
                "upcast_weights": (list(UPCAST_CHOICES), {
                    "default": "auto",
                    "tooltip": "auto: hold fp8 weights as bf16 on the GPU when enough VRAM stays free."}),
            }
        }

    def patch(self, model, compute="default", compile=True, upcast_weights="auto"):
        inputs = {"compute": compute, "compile": compile, "upcast_weights": upcast_weights}
        if preload.current is not None:       # the start-up preload applied this already (preload.py)
            taken = preload.current.take_patched(model, inputs)
            if taken is not None:
                return (taken,)
        return (patch_model(model, inputs)[0],)


def patch_model(model: Any, inputs: dict[str, Any]) -> tuple[Any, bool]:
    """FluxFastPatch's work: (the model to sample with, whether the fast path applied). The preload calls it too."""
    plan = make_plan(inputs["compute"], inputs["compile"], inputs["upcast_weights"], os.environ)  # the caller's error
    try:
        from . import patch as fast  # torch and ComfyUI imports only when the node runs

        patched, why, applied = fast.apply(model, plan)
    except Exception as exc:  # never fail a job for a speed-up: plain ComfyUI is the fallback
        log.exception("flux_fast: patch failed; the model runs unpatched (plain ComfyUI speed)")
        _PATCH_STATUS.update(state="failed", reason=f"{exc.__class__.__name__}: {str(exc)[:300]}; model unpatched")
        return model, False
    _PATCH_STATUS.update(state="applied" if applied else "passed through", reason=why)
    return patched, applied


def _prepare_compiled(patched: Any) -> None:
    from . import patch as fast

    fast.prepare_compiled(patched)


class FluxFastDecode:
    """VAE decode in one pass where the memory is there, ComfyUI's tiled decode where it is not."""

    CATEGORY = "latent"
    FUNCTION = "decode"
    RETURN_TYPES = ("IMAGE",)
    DESCRIPTION = ("Decodes the whole latent in one pass when the VRAM ComfyUI estimates for it is free (the "
                   "plain VAE Decode result, ~4x faster than tiled), else decodes tiled like VAE Decode (Tiled).")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "samples": ("LATENT",),
                "vae": ("VAE",),
                "tile_size": ("INT", {"default": 512, "min": 64, "max": 4096, "step": 32,
                                      "tooltip": "Tile size when the decode is tiled."}),
                "overlap": ("INT", {"default": 64, "min": 0, "max": 4096, "step": 32,
                                    "tooltip": "Tile overlap when the decode is tiled."}),
                "mode": (list(DECODE_CHOICES), {
                    "default": "default",
                    "tooltip": "default: FLUX_FAST_DECODE or auto. auto: whole when it fits, else tiled. "
                               "tiled: always tiled (VAE Decode (Tiled)'s exact output)."}),
            }
        }

    def decode(self, samples, vae, tile_size=512, overlap=64, mode="default"):
        from . import decode as fast_decode  # torch and ComfyUI imports only when the node runs

        return (fast_decode.decode(vae, samples, tile_size, overlap, resolve_decode(mode, os.environ)),)


class FluxFastSaveImage:
    """ComfyUI's Save Image with a PNG encoder ~20x faster than its Pillow level 4 (save.py, png.py)."""

    CATEGORY = "image"
    FUNCTION = "save_images"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    OUTPUT_NODE = True
    DESCRIPTION = ("Saves the input images to your ComfyUI output directory, as Save Image does (same pixels, file "
                   "names and embedded workflow), with a faster PNG encoder: a few milliseconds instead of 0.1-0.2 s "
                   "an image, for files up to ~13% larger.")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The images to save."}),
                "filename_prefix": ("STRING", {
                    "default": "ComfyUI",
                    "tooltip": "The prefix for the file to save, as in Save Image."}),
            },
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
        }

    def save_images(self, images, filename_prefix="ComfyUI", prompt=None, extra_pnginfo=None):
        from .save import save_images  # numpy and ComfyUI imports only when the node runs

        return save_images(images, filename_prefix, prompt, extra_pnginfo)


_PATCH_STATUS: dict[str, Any] = {"state": "not run yet", "reason": "no workflow with FluxFastPatch has run"}


def status() -> dict[str, Any]:
    """The fast path's state: the last patch's outcome, where the last FluxFastUNETLoader built its model (on_card.py),
    each compiled model's (see compiled_blocks), and how many objects of ComfyUI's start are kept out of garbage
    collection (gc_freeze.py; 0 when off)."""
    import gc

    compiled, frames = [], 0
    if f"{__name__}.compiled_blocks" in sys.modules:
        module = sys.modules[f"{__name__}.compiled_blocks"]
        compiled, frames = module.statuses(), module.traced_in_process()
    return {"patch": dict(_PATCH_STATUS), "load": on_card.last(), "compile": compiled, "traced_in_process": frames,
            "gc_frozen": gc.get_freeze_count(),
            "preload": preload.current.status() if preload.current is not None else {"state": "off"}}


def _add_status_route() -> None:
    # Only inside a running ComfyUI, which imported its server before its custom nodes; elsewhere (the build
    # process, tests) importing `server` would start ComfyUI's own imports.
    if "server" not in sys.modules:
        return
    try:
        from server import PromptServer
        from aiohttp import web
    except ImportError:
        return
    instance = getattr(PromptServer, "instance", None)
    if instance is None:
        return

    if preload.current is not None:
        instance.add_on_prompt_handler(preload.current.on_prompt)

    @instance.routes.get("/flux_fast/status")
    async def _status(request):
        # ?wait_s=N: answer once the start-up preload has settled, or after N seconds. The handler's gate asks this
        # way: polling 20 times a second slowed the preload's loads by 20-45% on a 2-core machine, each answer taking
        # the GIL and a core from them. A held request costs no thread: the preload sets an asyncio event when done.
        current, wait_s = preload.current, preload.wait_seconds(request.query.get("wait_s"))
        if wait_s and current is not None and not current.done.is_set():
            import asyncio

            loop, settled = asyncio.get_running_loop(), asyncio.Event()
            current.when_done(lambda: loop.call_soon_threadsafe(settled.set))
            try:
                await asyncio.wait_for(settled.wait(), wait_s)
            except asyncio.TimeoutError:
                pass
        return web.json_response(status())


_add_status_route()


def _prepare_loading() -> None:
    """Pay what the first package load costs once per process while ComfyUI still starts and loads models.

    Importing torch's AOTInductor loader took 1.4 s on the CPU. The first load also asks `pick_vec_isa` for the CPU's
    vector ISA, only to compare it with the package's metadata: on a GPU worker that answer is settled without its
    g++ probe (aot_build.skip_isa_probe: the probe took 19-31 s on an H100 machine); on the CPU the probe runs here
    (2.2 s measured), and its answer is cached for the process. Nothing here traces or compiles a model. With the
    start-up preload on, this waits until the preload is done: beside it, the probe's `import torch` subprocesses took
    the cores its loads needed (on 2 cores each load ran 2-3x slower), and the preload's package load does this
    work itself."""
    import threading
    import time

    def run() -> None:
        if preload.current is not None:
            preload.current.done.wait(preload.WAIT_S)
        started = time.perf_counter()
        try:
            import comfy.model_management
            import torch._inductor.package  # noqa: F401
            from torch._inductor import cpu_vec_isa

            from .aot_build import skip_isa_probe

            skip_isa_probe(comfy.model_management.get_torch_device().type)
            cpu_vec_isa.pick_vec_isa()
        except Exception as exc:  # only a head start: the first load does the same if this fails
            log.info("flux_fast: could not prepare package loading ahead (%s)", exc)
            return
        log.info("flux_fast: package loading prepared in %.1f s (loader import, CPU vector ISA)",
                 time.perf_counter() - started)

    threading.Thread(target=run, name="flux_fast-prepare", daemon=True).start()


def _compiling() -> bool:
    try:
        return resolve_compile(True, os.environ)
    except PolicyError:
        return False          # the handler refuses to start on a bad value (policy.check_env)


def _freezing() -> bool:
    try:
        return resolve_gc_freeze(os.environ)
    except PolicyError:
        return False          # the handler refuses to start on a bad value (policy.check_env)


if "server" in sys.modules and _freezing():   # ComfyUI's server process only: not the build child, not tests
    from .gc_freeze import freeze

    freeze()
if "server" in sys.modules and _compiling():
    _prepare_loading()

if preload.current is not None:
    preload.current.attach(patch_model, _prepare_compiled)

NODE_CLASS_MAPPINGS = {"FluxFastPatch": FluxFastPatch, "FluxFastDecode": FluxFastDecode,
                       "FluxFastSaveImage": FluxFastSaveImage}
NODE_DISPLAY_NAME_MAPPINGS = {
    "FluxFastPatch": "FLUX fast path (bf16 weights, compile, opt-in fp8)",
    "FluxFastDecode": "VAE Decode (whole when it fits, else tiled)",
    "FluxFastSaveImage": "Save Image (fast PNG)",
}
if "nodes" in sys.modules:          # inside ComfyUI: the loaders mirror its own (loaders.py)
    from .loaders import node_classes

    for _name, (_cls, _display) in node_classes().items():
        NODE_CLASS_MAPPINGS[_name] = _cls
        NODE_DISPLAY_NAME_MAPPINGS[_name] = _display
