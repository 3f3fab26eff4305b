"""Is this file a LoRA that ComfyUI v0.33.0 can apply to the FLUX.1-dev DiT? Answered from the safetensors header.

Why: ComfyUI applies a LoRA by matching its key names against a key map built from the model (comfy/lora.py
`model_lora_keys_unet`, `load_lora`) and only *logs* "lora key not loaded" for the rest, so a LoRA for another
model (SDXL, SD3), a text-encoder-only LoRA under a model-only loader, or a file that is not a LoRA at all runs
the whole job and returns the unpatched image as if the LoRA had worked. The worker refuses such a file before
sampling. The check reads only the header (8-byte length + JSON), never the tensors, and needs no torch, so it
runs in the handler process in milliseconds even for a 600 MB file.

What is accepted mirrors ComfyUI v0.33.0 for a `comfy.model_base.Flux` model (names re-derived here, no code
copied): for every DiT parameter `diffusion_model.P.weight` the targets `lora_unet_<P with _>`,
`diffusion_model.P`, and for every diffusers name D of `comfy.utils.flux_to_diffusers` the targets
D itself, `transformer.D`, `lycoris_<D with _>`, `lora_transformer_<D with _>` (D includes the Flux2-style
`ff.linear_in`/`linear_out` and single blocks' `attn.to_out`/`attn.to_qkv_mlp_proj` names v0.33.0 maps), plus `diffusion_model.single_blocks.N.linear1_qkv`;
after `comfy.lora_convert.convert_lora` (BFL control LoRAs and USO LoRAs are renamed first). A key counts when it
is such a target followed by one of the suffixes the weight adapters read (LoRA up/down in its seven spellings,
LoHa, LoKr, GLoRA, OFT/BOFT, diff, set_weight, alpha, dora_scale...). Block indices are accepted up to
FLUX.1-dev's 19 double and 38 single blocks.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path

FLUX_DOUBLE_BLOCKS = 19
FLUX_SINGLE_BLOCKS = 38
MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors reference reader's own limit

# Suffixes after the target name that ComfyUI's weight adapters (comfy/weight_adapter/*.py) and load_lora read.
_ADAPTER_SUFFIXES = (
    ".lora_up.weight", ".lora_down.weight", ".lora_mid.weight",          # kohya / regular
    "_lora.up.weight", "_lora.down.weight",                              # diffusers
    ".lora_B.weight", ".lora_A.weight", ".lora_B.bias",                  # diffusers2 / peft
    ".lora.up.weight", ".lora.down.weight",                              # diffusers3
    ".lora_B", ".lora_A",                                                # mochi
    ".lora_linear_layer.up.weight", ".lora_linear_layer.down.weight",    # transformers
    ".lora_B.default.weight", ".lora_A.default.weight",                  # qwen / peft default adapter
    ".hada_w1_a", ".hada_w1_b", ".hada_w2_a", ".hada_w2_b", ".hada_t1", ".hada_t2",   # LoHa
    ".lokr_w1", ".lokr_w2", ".lokr_w1_a", ".lokr_w1_b", ".lokr_w2_a", ".lokr_w2_b", ".lokr_t2",  # LoKr
    ".a1.weight", ".a2.weight", ".b1.weight", ".b2.weight",              # GLoRA
    ".oft_blocks", ".oft_R.weight", ".rescale", ".boft_blocks",          # OFT / BOFT
    ".alpha", ".dora_scale", ".diff", ".diff_b", ".w_norm", ".b_norm", ".set_weight", ".reshape_weight",
)
# Keys a model-only loader ignores without that being a mistake: text-encoder parts of a LoRA trained with them.
_TEXT_ENCODER = re.compile(r"^(lora_te\d?_|lora_te_|text_encoder|text_encoders\.|te\d?\.|t5xxl\.|clip_l\.)")


class LoraFileError(ValueError):
    """The file is not a usable FLUX LoRA; the message says why (turned into an InputError by the caller)."""


@dataclass(frozen=True)
class LoraCheck:
    tensors: int          # tensor keys in the file
    matched: int          # keys ComfyUI would apply to the FLUX DiT
    text_encoder: int     # keys for the text encoders (not applied by a model-only loader)
    unmatched: tuple[str, ...]  # the rest (first few), for the log


def read_header(path: Path) -> dict:
    """The JSON header of a safetensors file, checked for shape: the length, the JSON, every tensor entry's
    dtype/shape/offsets, and that the file holds all the bytes the offsets name. Raises LoraFileError."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(8)
            if len(head) < 8:
                raise LoraFileError("is not a safetensors file (shorter than 8 bytes)")
            (length,) = struct.unpack("<Q", head)
            if length < 2 or length > MAX_HEADER_BYTES or 8 + length > size:
                raise LoraFileError("is not a safetensors file (its header length does not fit the file)")
            raw = handle.read(length)
    except OSError as exc:
        raise LoraFileError(f"cannot be read ({type(exc).__name__})") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise LoraFileError("is not a safetensors file (its header is not JSON)") from None
    if not isinstance(header, dict):
        raise LoraFileError("is not a safetensors file (its header is not a JSON object)")
    end = 0
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        if not (isinstance(entry, dict) and isinstance(entry.get("dtype"), str) and isinstance(entry.get("shape"), list)
                and isinstance(entry.get("data_offsets"), list) and len(entry["data_offsets"]) == 2
                and all(isinstance(v, int) and v >= 0 for v in entry["data_offsets"])):
            raise LoraFileError(f"is not a valid safetensors file (tensor entry {key[:80]!r} is malformed)")
        end = max(end, entry["data_offsets"][1])
    if 8 + length + end > size:
        raise LoraFileError(f"is truncated ({size} bytes; its header names {8 + length + end})")
    return header


