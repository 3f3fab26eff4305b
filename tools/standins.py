"""Random-weight stand-ins for the four FLUX.1-dev model files, under the production file names.

Why this exists: the integration tests and the GPU benchmark must run the production workflow through a real
ComfyUI, but the real weights are gated and ~22 GB. ComfyUI decides what a file *is* from its key names and
shapes (FLUX-dev is recognised by `double_blocks.0.img_attn.norm.key_norm.scale` + `img_in.weight` +
`guidance_in.*`, the VAE by its conv shapes) and picks the T5 compute dtype from the dtype of
`encoder.final_layer_norm.weight`. A file with the real keys, shapes and dtypes and random values therefore
goes through exactly the same loader, detection, casting and sampling code as the real one; only the picture
is meaningless. Keys that ComfyUI does not find are left as uninitialised memory (it loads non-strictly), so
every key must be present.

The module has two halves:

* the shape tables (`flux_dit_shapes`, `t5xxl_shapes`, `clip_l_shapes`, `flux_vae_shapes`, `standin_files`),
  built from the architecture constants in plain Python, so a test can compare them with the published
  shapes without torch installed;
* the writer (`write_standin`, `generate`, `main`), which imports torch lazily, generates one tensor at a
  time and streams it into a safetensors file, so the full T5 (4.4 GiB in fp8) or the full DiT (11.9 GB)
  never has to be held in memory at once.

Values: norm scales 1.0, norm biases 0, everything else N(0, 0.02), which keeps every activation finite.
Each tensor's generator is seeded from (seed, file, key), so a tensor does not depend on the other tensors
or the block count: the 1-block DiT is a prefix of the full one (for the same RNG device).

Stand-in LoRAs (`lora_shapes`, `write_lora`, `generate_loras`): tiny-rank files with the key names of the common
FLUX LoRA formats (kohya, diffusers/peft, ComfyUI generic) plus two that ComfyUI cannot apply to the DiT (an SDXL
LoRA, a text-encoder-only LoRA), written to <out>/loras/standin-<format>.safetensors by the CLI too.

Usage: python -m tools.standins --out DIR [--double-blocks N --single-blocks M | --full] [--device cpu|cuda]
[--seed S] [--force]. A manifest (standins-manifest.json) beside the files records each file's config; a
rerun with the same config regenerates nothing and says so.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

log = logging.getLogger("tools.standins")

FORMAT_VERSION = 1
MANIFEST_NAME = "standins-manifest.json"
DEFAULT_STD = 0.02

Shape = tuple[int, ...]
ShapeTable = dict[str, Shape]

# ---------------------------------------------------------------------------------------------------------
# Architecture constants (ComfyUI v0.33.0: comfy/model_detection.py, comfy/ldm/flux, comfy/text_encoders
# t5_config_xxl.json and sd1_clip_config.json, comfy/sd.py VAE config for the 16-channel FLUX autoencoder).
# ---------------------------------------------------------------------------------------------------------

# FLUX.1-dev DiT
FLUX_HIDDEN = 3072            # hidden_size, fixed by ComfyUI's detection
FLUX_HEAD_DIM = 128           # 24 heads x 128 (sum of axes_dim [16, 56, 56])
FLUX_MLP_RATIO = 4
FLUX_LATENT_CHANNELS = 16
FLUX_PATCH = 2
FLUX_PATCH_DIM = FLUX_LATENT_CHANNELS * FLUX_PATCH * FLUX_PATCH   # 64: img_in input, final_layer output
FLUX_VEC_IN = 768             # CLIP-L pooled width
FLUX_CONTEXT_IN = 4096        # T5-XXL width
FLUX_TIMESTEP_DIM = 256       # sinusoidal embedding width for time_in / guidance_in
FLUX_DEV_DOUBLE_BLOCKS = 19
FLUX_DEV_SINGLE_BLOCKS = 38

# T5-XXL v1.1 encoder
T5_D_MODEL = 4096
T5_D_FF = 10240
T5_LAYERS = 24
T5_HEADS = 64
T5_D_KV = 64
T5_REL_BUCKETS = 32
T5_VOCAB = 32128

# CLIP-L text model
CLIP_WIDTH = 768
CLIP_LAYERS = 12
CLIP_FF = 3072
CLIP_VOCAB = 49408
CLIP_POSITIONS = 77

# FLUX autoencoder (ae.safetensors)
VAE_CH = 128
VAE_CH_MULT = (1, 2, 4, 4)
VAE_RES_BLOCKS = 2
VAE_Z_CHANNELS = 16
VAE_IMAGE_CHANNELS = 3

# safetensors dtype name -> bytes per element
DTYPE_SIZES = {"F8_E4M3": 1, "F16": 2, "BF16": 2, "F32": 4}


# ---------------------------------------------------------------------------------------------------------
# Shape tables (pure Python)
# ---------------------------------------------------------------------------------------------------------

def _linear(table: ShapeTable, name: str, n_out: int, n_in: int, bias: bool = True) -> None:
    table[f"{name}.weight"] = (n_out, n_in)
    if bias:
        table[f"{name}.bias"] = (n_out,)


def _mlp_embedder(table: ShapeTable, name: str, n_in: int) -> None:
    _linear(table, f"{name}.in_layer", FLUX_HIDDEN, n_in)
    _linear(table, f"{name}.out_layer", FLUX_HIDDEN, FLUX_HIDDEN)


def flux_dit_shapes(double_blocks: int = FLUX_DEV_DOUBLE_BLOCKS,
                    single_blocks: int = FLUX_DEV_SINGLE_BLOCKS) -> ShapeTable:
    """Key -> shape of a FLUX.1-dev DiT (guidance-distilled) with the given block counts."""
    if double_blocks < 1:
        raise ValueError("double_blocks must be >= 1: ComfyUI detects FLUX by double_blocks.0")
    if single_blocks < 0:
        raise ValueError("single_blocks must be >= 0")
    h, mlp = FLUX_HIDDEN, FLUX_HIDDEN * FLUX_MLP_RATIO
    t: ShapeTable = {}
    _linear(t, "img_in", h, FLUX_PATCH_DIM)
    _mlp_embedder(t, "time_in", FLUX_TIMESTEP_DIM)
    _mlp_embedder(t, "vector_in", FLUX_VEC_IN)
    _mlp_embedder(t, "guidance_in", FLUX_TIMESTEP_DIM)
    _linear(t, "txt_in", h, FLUX_CONTEXT_IN)
    for n in range(double_blocks):
        for stream in ("img", "txt"):
            p = f"double_blocks.{n}.{stream}"
            _linear(t, f"{p}_mod.lin", 6 * h, h)          # shift/scale/gate for attn and mlp
            _linear(t, f"{p}_attn.qkv", 3 * h, h)
            t[f"{p}_attn.norm.query_norm.scale"] = (FLUX_HEAD_DIM,)
            t[f"{p}_attn.norm.key_norm.scale"] = (FLUX_HEAD_DIM,)
            _linear(t, f"{p}_attn.proj", h, h)
            _linear(t, f"{p}_mlp.0", mlp, h)
            _linear(t, f"{p}_mlp.2", h, mlp)
    for n in range(single_blocks):
        p = f"single_blocks.{n}"
        _linear(t, f"{p}.linear1", 3 * h + mlp, h)        # qkv and mlp_in fused
        _linear(t, f"{p}.linear2", h, h + mlp)            # attn out and mlp_out fused
        t[f"{p}.norm.query_norm.scale"] = (FLUX_HEAD_DIM,)
        t[f"{p}.norm.key_norm.scale"] = (FLUX_HEAD_DIM,)
        _linear(t, f"{p}.modulation.lin", 3 * h, h)
    _linear(t, "final_layer.linear", FLUX_PATCH_DIM, h)
    _linear(t, "final_layer.adaLN_modulation.1", 2 * h, h)
    return t


def t5xxl_shapes() -> ShapeTable:
    """Key -> shape of the T5-XXL v1.1 encoder as ComfyUI's standalone text-encoder file holds it."""
    d, inner = T5_D_MODEL, T5_HEADS * T5_D_KV
    t: ShapeTable = {}
    for n in range(T5_LAYERS):
        p = f"encoder.block.{n}.layer"
        for proj in ("q", "k", "v"):
            t[f"{p}.0.SelfAttention.{proj}.weight"] = (inner, d)
        t[f"{p}.0.SelfAttention.o.weight"] = (d, inner)
        if n == 0:   # only the first block owns the relative position bias
            t[f"{p}.0.SelfAttention.relative_attention_bias.weight"] = (T5_REL_BUCKETS, T5_HEADS)
        t[f"{p}.0.layer_norm.weight"] = (d,)
        t[f"{p}.1.DenseReluDense.wi_0.weight"] = (T5_D_FF, d)
        t[f"{p}.1.DenseReluDense.wi_1.weight"] = (T5_D_FF, d)
        t[f"{p}.1.DenseReluDense.wo.weight"] = (d, T5_D_FF)
        t[f"{p}.1.layer_norm.weight"] = (d,)
    t["encoder.final_layer_norm.weight"] = (d,)
    t["shared.weight"] = (T5_VOCAB, d)
    return t


