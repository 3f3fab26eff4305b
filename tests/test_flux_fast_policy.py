"""The fast-path node's decisions (comfy_nodes/flux_fast/policy.py): pure Python, no torch or GPU needed."""

import pytest

from comfy_nodes.flux_fast import policy
from comfy_nodes.flux_fast.policy import GIB, PolicyError


def test_compute_default_is_output_preserving_bf16():
    assert policy.resolve_compute("default", {}) == "bf16"


def test_env_selects_fp8_when_node_says_default():
    assert policy.resolve_compute("default", {"FLUX_FAST_COMPUTE": "FP8_rowwise"}) == "fp8_rowwise"


def test_explicit_node_value_beats_env():
    assert policy.resolve_compute("bf16", {"FLUX_FAST_COMPUTE": "fp8_rowwise"}) == "bf16"


@pytest.mark.parametrize("value", ["fp16", "", "default"])
def test_bad_env_compute_is_named(value):
    if value == "":
        assert policy.resolve_compute("default", {"FLUX_FAST_COMPUTE": value}) == "bf16"
        return
    with pytest.raises(PolicyError, match="FLUX_FAST_COMPUTE"):
        policy.resolve_compute("default", {"FLUX_FAST_COMPUTE": value})


def test_bad_node_compute_is_named():
    with pytest.raises(PolicyError, match="compute 'int4'"):
        policy.resolve_compute("int4", {})


def test_compile_env_can_only_turn_it_off():
    assert policy.resolve_compile(True, {}) is True
    assert policy.resolve_compile(True, {"FLUX_FAST_COMPILE": "0"}) is False
    assert policy.resolve_compile(False, {"FLUX_FAST_COMPILE": "1"}) is False
    with pytest.raises(PolicyError, match="FLUX_FAST_COMPILE"):
        policy.resolve_compile(True, {"FLUX_FAST_COMPILE": "maybe"})


def test_upcast_env_overrides_auto_only():
    assert policy.resolve_upcast("auto", {"FLUX_FAST_UPCAST": "never"}) == "never"
    assert policy.resolve_upcast("always", {"FLUX_FAST_UPCAST": "never"}) == "always"


def test_margin_from_env_in_gib():
    assert policy.resolve_margin({"FLUX_FAST_VRAM_MARGIN_GB": "2.5"}) == int(2.5 * GIB)
    with pytest.raises(PolicyError):
        policy.resolve_margin({"FLUX_FAST_VRAM_MARGIN_GB": "-1"})


def test_upcast_on_80gb_card_but_not_on_24gb_card():
    extra = int(11.1 * GIB)   # one extra byte per fp8 parameter of the FLUX DiT
    margin = 6 * GIB
    h100_free = int(63 * GIB)  # 80 GB card with the fp8 DiT and T5 loaded
    l4_free = int(6 * GIB)     # 24 GB card with the same
    assert policy.upcast_decision("auto", h100_free, extra, margin)[0] is True
    ok, why = policy.upcast_decision("auto", l4_free, extra, margin)
    assert ok is False and "keeping fp8" in why


def test_upcast_policies_force_either_way():
    assert policy.upcast_decision("never", 10 ** 12, GIB, 0)[0] is False
    assert policy.upcast_decision("always", 0, GIB, GIB)[0] is True
    assert policy.upcast_decision("always", 0, 0, 0)[0] is False  # nothing in fp8


def test_fp8_matmul_shape_rules():
    assert policy.rows_padding(4992 + 256) == 0
    assert policy.rows_padding(1) == 15
    assert policy.fp8_eligible(3072, 9216)
    assert not policy.fp8_eligible(3072, 10)


def test_compile_mode_comes_from_the_environment_and_is_checked():
    make_plan = policy.make_plan
    assert make_plan("default", True, "auto", {}).compile_mode == "default"
    plan = make_plan("default", True, "auto", {"FLUX_FAST_COMPILE_MODE": "max-autotune-no-cudagraphs"})
    assert plan.compile_mode == "max-autotune-no-cudagraphs" and "mode=max-autotune-no-cudagraphs" in plan.describe()
    with pytest.raises(PolicyError):
        make_plan("default", True, "auto", {"FLUX_FAST_COMPILE_MODE": "fastest"})


def test_compiled_blocks_on_the_cpu_only_when_asked_for():
    assert not policy.make_plan("default", True, "auto", {}).on_cpu
    assert policy.make_plan("default", True, "auto", {"FLUX_FAST_ON_CPU": "1"}).on_cpu
    with pytest.raises(PolicyError, match="FLUX_FAST_ON_CPU='sometimes'"):
        policy.make_plan("default", True, "auto", {"FLUX_FAST_ON_CPU": "sometimes"})
    with pytest.raises(PolicyError, match="FLUX_FAST_COMPILE_MODE='reduce-overhead'"):   # CUDA graphs: not AOT
        policy.make_plan("default", True, "auto", {"FLUX_FAST_COMPILE_MODE": "reduce-overhead"})