def _flux_targets() -> frozenset[str]:
    """Every key prefix ComfyUI v0.33.0 maps onto a FLUX.1-dev DiT weight (see the module docstring)."""
    params: list[str] = ["img_in", "txt_in", "final_layer.linear", "final_layer.adaLN_modulation.1"]
    params += [f"{e}.{layer}" for e in ("time_in", "vector_in", "guidance_in") for layer in ("in_layer", "out_layer")]
    for n in range(FLUX_DOUBLE_BLOCKS):
        for s in ("img", "txt"):
            p = f"double_blocks.{n}.{s}"
            params += [f"{p}_mod.lin", f"{p}_attn.qkv", f"{p}_attn.proj", f"{p}_mlp.0", f"{p}_mlp.2",
                       f"{p}_attn.norm.query_norm.scale", f"{p}_attn.norm.key_norm.scale"]
    for n in range(FLUX_SINGLE_BLOCKS):
        p = f"single_blocks.{n}"
        params += [f"{p}.linear1", f"{p}.linear2", f"{p}.modulation.lin", f"{p}.norm.query_norm.scale",
                   f"{p}.norm.key_norm.scale"]
    targets: set[str] = set()
    for p in params:
        # `.scale` parameters end in ".scale", not ".weight": only their full name is a generic target.
        if p.endswith(".scale"):
            targets.add(f"diffusion_model.{p}")
            continue
        targets.add(f"lora_unet_{p.replace('.', '_')}")
        targets.add(f"diffusion_model.{p}")
        targets.add(f"diffusion_model.{p}.bias")
    for n in range(FLUX_SINGLE_BLOCKS):
        targets.add(f"diffusion_model.single_blocks.{n}.linear1_qkv")
    for d in _flux_diffusers_weights():
        targets.add(d)  # v0.33.0 maps the bare diffusers name too
        targets.add(f"transformer.{d}")
        targets.add(f"lycoris_{d.replace('.', '_')}")
        targets.add(f"lora_transformer_{d.replace('.', '_')}")
    return frozenset(targets)


