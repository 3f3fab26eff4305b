"""The fp8 row-wise matmul (FLUX_FAST_COMPUTE=fp8_rowwise) under torch.export with dynamic shapes, as the compiled
blocks export it (comfy_nodes/flux_fast/aot_build.py). A caller notices a failure here as an fp8 worker that never
runs compiled: on an H100 its build failed on a guard `batch % 16 != 0` from the row padding, and every request ran
eager at 8.3 s against plain ComfyUI's 8.0 s. Export needs no GPU (fake tensors), so this runs on the CPU."""

import pytest

torch = pytest.importorskip("torch", reason="torch is not installed in this interpreter (the fast-path tier needs it)")

from comfy_nodes.flux_fast.fp8 import fp8_rowwise_linear  # noqa: E402


class _Linear(torch.nn.Module):
    def __init__(self, weight_dtype):
        super().__init__()
        w = torch.randn(64, 32)
        self.weight = torch.nn.Parameter(w.to(weight_dtype), requires_grad=False)
        self.bias = torch.nn.Parameter(torch.randn(64, dtype=torch.bfloat16), requires_grad=False)

    def forward(self, x):
        return fp8_rowwise_linear(x, self.weight, self.bias)


@pytest.mark.parametrize("weight_dtype", [torch.float8_e4m3fn, torch.bfloat16], ids=["fp8-weights", "bf16-weights"])
def test_the_fp8_matmul_exports_for_every_batch_and_token_count(weight_dtype):
    batch, tokens = torch.export.Dim("batch", max=64), torch.export.Dim("tokens", max=16384)
    # tokens (the double/single blocks' activations) and the batch alone (the modulation layers, rows = batch)
    for example, dims in [(torch.randn(2, 24, 32, dtype=torch.bfloat16), {0: batch, 1: tokens}),
                          (torch.randn(2, 32, dtype=torch.bfloat16), {0: batch})]:
        program = torch.export.export(_Linear(weight_dtype), (example,), dynamic_shapes=(dims,), strict=False)
        out = [n for n in program.graph.nodes if n.op == "output"][0].args[0][0].meta["val"]
        ins = [n for n in program.graph.nodes if n.op == "placeholder"][-1].meta["val"]
        assert out.shape[:-1] == ins.shape[:-1] and out.shape[-1] == 64   # padded rows are sliced off again
        assert out.dtype == torch.bfloat16
        for sym in ins.shape[:-1]:                                           # still symbolic: no specialisation
            assert not isinstance(sym, int)
