"""The DiT's weights as the fast path holds them between ComfyUI's loads: bf16 copies of the fp8 weights, and
every parameter frozen (requires_grad off).

Why a ComfyUI *injection* (ModelPatcher.set_injections): ComfyUI ejects injections before it patches, unpatches,
moves or partially unloads weights (ModelPatcher.use_ejected, unpatch_model, detach) and injects them again after.
So ComfyUI only ever sees the parameters it stored:

* a LoRA is merged into the fp8 weight and rounded to fp8 exactly as plain ComfyUI does it (an earlier version
  held the bf16 copy as the parameter, and ComfyUI merged the LoRA into it and rounded to bf16: another image);
* switching LoRAs restores ComfyUI's fp8 backups and moves fp8 weights, and its size bookkeeping stays true.

Eject puts the fp8 tensor back into each parameter and keeps the bf16 copy; inject puts the copy back where the
fp8 tensor is still the one it was made from (same storage, same version), and casts a new one where ComfyUI
replaced or rewrote the weight (a LoRA, a reload). ComfyUI ejects and injects on every load, warm requests
included, so a warm request costs pointer swaps, not 12 B-parameter casts (which cost ~0.2 s a request on an
H200 when every eject cast back to fp8). The price is holding the fp8 weights beside the bf16 copies (+50%): the
upcast decision counts it, and the copies are dropped when ComfyUI unloads the model or loads it only partly.

Frozen parameters: ComfyUI builds its modules with requires_grad on and a LoRA patch sets new parameters with it
off. Dynamo guards on it, so the compiled blocks would miss every LoRA switch; inject turns it off everywhere.

Every inject and eject gives parameters new tensors; compiled_blocks.py sees that (data pointers) at the next model
call and rebinds its runners.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any, Iterator

import torch

from .policy import Plan, upcast_decision

log = logging.getLogger("flux_fast")

_FP8_TYPES = tuple(t for t in (getattr(torch, "float8_e4m3fn", None), getattr(torch, "float8_e5m2", None)) if t)


class WeightState:
    """The injection: frozen parameters always; bf16 copies of fp8 weights when `compute_dtype` is set."""

    def __init__(self, compute_dtype: torch.dtype | None, plan: Plan):
        self.compute_dtype = compute_dtype
        self.plan = plan
        # "module.param" -> _Copy: the bf16 copy of one fp8 weight and what it was made from
        self.copies: dict[str, _Copy] = {}
        self.casts = 0                        # copies made so far (a warm request makes none)
        self._last_reason: str | None = None

    def injection(self) -> Any:
        from comfy.patcher_extension import PatcherInjection

        return PatcherInjection(inject=self.inject, eject=self.eject)

    # ---- ComfyUI's calls ---------------------------------------------------------------------------------
    def inject(self, patcher: Any) -> None:
        """After ComfyUI loaded (and patched) the weights."""
        diffusion_model = patcher.model.diffusion_model
        self._restore(diffusion_model)        # an inject without an eject before it: start from ComfyUI's tensors
        for param in diffusion_model.parameters():
            if param.requires_grad:
                param.requires_grad_(False)
        if self.compute_dtype is not None:
            self._upcast(patcher, diffusion_model)

    def eject(self, patcher: Any) -> None:
        """Before ComfyUI touches the weights: each parameter back to the fp8 tensor it stored."""
        self._restore(patcher.model.diffusion_model)

    def on_detach(self, patcher: Any, unpatch_all: bool) -> None:
        """ComfyUI unloaded the model (to the CPU): the copies must not keep GPU memory ComfyUI thinks is free."""
        if unpatch_all:
            self.drop("model unloaded")

    def drop(self, why: str) -> None:
        if self.copies:
            log.info("flux_fast: %s: dropped the bf16 copies of %d fp8 tensors", why, len(self.copies))
        self.copies.clear()

    # ---- the upcast -------------------------------------------------------------------------------------
    def _restore(self, diffusion_model: torch.nn.Module) -> None:
        with torch.no_grad():
            for key, c in self.copies.items():
                if c.fp8 is None:
                    continue
                param = _param(diffusion_model, key)
                if param is not None and param is c.param() and param.data_ptr() == c.copy.data_ptr():
                    param.data = c.fp8
                c.fp8 = None              # the parameter owns it again; ComfyUI may free or replace it

    def _upcast(self, patcher: Any, diffusion_model: torch.nn.Module) -> None:
        import comfy.model_management as mm

        if getattr(patcher.model, "model_lowvram", False):
            self.drop("model loaded partially (low VRAM)")
            self._say("model loaded partially (low VRAM): keeping fp8 weights and ComfyUI's per-step cast")
            return
        params = dict(_fp8_params(diffusion_model, torch.device(patcher.load_device).type))
        in_place = bool(getattr(patcher, "weight_inplace_update", False))   # writes we could not see
        stale = [k for k, p in params.items() if in_place or not (k in self.copies and self.copies[k].made_from(p))]
        for key in [k for k in self.copies if k not in params] + stale:   # free old copies before casting new ones
            self.copies.pop(key, None)
        if stale:
            extra = sum(params[k].numel() * self.compute_dtype.itemsize for k in stale)
            device = params[stale[0]].device
            free = mm.get_free_memory(device) - mm.extra_reserved_memory()
            ok, why = upcast_decision(self.plan.upcast, free, extra, self.plan.margin_bytes)
            if not ok:
                self.drop("upcast declined")
                self._say(f"upcast no: {why}")
                return
            with torch.no_grad():
                for key in stale:
                    self.copies[key] = _Copy(params[key], params[key].data.to(self.compute_dtype))
            self.casts += len(stale)
            self._say(f"upcast yes: {why}; {len(params)} fp8 tensors now held in {self.compute_dtype} on {device}")
        with torch.no_grad():
            for key, param in params.items():
                c = self.copies[key]
                c.fp8 = param.data        # held while the parameter holds the copy
                param.data = c.copy

    def _say(self, reason: str) -> None:
        """Log a decision when it changes, not on every request."""
        if reason != self._last_reason:
            log.info("flux_fast: %s", reason)
            self._last_reason = reason


class _Copy:
    """The bf16 copy of one fp8 parameter. `made_from` is true while the parameter is the same object holding the
    same storage it had when the copy was made: ComfyUI changes a weight's values only by setting a new Parameter
    (LoRA patch, backup restore) or by writing in place (weight_inplace_update, checked by the caller), and moving
    it to another device gives it new storage."""

    def __init__(self, param: torch.nn.Parameter, copy: torch.Tensor):
        self.param = weakref.ref(param)
        self.source_ptr = param.data_ptr()
        self.copy = copy
        self.fp8: torch.Tensor | None = None

    def made_from(self, param: torch.nn.Parameter) -> bool:
        return self.param() is param and param.data_ptr() == self.source_ptr


def _fp8_params(diffusion_model: torch.nn.Module, device_type: str) -> Iterator[tuple[str, torch.nn.Parameter]]:
    for mname, module in diffusion_model.named_modules():
        for pname, param in module.named_parameters(recurse=False):
            if param.dtype in _FP8_TYPES and param.device.type == device_type:
                yield (f"{mname}.{pname}" if mname else pname), param


def _param(diffusion_model: torch.nn.Module, key: str) -> torch.nn.Parameter | None:
    mname, _, pname = key.rpartition(".")
    module = diffusion_model.get_submodule(mname) if mname else diffusion_model
    return getattr(module, pname, None)
