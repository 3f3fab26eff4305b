"""ComfyUI's outputs turned into the caller's images.

Reads the outputs of a finished prompt (`{node_id: {"images": [{filename, subfolder, type}]}}`, from the websocket's
`executed` messages or the history), reads each saved file (from ComfyUI's output folder when it is on this machine,
COMFYUI_OUTPUT_DIR, else over /view), re-encodes still images when the caller asked for jpeg or webp (PNG bytes pass
through untouched, so the workflow ComfyUI embeds in them survives for GUI users) and returns them base64-encoded, or
as bucket URLs, with their size.

Every output kind (`collect_outputs`): ComfyUI nodes report saved files in their history `ui` dict under a key per
kind: "images" (SaveImage, PreviewImage, SaveAnimatedWEBP/PNG with "animated": [true], and SaveVideo/SaveWEBM,
whose videos are also listed under "images"), "audio" (SaveAudio*, PreviewAudio), "3d" (SaveGLB), "latents"
(SaveLatent), "gifs"/"video" (common custom nodes such as VideoHelperSuite), and "text" (PreviewAny and other text
nodes: strings, not files). Each becomes one entry of the response's `outputs` list:
`{"node_id", "filename", "kind", "mime", "data" | "url" | "images_index"}` where kind is image, animated_image,
video, audio, model_3d, latent, file or text. Still images are also the core contract's `images`; their `outputs`
entry points there (`images_index`) instead of repeating the bytes, which would double the response size; and in
the response `images[0]` refers to `image` (`core_images`), so each image's bytes are sent exactly once.
Files are delivered base64 (`data`, `encoding: "base64"`) unless a bucket is configured, in which case every file,
still images included, is uploaded and returned as a presigned `url`.
"""

from __future__ import annotations

import base64
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from .comfy_client import ComfyClient, FileTooLarge, RunResult
from .errors import ComfyUnavailableError, OutputUnavailableError, PayloadTooLargeError, safe_text

if TYPE_CHECKING:  # storage pulls in boto3; only needed when a bucket is configured
    from .storage import BucketStore

log = logging.getLogger(__name__)

_PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


@dataclass(frozen=True)
class SavedFile:
    node_id: str
    filename: str
    subfolder: str
    folder_type: str


@dataclass(frozen=True)
class EncodedImage:
    data: bytes
    width: int
    height: int
    format: str

    def to_json(self) -> dict[str, Any]:
        return {
            "image_base64": base64.b64encode(self.data).decode("ascii"),
            "width": self.width,
            "height": self.height,
            "format": self.format,
        }


PNG_COMPRESS_LEVEL = 1  # config.Settings.png_compress_level, PNG_COMPRESS_LEVEL


def encode_image(data: bytes, output_format: str, quality: int,
                 png_compress_level: int = PNG_COMPRESS_LEVEL) -> EncodedImage:
    """Re-encode to jpeg/webp when asked; PNG from ComfyUI is returned byte for byte.

    The worker encodes a PNG itself only when a still image arrives in another format (a workflow's save node
    wrote jpeg or webp) and the caller asked for png. `png_compress_level` is zlib's level (0-9): PNG is lossless
    at every level, so it trades only CPU time against bytes, never pixels. Measured at 832x1536 on a 2-core Xeon
    (bench/png_encode.py, bench/profiles/png-encode-cpu.json): a photo-like image 0.10 s at level 1 vs 0.22 s at 4
    for 18% more bytes (2.14 vs 1.81 MB), a smooth gradient 0.09 vs 0.16 s (+17%), noise 0.12 vs 0.14 s (it does
    not compress at any level); levels 6-9 (Pillow's own default is 6) took 0.4-1.7 s for no smaller file than 4.
    Level 1 is also what ComfyUI's PreviewImage uses."""
    try:
        return _encode_image(data, output_format, quality, png_compress_level)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        # A node that reports a file under `images` that is not one Pillow can read (or one too large to decode).
        raise OutputUnavailableError(
            f"An output the workflow reported as an image is not one this worker can encode "
            f"({type(exc).__name__}: {safe_text(exc, 160)}).", {"exception_type": type(exc).__name__}) from None


