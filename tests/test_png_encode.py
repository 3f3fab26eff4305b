"""The save node's PNG encoder (comfy_nodes/flux_fast/png.py): every file decodes to the exact pixels and texts.

What a caller would notice if it were wrong: a PNG their decoder rejects (bad CRC, bad zlib stream, bad filter),
other pixels than the image they asked for, or a GUI workflow that no longer opens from the file. Each file is read
two ways: by Pillow, and by a minimal reader written here from the PNG specification (chunk CRCs, zlib, Sub filter),
so the encoder cannot pass by sharing a mistake with one decoder. Both deflate back ends are checked: ISA-L (the
image's) and the standard library's zlib (a ComfyUI without isal).
"""

from __future__ import annotations

import io
import struct
import zlib

import pytest

np = pytest.importorskip("numpy")
from PIL import Image  # noqa: E402

from comfy_nodes.flux_fast import png  # noqa: E402

BACKENDS = {"zlib": zlib.compress}
try:
    from isal import isal_zlib

    BACKENDS["isal"] = isal_zlib.compress
except ImportError:      # the test says so below rather than passing quietly
    pass


def read_png(data: bytes) -> tuple[np.ndarray, dict[str, str]]:
    """Pixels (H, W, C) and text chunks, per the PNG specification, for 8-bit gray/RGB/RGBA with filters 0-1."""
    assert data[:8] == png.SIGNATURE
    pos, idat, texts, header = 8, b"", {}, None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + body), f"bad CRC in {kind!r}"
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"tEXt":
            key, value = body.split(b"\0", 1)
            texts[key.decode("latin-1")] = value.decode("latin-1")
        elif kind == b"iTXt":
            key, rest = body.split(b"\0", 1)
            assert rest[:2] == b"\0\0"                       # uncompressed
            _lang, _translated, value = rest[2:].split(b"\0", 2)
            texts[key.decode("latin-1")] = value.decode("utf-8")
        pos += 12 + length
        if kind == b"IEND":
            break
    assert pos == len(data), "bytes after IEND"
    width, height, depth, color, *_ = header
    channels = {0: 1, 2: 3, 6: 4}[color]
    assert depth == 8
    rows = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, width * channels + 1)
    out = np.empty((height, width * channels), dtype=np.uint8)
    for y in range(height):
        kind, line = rows[y, 0], rows[y, 1:].astype(np.int64)
        if kind == 1:                                         # Sub: add the same channel of the pixel to the left
            line = line.reshape(width, channels).cumsum(axis=0).reshape(-1) % 256
        else:
            assert kind == 0, f"filter {kind}"
        out[y] = line
    return out.reshape(height, width, channels), texts


IMAGES = {
    "noise 832x1536 RGB": lambda rng: rng.integers(0, 256, (1536, 832, 3), dtype=np.uint8),
    "smooth RGB": lambda rng: (np.add.outer(np.arange(64), np.arange(48))[..., None] * [1, 2, 3] % 256).astype(np.uint8),
    "one pixel RGBA": lambda rng: np.array([[[1, 2, 3, 4]]], dtype=np.uint8),
    "gray 5x7": lambda rng: rng.integers(0, 256, (7, 5, 1), dtype=np.uint8),
    "extremes": lambda rng: np.array([[[0, 255, 0], [255, 0, 255], [0, 0, 0]]], dtype=np.uint8),
}


@pytest.mark.parametrize("backend", ["zlib", "isal"])
@pytest.mark.parametrize("name", list(IMAGES))
def test_every_file_decodes_to_its_exact_pixels_and_texts(backend, name):
    if backend not in BACKENDS:
        pytest.skip("isal is not installed in this interpreter (requirements.txt pins it for the image)")
    pixels = IMAGES[name](np.random.default_rng(0))
    texts = {"prompt": '{"11": {"class_type": "FluxFastSaveImage"}}', "workflow": "caf\u00e9", "note": "\u96ea"}
    data = png.encode(pixels, texts, deflate=BACKENDS[backend])

    decoded, read_texts = read_png(data)
    assert np.array_equal(decoded, pixels) and read_texts == texts
    with Image.open(io.BytesIO(data)) as img:
        got = np.asarray(img)
        assert np.array_equal(got.reshape(pixels.shape), pixels)
        assert img.text == texts
    Image.open(io.BytesIO(data)).verify()


def test_the_image_uses_isal_when_it_is_installed():
    if "isal" not in BACKENDS:
        pytest.skip("isal is not installed in this interpreter (requirements.txt pins it for the image)")
    assert png.DEFLATE == "isal"


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 3), dtype=np.float32), np.zeros((4, 4), dtype=np.uint8),
                                 np.zeros((4, 4, 2), dtype=np.uint8), np.zeros((0, 4, 3), dtype=np.uint8)])
def test_what_is_not_an_image_is_refused_by_name(bad):
    with pytest.raises(ValueError, match="expected|pixels a side"):
        png.encode(bad)


@pytest.mark.parametrize("key", ["", "k" * 80, "nul\0key"])
def test_a_text_keyword_png_cannot_hold_is_refused(key):
    with pytest.raises(ValueError, match="keyword"):
        png.text_chunk(key, "x")