def clip_l_shapes() -> ShapeTable:
    """Key -> shape of the CLIP-L text model (standalone clip_l.safetensors layout)."""
    w = CLIP_WIDTH
    t: ShapeTable = {
        "text_model.embeddings.token_embedding.weight": (CLIP_VOCAB, w),
        "text_model.embeddings.position_embedding.weight": (CLIP_POSITIONS, w),
    }
    for n in range(CLIP_LAYERS):
        p = f"text_model.encoder.layers.{n}"
        t[f"{p}.layer_norm1.weight"] = (w,)
        t[f"{p}.layer_norm1.bias"] = (w,)
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            _linear(t, f"{p}.self_attn.{proj}", w, w)
        t[f"{p}.layer_norm2.weight"] = (w,)
        t[f"{p}.layer_norm2.bias"] = (w,)
        _linear(t, f"{p}.mlp.fc1", CLIP_FF, w)
        _linear(t, f"{p}.mlp.fc2", w, CLIP_FF)
    t["text_model.final_layer_norm.weight"] = (w,)
    t["text_model.final_layer_norm.bias"] = (w,)
    t["text_projection.weight"] = (w, w)
    return t


def _conv(table: ShapeTable, name: str, c_out: int, c_in: int, k: int) -> None:
    table[f"{name}.weight"] = (c_out, c_in, k, k)
    table[f"{name}.bias"] = (c_out,)


