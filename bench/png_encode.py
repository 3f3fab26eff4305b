"""PNG encode time vs size by zlib level, on the CPU, for one FLUX-sized image (issue 10).

    python -m bench.png_encode [--width 832 --height 1536 --repeats 5 --out results.json]

Three images bracket what a real render costs: `random` (uniform noise, incompressible: what stand-in weights
give, the largest and slowest a PNG of this size gets), `gradient` (smooth with +-1 grain, about as compressible
as a real picture gets) and `texture` (bicubic colour fields with +-3 grain, closer to a photographic render). Each is encoded with Pillow at every `compress_level` 0-9 (ComfyUI's SaveImage uses 4, its PreviewImage 1)
and decoded back: PNG is lossless at every level, which the run checks pixel for pixel. Times are the median of
`--repeats` encodes, on whatever CPU runs it; no test asserts on them. The last two rows of each image are the
shipped save node's encoder (comfy_nodes/flux_fast/png.py: Sub filter, level 1) with ISA-L and with zlib.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import time
from typing import Any, Callable

import numpy as np
from PIL import Image, PngImagePlugin


def images(width: int, height: int) -> dict[str, Image.Image]:
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    gradient = np.stack([x / width * 255, y / height * 255, (x + y) / (width + height) * 255], axis=-1)
    # a little sensor-like noise (+-1) so the gradient is not a trivially repeated row: closer to a real render
    gradient = np.clip(gradient + rng.integers(-1, 2, gradient.shape), 0, 255).astype(np.uint8)
    # between the two: low-frequency colour fields (clouds, skin, sky) with fine grain, like a photographic render
    fields = Image.fromarray(rng.integers(0, 256, (height // 64, width // 64, 3), dtype=np.uint8), "RGB")
    texture = np.asarray(fields.resize((width, height), Image.BICUBIC), dtype=np.int16)
    texture = np.clip(texture + rng.integers(-3, 4, texture.shape), 0, 255).astype(np.uint8)
    return {"random": Image.fromarray(noise, "RGB"), "gradient": Image.fromarray(gradient, "RGB"),
            "texture": Image.fromarray(texture, "RGB")}


PROMPT_TEXT = json.dumps({"x": "p" * 20_000})   # the size of the prompt JSON ComfyUI embeds for the shipped workflow


def metadata() -> PngImagePlugin.PngInfo:
    """A tEXt chunk like the one SaveImage writes (uncompressed text)."""
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", PROMPT_TEXT)
    return info


def timed(label: Any, image: Image.Image, encode: Callable[[], bytes], repeats: int) -> dict:
    """One row: the median of `repeats` calls of `encode` (the file's bytes), its size, and whether it decodes back
    to `image` pixel for pixel."""
    times, data = [], b""
    for _ in range(repeats):
        t0 = time.perf_counter()
        data = encode()
        times.append(time.perf_counter() - t0)
    with Image.open(io.BytesIO(data)) as back:
        same = back.tobytes() == image.tobytes() and back.size == image.size and back.mode == image.mode
    return {"level": label, "encode_s": round(statistics.median(times), 4), "bytes": len(data),
            "base64_mb": round(4 * -(-len(data) // 3) / 1e6, 2), "pixels_identical": same}


def measure(image: Image.Image, level: int, repeats: int) -> dict:
    def encode() -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=level, pnginfo=metadata())
        return buffer.getvalue()

    return timed(level, image, encode, repeats)


def measure_fast(image: Image.Image, deflate: str, repeats: int) -> dict:
    """The shipped save node's encoder (comfy_nodes/flux_fast/png.py) with the same text chunk, ISA-L or zlib."""
    import zlib

    from comfy_nodes.flux_fast import png

    compress = zlib.compress
    if deflate == "isal":
        from isal import isal_zlib

        compress = isal_zlib.compress
    pixels, texts = np.asarray(image), {"prompt": PROMPT_TEXT}
    return timed(f"save node ({deflate} {png.LEVEL})", image, lambda: png.encode(pixels, texts, deflate=compress),
                 repeats)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--width", type=int, default=832)
    p.add_argument("--height", type=int, default=1536)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--levels", default="0,1,2,3,4,6,9")
    p.add_argument("--out")
    args = p.parse_args(argv)
    levels = [int(v) for v in args.levels.split(",")]
    results = {"_env": {"python": platform.python_version(), "pillow": Image.__version__, "cpus": os.cpu_count(),
                        "cpu": platform.processor() or platform.machine(), "size": f"{args.width}x{args.height}"}}
    for name, image in images(args.width, args.height).items():
        rows = results[name] = [measure(image, level, args.repeats) for level in levels]
        rows += [measure_fast(image, deflate, args.repeats) for deflate in ("isal", "zlib")]
        print(f"{name} {args.width}x{args.height}")
        print("  level  encode_s      bytes  base64_MB  identical")
        for r in rows:
            print(f"  {r['level']!s:>5}  {r['encode_s']:>8.4f}  {r['bytes']:>9}  {r['base64_mb']:>9}  {r['pixels_identical']}")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=1)
    return results


if __name__ == "__main__":
    main()