def _flux_diffusers_weights() -> list[str]:
    """The diffusers names (without `.weight`) of comfy.utils.flux_to_diffusers that end in `.weight`."""
    names = ["proj_out", "x_embedder", "context_embedder", "norm_out.linear", "controlnet_x_embedder"]
    names += [f"time_text_embed.{e}.linear_{i}" for e in ("timestep_embedder", "text_embedder", "guidance_embedder")
              for i in (1, 2)]
    for n in range(FLUX_DOUBLE_BLOCKS):
        b = f"transformer_blocks.{n}"
        names += [f"{b}.attn.{x}" for x in ("to_q", "to_k", "to_v", "add_q_proj", "add_k_proj", "add_v_proj",
                                             "to_out.0", "to_add_out", "norm_q", "norm_k", "norm_added_q",
                                             "norm_added_k")]
        names += [f"{b}.{x}" for x in ("norm1.linear", "norm1_context.linear", "ff.net.0.proj", "ff.net.2",
                                       "ff_context.net.0.proj", "ff_context.net.2",
                                       # the Flux2-style diffusers spellings v0.33.0 also maps onto FLUX.1
                                       "ff.linear_in", "ff.linear_out", "ff_context.linear_in",
                                       "ff_context.linear_out")]
    for n in range(FLUX_SINGLE_BLOCKS):
        b = f"single_transformer_blocks.{n}"
        names += [f"{b}.attn.{x}" for x in ("to_q", "to_k", "to_v", "norm_q", "norm_k", "to_out", "to_qkv_mlp_proj")]
        names += [f"{b}.{x}" for x in ("proj_mlp", "norm.linear", "proj_out")]
    return names


_TARGETS = _flux_targets()


def _converted(keys: list[str]) -> list[str]:
    """Key names after comfy.lora_convert.convert_lora's renames (only the names matter here)."""
    present = set(keys)
    if "img_in.lora_A.weight" in present and "single_blocks.0.norm.key_norm.scale" in present:  # BFL control
        return ["diffusion_model." + k.replace(".lora_B.bias", ".diff_b").replace("_norm.scale", "_norm.scale.set_weight")
                for k in keys]
    if "single_blocks.37.processor.qkv_lora.up.weight" in present and "double_blocks.18.processor.qkv_lora2.up.weight" in present:
        out = []
        for k in keys:  # USO
            for a, b in ((".down.weight", ".lora_down.weight"), (".up.weight", ".lora_up.weight"),
                         (".qkv_lora2.", ".txt_attn.qkv."), (".qkv_lora1.", ".img_attn.qkv."),
                         (".proj_lora1.", ".img_attn.proj."), (".proj_lora2.", ".txt_attn.proj."),
                         (".qkv_lora.", ".linear1_qkv."), (".proj_lora.", ".linear2."), (".processor.", ".")):
                k = k.replace(a, b)
            out.append("diffusion_model." + k)
        return out
    return keys


def _target_of(key: str) -> str | None:
    for suffix in _ADAPTER_SUFFIXES:
        if key.endswith(suffix):
            return key[: -len(suffix)]
    return None


def check_keys(keys: list[str]) -> LoraCheck:
    """Count the keys ComfyUI would apply to the FLUX DiT; raise LoraFileError when there are none."""
    keys = [k for k in keys if k != "__metadata__"]
    if not keys:
        raise LoraFileError("holds no tensors")
    matched, text_encoder, unmatched = 0, 0, []
    for original, key in zip(keys, _converted(keys)):
        target = _target_of(key)
        if target is not None and target in _TARGETS:
            matched += 1
        elif _TEXT_ENCODER.match(original):
            text_encoder += 1
        else:
            unmatched.append(original)
    if matched == 0:
        sample = ", ".join(repr(k) for k in keys[:3])
        why = ("holds only text-encoder keys, which a model-only LoRA loader does not apply" if text_encoder == len(keys)
               else "is for another model: none of its "
                    f"{len(keys)} keys names a FLUX DiT weight in a LoRA format ComfyUI reads (first keys: {sample})")
        raise LoraFileError(why)
    return LoraCheck(len(keys), matched, text_encoder, tuple(unmatched[:5]))


def check_file(path: Path) -> LoraCheck:
    """read_header + check_keys."""
    return check_keys(list(read_header(path)))