def _encode_image(data: bytes, output_format: str, quality: int, png_compress_level: int) -> EncodedImage:
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
        source_format = (image.format or "").lower()
        if source_format == output_format:
            return EncodedImage(data, width, height, output_format)
        image.load()
        if output_format == "jpeg" and image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        buffer = io.BytesIO()
        options: dict[str, Any] = ({"quality": quality} if output_format in ("jpeg", "webp")
                                   else {"compress_level": png_compress_level})
        image.save(buffer, format=_PIL_FORMATS[output_format], **options)
        return EncodedImage(buffer.getvalue(), width, height, output_format)


# The most of one output file the worker reads into memory. Inline, a response carries at most MAX_RESPONSE_BYTES
# of base64, and a still image may shrink when re-encoded (a PNG asked for as jpeg), so 8 times that; with a
# bucket, 2 GiB (a long video).
INLINE_READ_FACTOR = 8
MAX_BUCKET_FILE_BYTES = 2 * 2**30


def read_limit(max_response_bytes: int, *, bucket: bool) -> int:
    return MAX_BUCKET_FILE_BYTES if bucket else INLINE_READ_FACTOR * max_response_bytes


def fetch(client: ComfyClient, saved: SavedFile, output_dir: Path | None = None, *, max_bytes: int | None = None,
          deadline: float | None = None) -> bytes:
    """The file's bytes: straight from ComfyUI's output folder when it is on this machine (no HTTP round trip
    through a server that is busy tidying up after the prompt), else over /view. A file over `max_bytes` is
    refused before it is read whole (a graph can make outputs far larger than any response can carry)."""
    path = _local_path(output_dir, saved)
    try:
        if path is not None:
            try:
                size = path.stat().st_size
                if max_bytes is not None and size > max_bytes:
                    raise FileTooLarge(size)
                return path.read_bytes()
            except OSError:
                pass
        return client.view(saved.filename, saved.subfolder, saved.folder_type, max_bytes=max_bytes, deadline=deadline)
    except FileTooLarge as big:
        raise PayloadTooLargeError(
            f"Output '{safe_text(saved.filename, 128)}' of node {safe_text(saved.node_id, 64)} is more than "
            f"{max_bytes} bytes ({big.size} read or found), the most this worker reads of one output "
            f"({INLINE_READ_FACTOR} x MAX_RESPONSE_BYTES without an output bucket, {MAX_BUCKET_FILE_BYTES} bytes with "
            "one). Make the output smaller, or configure a bucket (BUCKET_NAME and credentials) if there is none.",
            {"node_id": saved.node_id, "filename": saved.filename, "limit_bytes": max_bytes, "size_bytes": big.size},
        ) from None


def _local_path(output_dir: Path | None, saved: SavedFile) -> Path | None:
    if output_dir is None or saved.folder_type != "output":
        return None
    if not isinstance(saved.subfolder, str) or not isinstance(saved.filename, str) \
            or "\x00" in saved.subfolder or "\x00" in saved.filename:
        return None  # not a name ComfyUI itself writes: leave it to /view, which refuses it
    root = output_dir.resolve()
    path = (root / saved.subfolder / saved.filename).resolve()
    return path if root in path.parents else None


def remove_local(output_dir: Path | None, saved: SavedFile) -> None:
    """Delete a consumed output file when ComfyUI's output folder is on this machine (keeps the disk from filling)."""
    path = _local_path(output_dir, saved)
    if path is None:
        return
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not delete output %s: %s", path, exc)


# ---------------------------------------------------------------------------------------------------------------
# Every output kind

_FILE_UI_KEYS = ("images", "gifs", "video", "videos", "audio", "3d", "latents")
_MIME = {
    "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp", "gif": "image/gif",
    "bmp": "image/bmp", "tif": "image/tiff", "tiff": "image/tiff", "apng": "image/apng",
    "mp4": "video/mp4", "m4v": "video/mp4", "webm": "video/webm", "mov": "video/quicktime",
    "mkv": "video/x-matroska", "avi": "video/x-msvideo",
    "flac": "audio/flac", "mp3": "audio/mpeg", "opus": "audio/opus", "ogg": "audio/ogg", "wav": "audio/wav",
    "m4a": "audio/mp4", "aac": "audio/aac",
    "glb": "model/gltf-binary", "gltf": "model/gltf+json", "obj": "model/obj", "stl": "model/stl",
    "ply": "application/x-ply", "fbx": "application/octet-stream",
    "latent": "application/octet-stream", "safetensors": "application/octet-stream",
    "json": "application/json", "txt": "text/plain",
}
_STILL = {"png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff"}
_ANIMATED = {"gif", "apng"}
_VIDEO = {"mp4", "m4v", "webm", "mov", "mkv", "avi"}
_AUDIO = {"flac", "mp3", "opus", "ogg", "wav", "m4a", "aac"}
_MODEL_3D = {"glb", "gltf", "obj", "stl", "ply", "fbx"}


