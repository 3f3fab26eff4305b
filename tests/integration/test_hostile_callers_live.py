"""Hostile callers against a real ComfyUI (issue 12, part A): what a caller's graph can read, what it leaves on
disk, and image bombs. Each test states what today's ComfyUI does with the graph when nothing stops it.

The handler runs in this process (handler.job.Worker) against the `comfyui` fixture's server, configured the way
start.sh configures the worker: the same COMFYUI_ARGS, COMFYUI_PATH and COMFYUI_OUTPUT_DIR, so the folders the
handler cleans are the ones it derives itself. The graphs need no model (LoadImage -> SaveImage and friends) and
run in seconds on CPU.
"""

from __future__ import annotations

import base64
import io
import sys
import uuid
from pathlib import Path

import pytest
from PIL import Image

from handler.comfy_client import ComfyClient
from handler.config import Settings
from handler.job import Worker
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: shared image helpers
from image_server import gif_bytes, png_bytes  # noqa: E402

SECRET = (7, 77, 177)


@pytest.fixture
def settings(comfyui, integration_setup, comfyui_path) -> Settings:
    return Settings.from_env({
        "COMFYUI_URL": comfyui.base_url, "COMFYUI_PATH": str(comfyui_path),
        "COMFYUI_ARGS": " ".join(integration_setup.comfyui_args()),
        "COMFYUI_OUTPUT_DIR": str(integration_setup.output_dir)})


@pytest.fixture
def worker(settings, comfyui) -> Worker:
    return Worker(settings, ComfyClient(comfyui.base_url))


@pytest.fixture
def temp_dir(comfyui_path) -> Path:
    """Where this ComfyUI writes previews (no --temp-directory: its default); the handler must find it itself."""
    return comfyui_path / "temp"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def load_save(image: str, loader: str = "LoadImage", **extra) -> dict:
    return {
        "1": {"class_type": loader, "inputs": {"image": image, **extra}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "it-hostile"}},
    }


def files_under(*roots: Path) -> set[Path]:
    return {p for root in roots for p in root.rglob("*") if p.is_file()}


def first_pixel(output: dict) -> tuple:
    with Image.open(io.BytesIO(base64.b64decode(output["image"]["image_base64"]))) as img:
        return img.convert("RGB").getpixel((0, 0))


def assert_refused(out: dict, node_id: str, class_type: str, input_name: str | None) -> None:
    assert "error" in out, f"the graph ran: {str(out)[:300]}"
    details = out["details"]
    assert details["type"] == "invalid_workflow", out
    assert (details["node_id"], details["class_type"], details["input"]) == (node_id, class_type, input_name), out


# ---- 1. reading files outside the job's uploads -------------------------------------------------------------

@pytest.fixture
def secret_files(integration_setup, temp_dir, tmp_path):
    """A private image outside every ComfyUI folder, and ones an earlier job left in output/ and temp/."""
    tag = uuid.uuid4().hex[:6]
    paths = (tmp_path / f"secret-{tag}.png", integration_setup.output_dir / f"earlier-{tag}.png",
             temp_dir / f"earlier-{tag}.png")
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png_bytes(8, 8, SECRET))
    yield paths
    for path in paths[1:]:
        path.unlink(missing_ok=True)


@pytest.mark.parametrize("how", ["absolute", "dotdot", "output annotation", "temp annotation", "mask loader"])
def test_a_caller_cannot_read_any_image_on_the_worker(worker, integration_setup, secret_files, how):
    outside, in_output, in_temp = secret_files
    # Today ComfyUI's LoadImage only checks that the file exists: each of these returns the secret image.
    value = {"absolute": str(outside),
             "dotdot": "../" * (len(integration_setup.input_dir.parts) - 1) + str(outside).lstrip("/"),
             "output annotation": f"{in_output.name} [output]",
             "temp annotation": f"{in_temp.name} [temp]",
             "mask loader": str(outside)}[how]
    graph = load_save(value, "LoadImageMask", channel="red") if how == "mask loader" else load_save(value)
    if how == "mask loader":
        graph["1b"] = {"class_type": "MaskToImage", "inputs": {"mask": ["1", 0]}}
        graph["2"]["inputs"]["images"] = ["1b", 0]
    out = worker.handle({"id": "it-read", "input": {"workflow": graph}})
    assert_refused(out, "1", graph["1"]["class_type"], "image")
    assert "uploaded with this job" in out["error"]


