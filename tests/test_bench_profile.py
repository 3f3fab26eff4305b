"""The bench's in-process profile of a sampling run (bench/custom_nodes/bench_profile): what it reports about where
a step's time goes. A wrong busy/idle split would send the next GPU session after the wrong cause (the fp8 worker's
step is 0.02 s slower than its packages alone), so the arithmetic is checked here on known intervals."""

import importlib.util
import time
from pathlib import Path

import pytest

NODE = Path(__file__).resolve().parents[1] / "bench" / "custom_nodes" / "bench_profile" / "__init__.py"


def _node(monkeypatch):
    monkeypatch.delenv("BENCH_PROFILE_DIR", raising=False)      # import only: install nothing
    spec = importlib.util.spec_from_file_location("bench_profile_under_test", NODE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_busy_time_is_the_union_of_kernel_intervals_and_gaps_are_bucketed(monkeypatch):
    node = _node(monkeypatch)
    # microseconds: two overlapping kernels, a 50 us gap, a kernel, a 2 ms gap, a kernel
    spans = [(0, 100), (50, 150), (200, 300), (2300, 2400)]
    busy, gaps = node.gpu_busy_and_gaps(spans)
    assert busy == 150 + 100 + 100
    assert gaps[">= 0.01 ms"] == [1, 0.05]
    assert gaps[">= 1.0 ms"] == [1, 2.0]
    assert gaps[">= 0.1 ms"] == [0, 0.0] and gaps[">= 10.0 ms"] == [0, 0.0]


def test_the_summary_reads_a_real_profile(monkeypatch):
    torch = pytest.importorskip("torch", reason="torch is not installed in this interpreter")
    from torch.profiler import ProfilerActivity, profile

    from bench import kernels

    node = _node(monkeypatch)
    x = torch.randn(64, 64)
    started = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(4):
            x = torch.tanh(x @ x)
    summary = node._summary(prof, time.perf_counter() - started, 4, kernels)
    assert summary["steps"] == 4 and summary["wall_ms_per_step"] > 0
    assert summary["gpu_busy_ms_per_step"] == 0 and summary["kernels"] == 0       # no GPU: all host time
    assert any("mm" in op["name"] and op["calls"] == 4 for op in summary["top_host_ops"])
