"""FluxFastPatch on a model ComfyUI loaded with dynamic VRAM (its default on NVIDIA since 0.16, and start.sh's on
cards under 18 GiB): which cards get the resident fast path and which are left to dynamic VRAM.

What a 16 GB user would notice: with the fp8 DiT made resident and T5 and the VAE streaming, a request at a hard
16 GiB cap took 6.21 s, compiled, against 7.63 s with everything left to dynamic VRAM (H100, BENCHMARKS.md), so there
the node takes ComfyUI's non-dynamic copy, as ComfyUI's TorchCompileModel does. Where the card cannot hold the DiT
and sampling's room beside it (12 GB), the node leaves the model to dynamic VRAM without reading the DiT's file again;
only the conditioning's per-step copies are taken off (a plain clone with conds.py's wrapper). No GPU here: the card
is ComfyUI's own memory query, answered for the test; the model is a stand-in for a dynamic ModelPatcher with the
FLUX.1-dev fp8 DiT's size. Needs a ComfyUI checkout (COMFYUI_PATH).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the node needs torch (the integration environment)")

REPO = Path(__file__).resolve().parents[2]
GIB = 1024 ** 3
FLUX_DEV_FP8_DIT = 11_901_525_888      # bytes of flux1-dev-fp8-e4m3fn's weights (~11.08 GiB)


class Reloaded(Exception):
    """Raised where the node would read the DiT's file again for a resident copy."""


class DynamicDiT:
    load_device = "cuda:0"

    def __init__(self):
        self.wrappers: dict[tuple[str, str], list] = {}
        self.clone_of = None

    def is_dynamic(self):
        return True

    def model_size(self):
        return FLUX_DEV_FP8_DIT

    def get_non_dynamic_delegate(self):
        raise Reloaded

    def clone(self):             # ComfyUI's plain clone: weights shared, nothing read again
        twin = DynamicDiT()
        twin.wrappers, twin.clone_of = {k: list(v) for k, v in self.wrappers.items()}, self
        return twin

    def remove_wrappers_with_key(self, wrapper_type, key):
        self.wrappers.pop((wrapper_type, key), None)

    def add_wrapper_with_key(self, wrapper_type, key, wrapper):
        self.wrappers.setdefault((wrapper_type, key), []).append(wrapper)


@pytest.fixture(scope="module")
def node(comfy_in_process):
    import comfy.model_management as mm
    from flux_fast import patch, policy

    return mm, patch, policy


def _card(monkeypatch, mm, total_gib: float, reserve_gib: float = 0.4):
    monkeypatch.setattr(mm, "get_total_memory", lambda dev=None, torch_total_too=False: int(total_gib * GIB))
    monkeypatch.setattr(mm, "extra_reserved_memory", lambda: int(reserve_gib * GIB))


@pytest.mark.parametrize("total_gib", [12.0, 11.99, 8.0])
def test_a_12_gb_card_leaves_the_model_to_dynamic_vram(node, monkeypatch, total_gib):
    mm, patch, policy = node
    _card(monkeypatch, mm, total_gib)
    model = DynamicDiT()
    out, why, applied = patch.apply(model, policy.make_plan("default", True, "auto", {}))
    assert not applied and "dynamic VRAM" in why and "cannot hold" in why
    # its file not read again (no Reloaded): a plain clone whose only change moves the conditioning once per run
    assert out.clone_of is model and not model.wrappers
    assert list(out.wrappers) == [("calc_cond_batch", "flux_fast")] and len(out.wrappers[("calc_cond_batch", "flux_fast")]) == 1
    again, _, _ = patch.apply(out, policy.make_plan("default", True, "auto", {}))
    assert len(again.wrappers[("calc_cond_batch", "flux_fast")]) == 1      # applied twice: still one wrapper


@pytest.mark.parametrize("total_gib", [15.99, 16.0, 20.0, 24.0, 79.6])
def test_a_card_with_room_takes_the_resident_copy(node, monkeypatch, total_gib):
    mm, patch, policy = node
    _card(monkeypatch, mm, total_gib)
    with pytest.raises(Reloaded):
        patch.apply(DynamicDiT(), policy.make_plan("default", True, "auto", {}))


def test_a_larger_margin_asks_for_a_larger_card(node, monkeypatch):
    mm, patch, policy = node
    _card(monkeypatch, mm, 24.0)
    model = DynamicDiT()
    out, why, applied = patch.apply(model, policy.make_plan("default", True, "auto", {"FLUX_FAST_VRAM_MARGIN_GB": "14"}))
    assert not applied and out.clone_of is model and "14.0 GiB for sampling" in why


def test_start_sh_draws_its_lines_where_the_node_does(node):
    """start.sh decides the worker's flag from the card's size before any model loads. It turns dynamic VRAM off only
    where the DiT and the whole 6 GiB margin (T5, the decode, activations) fit resident, one GiB less would not; below
    that line the node's own rule must still give a 16 GB card the resident DiT (T5 and the VAE streaming), or such
    a card would run every step eager."""
    _, _, policy = node
    threshold = int(re.search(r"^RESIDENT_DIT_MIN_GIB=([0-9]+)$", (REPO / "start.sh").read_text(), re.M).group(1))
    plan = policy.make_plan("default", True, "auto", {})
    reserve = int(0.4 * GIB)                 # ComfyUI's own reserve on Linux (EXTRA_RESERVED_VRAM)
    assert policy.resident_decision(threshold * GIB - reserve, FLUX_DEV_FP8_DIT, plan.margin_bytes)[0]
    assert not policy.resident_decision((threshold - 1) * GIB - reserve, FLUX_DEV_FP8_DIT, plan.margin_bytes)[0]
    sixteen_gb_card = 16376 * 1024 ** 2      # what nvidia-smi and torch report for a 16 GB card
    assert policy.resident_decision(sixteen_gb_card - reserve, FLUX_DEV_FP8_DIT, plan.resident_room_bytes)[0]
