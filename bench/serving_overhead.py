"""What the serving process's own per-block machinery costs the host per model call, with nothing to compute.

Why: on an H100 the fp8 package computes a sampling step in 0.134 s (bench.aot_probe) while a worker's step took
0.154 s, so something around the packages costs ~0.02 s a step. This isolates our share of it: the weight check
(`_ListRunners.refresh`, every model call) and the 57 block stand-ins (`_Block.forward`: the input checks, the
interrupt check, the runner call), on FLUX's block structure (19 double and 38 single blocks, every parameter of
each) with a runner that returns at once. Runs on the CPU; the figure is host time, the same on any card.

Usage: python -m bench.serving_overhead --comfyui /path/to/ComfyUI [--calls 200]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# FLUX.1-dev's block structure at a tiny width: the per-call work depends on the number of blocks and parameters.
TINY_FLUX = dict(image_model="flux", in_channels=16, out_channels=16, vec_in_dim=768, context_in_dim=4096,
                 hidden_size=96, mlp_ratio=4.0, num_heads=2, depth=19, depth_single_blocks=38, axes_dim=[8, 20, 20],
                 theta=10000, patch_size=2, qkv_bias=True, guidance_embed=True, txt_ids_dims=[])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--comfyui", type=Path, required=True)
    p.add_argument("--calls", type=int, default=200)
    args = p.parse_args()
    sys.path[:0] = [str(args.comfyui.resolve()), str(REPO / "comfy_nodes")]
    import comfy.options

    comfy.options.enable_args_parsing()
    sys.argv = [str(args.comfyui / "main.py"), "--cpu"]
    import torch
    import comfy.ops
    from comfy.ldm.flux.model import Flux
    from flux_fast import compiled_blocks as cb
    from flux_fast.artifacts import Package

    class Loader:
        @staticmethod
        def boxed_run(tensors):
            return [tensors[0], tensors[1]]

    class Runner:
        loader = Loader()

    cb.load_package = lambda data, device: Runner()           # no package: only our machinery runs
    model = Flux(**TINY_FLUX, dtype=torch.bfloat16, device="cpu", operations=comfy.ops.disable_weight_init)
    device, hidden = torch.device("cpu"), TINY_FLUX["hidden_size"]
    head_half = hidden // TINY_FLUX["num_heads"] // 2
    acts = {"double_blocks": 2, "single_blocks": 1}
    runners, counts = {}, {"compiled": 0, "eager": 0}
    for name in cb.LISTS:
        blocks = getattr(model, name)
        expected = {n: "bfloat16" for n, _ in blocks[0].named_parameters()}
        inputs = [{"ndim": 3, "dtype": "bfloat16", "shape": [2, 96, hidden], "dynamic": [0, 1]}] * acts[name] + [
            {"ndim": 2, "dtype": "bfloat16", "shape": [2, hidden], "dynamic": [0]},
            {"ndim": 6, "dtype": "float32", "shape": [2, 1, 136, head_half, 2, 2], "dynamic": [0, 2]}]
        runners[name] = cb._ListRunners(name, Package(name, b"", inputs, tuple(expected)), blocks, device, expected)
    stand_ins = {n: [cb._Block(r, i, b, counts) for i, b in enumerate(getattr(model, n))] for n, r in runners.items()}
    img, txt = torch.zeros(1, 100, hidden, dtype=torch.bfloat16), torch.zeros(1, 36, hidden, dtype=torch.bfloat16)
    x, vec = torch.zeros(1, 136, hidden, dtype=torch.bfloat16), torch.zeros(1, hidden, dtype=torch.bfloat16)
    pe = torch.zeros(1, 1, 136, head_half, 2, 2)

    def refresh():
        for runners_ in runners.values():
            runners_.refresh()

    def model_call():
        refresh()
        for block in stand_ins["double_blocks"]:
            block(img=img, txt=txt, vec=vec, pe=pe, attn_mask=None, transformer_options={})
        for block in stand_ins["single_blocks"]:
            block(x, vec=vec, pe=pe, attn_mask=None, transformer_options={})

    def per_call_ms(fn) -> float:
        for _ in range(20):
            fn()
        t = time.perf_counter()
        for _ in range(args.calls):
            fn()
        return round((time.perf_counter() - t) / args.calls * 1000, 3)

    res = {"model_call_ms": per_call_ms(model_call), "weight_check_ms": per_call_ms(refresh)}
    if counts["eager"]:
        raise SystemExit(f"{counts['eager']} block calls fell back to eager: the measurement is not of the compiled path")
    res["block_calls_per_model_call"] = sum(len(s) for s in stand_ins.values())
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
