"""Check that caller-supplied bytes are an image ComfyUI can load, before ComfyUI sees them.

Why here and not in ComfyUI: a LoadImage node that chokes on a bad file fails deep inside the graph with an
execution error that names a node, not the caller's field. Checking up front turns "this is not an image" and
"this image would take gigabytes to decode" into an InputError naming the field the caller sent.

The check trusts nothing the caller declares (file name, Content-Type): Pillow identifies the format from the
bytes themselves (magic bytes), the pixel count is bounded before decoding (decompression bombs: a few KiB of
PNG can claim billions of pixels), and the image is then fully decoded so truncated or corrupt files are refused.
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


@dataclass(frozen=True)
class ImageInfo:
    """What the bytes turned out to be."""

    format: str
    mime: str
    width: int
    height: int


def check_image_bytes(data: bytes, *, field: str, value: object, max_pixels: int = DEFAULT_MAX_PIXELS,
                      error: type[InputError] = InputError) -> ImageInfo:
    """Return the image's format and size, or raise InputError(field, value, rule) if `data` is not a
    loadable image of an allowed format within `max_pixels`.

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
                img.load()  # full decode of the first frame: refuses truncated/corrupt data
    except error:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise error(field, value, f"must be at most {max_pixels} pixels ({exc})") from None
    except UnidentifiedImageError:
        raise error(field, value, f"must be an image ({allowed}); the content is not a recognised image") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:  # Pillow's ways of saying "corrupt"
        raise error(field, value, f"must be a complete, valid image ({type(exc).__name__}: {exc})") from None
    log.debug("input image ok: %s %dx%d, %d bytes", fmt, width, height, len(data))
    return ImageInfo(format=fmt, mime=MIME_BY_FORMAT[fmt], width=width, height=height)
