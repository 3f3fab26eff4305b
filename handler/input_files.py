"""`input.images`: caller-supplied input images, checked and uploaded to ComfyUI's input folder.

Shape: `"images": [{"name": "face.png", "image": <base64 | data URI | http(s) URL>}, ...]`. A LoadImage node in
the caller's workflow then names the image by `name`.

Why the checks, in this order:
1. Everything cheap first (list shape, names, duplicates, encoded sizes) for ALL entries, so a typo in entry 3
   fails before entry 1's URL is downloaded.
2. Names are refused, never rewritten: a caller whose LoadImage says "../x.png" must hear that the name is bad,
   not have a different file silently used. Only a plain file name of a safe charset ending in an image extension
   is accepted, so nothing a caller sends can write outside ComfyUI's input folder.
3. Each image is decoded or fetched (url_fetch's SSRF guard) and checked to be a real image (image_bytes)
   within the frame, pixel and decoded-size limits, which also bound all of the job's images together.
4. Only then are they uploaded, into the job's own subfolder of the input folder (job_files.py), so no job
   can overwrite or read another's file; the caller's LoadImage names are rewritten to it (workflow_policy.py).
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from handler.errors import InputError
from handler.image_bytes import check_image_bytes
from handler.url_fetch import FetchLimits, FetchedImage, fetch_image

log = logging.getLogger(__name__)

FIELD = "images"
MAX_IMAGES = 16
MAX_NAME_CHARS = 128
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")
# Letters, digits, '.', '_', '-', ' ', '(', ')'; must start with a letter or digit.
# ASCII letters and digits, and the punctuation people put in file names (photo@2x.png, photo+1.png, it's.png);
# never '/', '\\', NUL, '..', a leading '.' or '-', or the '[...]' of ComfyUI's folder annotations ("x.png [output]").
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._() '+@,&!=#~-]*")
_DATA_URI_RE = re.compile(r"data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[\w.+-]+=[\w.+-]+)*)(?P<b64>;base64)?,",
                          re.IGNORECASE)
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_BASE64_BYTES = re.compile(rb"[A-Za-z0-9+/=_-]*")
_ASCII_WHITESPACE = b" \t\n\r\x0b\x0c"


class Uploader(Protocol):
    def upload_image(self, name: str, data: bytes, subfolder: str = "") -> str: ...


@dataclass(frozen=True)
class InputImageSpec:
    """One validated entry, before its bytes are obtained."""

    index: int
    name: str
    source: str  # "base64", "data_uri" or "url"
    value: str


@dataclass(frozen=True)
class InputImage:
    name: str
    data: bytes
    format: str
    width: int
    height: int
    frames: int = 1  # LoadImage makes each frame one image of the batch (graph_sizes.py counts them)


_JSON_TYPE = {str: "string", int: "number", float: "number", bool: "boolean", list: "list", type(None): "null"}


def _field(index: int, key: str | None = None) -> str:
    return f"{FIELD}[{index}]" + (f".{key}" if key else "")


def check_name(name: Any, field: str) -> str:
    """Return `name` if it is a safe plain file name for ComfyUI's input folder; raise InputError otherwise."""
    if not isinstance(name, str):
        raise InputError(field, name, "must be a string file name such as 'photo.png'")
    exts = ", ".join(IMAGE_EXTENSIONS)
    if not name:
        raise InputError(field, name, "must be a non-empty file name such as 'photo.png'")
    if len(name) > MAX_NAME_CHARS:
        raise InputError(field, name, f"must be at most {MAX_NAME_CHARS} characters (got {len(name)})")
    if "\x00" in name:
        raise InputError(field, name, "must not contain NUL characters")
    if "/" in name or "\\" in name:
        raise InputError(field, name, "must be a plain file name without '/' or '\\' (no folders)")
    if ".." in name:
        raise InputError(field, name, "must not contain '..'")
    if not _NAME_RE.fullmatch(name):
        raise InputError(
            field, name,
            "must start with a letter or digit and use only ASCII letters, digits, spaces and . _ - ( ) ' + @ , & ! = # ~",
        )
    if name != name.strip() or name.rstrip(". ") != name:
        raise InputError(field, name, "must not end with a space or '.'")
    if not name.lower().endswith(IMAGE_EXTENSIONS):
        raise InputError(field, name, f"must end in an image extension ({exts})")
    return name


