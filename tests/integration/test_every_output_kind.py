"""Every output kind from a real ComfyUI: one graph with several output nodes, no model needed.

Two LoadImages -> ImageBatch (2 different frames) feed SaveImage (stills), SaveAnimatedWEBP (animation), SaveWEBM and
CreateVideo -> SaveVideo (video), PreviewImage (a temp preview); LoadAudio -> SaveAudio (audio); PrimitiveString
-> PreviewAny (text). The history `ui` shapes come from ComfyUI itself, so this checks outputs.collect_outputs
against what the nodes really write, and that each file arrives intact.

ComfyUI's audio nodes need torchaudio; where ComfyUI's environment lacks it (they are then absent from
/object_info) the audio branch is left out of the graph and the rest still runs.
"""

from __future__ import annotations

import base64
import io
import math
import struct
import uuid
import wave

from PIL import Image

from handler.comfy_client import ComfyClient
from handler.outputs import collect_outputs


def _png(color=(10, 200, 90), size=(32, 32)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def _wav(seconds=0.25, rate=16000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(i / 8))) for i in range(int(seconds * rate))))
    return buf.getvalue()


def test_several_output_nodes_all_come_back(comfyui):
    client = ComfyClient(comfyui.base_url)
    has_audio = {"LoadAudio", "SaveAudio"} <= set(client.object_info())
    tag = uuid.uuid4().hex[:8]
    image_name = client.upload_image(f"kinds-{tag}.png", _png())
    image2_name = client.upload_image(f"kinds-{tag}-2.png", _png((220, 20, 20)))
    audio_name = client.upload_image(f"kinds-{tag}.wav", _wav()) if has_audio else None
    prefix = f"it-kinds/{tag}"
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": image_name}},
        "3": {"class_type": "LoadImage", "inputs": {"image": image2_name}},
        "2": {"class_type": "ImageBatch", "inputs": {"image1": ["1", 0], "image2": ["3", 0]}},
        "10": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}},
        "11": {"class_type": "SaveAnimatedWEBP", "inputs": {"images": ["2", 0], "filename_prefix": prefix, "fps": 6.0,
                                                             "lossless": False, "quality": 80, "method": "fastest"}},
        "12": {"class_type": "SaveWEBM", "inputs": {"images": ["2", 0], "filename_prefix": prefix, "codec": "vp9",
                                                     "fps": 6.0, "crf": 40.0}},
        "13": {"class_type": "CreateVideo", "inputs": {"images": ["2", 0], "fps": 6.0}},
        "14": {"class_type": "SaveVideo", "inputs": {"video": ["13", 0], "filename_prefix": prefix, "format": "auto",
                                                      "codec": "auto"}},
        "15": {"class_type": "LoadAudio", "inputs": {"audio": audio_name}},
        "16": {"class_type": "SaveAudio", "inputs": {"audio": ["15", 0], "filename_prefix": prefix}},
        "17": {"class_type": "PrimitiveString", "inputs": {"value": f"caption {tag}"}},
        "18": {"class_type": "PreviewAny", "inputs": {"source": ["17", 0]}},
        "19": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    }
    if not has_audio:
        del graph["15"], graph["16"]
    result = client.run(graph, timeout_s=300)
    got = collect_outputs(client, result, list(graph), job_id="it-kinds")
    by_node = {o["node_id"]: o for o in got.outputs}

    expected = [("10", "image"), ("11", "animated_image"), ("12", "video"), ("14", "video"), ("16", "audio"),
                ("18", "text")]
    if not has_audio:
        expected.remove(("16", "audio"))
    # PreviewImage (19) is a temp preview: left out by default
    assert [(o["node_id"], o["kind"]) for o in got.outputs] == expected, got.outputs

    still = base64.b64decode(got.images[0]["image_base64"])
    with Image.open(io.BytesIO(still)) as img:
        assert img.size == (32, 32)
    assert by_node["10"]["images_index"] == 0

    anim = base64.b64decode(by_node["11"]["data"])
    with Image.open(io.BytesIO(anim)) as img:
        assert img.format == "WEBP" and getattr(img, "n_frames", 1) == 2
    assert by_node["11"]["mime"] == "image/webp"

    webm = base64.b64decode(by_node["12"]["data"])
    assert webm[:4] == b"\x1a\x45\xdf\xa3" and by_node["12"]["mime"] == "video/webm"
    mp4 = base64.b64decode(by_node["14"]["data"])
    assert mp4[4:8] == b"ftyp" and by_node["14"]["mime"] == "video/mp4"
    if has_audio:
        flac = base64.b64decode(by_node["16"]["data"])
        assert flac[:4] == b"fLaC" and by_node["16"]["mime"] == "audio/flac"
    assert by_node["18"]["data"] == f"caption {tag}"

    with_previews = collect_outputs(client, client.run(graph, timeout_s=300), list(graph), job_id="it-kinds",
                                    include_previews=True)
    previews = [o for o in with_previews.outputs if o["node_id"] == "19"]
    assert previews and previews[0]["type"] == "temp" and previews[0]["kind"] == "image"
