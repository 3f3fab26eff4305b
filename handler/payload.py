"""Keep a job's response within Runpod's payload limit, or say clearly why it cannot be.

Runpod refuses job results above 10 MB on /run and 20 MB on /runsync. The worker cannot tell which endpoint the
caller used, and the SDK only logs (the caller sees a failed job with no reason) when the result POST is refused.
So the limit is one setting, MAX_RESPONSE_BYTES (config.Settings.max_response_bytes), whose default is the /run
limit: set it to 20000000 on an endpoint used only through /runsync. Sizes are measured exactly as the SDK sends
them (`json.dumps({"output": ...}, ensure_ascii=False)` in UTF-8) plus a small margin for the envelope.

Two checks:
* before the prompt runs, `preflight` compares a LOWER bound of the response with the limit and refuses only
  when even that bound is over (no bucket configured): the only time it is certain. Images give no useful lower
  bound except the metadata ComfyUI writes into each PNG (the prompt and, for GUI workflows, the whole workflow,
  as uncompressed text), so this mostly catches large graphs times many images. It also logs a warning when a
  realistic estimate is over the limit, so operators learn before callers do.
* after encoding, `check_inline` measures the real response. With a bucket every file has already been uploaded
  (outputs.collect_outputs uploads all of them, whatever their size), so what is measured is the rest (texts,
  URLs); over the limit, PayloadTooLargeError says the size, the limit and how to fix it.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from typing import Any

from handler.errors import PayloadTooLargeError

log = logging.getLogger(__name__)

RUN_LIMIT_BYTES = 10_000_000  # Runpod /run
RUNSYNC_LIMIT_BYTES = 20_000_000  # Runpod /runsync
ENVELOPE_MARGIN_BYTES = 4096  # {"output": ...} wrapper, job id, headers' worth of slack

# Realistic compressed sizes (bytes per pixel) of FLUX images, for the warning only (never to refuse):
# PNG of a detailed 8-bit RGB render is about 40-70% of raw; lossy formats at quality 90 about 10-20%.
_TYPICAL_BYTES_PER_PIXEL = {"png": 1.6, "jpeg": 0.35, "webp": 0.25}
_MIN_PNG_BYTES = 67  # signature + IHDR + one IDAT + IEND


def base64_size(n_bytes: int) -> int:
    """Length of the base64 text for `n_bytes` of data (with padding)."""
    return 4 * math.ceil(n_bytes / 3)


_BIG_STRING = 4096


def response_size(response: Any) -> int:
    """Bytes the runpod SDK will POST for this job output.

    Exact, without serialising megabytes of base64: a long string that JSON writes verbatim (printable ASCII
    with no quote or backslash, which base64 always is) is counted by its length and left out of the dump.
    """
    verbatim = [0]
    checked: dict[int, bool] = {}  # a string object met twice is scanned once (and counted each time it is sent)

    def light(obj: Any) -> Any:
        if isinstance(obj, str) and len(obj) > _BIG_STRING:
            plain = checked.get(id(obj))
            if plain is None:
                plain = checked[id(obj)] = obj.isascii() and obj.isprintable() and '"' not in obj and "\\" not in obj
            if plain:
                verbatim[0] += len(obj)
                return ""
            return obj
        if isinstance(obj, dict):
            return {k: light(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [light(v) for v in obj]
        return obj

    skeleton = json.dumps({"output": light(response)}, ensure_ascii=False).encode("utf-8")
    return len(skeleton) + verbatim[0]


def _mb(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB"


def too_large_error(size: int, limit: int, *, early: bool, files: int | None = None,
                    uploaded: bool = False) -> PayloadTooLargeError:
    """The one error a caller sees for an oversize response, with the ways out."""
    what = "would be at least" if early else "is"
    fix = ("Even with files delivered as bucket URLs the rest (text outputs) is too large; shorten those outputs."
           if uploaded else
           "Configure an output bucket (BUCKET_NAME and credentials) to receive URLs instead, "
           "or ask for output_format 'jpeg' or 'webp', fewer or smaller images.")
    return PayloadTooLargeError(
        f"The response {what} {_mb(size)} ({size} bytes), over this worker's {_mb(limit)} limit for results "
        f"returned inline (MAX_RESPONSE_BYTES; Runpod allows 10 MB on /run and 20 MB on /runsync). {fix}",
        {"size_bytes": size, "limit_bytes": limit, "checked": "before running" if early else "after encoding",
         **({"files": files} if files is not None else {})},
    )


@dataclass(frozen=True)
class Preflight:
    lower_bound: int  # the response is certainly at least this big
    typical: int  # what it will usually be (for logs)
    limit: int

    @property
    def certainly_too_large(self) -> bool:
        return self.lower_bound + ENVELOPE_MARGIN_BYTES > self.limit

    @property
    def likely_too_large(self) -> bool:
        return self.typical + ENVELOPE_MARGIN_BYTES > self.limit


def estimate(*, files: int, width: int | None, height: int | None, output_format: str, limit: int,
             png_metadata_bytes: int = 0, base_bytes: int = 512) -> Preflight:
    """Bounds on the inline response for `files` base64 image copies of width x height in `output_format`.

    `files` counts every copy of image bytes in the response: one per image, since `images[0]` refers to `image`
    instead of repeating it (outputs.core_images). For PNG that
    ComfyUI saved itself (passed through unchanged), `png_metadata_bytes` is the text ComfyUI embeds in each file
    (the prompt JSON plus extra_pnginfo), which no compression removes. Unknown sizes give a typical of 0.
    """
    per_file_min = (_MIN_PNG_BYTES + png_metadata_bytes) if output_format == "png" else 0
    lower = base_bytes + files * base64_size(per_file_min)
    typical = lower
    if width and height:
        bpp = _TYPICAL_BYTES_PER_PIXEL.get(output_format, 1.6)
        typical = base_bytes + files * base64_size(int(width * height * bpp) + per_file_min)
    return Preflight(lower_bound=lower, typical=typical, limit=limit)


def preflight(*, files: int, width: int | None, height: int | None, output_format: str, limit: int,
              bucket_configured: bool, png_metadata_bytes: int = 0) -> Preflight:
    """Refuse before running when the response certainly cannot be returned (no bucket); warn when it likely
    cannot. With a bucket configured nothing is refused: oversize results are uploaded."""
    p = estimate(files=files, width=width, height=height, output_format=output_format, limit=limit,
                 png_metadata_bytes=png_metadata_bytes)
    if bucket_configured:
        return p
    if p.certainly_too_large:
        raise too_large_error(p.lower_bound, limit, early=True, files=files)
    if p.likely_too_large:
        log.warning("the response will likely exceed %s (about %s for %d %s file(s) of %sx%s) and no bucket is "
                    "configured: the job may fail after running", _mb(limit), _mb(p.typical), files,
                    output_format, width, height)
    return p


def png_metadata_bytes(prompt: dict[str, Any], extra_pnginfo: dict[str, Any] | None = None) -> int:
    """Bytes of tEXt that ComfyUI's SaveImage (and the shipped FluxFastSaveImage, the same chunks) writes into each
    PNG (unless --disable-metadata)."""
    total = len(json.dumps(prompt)) + len("prompt") + 12
    for key, value in (extra_pnginfo or {}).items():
        total += len(json.dumps(value)) + len(key) + 12
    return total


def fits_inline(response: Any, limit: int) -> tuple[bool, int]:
    """(whether the response can be returned as it is, its size in bytes)."""
    size = response_size(response)
    return size + ENVELOPE_MARGIN_BYTES <= limit, size


def check_inline(response: Any, limit: int, *, bucket_configured: bool, uploaded: bool = False) -> int:
    """Return the response size if it fits. If not: raise PayloadTooLargeError when no bucket is configured or
    the files already went to the bucket (`uploaded`: nothing more can be moved out; the worker always uploads
    every file when a bucket is configured, so this is the case it meets); a caller that had a bucket but did not
    upload gets the size back instead (`fits_inline` branches without raising)."""
    ok, size = fits_inline(response, limit)
    if not ok and (uploaded or not bucket_configured):
        raise too_large_error(size, limit, early=False, uploaded=uploaded)
    return size
