"""Run in a ComfyUI interpreter (cwd = the ComfyUI checkout): load the FLUX text encoders the way the
production workflow's DualCLIPLoader does (comfy.sd.load_clip, type flux, T5 then CLIP-L), with ComfyUI's
command line parsed for real (`--cpu`, plus `--fp8_e4m3fn-text-enc` when asked), encode a prompt the way
CLIPTextEncode does, and save the conditioning.

Usage: text_encoder_probe.py <t5 file> <clip_l file> <out.pt> [--fp8_e4m3fn-text-enc]
       text_encoder_probe.py --compare <a.pt> <b.pt>

Prints one JSON object on its last line: for a load, the dtypes ComfyUI stores each encoder's weights in and
the dtype the conditioning comes out in; for a comparison, whether each tensor is equal bit for bit
(torch.equal) and the largest absolute difference.
"""

from __future__ import annotations

import json
import os
import sys

PROMPT = "a photo of a red fox in the snow, golden hour, 35mm"


def load_and_encode(t5: str, clip_l: str, out: str, flags: list[str]) -> dict:
    sys.path.insert(0, os.getcwd())
    import comfy.options

    comfy.options.enable_args_parsing()
    sys.argv = [sys.argv[0], "--cpu", *flags]      # the flags as ComfyUI's own parser reads them
    import torch
    import comfy.model_management as mm
    import comfy.sd
    from comfy.cli_args import args

    clip = comfy.sd.load_clip(ckpt_paths=[t5, clip_l], clip_type=comfy.sd.CLIPType.FLUX)
    model = clip.cond_stage_model
    t5_model, clip_model = model.t5xxl.transformer, model.clip_l.transformer
    stored = {
        "t5_linear": t5_model.encoder.block[0].layer[1].DenseReluDense.wi_0.weight.dtype,
        "t5_attention": t5_model.encoder.block[0].layer[0].SelfAttention.q.weight.dtype,
        "t5_embedding": t5_model.shared.weight.dtype,
        "t5_norm": t5_model.encoder.final_layer_norm.weight.dtype,
        "clip_l_linear": clip_model.text_model.encoder.layers[0].mlp.fc1.weight.dtype,
        "clip_l_embedding": clip_model.text_model.embeddings.token_embedding.weight.dtype,
    }
    t5_bytes = sum(p.numel() * p.element_size() for p in t5_model.parameters())
    # What CLIPTextEncode does (nodes.py): tokenize, then encode_from_tokens_scheduled.
    conditioning = clip.encode_from_tokens_scheduled(clip.tokenize(PROMPT))
    cond, extra = conditioning[0]
    torch.save({"cond": cond, "pooled_output": extra["pooled_output"]}, out)
    report = {
        "flag": bool(args.fp8_e4m3fn_text_enc),
        "text_encoder_dtype": str(mm.text_encoder_dtype(torch.device("cpu"))),
        "stored": {k: str(v) for k, v in stored.items()},
        "t5_weight_bytes": t5_bytes,
        "cond": [list(cond.shape), str(cond.dtype)],
        "pooled_output": [list(extra["pooled_output"].shape), str(extra["pooled_output"].dtype)],
        "finite": bool(torch.isfinite(cond).all() and torch.isfinite(extra["pooled_output"]).all()),
    }
    return report


def compare(a: str, b: str) -> dict:
    import torch

    x, y = torch.load(a), torch.load(b)
    return {k: {"equal": torch.equal(x[k], y[k]), "dtypes": [str(x[k].dtype), str(y[k].dtype)],
                "max_abs_diff": float((x[k].double() - y[k].double()).abs().max())} for k in x}


if __name__ == "__main__":
    if sys.argv[1] == "--compare":
        result = compare(sys.argv[2], sys.argv[3])
    else:
        result = load_and_encode(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])
    print(json.dumps(result))
