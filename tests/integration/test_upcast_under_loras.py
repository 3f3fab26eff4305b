"""The fast path's bf16 upcast against ComfyUI's LoRA patching, through ComfyUI's own ModelPatcher.

What a caller would notice: with the upcast held as plain bf16 parameters, a LoRA was merged into the bf16 copy
and rounded to bf16, where plain ComfyUI rounds it into the fp8 weight, so the image with a LoRA was not plain
ComfyUI's image; and switching LoRAs moved bf16 copies through ComfyUI's fp8 bookkeeping. The upcast is now a
ComfyUI injection that ComfyUI ejects before it patches. The probe (upcast_lora_probe.py) loads a small fp8 model
through load_models_gpu for a sequence of requests (none, A, A, B, none, A at half strength, none), with and
without the injection, and reports the weights the model computes with after each load, how many bf16 copies each
load had to make, and what is left after ComfyUI unloads the model.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_weights_under_each_lora_equal_plain_comfyuis_and_switching_leaves_nothing_behind(comfyui_path, comfyui_python):
    done = subprocess.run([comfyui_python, str(Path(__file__).with_name("upcast_lora_probe.py")), str(REPO)],
                          cwd=comfyui_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    steps = json.loads(done.stdout.strip().splitlines()[-1])
    unloaded = steps.pop()
    assert [s["load"] for s in steps] == ["none", "A", "A", "B", "none", "A-half", "none", "none"]
    for step in steps:
        assert step["plain_dtypes"] == ["torch.float8_e4m3fn"], step       # what ComfyUI stores
        assert step["fast_dtypes"] == ["torch.bfloat16"], step             # what the fast path computes with
        assert step["equal"], f"after loading {step['load']}: weights differ from plain ComfyUI's"
        assert step["frozen"], step                    # requires_grad off everywhere: what the compiled graphs guard on
    # A warm request (the same model and LoRA again) reuses the bf16 copies; a switch makes new ones.
    assert [s["casts"] for s in steps] == [3, 3, 0, 3, 3, 3, 3, 0]
    # ComfyUI unloading the model takes the copies with it: its fp8 weights back, no GPU memory held behind its back.
    assert unloaded["fast_dtypes"] == ["torch.float8_e4m3fn"] and unloaded["copies"] == 0
    by_load = {}
    for step in steps:
        by_load.setdefault(step["load"], set()).add(step["sha256"])
    assert all(len(v) == 1 for v in by_load.values()), by_load         # the same request, the same weights
    assert len({next(iter(v)) for v in by_load.values()}) == 4           # and each LoRA/strength really differs
