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


def test_compiled_sizes_default_to_the_workers_warmup_sizes():
    assert policy.make_plan("default", True, "auto", {}).compile_sizes == ((832, 1536),)
    plan = policy.make_plan("default", True, "auto", {"WARMUP_SIZES": "832x1536,1024x1024"})
    assert plan.compile_sizes == ((832, 1536), (1024, 1024))
    assert policy.make_plan("default", True, "auto", {"WARMUP_SIZES": "832x1536", "FLUX_FAST_COMPILE_SIZES": "512x512"}).compile_sizes == ((512, 512),)
    with pytest.raises(PolicyError):
        policy.make_plan("default", True, "auto", {"FLUX_FAST_COMPILE_SIZES": "big"})


def test_only_warmed_up_single_image_shapes_run_compiled():
    plan = policy.make_plan("default", True, "auto", {"WARMUP_SIZES": "832x1536,1024x1024"})
    assert plan.compiled_for(1, 1536 // 8, 832 // 8) and plan.compiled_for(1, 128, 128)
    assert not plan.compiled_for(1, 1344 // 8, 768 // 8)      # a size never warmed up: no compile stall
    assert not plan.compiled_for(2, 1536 // 8, 832 // 8)      # a batch is another shape
    assert not plan.compiled_for(1, 1536 // 8, 832 // 8, 320)  # so is a prompt longer than 256 T5 tokens
    assert not policy.make_plan("default", True, "auto", {"FLUX_FAST_COMPILE": "0"}).compiled_for(1, 192, 104)


def test_apply_model_wrapper_swaps_in_the_compiled_model_only_for_planned_shapes():
    torch = pytest.importorskip("torch", reason="torch is not installed: the wrapper test needs real tensors")
    from comfy_nodes.flux_fast.patch import _compiled_for_planned_sizes

    class Base:
        diffusion_model = "eager"

    class Executor:
        class_obj = Base()
        seen = []

        def __call__(self, x, *args, **kwargs):
            self.seen.append(self.class_obj.diffusion_model)
            return x

    plan = policy.make_plan("default", True, "auto", {"WARMUP_SIZES": "832x1536"})
    wrapper = _compiled_for_planned_sizes("compiled", plan)
    executor = Executor()
    context = torch.zeros(1, 256, 4096)
    wrapper(executor, torch.zeros(1, 16, 192, 104), None, None, context)
    wrapper(executor, torch.zeros(1, 16, 128, 128), None, None, context)
    wrapper(executor, torch.zeros(2, 16, 192, 104), None, None, context.repeat(2, 1, 1))
    wrapper(executor, torch.zeros(1, 16, 192, 104), None, None, torch.zeros(1, 300, 4096))
    assert executor.seen == ["compiled", "eager", "eager", "eager"]
    assert executor.class_obj.diffusion_model == "eager"