def _group_norm(table: ShapeTable, name: str, c: int) -> None:
    table[f"{name}.weight"] = (c,)
    table[f"{name}.bias"] = (c,)


def _resnet(table: ShapeTable, name: str, c_in: int, c_out: int) -> None:
    _group_norm(table, f"{name}.norm1", c_in)
    _conv(table, f"{name}.conv1", c_out, c_in, 3)
    _group_norm(table, f"{name}.norm2", c_out)
    _conv(table, f"{name}.conv2", c_out, c_out, 3)
    if c_in != c_out:
        _conv(table, f"{name}.nin_shortcut", c_out, c_in, 1)


def _attn(table: ShapeTable, name: str, c: int) -> None:
    _group_norm(table, f"{name}.norm", c)
    for proj in ("q", "k", "v", "proj_out"):
        _conv(table, f"{name}.{proj}", c, c, 1)


def _mid(table: ShapeTable, name: str, c: int) -> None:
    _resnet(table, f"{name}.block_1", c, c)
    _attn(table, f"{name}.attn_1", c)
    _resnet(table, f"{name}.block_2", c, c)


def flux_vae_shapes() -> ShapeTable:
    """Key -> shape of the 16-channel FLUX autoencoder (ae.safetensors); ComfyUI hard-codes this config."""
    levels = len(VAE_CH_MULT)
    widths = [VAE_CH * m for m in VAE_CH_MULT]
    top = widths[-1]
    t: ShapeTable = {}
    # encoder: conv_in, down levels (each but the last halves the resolution), mid, norm_out, conv_out
    _conv(t, "encoder.conv_in", VAE_CH, VAE_IMAGE_CHANNELS, 3)
    c_in = VAE_CH
    for i in range(levels):
        for j in range(VAE_RES_BLOCKS):
            _resnet(t, f"encoder.down.{i}.block.{j}", c_in, widths[i])
            c_in = widths[i]
        if i != levels - 1:
            _conv(t, f"encoder.down.{i}.downsample.conv", c_in, c_in, 3)
    _mid(t, "encoder.mid", top)
    _group_norm(t, "encoder.norm_out", top)
    _conv(t, "encoder.conv_out", 2 * VAE_Z_CHANNELS, top, 3)    # mean and log-variance
    # decoder: runs the levels top-down, but its ModuleList (and so the key order) is indexed bottom-up
    _conv(t, "decoder.conv_in", top, VAE_Z_CHANNELS, 3)
    _mid(t, "decoder.mid", top)
    for i in range(levels):
        c_in = widths[i + 1] if i + 1 < levels else top
        for j in range(VAE_RES_BLOCKS + 1):
            _resnet(t, f"decoder.up.{i}.block.{j}", c_in, widths[i])
            c_in = widths[i]
        if i != 0:
            _conv(t, f"decoder.up.{i}.upsample.conv", c_in, c_in, 3)
    _group_norm(t, "decoder.norm_out", VAE_CH)
    _conv(t, "decoder.conv_out", VAE_IMAGE_CHANNELS, VAE_CH, 3)
    return t


