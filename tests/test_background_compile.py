"""The fast path's background compile (comfy_nodes/flux_fast/background_compile.py) on a tiny DiT of two block types.

What a caller would notice: no model call waits for a compile (calls run eager until the compiled blocks are ready),
a sampling run never mixes paths, a model state the compiled graphs do not fit falls back to eager at once and is
recompiled in the background, and a compile that fails leaves a worker that still produces the eager result.
Needs torch (real dynamo guards and a real compile thread; backend "eager" keeps it fast on a CPU).
"""

import time

import pytest

torch = pytest.importorskip("torch", reason="torch is not installed: the background-compile tier needs real modules")

from comfy_nodes.flux_fast.background_compile import BackgroundCompiler, statuses  # noqa: E402
from comfy_nodes.flux_fast.patch import CompiledBlocks, _with_compiled_blocks  # noqa: E402
from comfy_nodes.flux_fast import policy  # noqa: E402


class Double(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(8, 8)
        self.cast = False            # like ComfyUI's comfy_cast_weights: module state the compiled code guards on

    def forward(self, img, txt, vec, pe, transformer_options={}):
        h = self.lin(img) * vec
        if self.cast:
            h = h * 0.5
        return img + h, txt + 1


class Single(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(8, 8)

    def forward(self, img, vec, pe, transformer_options={}):
        return img + torch.tanh(self.lin(img))


class Dit(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.double_blocks = torch.nn.ModuleList(Double() for _ in range(2))
        self.single_blocks = torch.nn.ModuleList(Single() for _ in range(3))
        self.paths = []

    def forward(self, x):
        img = x.reshape(x.shape[0], -1, 8)
        txt = torch.zeros(x.shape[0], 3, 8)
        vec = torch.ones(x.shape[0], 1, 8)
        for block in self.double_blocks:
            img, txt = block(img=img, txt=txt, vec=vec, pe=None, transformer_options={"k": 1})
        img = torch.cat((txt, img), 1)
        for block in self.single_blocks:
            img = block(img, vec=vec, pe=None, transformer_options={"k": 1})
        compiled = hasattr(self.double_blocks[0], "_orig_mod")
        self.paths.append("compiled" if compiled else "eager")    # recorded only when the call succeeded
        return img


class Executor:
    """What ComfyUI's APPLY_MODEL wrapper executor looks like to our wrapper: class_obj.diffusion_model, callable."""

    def __init__(self, dit):
        self.class_obj = type("Base", (), {"diffusion_model": dit})()

    def __call__(self, x, *args, **kwargs):
        return self.class_obj.diffusion_model(x)


def wait_for(compiler, state, timeout_s=120.0):
    deadline = time.monotonic() + timeout_s
    while compiler.state != state:
        assert compiler.state != "failed" or state == "failed", compiler.status()
        assert time.monotonic() < deadline, f"still {compiler.state} after {timeout_s} s: {compiler.status()}"
        time.sleep(0.02)


def setup(backend="eager", max_pause_s=120.0):
    dit = Dit()
    compiler = BackgroundCompiler(tuple(CompiledBlocks.lists_of(dit)), lambda: CompiledBlocks(dit, "default", backend),
                                  None, "tiny", max_pause_s=max_pause_s)
    wrapper = _with_compiled_blocks(compiler, policy.make_plan("default", True, "auto", {}))
    return dit, compiler, wrapper, Executor(dit)


def sampling_run(compiler, wrapper, executor, *inputs):
    """One sampling run of model calls, as ComfyUI's OUTER_SAMPLE wrapper brackets it."""
    compiler.begin_run()
    try:
        return [wrapper(executor, x) for x in inputs]
    finally:
        compiler.end_run()


def eager_reference(dit, x):
    with torch.inference_mode():
        return dit(x)


def test_calls_run_eager_until_the_background_compile_is_ready_then_compiled_for_any_size_and_batch():
    dit, compiler, wrapper, executor = setup()
    x, other_size = torch.randn(1, 16, 6, 4), torch.randn(1, 16, 10, 4)
    batches = [torch.randn(n, 16, 6 + 2 * n, 4) for n in (2, 3, 4)]
    with torch.inference_mode():
        [first] = sampling_run(compiler, wrapper, executor, x)   # does not wait: eager, hands its inputs over
        assert dit.paths == ["eager"]
        wait_for(compiler, "ready")
        second, out_other = sampling_run(compiler, wrapper, executor, x, other_size)
        assert dit.paths[-2:] == ["compiled", "compiled"]         # another image size: dynamic shapes, no recompile
        out_batches = sampling_run(compiler, wrapper, executor, *batches)
        assert dit.paths[-3:] == ["compiled"] * 3                 # batches of 2-4, compiled ahead, no recompile
    torch.testing.assert_close(first, second)
    torch.testing.assert_close(out_other, eager_reference(dit, other_size))
    for batch, out in zip(batches, out_batches):
        torch.testing.assert_close(out, eager_reference(dit, batch))
    status = compiler.status()
    assert status["state"] == "ready" and status["compiles"] == 1 and status["eager_fallbacks"] == 0
    assert status in statuses()
    # The eager lists are back in place after every call, and no capture hook is left behind.
    assert not hasattr(dit.double_blocks[0], "_orig_mod")
    assert not any(b._forward_pre_hooks for b in [*dit.double_blocks, *dit.single_blocks])


def test_the_compile_waits_while_a_sampling_run_is_in_progress():
    dit, compiler, wrapper, executor = setup()
    x = torch.randn(1, 16, 6, 4)
    with torch.inference_mode():
        compiler.begin_run()
        wrapper(executor, x)
        time.sleep(1.5)                                  # a long sampling run: the compile makes no progress
        assert compiler.state == "compiling"
        wrapper(executor, x)
        compiler.end_run()
        wait_for(compiler, "ready")                      # and finishes once the run is over
    assert compiler.paused_s > 1.0
    assert dit.paths == ["eager", "eager"]


def test_a_worker_that_is_never_idle_still_gets_compiled_and_a_run_never_switches_paths():
    dit, compiler, wrapper, executor = setup(max_pause_s=0.3)
    x = torch.randn(1, 16, 6, 4)
    with torch.inference_mode():
        compiler.begin_run()                             # one endless run
        wrapper(executor, x)
        wait_for(compiler, "ready")                      # past its pause budget the compile goes on regardless
        wrapper(executor, x)
        assert dit.paths == ["eager", "eager"]           # ...but this run started eager and stays eager
        compiler.end_run()
        sampling_run(compiler, wrapper, executor, x)
        assert dit.paths[-1] == "compiled"


def test_a_model_state_the_graphs_do_not_fit_goes_eager_at_once_and_recompiles_in_the_background():
    dit, compiler, wrapper, executor = setup()
    x = torch.randn(1, 16, 6, 4)
    with torch.inference_mode():
        sampling_run(compiler, wrapper, executor, x)
        wait_for(compiler, "ready")
        for block in dit.double_blocks:                 # e.g. ComfyUI's partial loading on a 16 GB card
            block.cast = True
        out, _ = sampling_run(compiler, wrapper, executor, x, x)
        assert dit.paths[-2:] == ["eager", "eager"]      # refused to recompile: eager at once, for the whole run
        assert compiler.eager_fallbacks == 1
        wait_for(compiler, "ready")                     # recompiled off the request path
        [again] = sampling_run(compiler, wrapper, executor, x)
        assert dit.paths[-1] == "compiled"
    torch.testing.assert_close(out, eager_reference(dit, x))
    torch.testing.assert_close(again, out)
    assert compiler.status()["compiles"] == 2


def test_a_failed_compile_leaves_the_eager_path_serving_and_says_why():
    def broken_backend(gm, example_inputs):
        raise RuntimeError("ptxas fatal: out of registers")

    dit, compiler, wrapper, executor = setup(backend=broken_backend)
    x = torch.randn(1, 16, 6, 4)
    with torch.inference_mode():
        sampling_run(compiler, wrapper, executor, x)
        wait_for(compiler, "failed")
        [out] = sampling_run(compiler, wrapper, executor, x)
    assert dit.paths == ["eager", "eager"]
    torch.testing.assert_close(out, eager_reference(dit, x))
    assert "compile failed" in compiler.status()["reason"] and "out of registers" in compiler.status()["reason"]


def test_the_eager_blocks_are_restored_when_a_compiled_model_call_fails():
    dit, compiler, wrapper, executor = setup()
    eager_double = dit.double_blocks

    class Failing(Executor):
        def __call__(self, *args, **kwargs):
            raise RuntimeError("CUDA out of memory")

    with torch.inference_mode():
        sampling_run(compiler, wrapper, executor, torch.randn(1, 16, 6, 4))
        wait_for(compiler, "ready")
        with pytest.raises(RuntimeError, match="out of memory"):
            sampling_run(compiler, wrapper, Failing(dit), torch.randn(1, 16, 6, 4))
    assert dit.double_blocks is eager_double


class SettledWeights:
    """weights.WeightState as the compile thread sees it: a generation that each eject bumps, and `settled`."""

    def __init__(self):
        import threading

        self.generation, self.settled = 0, threading.Event()
        self.settled.set()


def test_a_trace_that_an_eject_overlapped_is_traced_again_and_a_plain_failure_is_not():
    weights = SettledWeights()
    compiler = BackgroundCompiler(("double_blocks",), lambda: None, None, "tiny", weights=weights)
    calls = []

    def block_ejected_under_it(*args, **kwargs):   # ComfyUI ejected mid-trace: fp8 weights seen, inductor refused
        calls.append(args)
        if len(calls) == 1:
            weights.generation += 1
            raise RuntimeError('"rms_norm" not implemented for Float8_e4m3fn')

    compiler._trace(block_ejected_under_it, (1,), {})
    assert len(calls) == 2                        # traced again on settled weights, and that one counts

    def block_changed_under_it(*args, **kwargs):  # succeeded, but on weights that changed meanwhile
        calls.append(args)
        if len(calls) == 3:
            weights.generation += 1

    compiler._trace(block_changed_under_it, (2,), {})
    assert len(calls) == 4

    def broken(*args, **kwargs):                  # nothing changed: a real failure is not retried
        calls.append(args)
        raise ValueError("real")

    with pytest.raises(ValueError):
        compiler._trace(broken, (3,), {})
    assert len(calls) == 5


def test_without_batches_compiled_ahead_a_batch_runs_eager_and_nothing_recompiles():
    dit = Dit()
    compiler = BackgroundCompiler(tuple(CompiledBlocks.lists_of(dit)), lambda: CompiledBlocks(dit, "default", "eager"),
                                  None, "tiny", batches=False)
    plan = policy.make_plan("default", True, "auto", {"FLUX_FAST_COMPILE_BATCHES": "0"})
    wrapper, executor = _with_compiled_blocks(compiler, plan), Executor(dit)
    with torch.inference_mode():
        sampling_run(compiler, wrapper, executor, torch.randn(1, 16, 6, 4))
        wait_for(compiler, "ready")
        sampling_run(compiler, wrapper, executor, torch.randn(1, 16, 6, 4), torch.randn(3, 16, 6, 4))
    assert dit.paths[-2:] == ["compiled", "eager"]
    assert compiler.status()["eager_fallbacks"] == 0 and compiler.status()["compiles"] == 1