@dataclass(frozen=True)
class OutputRef:
    """One thing an output node produced: a saved file (filename set) or a text (text set)."""

    node_id: str
    kind: str
    mime: str
    ui_key: str
    filename: str | None = None
    subfolder: str = ""
    folder_type: str = "output"
    text: str | None = None


def classify(ui_key: str, filename: str, animated: bool = False) -> tuple[str, str]:
    """(kind, mime) of a saved file from the ui key it was reported under, its extension and the node's
    "animated" flag. Extension first: SaveVideo reports its mp4 under "images"."""
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    mime = _MIME.get(ext, "application/octet-stream")
    if ext in _VIDEO:
        kind = "video"
    elif ext in _AUDIO or ui_key == "audio":
        kind = "audio"
    elif ext in _MODEL_3D or ui_key == "3d":
        kind = "model_3d"
    elif ui_key == "latents" or ext == "latent":
        kind = "latent"
    elif ext in _ANIMATED or (ext in _STILL and (animated or ui_key in ("gifs", "video", "videos"))):
        kind = "animated_image"
    elif ext in _STILL:
        kind = "image"
    else:
        kind = "file"
    return kind, mime


def _node_sort_key(node_order: list[str]):
    return lambda n: (node_order.index(n) if n in node_order else len(node_order), n)


def output_refs(result: RunResult, node_order: list[str], include_temp: bool = False) -> list[OutputRef]:
    """Everything the prompt's output nodes produced, in graph order then ComfyUI's order within a node.
    Files of type "temp" (previews) only when `include_temp`; texts always (they cost no disk and are the only
    way a text-producing node reports)."""
    refs: list[OutputRef] = []
    for node_id in sorted(result.outputs, key=_node_sort_key(node_order)):
        ui = result.outputs[node_id] or {}
        if not isinstance(ui, dict):
            continue
        animated_flags = ui.get("animated") or []
        animated = any(bool(a) for a in animated_flags) if isinstance(animated_flags, (list, tuple)) else bool(animated_flags)
        for key in _FILE_UI_KEYS:
            items = ui.get(key) or []
            if not isinstance(items, list):
                continue
            for item in items:
                if not isinstance(item, dict) or not isinstance(item.get("filename"), str):
                    continue
                folder_type = item.get("type", "output")
                if folder_type == "temp" and not include_temp:
                    continue
                kind, mime = classify(key, item["filename"], animated)
                refs.append(OutputRef(node_id, kind, mime, key, item["filename"], item.get("subfolder", "") or "",
                                      folder_type))
        texts = ui.get("text")
        if isinstance(texts, str):
            texts = [texts]
        if isinstance(texts, (list, tuple)):
            for text in texts:
                if isinstance(text, str):
                    refs.append(OutputRef(node_id, "text", "text/plain", "text", text=text))
    return refs


def _renamed(filename: str, fmt: str) -> str:
    stem = filename.rsplit(".", 1)[0] if "." in filename else filename
    return f"{stem}.{'jpg' if fmt == 'jpeg' else fmt}"


SAME_AS_IMAGE = {"same_as": "image"}


def core_images(images: list[dict[str, Any]], *, legacy_image: bool = True) -> dict[str, Any]:
    """The response's `image` and `images` fields, with each image's bytes sent once.

    `image` is the field of the original diffusers handler (`{"status", "prompt", "model", "image":
    {"image_base64", "width", "height"}}`), whose clients read `image.image_base64` and cannot be asked to change:
    it keeps the first image's bytes. `images[0]` then carries no second copy but a reference,
    `{"same_as": "image", "width", "height", "format"}`: a client of `images` resolves an entry with
    `response[entry["same_as"]]` when the key is there. Sending the bytes twice (what this worker did before)
    doubled the response of one image (a 832x1536 PNG is 3-5 MB of base64) and refused num_images=2 inline.

    Why this way round and not `image` as the reference: no arrangement keeps a reader of `image.image_base64`
    and a reader of `images[0].image_base64` both unchanged while sending the bytes once, so one must move. The
    original contract is the one clients in the wild were written against and cannot be asked to send anything
    new; `images` is this worker's own addition, not yet in a release (the repository has no release tag), now
    documented with the reference rule in README. A client that wants `images` uniform (every entry with its
    bytes) sends `"legacy_image": false`: `image` is then left out and `images[0]` carries the bytes.

    Only inline bytes are deduplicated: with a bucket, `image` and `images[0]` both carry the same short `url`, so
    clients of either keep working unchanged.
    """
    if not legacy_image:
        return {"images": list(images)}
    if not images:
        return {"image": None, "images": []}
    first = images[0]
    if "image_base64" not in first:
        return {"image": first, "images": list(images)}
    reference = {**SAME_AS_IMAGE, **{k: v for k, v in first.items() if k != "image_base64"}}
    return {"image": first, "images": [reference, *images[1:]]}