def test_paths_that_exist_and_paths_that_do_not_get_the_same_answer(worker, secret_files):
    outside = secret_files[0]
    # Today: a missing file fails ComfyUI's validation, an existing non-image fails at execution: two answers.
    answers = [worker.handle({"id": "it-probe", "input": {"workflow": load_save(path)}})
               for path in (str(outside), str(outside) + ".missing", "/etc/hostname")]
    assert {a["details"]["type"] for a in answers} == {"invalid_workflow"}
    assert len({a["details"]["rule"] for a in answers}) == 1


def test_dev_zero_is_refused_before_comfyui_reads_it(worker, comfyui):
    # Today ComfyUI hashes the whole "file" while validating (IS_CHANGED) and is OOM-killed.
    out = worker.handle({"id": "it-zero", "input": {"workflow": load_save("/dev/zero")}})
    assert_refused(out, "1", "LoadImage", "image")
    comfyui.server.assert_alive()


def test_model_writing_nodes_are_refused_before_comfyui_runs_them(worker, integration_setup):
    graph = {"1": {"class_type": "VAELoader", "inputs": {"vae_name": "ae.safetensors"}},
             "2": {"class_type": "VAESave", "inputs": {"vae": ["1", 0], "filename_prefix": "vae/stolen"}}}
    before = files_under(integration_setup.output_dir)
    out = worker.handle({"id": "it-vaesave", "input": {"workflow": graph}})
    assert_refused(out, "2", "VAESave", None)
    assert files_under(integration_setup.output_dir) == before  # today: a 160 MB VAE lands in output/vae/


# ---- 5. jobs see nothing of each other, and leave nothing behind --------------------------------------------

def test_a_later_job_cannot_load_an_earlier_jobs_upload(worker, integration_setup):
    name = f"private-{uuid.uuid4().hex[:6]}.png"
    first = worker.handle({"id": "it-alice", "input": {
        "workflow": load_save(name), "images": [{"name": name, "image": b64(png_bytes(8, 8, SECRET))}]}})
    assert first.get("status") == "success", first
    assert abs(first_pixel(first)[2] - SECRET[2]) <= 2
    assert not any(name in str(p) for p in files_under(integration_setup.input_dir))  # the upload is gone
    # Today the second caller gets the first caller's image.
    second = worker.handle({"id": "it-mallory", "input": {"workflow": load_save(name)}})
    assert_refused(second, "1", "LoadImage", "image")


def test_same_named_uploads_of_two_jobs_do_not_meet(worker):
    for color in (SECRET, (250, 250, 250)):
        out = worker.handle({"id": "it-same", "input": {
            "workflow": load_save("face.png"), "images": [{"name": "face.png", "image": b64(png_bytes(8, 8, color))}]}})
        assert out.get("status") == "success", out
        assert abs(first_pixel(out)[0] - color[0]) <= 2


def test_a_successful_job_leaves_nothing_on_disk(worker, integration_setup, temp_dir):
    watched = (integration_setup.input_dir, integration_setup.output_dir)
    before = files_under(*watched)
    graph = load_save("in.png")
    graph["3"] = {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}
    out = worker.handle({"id": "it-clean", "input": {
        "workflow": graph, "include_previews": True, "images": [{"name": "in.png", "image": b64(png_bytes(8, 8))}]}})
    assert out.get("status") == "success", out
    preview = next(o for o in out["outputs"] if o["node_id"] == "3")
    assert preview["type"] == "temp"
    # Today: the upload stays in input/, the preview in temp/ (the save node's file was already deleted).
    assert files_under(*watched) == before
    assert not any(p.name == preview["filename"] for p in files_under(temp_dir))


def test_a_failed_job_leaves_nothing_on_disk_and_the_next_job_runs(worker, integration_setup, temp_dir):
    watched = (integration_setup.input_dir, integration_setup.output_dir)
    before = files_under(*watched)
    graph = load_save("odd.png")
    graph["3"] = {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}
    # SaveImage and PreviewImage write their files, then SaveVideo fails (h264 needs even sides): a failed job
    # whose files are already on disk.
    graph["4"] = {"class_type": "CreateVideo", "inputs": {"images": ["1", 0], "fps": 6.0}}
    graph["5"] = {"class_type": "SaveVideo", "inputs": {"video": ["4", 0], "filename_prefix": "it-hostile",
                                                        "format": "mp4", "codec": "h264"}}
    temp_before = files_under(temp_dir)
    out = worker.handle({"id": "it-fail", "input": {
        "workflow": graph, "images": [{"name": "odd.png", "image": b64(png_bytes(7, 7))}]}})
    assert out["details"]["type"] == "comfyui_execution_error", out
    assert files_under(*watched) == before
    assert not {p for p in files_under(temp_dir) - temp_before if "ComfyUI_temp" in p.name}
    # ComfyUI refusing the graph after the upload: the upload goes too.
    bad = load_save("x.png")
    bad["3"] = {"class_type": "ImageScale", "inputs": {"image": ["1", 0], "upscale_method": "nearest-exact",
                                                       "width": -5, "height": 8, "crop": "disabled"}}
    bad["2"]["inputs"]["images"] = ["3", 0]
    out = worker.handle({"id": "it-invalid", "input": {
        "workflow": bad, "images": [{"name": "x.png", "image": b64(png_bytes(8, 8))}]}})
    assert out["details"]["type"] == "comfyui_validation_error", out
    assert files_under(*watched) == before
    ok = worker.handle({"id": "it-next", "input": {
        "workflow": load_save("y.png"), "images": [{"name": "y.png", "image": b64(png_bytes(8, 8))}]}})
    assert ok.get("status") == "success", ok


