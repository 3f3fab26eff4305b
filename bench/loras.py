"""The LoRA rows of the GPU bench (issue 11): what a LoRA costs on the fast path, and whether its image is plain
ComfyUI's image with that LoRA.

Used by bench/run.py for the scenarios with `loras=True` ("baseline-lora": the plain graph; "lora": the shipped
one). Both send the same request sequence through the real handler (`loras` field, LoraLoaderModelOnly spliced in
by handler.loras), then run exactness probes (fixed prompt and seed) with LoRA A, LoRA B and, on the fast path,
none again after them. run.py compares the probes across scenarios: the fast path with A against the plain graph
with A, and the fast path's no-LoRA image after the LoRAs against the one before them (a LoRA's patch left
behind would show there).

The bench LoRAs: random values (bf16, rank 16) on every attention and MLP Linear of all 57 blocks under the kohya
key names (lora_unet_double_blocks_0_img_attn_qkv...), the layers FLUX LoRA trainers target by default, so the
patch ComfyUI applies at load has the size of a real style LoRA's (~100 MB). Written here with torch on the GPU
machine; the CPU tests use tools.standins' tiny LoRAs.
"""

from __future__ import annotations

import logging
import statistics
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger("bench")

RANK = 16
STD = 0.05          # the patch changes most fp8 weights (an fp8 step is ~6% of a value)
FILES = {"A": ("bench-lora-a.safetensors", 1), "B": ("bench-lora-b.safetensors", 2)}
# (label, LoRA or None, strength): the order of requests a worker sees when callers switch LoRAs.
SEQUENCE = [("none", None, 1.0), ("none", None, 1.0),
            ("A switch", "A", 1.0), ("A cached", "A", 1.0), ("A cached", "A", 1.0),
            ("B switch", "B", 1.0), ("none switch", None, 1.0), ("A 0.5 switch", "A", 0.5), ("none switch", None, 1.0)]
PROBES = {"baseline-lora": (("A", 1.0), ("B", 1.0)), "lora": (("A", 1.0), ("B", 1.0), (None, 1.0))}


def shapes(double_blocks: int = 19, single_blocks: int = 38, rank: int = RANK) -> dict[str, tuple[int, ...]]:
    """kohya LoRA keys and shapes for every attention/MLP Linear of FLUX.1-dev's blocks."""
    h, mlp = 3072, 3072 * 4
    layers: list[tuple[str, int, int]] = []
    for n in range(double_blocks):
        for s in ("img", "txt"):
            layers += [(f"double_blocks_{n}_{s}_attn_qkv", 3 * h, h), (f"double_blocks_{n}_{s}_attn_proj", h, h),
                       (f"double_blocks_{n}_{s}_mlp_0", mlp, h), (f"double_blocks_{n}_{s}_mlp_2", h, mlp)]
    for n in range(single_blocks):
        layers += [(f"single_blocks_{n}_linear1", 3 * h + mlp, h), (f"single_blocks_{n}_linear2", h, h + mlp)]
    out: dict[str, tuple[int, ...]] = {}
    for name, n_out, n_in in layers:
        out[f"lora_unet_{name}.lora_down.weight"] = (rank, n_in)
        out[f"lora_unet_{name}.lora_up.weight"] = (n_out, rank)
        out[f"lora_unet_{name}.alpha"] = ()
    return out


def ensure_files(loras_dir: Path, device: str = "cuda") -> dict[str, str]:
    """Write the bench LoRAs into `loras_dir` unless present; returns label -> file name."""
    import torch
    from safetensors.torch import save_file

    loras_dir.mkdir(parents=True, exist_ok=True)
    for label, (name, seed) in FILES.items():
        path = loras_dir / name
        if path.is_file():
            continue
        g = torch.Generator(device=device).manual_seed(seed)
        tensors = {}
        for key, shape in shapes().items():
            if key.endswith(".alpha"):
                tensors[key] = torch.tensor(float(RANK), dtype=torch.bfloat16)
            else:
                tensors[key] = (torch.randn(shape, generator=g, device=device) * STD).to(torch.bfloat16).cpu()
        tmp = path.with_name(path.name + ".partial")
        save_file(tensors, str(tmp), metadata={"format": "pt", "standin": f"bench LoRA {label}, random, rank {RANK}"})
        tmp.replace(path)
        log.info("bench LoRA %s: %s, %.0f MB", label, name, path.stat().st_size / 1e6)
    return {label: name for label, (name, _) in FILES.items()}


