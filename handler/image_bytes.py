"""Check that caller-supplied bytes are an image ComfyUI can load, before ComfyUI sees them.

Why here and not in ComfyUI: a LoadImage node that chokes on a bad file fails deep inside the graph with an
execution error that names a node, not the caller's field. Checking up front turns "this is not an image" and
"this image would take gigabytes to decode" into an InputError naming the field the caller sent.

The check trusts nothing the caller declares (file name, Content-Type): Pillow identifies the format from the
bytes themselves (magic bytes), the pixel count is bounded before decoding (decompression bombs: a few KiB of
PNG can claim billions of pixels), and the image is then fully decoded so truncated or corrupt files are refused.

Frames count too: ComfyUI's LoadImage converts EVERY frame of an animated or multi-page file to float32 (and a
batch of N frames becomes N outputs), so a 1.6 MB GIF of 2000 frames at 4000x4000 asks for ~0.5 TB. The frame
count (read from the container, nothing decoded), each frame's pixels and the bytes LoadImage would hold are
bounded before anything is decoded beyond the first frame.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from handler.errors import InputError

log = logging.getLogger(__name__)

# Formats LoadImage handles well. MPO is what Pillow calls many camera JPEGs.
ALLOWED_FORMATS = frozenset({"PNG", "JPEG", "MPO", "WEBP", "GIF", "BMP", "TIFF"})

MIME_BY_FORMAT = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}

# Pillow's own decompression-bomb threshold (about 89.5 megapixels), kept as our default so the rule is the
# well-known one; the caller may pass a smaller limit.
DEFAULT_MAX_PIXELS = 89_478_485
# Each frame becomes one image of the batch, so one file yields no more images than num_images allows (4).
DEFAULT_MAX_FRAMES = 4
DEFAULT_MAX_DECODED_BYTES = 2 * 1024**3
# What LoadImage holds per pixel of each frame: float32 RGB (12 bytes) plus a float32 mask (4 bytes).
DECODED_BYTES_PER_PIXEL = 16
# Formats whose frames may differ in size (LoadImage still converts each one): their frames are measured one by one.
_PAGED_FORMATS = frozenset({"TIFF", "MPO"})


@dataclass(frozen=True)
class ImageInfo:
    """What the bytes turned out to be."""

    format: str
    mime: str
    width: int
    height: int
    frames: int = 1
    decoded_bytes: int = 0  # what ComfyUI's LoadImage would hold for it (every frame, float32 RGB + mask)


# EXIF orientations that turn the picture by a quarter (5-8): upright, its width and height swap.
_TURNED = frozenset({5, 6, 7, 8})


def _exif_orientation(img: Image.Image) -> int | None:
    try:
        return img.getexif().get(0x0112)
    except Exception:  # an unreadable EXIF block: the sizes as stored
        return None


def check_image_bytes(data: bytes, *, field: str, value: object, max_pixels: int = DEFAULT_MAX_PIXELS,
                      max_frames: int = DEFAULT_MAX_FRAMES, max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
                      error: type[InputError] = InputError) -> ImageInfo:
    """Return the image's format, size and frame count, or raise InputError(field, value, rule) if `data` is
    not a loadable image of an allowed format within `max_pixels` per frame, `max_frames` frames and
    `max_decoded_bytes` once loaded by ComfyUI.

    `value` is what the error shows as the offending value (a URL, or a short description of inline data);
    the raw bytes are never put in an error. `error` is the InputError subclass to raise.
    """
    allowed = ", ".join(sorted(ALLOWED_FORMATS - {"MPO"}))
    if not data:
        raise error(field, value, f"must be a non-empty image ({allowed})")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; we refuse instead.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                fmt = (img.format or "").upper()
                width, height = img.size
                if fmt not in ALLOWED_FORMATS:
                    raise error(field, value, f"must be an image in one of the formats {allowed} (got {fmt or 'unknown'})")
                if width <= 0 or height <= 0 or width * height > max_pixels:
                    raise error(
                        field, value,
                        f"must be at most {max_pixels} pixels (got {width}x{height} = {width * height})",
                    )
                frames = getattr(img, "n_frames", 1)
                if frames > max_frames:
                    raise error(field, value, f"must have at most {max_frames} frame(s) (got {frames})")
                largest = width * height
                if frames > 1 and fmt in _PAGED_FORMATS:
                    for index in range(1, frames):
                        img.seek(index)  # reads the page's header only
                        w, h = img.size
                        if w * h > max_pixels:
                            raise error(field, value, f"must be at most {max_pixels} pixels per frame "
                                                      f"(frame {index} is {w}x{h} = {w * h})")
                        largest = max(largest, w * h)
                    img.seek(0)
                decoded = frames * largest * DECODED_BYTES_PER_PIXEL
                if decoded > max_decoded_bytes:
                    raise error(field, value, f"must take at most {max_decoded_bytes} bytes once loaded (got {frames} "
                                              f"frame(s) of up to {largest} pixels = {decoded} bytes at "
                                              f"{DECODED_BYTES_PER_PIXEL} bytes per pixel)")
                img.load()  # full decode of the first frame: refuses truncated/corrupt data
                if _exif_orientation(img) in _TURNED:
                    width, height = height, width  # LoadImage turns it upright first (ImageOps.exif_transpose)
    except error:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise error(field, value, f"must be at most {max_pixels} pixels ({exc})") from None
    except UnidentifiedImageError:
        raise error(field, value, f"must be an image ({allowed}); the content is not a recognised image") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:  # Pillow's ways of saying "corrupt"
        raise error(field, value, f"must be a complete, valid image ({type(exc).__name__}: {exc})") from None
    log.debug("input image ok: %s %dx%d, %d frame(s), %d bytes", fmt, width, height, frames, len(data))
    return ImageInfo(format=fmt, mime=MIME_BY_FORMAT[fmt], width=width, height=height, frames=frames,
                     decoded_bytes=decoded)
