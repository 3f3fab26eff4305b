"""What ComfyUI's `--fp8_e4m3fn-text-enc` would change for the production text encoders, through ComfyUI itself.

The question (issue 18, the load path): keep the text encoders' weights stored in fp8 so T5 takes ~4.8 GB on the
card instead of a ~9.3 GB fp16 copy, with bit-identical conditioning since fp8 -> fp32 is exact. What ComfyUI
v0.33.0 does instead:

* T5 is stored in fp8 already, without the flag. load_text_encoder_state_dicts takes T5's weight dtype from the
  file's `encoder.final_layer_norm.weight` (sd3_clip.t5_xxl_detect), which is fp8 in t5xxl_fp8_e4m3fn, and
  pick_weight_dtype keeps it because it is narrower than the fallback (fp16) and castable. The flag only changes
  that fallback (model_management.text_encoder_dtype), so it saves nothing on T5. (The fp16 in ComfyUI's log line
  "CLIP/text encoder model load device: ..., dtype: torch.float16" is that fallback, CLIP-L's dtype, not T5's.)
* The flag does change CLIP-L: its fp16 weights are copied into fp8 parameters (rounded), so the pooled vector
  FLUX gets from CLIP-L changes. That is why start.sh does not pass the flag.
* Both encoders compute in fp32 either way (sd1_clip passes dtype=float32; manual_cast ops cast each weight to the
  input's dtype when the layer runs), so T5's conditioning is bit-identical with and without the flag.

The probe (text_encoder_probe.py) loads the encoders as DualCLIPLoader does (comfy.sd.load_clip, type flux) with
ComfyUI's command line parsed for real, once without and once with the flag, each in its own process (the T5
stand-in is 4.4 GiB), and encodes a prompt as CLIPTextEncode does.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

PROBE = Path(__file__).with_name("text_encoder_probe.py")
FLAG = "--fp8_e4m3fn-text-enc"
FP8 = "torch.float8_e4m3fn"


def _probe(comfyui_path: Path, comfyui_python: str, *argv: str) -> dict:
    done = subprocess.run([comfyui_python, str(PROBE), *argv], cwd=comfyui_path, capture_output=True, text=True,
                          timeout=1200)
    assert done.returncode == 0, f"probe {argv} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def encodings(comfyui_path: Path, comfyui_python: str, standins_dir: Path, tmp_path_factory) -> dict:
    te = standins_dir / "text_encoders"
    t5, clip_l = te / "t5xxl_fp8_e4m3fn.safetensors", te / "clip_l.safetensors"   # the names models.txt ships
    for f in (t5, clip_l):
        if not f.is_file():
            pytest.skip(f"stand-in {f} missing")
    work = tmp_path_factory.mktemp("text_encoder_fp8")
    out = {}
    for mode, flags in (("default", []), ("fp8", [FLAG])):   # one encoder set in memory at a time
        out[mode] = _probe(comfyui_path, comfyui_python, str(t5), str(clip_l), str(work / f"{mode}.pt"), *flags)
    out["compare"] = _probe(comfyui_path, comfyui_python, "--compare", str(work / "default.pt"), str(work / "fp8.pt"))
    return out


def test_the_flag_reaches_comfyui(encodings):
    assert encodings["default"]["flag"] is False and encodings["default"]["text_encoder_dtype"] == "torch.float16"
    assert encodings["fp8"]["flag"] is True and encodings["fp8"]["text_encoder_dtype"] == FP8


def test_t5_is_stored_in_fp8_with_and_without_the_flag(encodings):
    for mode in ("default", "fp8"):
        stored = encodings[mode]["stored"]
        assert {stored[k] for k in ("t5_linear", "t5_attention", "t5_embedding", "t5_norm")} == {FP8}, (mode, stored)
    # one byte a weight: the same 4.4 GiB either way, no fp16 copy to save
    assert encodings["default"]["t5_weight_bytes"] == encodings["fp8"]["t5_weight_bytes"]
    assert encodings["default"]["t5_weight_bytes"] < 5e9


def test_t5_conditioning_is_bit_identical_with_and_without_the_flag(encodings):
    for mode in ("default", "fp8"):
        assert encodings[mode]["cond"] == [[1, 256, 4096], "torch.float32"], encodings[mode]
        assert encodings[mode]["finite"], mode
    assert encodings["compare"]["cond"]["equal"], encodings["compare"]["cond"]


def test_the_flag_rounds_clip_l_to_fp8_and_changes_the_pooled_vector(encodings):
    assert encodings["default"]["stored"]["clip_l_linear"] == "torch.float16"
    assert encodings["fp8"]["stored"]["clip_l_linear"] == FP8
    pooled = encodings["compare"]["pooled_output"]
    assert pooled["dtypes"] == ["torch.float32", "torch.float32"]
    assert not pooled["equal"] and pooled["max_abs_diff"] > 0, pooled
