"""ComfyUI's outputs turned into the caller's images.

Reads the history `outputs` of a finished prompt (`{node_id: {"images": [{filename, subfolder, type}]}}`), fetches
each saved file over /view, re-encodes it when the caller asked for jpeg or webp (PNG bytes pass through untouched,
so the workflow ComfyUI embeds in them survives for GUI users) and returns them base64-encoded with their size.
"""

from __future__ import annotations

import base64
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from .comfy_client import ComfyClient, RunResult

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


def saved_images(result: RunResult, node_order: list[str], include_temp: bool = False) -> list[SavedFile]:
    """Image files the prompt saved, in graph order; previews (type "temp") only when asked for."""
    files = []
    for node_id in sorted(result.outputs, key=lambda n: (node_order.index(n) if n in node_order else len(node_order), n)):
        for item in result.outputs[node_id].get("images", []) or []:
            folder_type = item.get("type", "output")
            if folder_type == "temp" and not include_temp:
                continue
            files.append(SavedFile(node_id, item["filename"], item.get("subfolder", ""), folder_type))
    return files


def encode_image(data: bytes, output_format: str, quality: int) -> EncodedImage:
    """Re-encode to jpeg/webp when asked; PNG from ComfyUI is returned byte for byte."""
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
        source_format = (image.format or "").lower()
        if source_format == output_format:
            return EncodedImage(data, width, height, output_format)
        image.load()
        if output_format == "jpeg" and image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        buffer = io.BytesIO()
        options: dict[str, Any] = {"quality": quality} if output_format in ("jpeg", "webp") else {"compress_level": 4}
        image.save(buffer, format=_PIL_FORMATS[output_format], **options)
        return EncodedImage(buffer.getvalue(), width, height, output_format)


def fetch(client: ComfyClient, saved: SavedFile) -> bytes:
    return client.view(saved.filename, saved.subfolder, saved.folder_type)


def remove_local(output_dir: Path | None, saved: SavedFile) -> None:
    """Delete a consumed output file when ComfyUI's output folder is on this machine (keeps the disk from filling)."""
    if output_dir is None or saved.folder_type != "output":
        return
    root = output_dir.resolve()
    path = (root / saved.subfolder / saved.filename).resolve()
    if root not in path.parents:
        return
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not delete output %s: %s", path, exc)