def test_decode_mode_comes_from_the_node_then_the_environment():
    assert policy.resolve_decode("default", {}) == "auto"
    assert policy.resolve_decode("default", {"FLUX_FAST_DECODE": "Tiled"}) == "tiled"
    assert policy.resolve_decode("auto", {"FLUX_FAST_DECODE": "tiled"}) == "auto"     # an explicit node value wins
    with pytest.raises(PolicyError, match="FLUX_FAST_DECODE='whole'"):
        policy.resolve_decode("default", {"FLUX_FAST_DECODE": "whole"})
    with pytest.raises(PolicyError, match="decode mode 'fast'"):
        policy.resolve_decode("fast", {})


def test_whole_decode_where_it_fits_or_a_little_eviction_makes_it_fit_beside_the_reserve():
    need = int(5.6 * GIB)                                   # ComfyUI's estimate for an 832x1536 FLUX latent
    assert policy.decode_whole("auto", 40 * GIB, need, 0)[0]
    assert policy.decode_whole("auto", need, need, 0)[0]
    whole, why = policy.decode_whole("auto", int(3.5 * GIB), need, 0)  # a 16 GB card after sampling: 2.1 GiB short
    assert whole and "evicts 2.1 GiB" in why
    whole, why = policy.decode_whole("auto", 2 * GIB, need, 1 * GIB)   # --reserve-vram 1: 4.6 GiB would have to go
    assert not whole and "tiled" in why and "5.6 GiB" in why and "4.6 GiB" in why
    assert policy.decode_whole("auto", need - policy.DECODE_EVICT_MAX_BYTES, need, 0)[0]
    assert not policy.decode_whole("auto", need - policy.DECODE_EVICT_MAX_BYTES - 1, need, 0)[0]
    assert not policy.decode_whole("tiled", 80 * GIB, need, 0)[0]    # tiled asked for: tiled even on a big card


def test_fast_path_environment_is_checked_all_at_once_naming_each_variable():
    assert policy.check_env({}) == []
    problems = policy.check_env({"FLUX_FAST_COMPUTE": "int4", "FLUX_FAST_DECODE": "whole",
                                 "FLUX_FAST_ARTIFACTS_DIR": "relative/dir", "FLUX_FAST_ON_CPU": "maybe",
                                 "FLUX_FAST_BAKED_ARTIFACTS_DIR": "baked"})
    assert len(problems) == 5
    assert any("FLUX_FAST_ON_CPU='maybe'" in p for p in problems)
    assert any("FLUX_FAST_BAKED_ARTIFACTS_DIR='baked'" in p for p in problems)
    assert any("FLUX_FAST_COMPUTE='int4'" in p for p in problems)
    assert any("FLUX_FAST_DECODE='whole'" in p for p in problems)
    assert any("FLUX_FAST_ARTIFACTS_DIR" in p and "absolute" in p for p in problems)


def test_a_preload_setting_must_name_an_existing_workflow_file_or_be_empty(tmp_path):
    workflow = tmp_path / "mine.api.json"
    workflow.write_text("{}")
    assert policy.check_env({"FLUX_FAST_PRELOAD": str(workflow)}) == []
    assert policy.check_env({"FLUX_FAST_PRELOAD": ""}) == []
    for bad in (str(tmp_path / "missing.api.json"), "workflows/flux1-dev-t2i.api.json", str(tmp_path)):
        (problem,) = policy.check_env({"FLUX_FAST_PRELOAD": bad})
        assert f"FLUX_FAST_PRELOAD='{bad}'" in problem and "existing" in problem


def test_artifact_key_changes_with_anything_the_kernels_depend_on():
    fields = {"gpu": "NVIDIA H200", "capability": "9.0", "torch": "2.11.0+cu130", "torch_git": "abc", "cuda": "13.0",
              "triton": "3.6.0", "python": "3.12", "comfyui": "0.3.64", "compile_mode": "default", "compute": "bf16",
              "source": "0123"}
    key = policy.artifact_key(fields)
    assert key.startswith("nvidia-h200-torch2.11.0-cu130-bf16-")
    assert policy.artifact_key(dict(fields)) == key                 # stable
    for name, other in [("gpu", "NVIDIA H100 80GB HBM3"), ("torch_git", "def"), ("triton", "3.5.0"),
                        ("compute", "fp8_rowwise"), ("source", "4567"), ("capability", "8.9")]:
        assert policy.artifact_key({**fields, name: other}) != key, name
    assert "/" not in policy.artifact_key({**fields, "gpu": "../../etc/x"})


def test_a_dynamic_dit_is_made_resident_where_it_and_sampling_room_fit():
    """A 16 GB card (15.6 GiB after ComfyUI's reserve) holds the fp8 DiT and the default room beside it: it runs
    compiled, T5 and the VAE streaming. A 12 GB card does not: it is left to dynamic VRAM."""
    dit = int(11.08 * GIB)
    room = policy.make_plan("default", True, "auto", {}).resident_room_bytes
    assert room == int(policy.RESIDENT_ROOM_GB * GIB)
    resident, why = policy.resident_decision(int(15.6 * GIB), dit, room)
    assert resident and "15.6 GiB card holds the 11.1 GiB DiT" in why and "dynamic VRAM" in why
    resident, why = policy.resident_decision(int(11.6 * GIB), dit, room)
    assert not resident and "left to ComfyUI's dynamic VRAM" in why
    assert policy.resident_decision(dit + room, dit, room)[0]              # exactly enough is enough
    assert not policy.resident_decision(dit + room - 1, dit, room)[0]