@dataclass(frozen=True)
class StandinFile:
    """One file to write: where it goes in the ComfyUI models layout, its keys/shapes and its dtype."""
    relpath: str          # relative to the models dir, e.g. "vae/ae.safetensors"
    table_name: str       # name of the table in the reference shapes file (flux_dev, t5xxl, clip_l, flux_vae)
    dtype: str            # safetensors dtype name, one for every tensor of the file
    shapes: ShapeTable
    config: tuple = ()    # extra (name, value) pairs that changed the table, recorded in the manifest

    @property
    def parameters(self) -> int:
        return sum(math.prod(s) for s in self.shapes.values())

    @property
    def data_bytes(self) -> int:
        return self.parameters * DTYPE_SIZES[self.dtype]


def standin_files(double_blocks: int = 1, single_blocks: int = 1) -> list[StandinFile]:
    """The four production files. Only the DiT can shrink; ComfyUI builds the others at full size anyway.

    The T5 file is fp8 e4m3fn throughout, layer norms included: ComfyUI takes the T5 weight dtype from
    `encoder.final_layer_norm.weight` (sd3_clip.t5_xxl_detect) and accepts fp8 there (pick_weight_dtype /
    supports_cast), so the encoder is built in fp8 (4.4 GiB) instead of fp16 (8.9 GiB). A norm scale of
    1.0 is exact in fp8.
    """
    return [
        StandinFile("diffusion_models/flux1-dev-fp8-e4m3fn.safetensors", "flux_dev", "F8_E4M3",
                    flux_dit_shapes(double_blocks, single_blocks),
                    (("double_blocks", double_blocks), ("single_blocks", single_blocks))),
        StandinFile("text_encoders/t5xxl_fp8_e4m3fn.safetensors", "t5xxl", "F8_E4M3", t5xxl_shapes()),
        StandinFile("text_encoders/clip_l.safetensors", "clip_l", "F16", clip_l_shapes()),
        StandinFile("vae/ae.safetensors", "flux_vae", "BF16", flux_vae_shapes()),
    ]


def shape_tables(double_blocks: int = FLUX_DEV_DOUBLE_BLOCKS,
                 single_blocks: int = FLUX_DEV_SINGLE_BLOCKS) -> dict[str, dict[str, list[int]]]:
    """All four tables in the layout of the reference flux1-dev-shapes.json ({table: {key: [dims]}})."""
    return {f.table_name: {k: list(v) for k, v in f.shapes.items()}
            for f in standin_files(double_blocks, single_blocks)}


def fill_kind(key: str) -> str:
    """How a tensor is initialised: 'ones' for norm scales, 'zeros' for norm biases, else 'normal'.

    Every norm in these four models has 'norm' in its module name (query_norm, layer_norm1, norm_out, ...)
    and no non-norm module does.
    """
    parts = key.split(".")
    if len(parts) >= 2 and "norm" in parts[-2]:
        return "zeros" if parts[-1] == "bias" else "ones"
    return "normal"


# ---------------------------------------------------------------------------------------------------------
# Writer (torch imported lazily)
# ---------------------------------------------------------------------------------------------------------