def _classify(image: Any, field: str, max_bytes: int) -> tuple[str, str]:
    """Say what kind of image value this is ("base64", "data_uri", "url"), checking its encoded size."""
    if not isinstance(image, str) or not image.strip():
        raise InputError(field, image if not isinstance(image, str) else "",
                         "must be a non-empty string: base64 image data, a data URI or an http(s) URL")
    image = image.strip()  # " https://..." pasted with a space is still a URL, not broken base64
    head = image[:16].lower()
    if head.startswith(("http://", "https://")):
        if len(image) > 4096:
            raise InputError(field, image, "must be a URL of at most 4096 characters")
        return "url", image
    if head.startswith("data:"):
        kind = "data_uri"
    elif _SCHEME_RE.match(image):
        scheme = image.split(":", 1)[0]
        raise InputError(field, image[:60], f"must be base64 data, a data URI or an http(s) URL (scheme {scheme!r} is not allowed)")
    else:
        kind = "base64"
    # base64 inflates by 4/3: refuse before decoding anything that cannot fit.
    if len(image) > (max_bytes * 4) // 3 + 4096:
        raise InputError(field, f"<{len(image)} characters of {kind}>",
                         f"must decode to at most {max_bytes} bytes (the encoded text is {len(image)} characters)",
                         show_value=True)
    return kind, image


