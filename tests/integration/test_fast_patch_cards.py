"""FluxFastPatch on a model ComfyUI loaded with dynamic VRAM (its default on NVIDIA since 0.16): which cards get the
resident fast path and which are left to dynamic VRAM.

What a 16 GB user would notice: with the DiT made resident, ComfyUI unloads and reloads it and T5 on every request
(14.99 s against plain ComfyUI's 7.96 s at a 16 GiB cap, BENCHMARKS.md), so there the node must leave the model to
dynamic VRAM, without reading the DiT's file again for a resident copy; only the conditioning's per-step copies are
taken off (a plain clone with conds.py's wrapper). On a card with room it takes ComfyUI's
non-dynamic copy, as ComfyUI's TorchCompileModel does. No GPU here: the card is ComfyUI's own memory query, answered
for the test; the model is a stand-in for a dynamic ModelPatcher with the FLUX.1-dev fp8 DiT's size.
Needs a ComfyUI checkout (COMFYUI_PATH).
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


@pytest.mark.parametrize("total_gib", [16.0, 15.99, 12.0])
def test_a_16_gb_card_leaves_the_model_to_dynamic_vram(node, monkeypatch, total_gib):
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


@pytest.mark.parametrize("total_gib", [20.0, 24.0, 79.6])
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
    assert not applied and out.clone_of is model and "14.0 GiB margin" in why


def test_start_sh_draws_the_line_where_the_node_does(node):
    """start.sh decides the worker's flag from the card's size before any model loads; for the shipped DiT it must
    agree with the node's own rule, or a card between the two would get neither path."""
    _, _, policy = node
    threshold = int(re.search(r"^RESIDENT_DIT_MIN_GIB=([0-9]+)$", (REPO / "start.sh").read_text(), re.M).group(1))
    margin = int(policy.DEFAULT_MARGIN_GB * GIB)
    reserve = int(0.4 * GIB)                 # ComfyUI's own reserve on Linux (EXTRA_RESERVED_VRAM)
    assert policy.resident_decision(threshold * GIB - reserve, FLUX_DEV_FP8_DIT, margin)[0]
    assert not policy.resident_decision((threshold - 1) * GIB - reserve, FLUX_DEV_FP8_DIT, margin)[0]