def _tensor_seed(seed: int, relpath: str, key: str) -> int:
    digest = hashlib.sha256(f"{seed}\0{relpath}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def _header(shapes: ShapeTable, dtype: str, metadata: dict[str, str]) -> bytes:
    """safetensors header: tensors laid out in table order, padded to 8 bytes like the reference writer."""
    header: dict[str, object] = {"__metadata__": metadata}
    offset = 0
    for key, shape in shapes.items():
        size = math.prod(shape) * DTYPE_SIZES[dtype]
        header[key] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    return raw + b" " * (-len(raw) % 8)


def write_standin(path: Path, spec: StandinFile, seed: int, device: str = "cpu",
                  std: float = DEFAULT_STD) -> None:
    """Stream one safetensors file: header first, then each tensor generated, cast and written in turn.

    Written to a temporary name and renamed, so an interrupted run never leaves a truncated file under the
    production name.
    """
    import torch  # lazy: the shape tables must stay usable without torch

    torch_dtype = {"F8_E4M3": torch.float8_e4m3fn, "F16": torch.float16,
                   "BF16": torch.bfloat16, "F32": torch.float32}[spec.dtype]
    metadata = {"format": "pt", "standin": "random weights with the FLUX.1-dev shapes; not a real model",
                "standin_seed": str(seed), "standin_std": str(std), "standin_rng_device": device}
    header = _header(spec.shapes, spec.dtype, metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    generator = torch.Generator(device=device)
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(header)))
        f.write(header)
        for key, shape in spec.shapes.items():
            kind = fill_kind(key)
            if kind == "normal":
                generator.manual_seed(_tensor_seed(seed, spec.relpath, key))
                t = torch.empty(shape, dtype=torch.float32, device=device)
                t.normal_(0.0, std, generator=generator)
                t = t.to(torch_dtype)
            elif kind == "ones":
                t = torch.ones(shape, dtype=torch_dtype, device=device)
            else:
                t = torch.zeros(shape, dtype=torch_dtype, device=device)
            data = t.cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
            f.write(memoryview(data))
            del t, data
    os.replace(tmp, path)


def _file_config(spec: StandinFile, seed: int, device: str, std: float) -> dict:
    return {"format": FORMAT_VERSION, "seed": seed, "std": std, "rng_device": device, "dtype": spec.dtype,
            "tensors": len(spec.shapes), **dict(spec.config)}


def _is_current(out_dir: Path, spec: StandinFile, entry: Optional[dict], config: dict) -> bool:
    if not entry or entry.get("config") != config:
        return False
    path = out_dir / spec.relpath
    return path.is_file() and path.stat().st_size == entry.get("bytes")


def load_manifest(out_dir: Path) -> dict:
    path = Path(out_dir) / MANIFEST_NAME
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {"files": {}}
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable manifest %s: %s", path, exc)
        return {"files": {}}


def generate(out_dir: Path | str, double_blocks: int = 1, single_blocks: int = 1, seed: int = 0,
             device: str = "cpu", std: float = DEFAULT_STD, force: bool = False,
             files: Optional[Iterable[StandinFile]] = None) -> list[str]:
    """Write every stand-in whose manifest entry is missing or differs; return the relpaths written.

    `files` overrides the four production files (tests use small tables).
    """
    out_dir = Path(out_dir)
    specs = list(files) if files is not None else standin_files(double_blocks, single_blocks)
    manifest = load_manifest(out_dir)
    entries: dict = manifest.setdefault("files", {})
    written: list[str] = []
    for spec in specs:
        config = _file_config(spec, seed, device, std)
        if not force and _is_current(out_dir, spec, entries.get(spec.relpath), config):
            log.info("%s: up to date (%s), skipped", spec.relpath, _describe(config))
            continue
        log.info("%s: writing %d tensors, %.3f B parameters, %s, %.2f GiB", spec.relpath, len(spec.shapes),
                 spec.parameters / 1e9, spec.dtype, spec.data_bytes / 2**30)
        start = time.monotonic()
        write_standin(out_dir / spec.relpath, spec, seed, device, std)
        seconds = time.monotonic() - start
        entries[spec.relpath] = {"config": config, "bytes": (out_dir / spec.relpath).stat().st_size,
                                 "parameters": spec.parameters, "seconds": round(seconds, 1)}
        # the manifest is rewritten after each file, so an interrupted run keeps what it finished
        _write_manifest(out_dir, manifest)
        written.append(spec.relpath)
        log.info("%s: done in %.1f s", spec.relpath, seconds)
    if not written:
        log.info("stand-ins in %s are up to date for this config: nothing to do", out_dir)
    return written