def spec(label: str | None, strength: float) -> list[dict[str, Any]]:
    return [] if label is None else [{"name": FILES[label][0], "strength": strength}]


def run_sequence(send: Callable[[str, list[dict[str, Any]], int], dict]) -> list[dict]:
    """Each request of SEQUENCE through `send(job_id, loras, seed)` (bench/run.py's request())."""
    out = []
    for i, (label, lora, strength) in enumerate(SEQUENCE):
        r = send(f"lora{i}", spec(lora, strength), 300 + i)
        out.append({"label": label, **r})
        log.info("lora sequence %d %s: %.2f s (KSampler %.2f s, %.3f s/step)", i, label, r["wall_s"],
                 r["nodes_s"].get("KSampler") or 0.0, r.get("s_per_step") or 0.0)
    return out


def summarize(seq: list[dict]) -> dict[str, Any]:
    def med(prefix: str) -> float | None:
        vals = [r["wall_s"] for r in seq if r["label"] == prefix]
        return round(statistics.median(vals), 3) if vals else None

    none = med("none")
    cached = med("A cached")
    switches = {r["label"]: r["wall_s"] for r in seq if r["label"].endswith("switch")}
    return {"warm_none_s": none, "warm_lora_cached_s": cached,
            "lora_cost_s": round(cached - none, 3) if none is not None and cached is not None else None,
            "switch_s": switches,
            "switch_cost_max_s": round(max(switches.values()) - none, 3) if switches and none is not None else None,
            "s_per_step": {r["label"]: r.get("s_per_step") for r in seq}}


def rows(profile: dict[str, Any], title: str) -> list[str]:
    """The LoRA table of one run (a bench results.json with the baseline-lora and lora scenarios)."""
    env = profile.get("_env", {})
    lines = [f"### {title}", "",
             f"{env.get('gpu', '?')}; torch {env.get('torch', '?')}, CUDA {env.get('cuda', '?')}, Triton "
             f"{env.get('triton', '?')}; 832x1536, 28 steps; LoRAs: rank {RANK}, every attention/MLP Linear of the 57 "
             "blocks (kohya keys), random values. Requests in this order through the handler's `loras` field:", "",
             "| request | " + " | ".join(n for n in ("baseline-lora", "lora") if n in profile) + " |",
             "| --- | " + " | ".join("---" for n in ("baseline-lora", "lora") if n in profile) + " |"]
    scen = [profile[n] for n in ("baseline-lora", "lora") if n in profile]
    seqs = [s.get("lora_sequence") or [] for s in scen]
    for i, (label, _, _) in enumerate(SEQUENCE):
        cells = []
        for seq in seqs:
            r = seq[i] if i < len(seq) else None
            cells.append(f"{r['wall_s']:.2f} s ({r.get('s_per_step') or 0:.3f} s/step)" if r else "-")
        lines.append(f"| {i + 1}. {label} | " + " | ".join(cells) + " |")
    lines += [""]
    for name, s in zip(("baseline-lora", "lora"), scen):
        summ = s.get("lora_summary") or {}
        status = s.get("fast_path_status") or {}
        comp = (status.get("compile") or [{}])[0] if status else {}
        lines.append(f"* {name}: LoRA cost (A cached minus none) {summ.get('lora_cost_s')} s; worst switch minus none "
                     f"{summ.get('switch_cost_max_s')} s" + (f"; compiled path: state {comp.get('state')}, compiles "
                     f"{comp.get('compiles')}, eager fallbacks {comp.get('eager_fallbacks')}, dynamo recompiles logged "
                     f"{s.get('recompiles')}" if comp else ""))
    ex = (profile.get("lora") or {}).get("exactness") or {}
    if ex:
        lines += ["", "| fast path vs | steps | image max abs diff (0-255) | image PSNR dB | latent rel L2 |",
                  "| --- | --- | --- | --- | --- |"]
        for key, vs in ex.items():
            if not isinstance(vs, dict) or "image" not in vs:
                continue
            im, la = vs.get("image", {}), vs.get("latent", {})
            lines.append(f"| {key} | {'1' if key.endswith('-1step') else '28'} | {im.get('max_abs_diff', '-')} | "
                         f"{_f(im.get('psnr_db'))} | {_f(la.get('rel_l2'), 5)} |")
    return lines


def _f(v: Any, digits: int = 1) -> str:
    return "-" if v is None else (f"{v:.{digits}f}" if isinstance(v, float) else str(v))