@dataclass
class CollectedOutputs:
    """The response parts: `images` (core contract, still images re-encoded) and `outputs` (everything)."""

    images: list[dict[str, Any]]
    outputs: list[dict[str, Any]]


def collect_outputs(
    client: ComfyClient,
    result: RunResult,
    node_order: list[str],
    *,
    job_id: str,
    output_format: str = "png",
    quality: int = 90,
    include_previews: bool = False,
    store: BucketStore | None = None,
    output_dir: Path | None = None,
    png_compress_level: int = PNG_COMPRESS_LEVEL,
    max_file_bytes: int | None = None,
    deadline: float | None = None,
) -> CollectedOutputs:
    """Read every output file (`fetch`: the local output folder, else /view) and build `images` and `outputs`
    (see the module docstring).

    Still images are re-encoded to `output_format` (encode_image); other files pass through byte for byte. With
    `store`, each file is uploaded under <prefix>/<job_id>/<node_id>_<filename> and returned as a URL. Consumed
    files in ComfyUI's output folder are deleted when it is local (`output_dir`) and the node actually ran.
    """
    images: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    for ref in output_refs(result, node_order, include_temp=include_previews):
        if ref.kind == "text":
            entries.append({"node_id": ref.node_id, "filename": None, "kind": "text", "mime": ref.mime,
                            "encoding": "utf-8", "data": ref.text})
            continue
        saved = SavedFile(ref.node_id, ref.filename, ref.subfolder, ref.folder_type)
        try:
            data = fetch(client, saved, output_dir, max_bytes=max_file_bytes, deadline=deadline)
        except (ComfyUnavailableError, OutputUnavailableError):
            if ref.node_id not in result.cached_nodes:
                raise
            # ComfyUI's cache answered this node with an earlier job's file, deleted when that job ended
            # (job_files.py): a preview whose inputs did not change. There is nothing of this job to return.
            log.warning("output %r of cached node %s no longer exists (an earlier job's file); left out",
                        ref.filename, ref.node_id)
            continue
        entry: dict[str, Any] = {"node_id": ref.node_id, "filename": ref.filename, "kind": ref.kind, "mime": ref.mime}
        if ref.folder_type != "output":
            entry["type"] = ref.folder_type
        if ref.kind == "image" and ref.ui_key == "images":
            encoded = encode_image(data, output_format, quality, png_compress_level)
            filename = ref.filename if encoded.data is data else _renamed(ref.filename, encoded.format)
            mime = _MIME[encoded.format]
            image_json: dict[str, Any] = {"width": encoded.width, "height": encoded.height, "format": encoded.format}
            entry.update(filename=filename, mime=mime, images_index=len(images))
            if store is not None:
                stored = store.upload(encoded.data, job_id=job_id, filename=f"{ref.node_id}_{filename}", content_type=mime)
                image_json = {"url": stored.url, **image_json}
                entry["url"] = stored.url
            else:
                image_json = encoded.to_json()
            images.append(image_json)
        elif store is not None:
            entry["url"] = store.upload(data, job_id=job_id, filename=f"{ref.node_id}_{ref.filename}",
                                        content_type=ref.mime).url
        else:
            entry.update(encoding="base64", data=base64.b64encode(data).decode("ascii"))
        if "images_index" not in entry:
            entry["size_bytes"] = len(data)
        entries.append(entry)
        if ref.node_id not in result.cached_nodes:
            remove_local(output_dir, saved)
    log.info("collected %d output(s): %s", len(entries),
             ", ".join(sorted({f"{e['kind']}" for e in entries})) or "none")
    return CollectedOutputs(images=images, outputs=entries)