# ---------------------------------------------------------------------------------------------------------
# LoRA stand-ins: the key names of the common FLUX LoRA formats, random values, tiny rank (pure Python)
# ---------------------------------------------------------------------------------------------------------

LORA_RANK = 2
LORA_STD = 0.1  # large enough that the patched fp8 weights really change (fp8 steps are ~6% of a value)
LORA_DIR = "loras"
# fmt -> what it stands for. The first three are formats ComfyUI v0.33.0 applies to FLUX; the last two it does not
# apply to a FLUX DiT through a model-only loader (the worker must refuse them).
LORA_FORMATS = {
    "kohya": "kohya-ss / ai-toolkit style: lora_unet_<module>.lora_down/lora_up + alpha",
    "diffusers": "diffusers / peft: transformer.<diffusers module>.lora_A/lora_B",
    "comfy": "ComfyUI generic: diffusion_model.<module>.lora_A/lora_B",
    "sdxl": "an SDXL UNet LoRA (wrong model)",
    "text_encoder": "text-encoder keys only (lora_te1_...)",
}


def lora_shapes(fmt: str, rank: int = LORA_RANK) -> ShapeTable:
    """Key -> shape of a stand-in LoRA of format `fmt` for block 0 of the 1-block DiT (see LORA_FORMATS)."""
    h, mlp = FLUX_HIDDEN, FLUX_HIDDEN * FLUX_MLP_RATIO
    t: ShapeTable = {}

    def pair(prefix: str, n_out: int, n_in: int, up: str, down: str, alpha: bool = False) -> None:
        t[f"{prefix}{down}"] = (rank, n_in)
        t[f"{prefix}{up}"] = (n_out, rank)
        if alpha:
            t[f"{prefix}.alpha"] = ()

    if fmt == "kohya":
        for name, n_out, n_in in (("double_blocks_0_img_attn_qkv", 3 * h, h), ("double_blocks_0_img_attn_proj", h, h),
                                  ("double_blocks_0_txt_attn_qkv", 3 * h, h), ("single_blocks_0_linear1", 3 * h + mlp, h),
                                  ("single_blocks_0_linear2", h, h + mlp)):
            pair(f"lora_unet_{name}", n_out, n_in, ".lora_up.weight", ".lora_down.weight", alpha=True)
    elif fmt == "diffusers":
        for name, n_out, n_in in (("transformer_blocks.0.attn.to_q", h, h), ("transformer_blocks.0.attn.to_k", h, h),
                                  ("transformer_blocks.0.attn.to_v", h, h), ("transformer_blocks.0.attn.to_out.0", h, h),
                                  ("transformer_blocks.0.ff.net.0.proj", mlp, h),
                                  ("single_transformer_blocks.0.attn.to_q", h, h),
                                  ("single_transformer_blocks.0.proj_out", h, h + mlp)):
            pair(f"transformer.{name}", n_out, n_in, ".lora_B.weight", ".lora_A.weight")
    elif fmt == "comfy":
        for name, n_out, n_in in (("double_blocks.0.img_attn.qkv", 3 * h, h), ("double_blocks.0.img_mlp.0", mlp, h),
                                  ("single_blocks.0.linear1", 3 * h + mlp, h)):
            pair(f"diffusion_model.{name}", n_out, n_in, ".lora_B.weight", ".lora_A.weight")
    elif fmt == "sdxl":
        for name in ("down_blocks_1_attentions_0_proj_in", "mid_block_attentions_0_proj_out"):
            pair(f"lora_unet_{name}", 640, 640, ".lora_up.weight", ".lora_down.weight", alpha=True)
    elif fmt == "text_encoder":
        for name in ("text_model_encoder_layers_0_self_attn_q_proj", "text_model_encoder_layers_0_self_attn_k_proj"):
            pair(f"lora_te1_{name}", 768, 768, ".lora_up.weight", ".lora_down.weight", alpha=True)
    else:
        raise ValueError(f"unknown LoRA format {fmt!r}; known: {', '.join(LORA_FORMATS)}")
    return t


