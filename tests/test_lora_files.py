"""The LoRA key check (handler/lora_files.py): accepted formats, refused files, and agreement with ComfyUI itself."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from handler.lora_files import LoraFileError, check_file, check_keys, read_header
from tools.standins import LORA_FORMATS, write_lora

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def standin_loras(tmp_path_factory):
    folder = tmp_path_factory.mktemp("loras")
    for fmt in LORA_FORMATS:
        write_lora(folder / f"{fmt}.safetensors", fmt)
    return folder


@pytest.mark.parametrize("fmt", ["kohya", "diffusers", "comfy"])
def test_the_common_flux_formats_are_accepted_key_for_key(standin_loras, fmt):
    check = check_file(standin_loras / f"{fmt}.safetensors")
    assert check.matched == check.tensors > 0 and check.unmatched == ()


def test_an_sdxl_lora_is_refused_as_not_for_flux(standin_loras):
    with pytest.raises(LoraFileError, match="is for another model: none of its 6 keys.*lora_unet_down_blocks"):
        check_file(standin_loras / "sdxl.safetensors")


def test_a_text_encoder_only_lora_is_refused_under_a_model_only_loader(standin_loras):
    with pytest.raises(LoraFileError, match="only text-encoder keys"):
        check_file(standin_loras / "text_encoder.safetensors")


def test_text_encoder_keys_beside_dit_keys_are_counted_not_refused():
    check = check_keys(["lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight",
                        "lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight",
                        "lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_up.weight"])
    assert (check.matched, check.text_encoder) == (2, 1)


@pytest.mark.parametrize("key", [
    "lora_unet_single_blocks_37_linear2.lora_down.weight",          # kohya, last single block
    "transformer.single_transformer_blocks.0.proj_mlp.lora_A.weight",  # diffusers, sliced into linear1
    "diffusion_model.single_blocks.3.linear1_qkv.lora_up.weight",     # linear1_qkv alias
    "lycoris_transformer_blocks_18_attn_to_add_out.lokr_w1",          # simpletuner LyCORIS (LoKr)
    "lora_transformer_transformer_blocks_0_ff_net_0_proj.hada_w1_a",  # OneTrainer (LoHa)
    "diffusion_model.double_blocks.0.img_attn.norm.key_norm.scale.diff",  # a full-weight diff of a norm scale
])
def test_other_formats_comfyui_reads_are_accepted(key):
    assert check_keys([key]).matched == 1


def test_a_block_past_flux1_dev_is_not_a_match():
    with pytest.raises(LoraFileError):
        check_keys(["lora_unet_double_blocks_19_img_attn_qkv.lora_down.weight"])


def test_bfl_control_lora_keys_are_renamed_as_comfyui_does():
    keys = ["img_in.lora_A.weight", "img_in.lora_B.weight", "single_blocks.0.norm.key_norm.scale"]
    assert check_keys(keys).matched == 3


def _write(path: Path, header: bytes, data: bytes = b"") -> Path:
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)
    return path


def test_files_that_are_not_safetensors_are_refused(tmp_path):
    with pytest.raises(LoraFileError, match="not a safetensors file"):
        read_header(_write(tmp_path / "a", b"{not json"))
    png = tmp_path / "b"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(LoraFileError, match="header length"):
        read_header(png)
    (tmp_path / "c").write_bytes(b"abc")
    with pytest.raises(LoraFileError, match="shorter than 8 bytes"):
        read_header(tmp_path / "c")
    with pytest.raises(LoraFileError, match="not a JSON object"):
        read_header(_write(tmp_path / "d", b"[1, 2]"))
    with pytest.raises(LoraFileError, match="malformed"):
        read_header(_write(tmp_path / "e", json.dumps({"x": {"dtype": "F32"}}).encode()))


def test_a_truncated_file_is_refused(tmp_path):
    header = json.dumps({"w.lora_A.weight": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}).encode()
    with pytest.raises(LoraFileError, match="truncated"):
        read_header(_write(tmp_path / "t", header, b"\0" * 8))


@pytest.mark.skipif(not os.environ.get("COMFYUI_PATH"), reason="needs a ComfyUI checkout (COMFYUI_PATH)")
def test_the_accepted_names_are_exactly_comfyuis_flux_key_map():
    """ComfyUI's own model_lora_keys_unet on a FLUX model (built without weights) yields the same target names."""
    script = (
        "import sys; sys.argv = [sys.argv[0], '--cpu']\n"
        "import comfy.options; comfy.options.enable_args_parsing()\n"
        "import comfy.lora, comfy.model_base\n"
        "from tools.standins import flux_dit_shapes\n"
        "from handler.lora_files import _TARGETS\n"
        "m = object.__new__(comfy.model_base.Flux)\n"
        "sd = {'diffusion_model.' + k: None for k in flux_dit_shapes()}\n"
        "object.__setattr__(m, 'state_dict', lambda: sd)\n"
        "class C: unet_config = {'depth': 19, 'depth_single_blocks': 38, 'hidden_size': 3072}\n"
        "object.__setattr__(m, 'model_config', C)\n"
        "keys = set(comfy.lora.model_lora_keys_unet(m, {}))\n"
        "print(len(keys), sorted(keys - _TARGETS)[:5], sorted(_TARGETS - keys)[:5])\n"
        "sys.exit(0 if keys == _TARGETS else 1)\n")
    python = os.environ.get("COMFYUI_PYTHON") or sys.executable
    env = dict(os.environ, PYTHONPATH=f"{os.environ['COMFYUI_PATH']}:{ROOT}")
    result = subprocess.run([python, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
