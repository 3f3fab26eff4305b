"""FluxFastDecode against ComfyUI's own decode nodes, in a real ComfyUI with the stand-in FLUX VAE.

The node must give exactly what a stock node gives: the whole-latent decode of VAEDecode where memory allows
(always, on the CPU here), and VAEDecodeTiled's three-pass tiled average when asked for `tiled`. One graph
encodes a random image to a latent and decodes it four ways; the PNGs are compared pixel for pixel.
"""

from __future__ import annotations

import base64
import io
import random
import uuid

from PIL import Image

from handler.comfy_client import ComfyClient
from handler.outputs import collect_outputs


def _noise_png(size=(256, 256)) -> bytes:
    noise = random.Random(7).randbytes(size[0] * size[1] * 3)
    buf = io.BytesIO()
    Image.frombytes("RGB", size, noise).save(buf, format="PNG")
    return buf.getvalue()


def test_fast_decode_matches_comfyuis_whole_and_tiled_decodes(comfyui):
    client = ComfyClient(comfyui.base_url)
    tag = uuid.uuid4().hex[:8]
    name = client.upload_image(f"decode-{tag}.png", _noise_png())
    prefix = f"it-decode/{tag}"
    tiles = {"tile_size": 128, "overlap": 32}      # 256x256: several overlapping tiles per pass
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": name}},
        "2": {"class_type": "VAELoader", "inputs": {"vae_name": "ae.safetensors"}},
        "3": {"class_type": "VAEEncode", "inputs": {"pixels": ["1", 0], "vae": ["2", 0]}},
        "10": {"class_type": "FluxFastDecode", "inputs": {"samples": ["3", 0], "vae": ["2", 0], **tiles, "mode": "auto"}},
        "11": {"class_type": "FluxFastDecode", "inputs": {"samples": ["3", 0], "vae": ["2", 0], **tiles, "mode": "tiled"}},
        "12": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["2", 0]}},
        "13": {"class_type": "VAEDecodeTiled", "inputs": {"samples": ["3", 0], "vae": ["2", 0], **tiles,
                                                          "temporal_size": 64, "temporal_overlap": 8}},
    }
    for source in ("10", "11", "12", "13"):
        graph[f"2{source}"] = {"class_type": "SaveImage", "inputs": {"images": [source, 0], "filename_prefix": prefix}}
    result = client.run(graph, timeout_s=300)
    got = collect_outputs(client, result, list(graph), job_id="it-decode")
    pixels = {}
    for out in got.outputs:
        data = base64.b64decode(got.images[out["images_index"]]["image_base64"])
        with Image.open(io.BytesIO(data)) as img:
            pixels[out["node_id"][1:]] = (img.size, img.convert("RGB").tobytes())
    assert set(pixels) == {"10", "11", "12", "13"}, got.outputs
    assert pixels["10"][0] == (256, 256)

    assert pixels["10"] == pixels["12"]       # auto, memory to spare: VAEDecode's pixels
    assert pixels["11"] == pixels["13"]       # tiled: VAEDecodeTiled's pixels
    assert pixels["10"] != pixels["11"]       # and the two decodes do differ, so the test can tell
