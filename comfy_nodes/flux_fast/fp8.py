"""fp8 row-wise matmuls for FLUX's Linear layers (``compute = fp8_rowwise``, opt-in; see patch.py for why).

Shared by the serving process (an object patch per Linear) and the ahead-of-time build (aot_build.py), which must
trace the very same forward.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from .policy import fp8_eligible, rows_padding

FP8_MAX = 448.0


def patch_linears(module: torch.nn.Module) -> int:
    """Give every eligible Linear under `module` the fp8 forward as an instance attribute (the build's way; the
    serving process uses ComfyUI object patches instead). Returns how many."""
    count = 0
    for _, linear in module.named_modules():
        if isinstance(linear, torch.nn.Linear) and fp8_eligible(linear.in_features, linear.out_features):
            linear.forward = fp8_forward(linear)
            count += 1
    return count


def fp8_forward(module: torch.nn.Linear) -> Callable[[torch.Tensor], torch.Tensor]:
    """A forward for one Linear: fp8 matmul with row-wise activation and per-channel weight scales.

    Falls back to the module's own (ComfyUI) forward wherever the fast kernel does not apply: weights not on
    the input's device (low-VRAM streaming), weight/bias functions (LoRA patches applied on the fly), an input
    that is not bf16 (torch's row-wise fp8 matmul writes bf16 only).
    """
    original = type(module).forward

    def forward(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        w = module.weight
        if (args or kwargs or x.dtype != torch.bfloat16 or w.device != x.device
                or len(getattr(module, "weight_function", ())) > 0 or len(getattr(module, "bias_function", ())) > 0):
            return original(module, x, *args, **kwargs)
        return fp8_rowwise_linear(x, w, module.bias)

    return forward


def _tracing() -> bool:
    return torch.compiler.is_compiling() or torch.compiler.is_exporting()


def fp8_rowwise_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """y = x @ weight.T + bias with fp8 e4m3 operands: per-row scales for x, per-output-channel for weight."""
    shape = x.shape
    n_out = weight.shape[0]
    x2 = x.reshape(-1, shape[-1])
    rows = x2.shape[0]
    pad = rows_padding(rows)
    # Traced (the compiled blocks' export), the row count is symbolic (batch x tokens, or the batch alone for the
    # modulation layers): `if pad` would be a guard on batch % 16 that no dynamic batch range satisfies, and the
    # export fails. So a trace always pads and slices, by a symbolic amount that is zero where it need not pad.
    always = _tracing()
    if always or pad:
        x2 = torch.nn.functional.pad(x2, (0, 0, 0, pad))
    xf = x2.float()
    x_scale = xf.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / FP8_MAX
    xq = (xf / x_scale).to(torch.float8_e4m3fn)
    if weight.dtype == torch.float8_e4m3fn:
        wq = weight
        w_scale = torch.ones((1, n_out), device=x.device, dtype=torch.float32)
    else:  # weights were upcast (or never fp8): quantise per output channel on the fly
        wf = weight.float()
        w_scale = (wf.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / FP8_MAX).t()
        wq = (wf / w_scale.t()).to(torch.float8_e4m3fn)
    out = torch._scaled_mm(xq, wq.t(), scale_a=x_scale, scale_b=w_scale, out_dtype=x.dtype)
    if isinstance(out, tuple):
        out = out[0]
    if always or pad:
        out = out[:rows]
    if bias is not None:
        out = out + bias.to(out.dtype)
    return out.reshape(*shape[:-1], n_out)
