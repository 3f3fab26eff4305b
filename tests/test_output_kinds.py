"""Every output kind comes back: still and animated images, video, audio, 3D, text; previews only when asked;
base64 inline or bucket URLs. History shapes are the ones ComfyUI v0.3.64's nodes write (see outputs.py)."""

from __future__ import annotations

import base64
import io

from PIL import Image

from handler import outputs
from handler.comfy_client import RunResult


def png(size=(16, 8)):
    buf = io.BytesIO()
    Image.new("RGB", size, (1, 2, 3)).save(buf, format="PNG")
    return buf.getvalue()


FILES = {
    "still_00001_.png": png(),
    "anim_00001_.webp": b"RIFF....WEBPVP8X animated",
    "clip_00001_.mp4": b"\x00\x00\x00\x18ftypmp42 video bytes",
    "clip_00002_.webm": b"\x1aE\xdf\xa3 webm",
    "sound_00001_.flac": b"fLaC audio",
    "mesh_00001_.glb": b"glTF mesh",
    "preview_00001_.png": png((4, 4)),
}

HISTORY = {
    # SaveImage
    "9": {"images": [{"filename": "still_00001_.png", "subfolder": "job", "type": "output"}]},
    # SaveAnimatedWEBP
    "12": {"images": [{"filename": "anim_00001_.webp", "subfolder": "", "type": "output"}], "animated": [True]},
    # SaveVideo (reports its mp4 under "images" with animated)
    "13": {"images": [{"filename": "clip_00001_.mp4", "subfolder": "video", "type": "output"}], "animated": [True]},
    # SaveWEBM
    "14": {"images": [{"filename": "clip_00002_.webm", "subfolder": "", "type": "output"}], "animated": [True]},
    # SaveAudio
    "15": {"audio": [{"filename": "sound_00001_.flac", "subfolder": "audio", "type": "output"}]},
    # SaveGLB
    "16": {"3d": [{"filename": "mesh_00001_.glb", "subfolder": "3d", "type": "output"}]},
    # PreviewAny
    "17": {"text": ["a caption"]},
    # PreviewImage
    "18": {"images": [{"filename": "preview_00001_.png", "subfolder": "", "type": "temp"}]},
}
ORDER = ["9", "12", "13", "14", "15", "16", "17", "18"]


class FakeClient:
    def __init__(self):
        self.viewed = []

    def view(self, filename, subfolder="", folder_type="output", *, max_bytes=None, deadline=None):
        self.viewed.append((filename, subfolder, folder_type))
        return FILES[filename]


class FakeStore:
    def __init__(self):
        self.uploads = []

    def upload(self, data, *, job_id, filename, content_type):
        self.uploads.append((job_id, filename, content_type, data))

        class Stored:
            url = f"https://bucket.example/{job_id}/{filename}?sig=1"
        return Stored()


def collect(**kw):
    client = FakeClient()
    got = outputs.collect_outputs(client, RunResult("p", HISTORY), ORDER, job_id="job-1", **kw)
    return got, client


def test_every_kind_is_returned_inline_in_graph_order():
    got, client = collect()
    kinds = [(o["node_id"], o["kind"], o["mime"]) for o in got.outputs]
    assert kinds == [
        ("9", "image", "image/png"),
        ("12", "animated_image", "image/webp"),
        ("13", "video", "video/mp4"),
        ("14", "video", "video/webm"),
        ("15", "audio", "audio/flac"),
        ("16", "model_3d", "model/gltf-binary"),
        ("17", "text", "text/plain"),
    ]
    by_node = {o["node_id"]: o for o in got.outputs}
    assert base64.b64decode(by_node["13"]["data"]) == FILES["clip_00001_.mp4"]
    assert by_node["13"]["filename"] == "clip_00001_.mp4" and by_node["13"]["encoding"] == "base64"
    assert by_node["15"]["size_bytes"] == len(FILES["sound_00001_.flac"])
    assert by_node["17"]["data"] == "a caption" and by_node["17"]["encoding"] == "utf-8"
    # the still image is in the core `images` once; its outputs entry points there instead of repeating it
    assert "data" not in by_node["9"] and by_node["9"]["images_index"] == 0
    assert base64.b64decode(got.images[0]["image_base64"]) == FILES["still_00001_.png"]
    assert ("preview_00001_.png", "", "temp") not in client.viewed


def test_previews_only_when_asked():
    got, _ = collect(include_previews=True)
    preview = [o for o in got.outputs if o["node_id"] == "18"]
    assert preview and preview[0]["type"] == "temp" and preview[0]["kind"] == "image"
    assert len(got.images) == 2


def test_still_images_follow_output_format_and_are_renamed():
    got, _ = collect(output_format="jpeg", quality=80)
    entry = got.outputs[0]
    assert entry["filename"] == "still_00001_.jpg" and entry["mime"] == "image/jpeg"
    assert got.images[0]["format"] == "jpeg"
    with Image.open(io.BytesIO(base64.b64decode(got.images[0]["image_base64"]))) as img:
        assert img.format == "JPEG"
    # non-still outputs are never re-encoded
    assert base64.b64decode(got.outputs[1]["data"]) == FILES["anim_00001_.webp"]


def test_with_a_bucket_every_file_becomes_a_url():
    store = FakeStore()
    got, _ = collect(store=store)
    files = [o for o in got.outputs if o["kind"] != "text"]
    assert all("url" in o and "data" not in o for o in files)
    assert got.images[0]["url"] == got.outputs[0]["url"] and "image_base64" not in got.images[0]
    assert [(u[1], u[2]) for u in store.uploads][:3] == [
        ("9_still_00001_.png", "image/png"),
        ("12_anim_00001_.webp", "image/webp"),
        ("13_clip_00001_.mp4", "video/mp4"),
    ]
    assert all(u[0] == "job-1" for u in store.uploads)


def test_only_stills_are_images_so_an_mp4_listed_under_images_never_reaches_pil():
    stills = [r.filename for r in outputs.output_refs(RunResult("p", HISTORY), ORDER) if r.kind == "image" and r.ui_key == "images"]
    assert stills == ["still_00001_.png"]


def test_classify_by_extension_and_key():
    assert outputs.classify("gifs", "x.gif") == ("animated_image", "image/gif")
    assert outputs.classify("gifs", "x.mp4") == ("video", "video/mp4")
    assert outputs.classify("audio", "x.opus") == ("audio", "audio/opus")
    assert outputs.classify("latents", "x.latent")[0] == "latent"
    assert outputs.classify("images", "x.png", animated=True)[0] == "animated_image"
    assert outputs.classify("images", "x.bin") == ("file", "application/octet-stream")


def test_odd_history_entries_are_skipped_not_fatal():
    result = RunResult("p", {"1": {"images": "nope", "text": "single string"}, "2": None, "3": {"latents": [{"x": 1}]}})
    refs = outputs.output_refs(result, ["1", "2", "3"])
    assert [(r.kind, r.text) for r in refs] == [("text", "single string")]


def test_consumed_files_are_read_locally_then_removed_from_a_local_output_folder(tmp_path):
    (tmp_path / "job").mkdir()
    (tmp_path / "job" / "still_00001_.png").write_bytes(FILES["still_00001_.png"])
    client = FakeClient()
    got = outputs.collect_outputs(client, RunResult("p", {"9": HISTORY["9"]}), ["9"], job_id="j", output_dir=tmp_path)
    assert not (tmp_path / "job" / "still_00001_.png").exists()
    assert client.viewed == [] and got.images[0]["width"] > 0
