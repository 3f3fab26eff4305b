"""GPU packages are loaded only in a process with tcmalloc preloaded (compiled_blocks.tcmalloc_preloaded says why).

What a user would notice without the guard: a worker started outside the image (no start.sh, so no tcmalloc), or a
GUI user's own ComfyUI with these nodes, dies at its first compiled run with no error message (on an H100 with
torch 2.11, loading a package under glibc's malloc killed the process every time it was tried). With it, such a
process serves the same images eager and its status says what to change. The image preloads tcmalloc, so workers
run compiled."""

import os
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="torch is not installed in this interpreter (the fast-path tier needs it)")

from comfy_nodes.flux_fast import compiled_blocks  # noqa: E402
from comfy_nodes.flux_fast.policy import make_plan  # noqa: E402

MAPS_WITH = """7f1c2a000000-7f1c2a020000 r--p 00000000 08:01 1234 /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4.5.16
7f1c2b000000-7f1c2b200000 r-xp 00000000 08:01 1235 /usr/lib/x86_64-linux-gnu/libc.so.6
"""
MAPS_WITHOUT = """7f1c2b000000-7f1c2b200000 r-xp 00000000 08:01 1235 /usr/lib/x86_64-linux-gnu/libc.so.6
"""


def test_tcmalloc_is_read_from_the_process_maps(tmp_path):
    (tmp_path / "with").write_text(MAPS_WITH)
    (tmp_path / "without").write_text(MAPS_WITHOUT)
    assert compiled_blocks.tcmalloc_preloaded(tmp_path / "with")
    assert not compiled_blocks.tcmalloc_preloaded(tmp_path / "without")
    assert not compiled_blocks.tcmalloc_preloaded(tmp_path / "absent")


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="no /proc/self/maps on this OS")
def test_this_process_is_read_as_it_was_started():
    assert compiled_blocks.tcmalloc_preloaded() == ("libtcmalloc" in os.environ.get("LD_PRELOAD", ""))


def _blocks(tmp_path, device: str):
    plan = make_plan("bf16", True, "auto", {})
    blocks = compiled_blocks.CompiledBlocks(plan, "bf16", torch.device("cpu"), torch.bfloat16, torch.nn.Module,
                                            {"depth": 1}, "test", env={"FLUX_FAST_BAKED_ARTIFACTS_DIR": str(tmp_path)})
    blocks.device = torch.device(device)     # the guard reads only the device type, before anything touches it
    return blocks


def test_a_gpu_worker_without_tcmalloc_serves_eager_and_says_why(tmp_path, monkeypatch):
    monkeypatch.setattr(compiled_blocks, "_tcmalloc", lambda: False)
    blocks = _blocks(tmp_path, "cuda")
    calls = []
    blocks.begin_run()
    out = blocks.model_call(lambda *a, **k: calls.append(a) or "eager image", torch.nn.Module(), ("x",), {})
    assert out == "eager image" and calls == [("x",)]
    status = blocks.status()
    assert status["state"] == "eager" and "tcmalloc" in status["reason"] and "LD_PRELOAD" in status["reason"]
    assert blocks.wanted is None            # no key resolved, so no build started for a process that cannot load


def test_the_guard_leaves_cpu_packages_alone(tmp_path, monkeypatch):
    """CPU packages loaded fine under glibc's malloc (the CPU test tier runs them): no guard there."""
    monkeypatch.setattr(compiled_blocks, "_tcmalloc", lambda: False)
    blocks = _blocks(tmp_path, "cpu")
    blocks.begin_run()
    blocks.model_call(lambda *a, **k: None, torch.nn.Module(), (), {})
    assert "tcmalloc" not in blocks.status()["reason"]