def test_a_repeated_preview_served_from_comfyuis_cache_does_not_fail_the_job(worker):
    # Nothing job-specific upstream: ComfyUI's cache answers the second PreviewImage with the first job's file,
    # which the first job deleted.
    graph = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 255}},
             "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
             "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "it-cache"}}}
    outs = [worker.handle({"id": f"it-cache-{i}", "input": {"workflow": graph, "include_previews": True}}) for i in range(2)]
    assert [o.get("status") for o in outs] == ["success", "success"], outs
    assert [o["node_id"] for o in outs[1]["outputs"]] == ["3"]  # the stale preview is left out


# ---- 3. frame bombs ------------------------------------------------------------------------------------------

def test_an_animated_image_past_the_frame_limit_is_refused_before_comfyui(worker, integration_setup):
    before = files_under(integration_setup.input_dir, integration_setup.output_dir)
    # Today: 40 frames become a batch of 40 and 40 outputs (past num_images, at most 4), each frame decoded to float32.
    out = worker.handle({"id": "it-frames", "input": {
        "workflow": load_save("anim.gif"), "images": [{"name": "anim.gif", "image": b64(gif_bytes(40))}]}})
    assert out["details"]["type"] == "invalid_input", out
    assert out["details"]["field"] == "images[0].image" and "at most 4 frame(s) (got 40)" in out["error"]
    assert files_under(integration_setup.input_dir, integration_setup.output_dir) == before
    # 16x16: ComfyUI v0.33.0's LoadImage decodes through PyAV, which rejects an 8x8 GIF ("Invalid argument").
    few = worker.handle({"id": "it-frames-ok", "input": {
        "workflow": load_save("anim.gif"), "images": [{"name": "anim.gif", "image": b64(gif_bytes(3, 16, 16))}]}})
    assert few.get("status") == "success" and len(few["images"]) == 3, few


def test_every_denied_class_is_a_class_of_the_pinned_comfyui(comfyui):
    # A rename upstream (v0.33.0 renamed SaveLoRANode to SaveLoRA) would leave the deny-list guarding a name that no
    # longer exists while the node itself runs; this fails at the next upgrade instead.
    from handler.workflow_policy import DENIED_NODES

    available = ComfyClient(comfyui.base_url).object_info()
    assert sorted(DENIED_NODES - set(available)) == []


@pytest.mark.parametrize("prefix", ["../outside/escape", "/tmp/it-hostile-escape", "a/../../b"])
def test_the_fast_save_node_writes_only_the_jobs_own_outputs(worker, integration_setup, prefix):
    """The shipped workflows' FluxFastSaveImage is a node callers may use: its filename_prefix is held to the rule of
    every save node (refused outside the output folder, before ComfyUI runs), and the next job saves normally."""
    before = files_under(integration_setup.output_dir)
    graph = load_save("in.png")
    graph["2"] = {"class_type": "FluxFastSaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}}
    upload = [{"name": "in.png", "image": b64(png_bytes(8, 8))}]
    out = worker.handle({"id": "it-fast-save-escape", "input": {"workflow": graph, "images": upload}})
    assert_refused(out, "2", "FluxFastSaveImage", "filename_prefix")
    assert files_under(integration_setup.output_dir) == before
    assert not list(Path("/tmp").glob("it-hostile-escape*"))
    assert not (integration_setup.output_dir.parent / "outside").exists()

    graph["2"]["inputs"]["filename_prefix"] = "it-fast-save"
    out = worker.handle({"id": "it-fast-save", "input": {"workflow": graph, "images": upload}})
    assert out.get("status") == "success", out
    assert first_pixel(out) == Image.open(io.BytesIO(png_bytes(8, 8))).convert("RGB").getpixel((0, 0))
    assert files_under(integration_setup.output_dir) == before          # its file read back and removed