def test_a_margin_set_in_the_environment_is_the_room_beside_a_resident_dit_too():
    """One knob: a user who asks for 6 GiB to stay free gets it under dynamic VRAM as well (a 16 GB card then keeps
    the DiT streaming); unset, the upcast keeps 6 GiB and a resident DiT 2 GiB."""
    unset = policy.make_plan("default", True, "auto", {})
    assert (unset.margin_bytes, unset.resident_room_bytes) == (6 * GIB, 2 * GIB)
    set_ = policy.make_plan("default", True, "auto", {"FLUX_FAST_VRAM_MARGIN_GB": "6"})
    assert (set_.margin_bytes, set_.resident_room_bytes) == (6 * GIB, 6 * GIB)
    assert not policy.resident_decision(int(15.6 * GIB), int(11.08 * GIB), set_.resident_room_bytes)[0]
    assert "resident_room=2.0GiB" in unset.describe()


def test_hopper_cards_trace_attention_with_cudnn_first_and_others_keep_comfyuis_choice():
    assert policy.traced_sdpa("9.0", "attention_pytorch") == "cudnn_first"           # H100, H200
    for capability in ("8.0", "8.6", "8.9", "10.0", "12.0", "cpu"):   # A100, A10/3090, L4/4090, B200, 5090, CPU
        assert policy.traced_sdpa(capability, "attention_pytorch") == "comfy", capability
    for attention in ("attention_sage", "attention_xformers", "attention_sub_quad"):   # no kernel to choose there
        assert policy.traced_sdpa("9.0", attention) == "comfy", attention
    assert set(policy.TRACED_SDPA_CHOICES) == {"comfy", "cudnn_first"}


def test_gc_freeze_is_on_by_default_off_with_0_and_a_bad_value_is_named():
    assert policy.resolve_gc_freeze({}) is True
    assert policy.resolve_gc_freeze({"FLUX_FAST_GC_FREEZE": "0"}) is False
    assert policy.resolve_gc_freeze({"FLUX_FAST_GC_FREEZE": " On "}) is True
    with pytest.raises(PolicyError, match="FLUX_FAST_GC_FREEZE='later' is not 0 or 1"):
        policy.resolve_gc_freeze({"FLUX_FAST_GC_FREEZE": "later"})
    assert policy.check_env({"FLUX_FAST_GC_FREEZE": "later"}) == ["FLUX_FAST_GC_FREEZE='later' is not 0 or 1"]


def test_the_dit_is_built_on_the_card_only_where_comfyui_keeps_it_resident_and_it_fits_now():
    """An 80 GB card with T5 already loaded holds the fp8 DiT and sampling's room: built there. Under dynamic VRAM
    (ComfyUI streams the file's own tensors), on the CPU, with too little free memory now (ComfyUI then decides at
    sampling time what to evict) or with FLUX_FAST_LOAD_TO_CARD=off, ComfyUI's host build stays."""
    dit, room = int(11.08 * GIB), int(policy.RESIDENT_ROOM_GB * GIB)
    yes, why = policy.load_to_card_decision(True, True, False, int(74.1 * GIB), dit, room)
    assert yes and "74.1 GiB free on the card holds the 11.1 GiB model" in why
    assert policy.load_to_card_decision(True, True, False, dit + room, dit, room)[0]     # exactly enough is enough
    no, why = policy.load_to_card_decision(True, True, False, dit + room - 1, dit, room)
    assert not no and "built in host memory, as ComfyUI does" in why
    no, why = policy.load_to_card_decision(True, True, True, int(74.1 * GIB), dit, room)
    assert not no and "dynamic VRAM" in why
    no, why = policy.load_to_card_decision(True, False, False, int(74.1 * GIB), dit, room)
    assert not no and why == "no GPU"
    no, why = policy.load_to_card_decision(False, True, False, int(74.1 * GIB), dit, room)
    assert not no and why == "FLUX_FAST_LOAD_TO_CARD=off"


def test_load_to_card_is_on_by_default_off_with_off_and_a_bad_value_is_named():
    assert policy.resolve_load_to_card({}) is True
    assert policy.resolve_load_to_card({"FLUX_FAST_LOAD_TO_CARD": " OFF "}) is False
    assert policy.resolve_load_to_card({"FLUX_FAST_LOAD_TO_CARD": "auto"}) is True
    assert policy.check_env({"FLUX_FAST_LOAD_TO_CARD": "1"}) == [
        "FLUX_FAST_LOAD_TO_CARD='1' is not one of auto, off"]
