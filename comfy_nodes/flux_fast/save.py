"""The shipped workflows' save node: ComfyUI's SaveImage, with the PNG written by png.py instead of Pillow's level 4.

What stays exactly as SaveImage does it (nodes.py, SaveImage.save_images), so that callers, the handler and GUI users
see no difference but the time: the same pixels (the same float-to-uint8 conversion), the file names and folders
(`folder_paths.get_save_image_path`, so `filename_prefix` rules and counters are ComfyUI's), the "prompt" and
workflow text chunks that let the GUI reopen a PNG (none under --disable-metadata), and the node's UI result
(`{"ui": {"images": [{"filename", "subfolder", "type": "output"}]}}`) that the handler reads outputs from.
What differs: the encoder (png.py says why and what it costs in bytes).
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from . import png


def to_uint8(image: Any) -> np.ndarray:
    """One IMAGE tensor [H, W, C] in 0..1 to uint8 pixels, with ComfyUI SaveImage's own arithmetic."""
    i = 255. * image.cpu().numpy()
    return np.clip(i, 0, 255).astype(np.uint8)


def save_images(images: Any, filename_prefix: str, prompt: Any = None, extra_pnginfo: Any = None) -> dict[str, Any]:
    import folder_paths
    from comfy.cli_args import args

    output_dir = folder_paths.get_output_directory()
    full_output_folder, filename, counter, subfolder, filename_prefix = folder_paths.get_save_image_path(
        filename_prefix, output_dir, images[0].shape[1], images[0].shape[0])
    texts: dict[str, str] = {}
    if not args.disable_metadata:
        if prompt is not None:
            texts["prompt"] = json.dumps(prompt)
        for key in extra_pnginfo or {}:
            texts[key] = json.dumps(extra_pnginfo[key])
    results = []
    for batch_number, image in enumerate(images):
        file = f"{filename.replace('%batch_num%', str(batch_number))}_{counter:05}_.png"
        with open(os.path.join(full_output_folder, file), "wb") as fh:
            fh.write(png.encode(to_uint8(image), texts))
        results.append({"filename": file, "subfolder": subfolder, "type": "output"})
        counter += 1
    return {"ui": {"images": results}, "result": (images,)}
