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