def parse_images(value: Any, *, max_images: int = MAX_IMAGES, max_bytes: int = FetchLimits().max_bytes) -> list[InputImageSpec]:
    """Validate `input.images` without decoding or fetching anything. Empty or missing -> []."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise InputError(FIELD, type(value).__name__, "must be a list of {\"name\": ..., \"image\": ...} objects")
    if len(value) > max_images:
        raise InputError(FIELD, f"<{len(value)} images>", f"must hold at most {max_images} images")
    specs: list[InputImageSpec] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise InputError(_field(i), entry, "must be an object {\"name\": ..., \"image\": ...}, not a "
                             + _JSON_TYPE.get(type(entry), type(entry).__name__))
        unknown = sorted(set(entry) - {"name", "image"})
        if unknown:
            raise InputError(_field(i), unknown, "must have only the keys 'name' and 'image'")
        if "name" not in entry or "image" not in entry:
            missing = [k for k in ("name", "image") if k not in entry]
            raise InputError(_field(i), sorted(entry), f"must have the key(s) {', '.join(missing)}")
        name = check_name(entry["name"], _field(i, "name"))
        key = name.lower()  # ComfyUI may run on a case-insensitive file system (Docker Desktop mounts)
        if key in seen:
            raise InputError(_field(i, "name"), name, f"must be unique (same name as {_field(seen[key], 'name')})")
        seen[key] = i
        kind, text = _classify(entry["image"], _field(i, "image"), max_bytes)
        specs.append(InputImageSpec(index=i, name=name, source=kind, value=text))
    return specs


def _b64decode(text: str, field: str, shown: str) -> bytes:
    """Decode base64 that may be wrapped or padded with whitespace, in a few flat copies of the text.

    Why bytes.translate rather than a regex substitution: re.sub over text with whitespace every few characters
    builds one string object per piece, about 9x the text in memory (16x for some layouts), for a value that may
    be 27 MB; the copies here are about 2.5x.
    """
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        raise InputError(field, shown, "must be valid base64 (found characters outside the base64 alphabet)") from None
    raw = raw.translate(None, _ASCII_WHITESPACE)
    if not _BASE64_BYTES.fullmatch(raw):
        raise InputError(field, shown, "must be valid base64 (found characters outside the base64 alphabet)")
    urlsafe = b"-" in raw or b"_" in raw
    raw = raw.rstrip(b"=")
    raw += b"=" * (-len(raw) % 4)
    try:
        if urlsafe:
            return base64.urlsafe_b64decode(raw)
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(field, shown, f"must be valid base64 ({exc})") from None


def decode_inline(spec: InputImageSpec, field: str) -> bytes:
    """Bytes of a base64 or data-URI image value."""
    if spec.source == "base64":
        return _b64decode(spec.value, field, f"<base64, {len(spec.value)} characters>")
    match = _DATA_URI_RE.match(spec.value)
    shown = spec.value[:40] + "..."
    if not match:
        raise InputError(field, shown, "must be a data URI of the form data:image/<type>;base64,<data>")
    if not match.group("b64"):
        raise InputError(field, shown, "must be a base64 data URI (data:image/<type>;base64,...)")
    mime = (match.group("mime") or "").lower()
    if mime and not mime.startswith("image/"):
        raise InputError(field, shown, f"must be an image data URI (got media type {mime!r})")
    return _b64decode(spec.value[match.end():], field, shown)


def load_images(specs: list[InputImageSpec], *, limits: FetchLimits = FetchLimits(),
                fetch: Callable[..., FetchedImage] | None = None) -> list[InputImage]:
    """Decode or fetch each image and check it is a real image within the limits (each one, and together what
    ComfyUI would hold once it has loaded them all: `limits.max_decoded_bytes`)."""
    fetch = fetch if fetch is not None else fetch_image  # looked up per call, so tests can swap the module's
    images: list[InputImage] = []
    decoded_total = 0
    for spec in specs:
        field = _field(spec.index, "image")
        if spec.source == "url":
            got = fetch(spec.value, field=field, limits=limits)
            data, info = got.data, got.info
        else:
            data = decode_inline(spec, field)
            shown = f"<{spec.source}, {len(data)} bytes>"
            if len(data) > limits.max_bytes:
                raise InputError(field, shown, f"must decode to at most {limits.max_bytes} bytes")
            info = check_image_bytes(data, field=field, value=shown, max_pixels=limits.max_pixels,
                                     max_frames=limits.max_frames, max_decoded_bytes=limits.max_decoded_bytes)
        decoded_total += info.decoded_bytes
        if decoded_total > limits.max_decoded_bytes:
            raise InputError(field, f"<{info.format} {info.width}x{info.height}, {info.frames} frame(s)>",
                             f"all input images together must take at most {limits.max_decoded_bytes} bytes once "
                             f"loaded (this one brings the total to {decoded_total})")
        images.append(InputImage(name=spec.name, data=data, format=info.format, width=info.width, height=info.height,
                                  frames=info.frames))
    return images


def upload_images(client: Uploader, images: list[InputImage], subfolder: str = "") -> dict[str, str]:
    """Upload each image to `subfolder` of ComfyUI's input folder (the client overwrites same-named files);
    return caller name -> the name ComfyUI stored it under (what LoadImage must reference)."""
    stored: dict[str, str] = {}
    for image in images:
        stored_name = client.upload_image(image.name, image.data, subfolder)
        expected = f"{subfolder}/{image.name}" if subfolder else image.name
        if stored_name != expected:
            log.warning("ComfyUI stored input image %r as %r", image.name, stored_name)
        log.info("uploaded input image %r (%s %dx%d, %d bytes)", image.name, image.format, image.width,
                 image.height, len(image.data))
        stored[image.name] = stored_name
    return stored


def prepare_input_images(value: Any, client: Uploader, *, limits: FetchLimits | None = None,
                         max_images: int = MAX_IMAGES, fetch: Callable[..., FetchedImage] | None = None,
                         subfolder: str = "") -> dict[str, str]:
    """The whole of `input.images`: validate, decode/fetch, check, upload into `subfolder` of ComfyUI's input
    folder. Returns name -> stored name.

    Raises InputError (including url_fetch's UnsafeURLError/URLFetchError) before anything is uploaded if any
    entry is bad.
    """
    limits = limits if limits is not None else FetchLimits()
    specs = parse_images(value, max_images=max_images, max_bytes=limits.max_bytes)
    if not specs:
        return {}
    images = load_images(specs, limits=limits, fetch=fetch)
    return upload_images(client, images, subfolder)
