"""Run in a ComfyUI interpreter (cwd = the ComfyUI checkout): ComfyUI's own ModelPatcher loads a small fp8
"DiT", switches LoRAs on it the way a sequence of requests does, and reports the weights each load leaves the
model computing with, once with the fast path's upcast injection and once without (plain ComfyUI).

Why a probe and not the stand-in workflow: off CUDA the fast path passes the model through (nothing to gain on a
CPU), so the live workflow cannot show what the upcast does to LoRA patching. ComfyUI's patching code is the same
on every device, so the injection is exercised here on the CPU through ComfyUI's load_models_gpu, exactly as on
a GPU. Prints one JSON object: for each step of the sequence, whether the weights the model computes with equal
plain ComfyUI's bit for bit, their dtypes, and sha256s.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

import torch


def main(repo: str) -> None:
    sys.path[:0] = [os.getcwd(), repo]
    from comfy.cli_args import args

    args.cpu = True                            # before model_management reads it
    import comfy.lora
    import comfy.model_management as mm
    import comfy.model_patcher
    from comfy_nodes.flux_fast.patch import PATCH_KEY
    from comfy_nodes.flux_fast.weights import WeightState
    from comfy_nodes.flux_fast.policy import Plan

    class Wrapper(torch.nn.Module):          # what ComfyUI's BaseModel looks like to the patcher
        def __init__(self) -> None:
            super().__init__()
            g = torch.Generator().manual_seed(0)
            self.diffusion_model = torch.nn.Sequential(*(torch.nn.Linear(64, 64) for _ in range(3)))
            with torch.no_grad():
                for lin in self.diffusion_model:
                    lin.weight.copy_(torch.randn(64, 64, generator=g) * 0.05)
                    lin.weight.data = lin.weight.data.to(torch.float8_e4m3fn)
                    lin.bias.data = lin.bias.data.to(torch.bfloat16)
            self.requires_grad_(False)

        def model_dtype(self) -> torch.dtype:
            return torch.float8_e4m3fn

    def lora(seed: int, rank: int = 4) -> dict:
        g = torch.Generator().manual_seed(seed)
        sd, key_map = {}, {}
        for i in range(3):
            sd[f"l{i}.lora_up.weight"] = torch.randn(64, rank, generator=g) * 0.02
            sd[f"l{i}.lora_down.weight"] = torch.randn(rank, 64, generator=g) * 0.02
            key_map[f"l{i}"] = f"diffusion_model.{i}.weight"
        return comfy.lora.load_lora(sd, key_map, log_missing=True)

    def run(upcast: bool) -> list[dict]:
        model = Wrapper()
        base = comfy.model_patcher.ModelPatcher(model, load_device=torch.device("cpu"), offload_device=torch.device("cpu"))
        state = None
        if upcast:
            from comfy.patcher_extension import CallbacksMP

            plan = Plan(compute="bf16", compile=False, upcast="always", compile_mode="default", margin_bytes=0)
            state = WeightState(torch.bfloat16, plan)
            base.set_injections(PATCH_KEY, [state.injection()])
            base.add_callback_with_key(CallbacksMP.ON_DETACH, PATCH_KEY, state.on_detach)
        patchers = {"none": base.clone()}
        for name, seed, strength in (("A", 1, 1.0), ("B", 2, 0.7), ("A-half", 1, 0.5)):
            p = base.clone()
            p.add_patches(lora(seed), strength)
            patchers[name] = p
        steps = []
        for name in ("none", "A", "A", "B", "none", "A-half", "none", "none"):
            casts = state.casts if state else 0
            mm.load_models_gpu([patchers[name]])
            weights = [lin.weight for lin in model.diffusion_model]
            steps.append({"load": name, "dtypes": sorted({str(w.dtype) for w in weights}),
                          "values": [w.detach().float().contiguous().numpy().tobytes() for w in weights],
                          "casts": (state.casts - casts) if state else None,
                          "frozen": not any(p.requires_grad for p in model.diffusion_model.parameters())})
        mm.unload_all_models()                # ComfyUI takes the model off the device: the copies go with it
        steps.append({"load": "unloaded", "dtypes": sorted({str(lin.weight.dtype) for lin in model.diffusion_model}),
                      "values": [], "casts": None, "frozen": None, "copies": len(state.copies) if state else None})
        return steps

    plain, fast = run(False), run(True)
    report = []
    for p, f in zip(plain, fast):
        report.append({"load": p["load"], "plain_dtypes": p["dtypes"], "fast_dtypes": f["dtypes"],
                       "equal": p["values"] == f["values"], "casts": f["casts"], "frozen": f["frozen"],
                       "copies": f.get("copies"), "sha256": hashlib.sha256(b"".join(f["values"])).hexdigest()})
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1])
