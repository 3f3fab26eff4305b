"""How fast weights move between host and GPU the way ComfyUI moves them, under each host allocator.

Why: on a card too small for the DiT and T5 together (16 GB), ComfyUI v0.3.64 swaps them every prompt with
`module.to("cpu")` / `module.to("cuda")`. The copy to the host lands in freshly allocated, pageable memory; with
glibc, tensors of T5's size (40 MiB) are mmapped and unmapped each time, so every swap page-faults its memory
anew. This measures swap cycles of ~4 GiB in T5-layer-sized tensors per allocator setting (each in its own
process, since the allocator is chosen at process start), plus pinned copies for reference, and prints JSON:
`python -m bench.host_transfer [--tcmalloc PATH] [--out FILE]`. start.sh's TCMALLOC_RELEASE_RATE=0 comes from it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CYCLES = 4
TENSORS, MIB = 100, 40   # ~4 GiB of 4096x10240 fp8 weights, T5-XXL's largest


def measure() -> dict:
    """In this process: D2H and H2D GiB/s of each swap cycle, as module.to() does them, and pinned references."""
    import time

    import torch

    def timed(fn):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = fn()
        torch.cuda.synchronize()
        return out, time.perf_counter() - t0

    gib = TENSORS * MIB / 1024
    gpu = [torch.ones(MIB * 2**20, dtype=torch.uint8, device="cuda") for _ in range(TENSORS)]
    cycles = []
    for _ in range(CYCLES):
        host, d2h = timed(lambda: [t.to("cpu") for t in gpu])
        del gpu
        gpu, h2d = timed(lambda: [t.to("cuda") for t in host])
        del host
        cycles.append({"d2h_gib_s": round(gib / d2h, 1), "h2d_gib_s": round(gib / h2d, 1)})
    pinned = [torch.empty(MIB * 2**20, dtype=torch.uint8).pin_memory() for _ in range(TENSORS)]
    _, d2h = timed(lambda: [p.copy_(g) for p, g in zip(pinned, gpu)])
    _, h2d = timed(lambda: [p.to("cuda") for p in pinned])
    return {"cycles": cycles, "pinned": {"d2h_gib_s": round(gib / d2h, 1), "h2d_gib_s": round(gib / h2d, 1)}}


def variants(tcmalloc: Path | None) -> dict[str, dict[str, str]]:
    v = {"glibc": {}}
    if tcmalloc:
        v["tcmalloc"] = {"LD_PRELOAD": str(tcmalloc)}
        v["tcmalloc, TCMALLOC_RELEASE_RATE=0 (start.sh)"] = {"LD_PRELOAD": str(tcmalloc), "TCMALLOC_RELEASE_RATE": "0"}
    return v


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tcmalloc", type=Path, default=None, help="libtcmalloc_minimal.so.4 to compare with glibc")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(measure()))
        return 0
    import torch

    res = {"device": torch.cuda.get_device_name(0), "gib_per_cycle": round(TENSORS * MIB / 1024, 2), "variants": {}}
    for name, env in variants(args.tcmalloc.resolve() if args.tcmalloc else None).items():
        out = subprocess.run([sys.executable, "-m", "bench.host_transfer", "--child"], env={**os.environ, **env},
                             capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
        res["variants"][name] = json.loads(out.stdout) if out.returncode == 0 else {"error": out.stderr[-500:]}
    text = json.dumps(res, indent=1)
    if args.out:
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
