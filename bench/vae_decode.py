"""How long the FLUX VAE decode of one 832x1536 latent takes, per decode strategy: the VAE alone.

Why: the shipped graph decodes with VAEDecodeTiled (tile 512, overlap 64), which ComfyUI runs as three full
passes over differently shaped tiles and averages, 0.45-0.56 s per request in `bench.run`. This measures the
candidates side by side on ComfyUI's own VAE class with random weights of the real shapes, and how far each
one's image is from the shipped tiled decode:

    tiled         ComfyUI's VAEDecodeTiled arguments (the shipped path)
    tiled_bench   the same with cudnn.benchmark on (what ComfyUI's `--fast autotune` sets)
    full          one pass over the whole latent (ComfyUI's VAEDecode when memory allows)
    full_bench    the same with cudnn.benchmark on

Run on a GPU machine from the repo root:
    python -m bench.vae_decode --comfyui .comfyui --out OUT
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path


def build_vae(torch):
    import comfy.sd
    from tools.standins import fill_kind, flux_vae_shapes

    gen = torch.Generator().manual_seed(0)
    sd = {}
    for key, shape in flux_vae_shapes().items():
        kind = fill_kind(key)
        if kind == "ones":
            sd[key] = torch.ones(shape)
        elif kind == "zeros":
            sd[key] = torch.zeros(shape)
        else:
            fan_in = max(1, int(torch.tensor(shape[1:]).prod().item())) if len(shape) > 1 else 1
            sd[key] = torch.randn(shape, generator=gen) * (fan_in ** -0.5)
    return comfy.sd.VAE(sd=sd)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--comfyui", required=True)
    p.add_argument("--width", type=int, default=832)
    p.add_argument("--height", type=int, default=1536)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--variants", default="tiled,full,tiled_bench,full_bench")
    p.add_argument("--out", default="vae-decode")
    args = p.parse_args()
    sys.path.insert(0, str(Path(args.comfyui).resolve()))
    import torch

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    vae = build_vae(torch)
    latent = torch.randn((1, 16, args.height // 8, args.width // 8), generator=torch.Generator().manual_seed(1))
    comp = vae.spacial_compression_decode()
    cuda = torch.cuda.is_available()
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    results = {"device": torch.cuda.get_device_name(0) if cuda else "cpu", "vae_dtype": str(vae.vae_dtype), "variants": {}}
    reference = None
    for name in args.variants.split(","):
        torch.backends.cudnn.benchmark = name.endswith("_bench")
        if name.startswith("tiled"):
            fn = lambda: vae.decode_tiled(latent, tile_x=512 // comp, tile_y=512 // comp, overlap=64 // comp)
        else:
            fn = lambda: vae.decode(latent)
        t0 = time.perf_counter()
        img = fn()
        sync()
        first = time.perf_counter() - t0
        times = []
        for _ in range(args.iters):
            t0 = time.perf_counter()
            img = fn()
            sync()
            times.append(time.perf_counter() - t0)
        img = img.float().cpu().clamp(0, 1)
        if reference is None:
            reference = img
        diff = (img - reference).abs()
        mse = float((diff ** 2).mean().detach())
        res = {"first_s": round(first, 3), "median_s": round(statistics.median(times), 4),
               "min_s": round(min(times), 4), "shape": list(img.shape),
               "max_abs_diff_255_vs_first": round(float(diff.max()) * 255, 2),
               "psnr_db_vs_first": round(10 * __import__("math").log10(1 / mse), 1) if mse > 0 else None}
        results["variants"][name] = res
        print(f"=== vae {name}: {json.dumps(res)}", flush=True)
    (out_dir / "vae-decode.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
