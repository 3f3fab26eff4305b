"""The sizes the compiled blocks are exported and tuned at (comfy_nodes/flux_fast/aot_build.py, EXAMPLE_SIZES).

A caller notices these as speed: AOTInductor picks each GPU kernel's launch configuration by benchmarking it on the
export's example sizes, and the package runs every request with what it picked. Tuned on a toy size, the fp8
package's step took 127.4 ms of GPU time on an H100 against 126.6 ms tuned at the default request's rows
(BENCHMARKS.md, "Where the fp8 step goes"). A dynamic dimension whose
example size repeats another's is unified with it by export, and the package then refuses every request where the
two differ, so the sizes must stay distinct."""

import pytest

from comfy_nodes.flux_fast import aot_build
from handler.inputs import DEFAULTS

PATCH = 16          # FLUX: 8x VAE downscale, then 2x2 patches
T5_MIN_TOKENS = 256  # ComfyUI pads FLUX's T5 prompt to at least this many tokens


def test_gpu_builds_are_tuned_for_the_rows_of_the_default_request():
    batch, img, txt = aot_build.example_sizes("cuda", env={})
    assert batch * img == (DEFAULTS["width"] // PATCH) * (DEFAULTS["height"] // PATCH)
    assert abs(batch * txt - T5_MIN_TOKENS) <= PATCH
    assert batch >= 2 and len({batch, img, txt}) == 3


def test_cpu_builds_keep_a_small_example():
    batch, img, txt = aot_build.example_sizes("cpu", env={})
    assert img + txt < 256 and len({batch, img, txt}) == 3


def test_the_bench_override_is_read_and_checked():
    env = {aot_build.EXAMPLE_ENV: "2,96,40"}
    assert aot_build.example_sizes("cuda", env=env) == (2, 96, 40)
    for bad in ("2,96", "2,96,96", "1,96,40", "a,b,c", "999,96,40"):
        with pytest.raises(ValueError, match=aot_build.EXAMPLE_ENV):
            aot_build.example_sizes("cuda", env={aot_build.EXAMPLE_ENV: bad})


def test_a_gpu_short_of_memory_tunes_at_the_small_example_rather_than_fail_its_build():
    """A 24 GB card beside its served models has ~3 GiB free: a build that ran out there would leave it eager."""
    tight = aot_build.example_sizes("cuda", env={}, free_bytes=aot_build.REAL_EXAMPLE_FREE_BYTES - 1)
    roomy = aot_build.example_sizes("cuda", env={}, free_bytes=40 * 2**30)
    assert tight == aot_build.example_sizes("cpu", env={})
    assert roomy == aot_build.example_sizes("cuda", env={})
    assert tight[0] * tight[1] < roomy[0] * roomy[1]
