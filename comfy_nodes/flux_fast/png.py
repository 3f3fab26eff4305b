"""PNG files written in a few milliseconds: the image every request returns, encoded off the reply's critical path.

Why: ComfyUI's SaveImage encodes with Pillow at zlib level 4, adaptive filtering, one thread. At 832x1536 that is
0.14-0.21 s on the CPU (noise / a smooth picture, bench/png_encode.py), and the save node took 0.21-0.31 s of every
warm request on the H100 worker (4.34 s for an fp8 request: the largest step after sampling, BENCHMARKS.md). Here the
rows are filtered with numpy ("Sub": each byte minus the same channel of the pixel to its left) and deflated by
ISA-L (`isal`, level 1) when it is installed, by the standard library's zlib at level 1 otherwise: 4-12 ms for the
same images with ISA-L, files 0-13% larger than level 4's. PNG is lossless at every level and filter, so the pixels
a caller decodes are the ones ComfyUI's SaveImage would have written (tests/integration/test_fast_save.py decodes
both and compares).

Shapes: `encode(pixels, texts)` takes an HxWxC uint8 array (C = 1 gray, 3 RGB, 4 RGBA) and text chunks (key ->
value; ComfyUI's "prompt" and "workflow" JSON, as SaveImage writes them) and returns the file's bytes.
"""

from __future__ import annotations

import struct
import zlib
from typing import Callable, Mapping

import numpy as np

try:
    from isal import isal_zlib as _deflate_lib

    DEFLATE = "isal"
except ImportError:           # a GUI user's ComfyUI without it: the standard library, still ~2-4x Pillow's level 4
    _deflate_lib = zlib
    DEFLATE = "zlib"

LEVEL = 1
SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLOR_TYPES = {1: 0, 3: 2, 4: 6}       # channels -> PNG colour type (gray, RGB, RGBA), 8 bits each
FILTER_SUB = 1
MAX_CHUNK = 2**31 - 1


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def text_chunk(key: str, value: str) -> bytes:
    """tEXt where the value is Latin-1 (ComfyUI's json.dumps output always is), else iTXt in UTF-8, as Pillow's
    PngInfo.add_text chooses."""
    keyword = key.encode("latin-1")
    if not 1 <= len(keyword) <= 79 or b"\0" in keyword:
        raise ValueError(f"PNG text keyword {key!r} must be 1-79 Latin-1 characters without NUL")
    try:
        return _chunk(b"tEXt", keyword + b"\0" + value.encode("latin-1"))
    except UnicodeEncodeError:
        return _chunk(b"iTXt", keyword + b"\0\0\0\0\0" + value.encode("utf-8"))


def filtered_rows(pixels: np.ndarray) -> bytes:
    """The image's scanlines, each led by its filter byte (Sub), as PNG's IDAT stream holds them before deflate."""
    height, width, channels = pixels.shape
    rows = pixels.reshape(height, width * channels)
    out = np.empty((height, width * channels + 1), dtype=np.uint8)
    out[:, 0] = FILTER_SUB
    out[:, 1:1 + channels] = rows[:, :channels]
    np.subtract(rows[:, channels:], rows[:, :-channels], out=out[:, 1 + channels:])   # uint8: wraps mod 256
    return out.tobytes()


def encode(pixels: np.ndarray, texts: Mapping[str, str] | None = None,
           deflate: Callable[[bytes, int], bytes] | None = None) -> bytes:
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] not in COLOR_TYPES:
        raise ValueError(f"expected an HxWxC uint8 image with C in 1, 3, 4; got {pixels.dtype} {pixels.shape}")
    height, width, channels = pixels.shape
    if not (1 <= width < 2**31 and 1 <= height < 2**31):
        raise ValueError(f"a PNG is 1 to 2^31-1 pixels a side; got {width}x{height}")
    data = (deflate or _deflate_lib.compress)(filtered_rows(np.ascontiguousarray(pixels)), LEVEL)
    parts = [SIGNATURE, _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, COLOR_TYPES[channels], 0, 0, 0))]
    parts += [text_chunk(key, value) for key, value in (texts or {}).items()]
    parts += [_chunk(b"IDAT", data[i:i + MAX_CHUNK]) for i in range(0, len(data), MAX_CHUNK)]
    parts.append(_chunk(b"IEND", b""))
    return b"".join(parts)