def write_lora(path: Path, fmt: str, seed: int = 0, rank: int = LORA_RANK, std: float = LORA_STD) -> None:
    """One stand-in LoRA (F32, values N(0, std), alpha = rank), streamed to a temporary name and renamed.
    Pure Python (struct + random): the handler's unit tests need LoRA files without torch."""
    import random

    shapes = lora_shapes(fmt, rank)
    header = _header(shapes, "F32", {"format": "pt", "standin": f"random LoRA, {LORA_FORMATS[fmt]}",
                                     "standin_seed": str(seed)})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(header)))
        f.write(header)
        for key, shape in shapes.items():
            if key.endswith(".alpha"):
                f.write(struct.pack("<f", float(rank)))
                continue
            rng = random.Random(_tensor_seed(seed, f"lora-{fmt}", key))
            n = math.prod(shape)
            f.write(struct.pack(f"<{n}f", *(rng.gauss(0.0, std) for _ in range(n))))
    os.replace(tmp, path)


def generate_loras(out_dir: Path | str, seed: int = 0, force: bool = False) -> list[str]:
    """`<out>/loras/standin-<fmt>.safetensors` for every format; existing files of the right size are kept."""
    written = []
    for fmt in LORA_FORMATS:
        rel = f"{LORA_DIR}/standin-{fmt}.safetensors"
        path = Path(out_dir) / rel
        shapes = lora_shapes(fmt)
        expected = 8 + len(_header(shapes, "F32", {"format": "pt", "standin": f"random LoRA, {LORA_FORMATS[fmt]}",
                                                     "standin_seed": str(seed)})) + 4 * sum(math.prod(s) for s in shapes.values())
        if not force and path.is_file() and path.stat().st_size == expected:
            continue
        write_lora(path, fmt, seed)
        written.append(rel)
    return written


def _describe(config: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in config.items() if k not in ("format", "tensors"))


def _write_manifest(out_dir: Path, manifest: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / (MANIFEST_NAME + ".partial")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, out_dir / MANIFEST_NAME)


def _parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.standins",
        description="Write random-weight FLUX.1-dev stand-ins (real keys, shapes, dtypes) in a ComfyUI "
                    "models layout: diffusion_models/, text_encoders/, vae/.")
    parser.add_argument("--out", required=True, type=Path, help="models directory to write into")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--full", action="store_true",
                      help=f"the real depth: {FLUX_DEV_DOUBLE_BLOCKS} double + {FLUX_DEV_SINGLE_BLOCKS} "
                           "single blocks (11.9 B parameters)")
    size.add_argument("--double-blocks", type=int, default=None, help="DiT double blocks (default 1)")
    parser.add_argument("--single-blocks", type=int, default=None, help="DiT single blocks (default 1)")
    parser.add_argument("--device", default="cpu", help="where to generate the random numbers (cpu, cuda)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="rewrite even if the manifest says up to date")
    args = parser.parse_args(argv)
    if args.full and args.single_blocks is not None:
        parser.error("--full sets the block counts; drop --single-blocks")
    if args.full:
        args.double_blocks, args.single_blocks = FLUX_DEV_DOUBLE_BLOCKS, FLUX_DEV_SINGLE_BLOCKS
    args.double_blocks = 1 if args.double_blocks is None else args.double_blocks
    args.single_blocks = 1 if args.single_blocks is None else args.single_blocks
    if args.double_blocks < 1 or args.single_blocks < 0:
        parser.error("--double-blocks must be >= 1 and --single-blocks >= 0")
    return args


def main(argv: Optional[list[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    args = _parse_args(argv)
    start = time.monotonic()
    generate(args.out, args.double_blocks, args.single_blocks, seed=args.seed, device=args.device,
             force=args.force)
    for rel in generate_loras(args.out, seed=args.seed, force=args.force):
        log.info("%s: written (stand-in LoRA)", rel)
    log.info("finished in %.1f s", time.monotonic() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
