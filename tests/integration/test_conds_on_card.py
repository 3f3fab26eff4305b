"""The run's conditioning goes to the card once (flux_fast/conds.py), against ComfyUI's own conditioning classes.

What a user would notice if it went wrong: a cached prompt whose conditioning was changed under ComfyUI (the next
request with the same prompt would get tensors ComfyUI did not make), a reference image or constant moved where
ComfyUI expects it on the host, or a copy made again at every step (the speed it exists for is gone). No GPU here:
the card is the meta device, which takes a tensor's shape and dtype but no values; the speed itself is measured on
the GPU (BENCHMARKS.md). Needs a ComfyUI checkout (COMFYUI_PATH).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the node needs torch (the integration environment)")

CARD = torch.device("meta")


@pytest.fixture(scope="module")
def comfy(comfy_in_process):
    import comfy.conds
    import comfy.samplers
    from flux_fast import conds

    return comfy, conds


def _flux_conds(comfy):
    """One prompt's conditioning as FLUX's extra_conds make it, plus the two kinds that must stay put."""
    c = comfy.conds
    return {"c_crossattn": c.CONDCrossAttn(torch.randn(1, 256, 64)), "y": c.CONDRegular(torch.randn(1, 32)),
            "guidance": c.CONDRegular(torch.FloatTensor([3.5])), "ref_latents": c.CONDList([torch.randn(1, 4, 8, 8)]),
            "flag": c.CONDConstant(7)}


def test_the_tensors_comfyui_copies_every_step_are_moved_once(comfy):
    comfy, conds = comfy
    model_conds = _flux_conds(comfy)
    kept = dict(model_conds)
    step = [[{"model_conds": model_conds}], None]           # cond, and no uncond (cfg 1)

    assert conds.to_device(step, CARD) == 3
    for name in ("c_crossattn", "y", "guidance"):
        moved = model_conds[name]
        assert moved.cond.device == CARD and type(moved) is type(kept[name])
        assert moved.cond.shape == kept[name].cond.shape and moved.cond.dtype == kept[name].cond.dtype
        assert kept[name].cond.device.type == "cpu", "the original object was changed, not replaced"
    assert model_conds["ref_latents"] is kept["ref_latents"] and model_conds["flag"] is kept["flag"]

    again = dict(model_conds)
    assert conds.to_device(step, CARD) == 0, "the second step copied again"
    assert all(model_conds[k] is again[k] for k in again)


def test_a_prompts_cached_conditioning_is_never_changed(comfy):
    """ComfyUI caches a node's conditioning between prompts; a sampling run works on copies that
    `encode_model_conds` makes. What the wrapper changes must be those copies."""
    comfy, conds = comfy
    cross_attn = comfy.conds.CONDCrossAttn(torch.randn(1, 256, 64))
    node_output = [{"model_conds": {"c_crossattn": cross_attn}}]

    def extra_conds(**kwargs):
        return {"guidance": comfy.conds.CONDRegular(torch.FloatTensor([kwargs.get("guidance", 3.5)]))}

    run = comfy.samplers.encode_model_conds(extra_conds, node_output[:], torch.zeros(1, 16, 8, 8), "cpu", "positive")
    assert conds.to_device([run, None], CARD) == 2
    assert node_output[0]["model_conds"] == {"c_crossattn": cross_attn}
    assert cross_attn.cond.device.type == "cpu"


def test_the_wrapper_leaves_a_cpu_run_as_comfyui_made_it(comfy):
    comfy, conds = comfy
    model_conds = _flux_conds(comfy)
    before = dict(model_conds)
    seen = []

    def executor(model, step, x_in, timestep, model_options):
        seen.append((model, step, x_in, timestep, model_options))
        return "out"

    step = [[{"model_conds": model_conds}], None]
    x_in = torch.zeros(1, 16, 8, 8)
    assert conds.wrapper()(executor, "model", step, x_in, torch.ones(1), {}) == "out"
    assert seen == [("model", step, x_in, seen[0][3], {})]
    assert all(model_conds[k] is before[k] for k in before)
