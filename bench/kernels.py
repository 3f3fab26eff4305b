"""Which family a GPU kernel belongs to, by the names cuBLAS, cuDNN and inductor give them: one rule for every
profile the bench writes (dit_profile, aot_probe).

Order matters: inductor names a fused kernel after the ops fused into it (`triton_red_fused__scaled_mm_..._amax`,
`triton_poi_fused__scaled_dot_product_cudnn_attention_...`), so a Triton kernel is Triton work whatever ops its name
lists; only then do the library kernels' names say GEMM or attention.
"""

from __future__ import annotations

FAMILIES = (
    ("gemm", ("gemm", "nvjet", "sm90_xmma", "cutlass", "xmma", "f8f8bf16")),
    ("attention", ("fmha", "flash", "cudnn", "attention", "sdpa", "attn")),
)


def family(name: str) -> str:
    """'triton fp8 quantisation', 'triton', 'gemm', 'attention' or 'other'."""
    low = name.lower()
    if low.startswith("triton_"):
        return "triton fp8 quantisation" if "amax" in low and "scaled_mm" in low else "triton"
    for fam, keys in FAMILIES:
        if any(k in low for k in keys):
            return fam
    return "other"


def tally(prof) -> tuple[dict[str, tuple[int, float]], list[tuple[float, float]]]:
    """The GPU kernels of a torch.profiler run: ({name: (calls, device microseconds)}, [(start, end) us per kernel])."""
    import torch

    kernels: dict[str, tuple[int, float]] = {}
    spans = []
    for event in prof.events():
        if event.device_type != torch.autograd.DeviceType.CUDA or not event.device_time:
            continue
        calls, us = kernels.get(event.name, (0, 0.0))
        kernels[event.name] = (calls + 1, us + event.device_time)
        spans.append((event.time_range.start, event.time_range.end))
    return kernels, spans


def families_ms(kernels: dict[str, tuple[int, float]]) -> dict[str, float]:
    """Milliseconds per family (family()), largest first."""
    out: dict[str, float] = {}
    for name, (_, us) in kernels.items():
        out[family(name)] = out.get(family(name), 0.0) + us / 1000
    return {k: round(v, 2) for k, v in sorted(out.items(), key=lambda kv: -kv[1])}


def top_kernels(kernels: dict[str, tuple[int, float]], n: int = 25) -> list[dict]:
    return [{"name": name[:140], "calls": calls, "ms": round(us / 1000, 3)}
            for name, (calls, us) in sorted(kernels.items(), key=lambda kv: -kv[1][1])[:n]]
