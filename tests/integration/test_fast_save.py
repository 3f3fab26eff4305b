"""FluxFastSaveImage against ComfyUI's own SaveImage, in a real ComfyUI: the shipped workflows save with it.

What a caller or GUI user would notice if it differed: other pixels, a PNG some decoder refuses, a workflow that no
longer opens when the PNG is dropped on the GUI (the "prompt" and "workflow" text chunks), files the handler cannot
find (names, counters, subfolders, batches). One graph resizes a noise image with bilinear filtering (fractional
values, so the float-to-byte conversion is exercised, clipping included) into a batch of two, and saves it with both
nodes; each file is decoded and compared.
"""

from __future__ import annotations

import io
import json
import random
import uuid
from pathlib import Path

import pytest
from PIL import Image

from handler.comfy_client import ComfyClient

REPO = Path(__file__).resolve().parents[2]


def _noise_png(size=(97, 61)) -> bytes:
    buf = io.BytesIO()
    Image.frombytes("RGB", size, random.Random(3).randbytes(size[0] * size[1] * 3)).save(buf, format="PNG")
    return buf.getvalue()


def _saved(comfyui, client: ComfyClient, result, node_id: str) -> list[tuple[dict, bytes]]:
    files = []
    for item in result.outputs[node_id]["images"]:
        files.append((item, client.view(item["filename"], item["subfolder"], item["type"])))
    return files


def test_fast_save_writes_what_saveimage_writes_faster(comfyui):
    client = ComfyClient(comfyui.base_url)
    tag = uuid.uuid4().hex[:8]
    name = client.upload_image(f"save-{tag}.png", _noise_png())
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": name}},
        "2": {"class_type": "ImageScale", "inputs": {"image": ["1", 0], "upscale_method": "bilinear", "width": 150,
                                                    "height": 100, "crop": "disabled"}},
        "3": {"class_type": "RepeatImageBatch", "inputs": {"image": ["2", 0], "amount": 2}},
        "10": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": f"it-save/{tag}/stock"}},
        "11": {"class_type": "FluxFastSaveImage", "inputs": {"images": ["3", 0],
                                                             "filename_prefix": f"it-save/{tag}/fast_%batch_num%"}},
    }
    workflow = {"nodes": [{"id": 1, "type": "LoadImage"}], "note": "ünïcode survives"}
    result = client.run(graph, timeout_s=300, extra_data={"extra_pnginfo": {"workflow": workflow}})
    stock, fast = _saved(comfyui, client, result, "10"), _saved(comfyui, client, result, "11")

    assert [item["subfolder"] for item, _ in fast] == [f"it-save/{tag}"] * 2
    assert [item["filename"] for item, _ in fast] == ["fast_0_00001_.png", "fast_1_00002_.png"]
    assert all(item["type"] == "output" for item, _ in fast)
    assert len(stock) == len(fast) == 2
    for (_, stock_png), (_, fast_png) in zip(stock, fast):
        with Image.open(io.BytesIO(stock_png)) as a, Image.open(io.BytesIO(fast_png)) as b:
            assert (a.mode, a.size) == (b.mode, b.size) == ("RGB", (150, 100))
            assert a.tobytes() == b.tobytes()
            assert b.text == a.text
            assert json.loads(b.text["prompt"])["11"]["class_type"] == "FluxFastSaveImage"
            assert json.loads(b.text["workflow"]) == workflow
        Image.open(io.BytesIO(fast_png)).verify()        # every chunk's CRC, as a strict decoder checks them
    # the test could tell: the bilinear batch is not flat, and the two encoders wrote different bytes
    assert len(Image.open(io.BytesIO(fast[0][1])).getcolors(1 << 24) or []) > 1000
    assert stock[0][1] != fast[0][1]


def test_fast_save_writes_no_metadata_when_comfyui_is_told_not_to(tmp_path):
    """--disable-metadata is ComfyUI's switch for what SaveImage embeds; the fast node follows it."""
    pytest.importorskip("numpy")
    import subprocess
    import sys

    probe = (
        "import sys, io\n"
        "sys.argv = ['main.py', '--cpu', '--disable-metadata']\n"
        "import comfy.options; comfy.options.enable_args_parsing()\n"
        "import torch, folder_paths\n"
        "from PIL import Image\n"
        f"folder_paths.set_output_directory({str(tmp_path)!r})\n"
        "from flux_fast.save import save_images\n"
        "out = save_images(torch.rand(1, 8, 8, 3), 'meta', prompt={'1': {}}, extra_pnginfo={'workflow': {}})\n"
        f"img = Image.open({str(tmp_path)!r} + '/' + out['ui']['images'][0]['filename'])\n"
        "print(sorted(img.text))\n"
    )
    import os

    comfyui = os.environ.get("COMFYUI_PATH")
    if not comfyui:
        pytest.skip("COMFYUI_PATH is not set: no ComfyUI to run the node in")
    python = os.environ.get("COMFYUI_PYTHON", sys.executable)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([comfyui, str(REPO / "comfy_nodes")])}
    done = subprocess.run([python, "-c", probe], cwd=comfyui, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
