"""The handler end to end against a fake ComfyUI: the contract, progress, and every fault a caller could meet.

The fake (tests/fake_comfyui.py) stands in only for faults a real ComfyUI cannot produce on demand; the real
ComfyUI path is covered in tests/integration.
"""

import base64
import io
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from handler.comfy_client import ComfyClient
from handler.config import Settings
from handler.job import MODEL_ID, Worker
from fake_comfyui import FakeComfyUI, load_json, object_info_for

WORKFLOWS = Path(__file__).resolve().parent.parent / "workflows"


@pytest.fixture
def fake():
    info = {}
    for path in sorted(WORKFLOWS.glob("*.api.json")):
        info.update(object_info_for(load_json(path)))
    # ComfyUI's own SaveImage, which callers' graphs use (the shipped ones save with FluxFastSaveImage)
    info.update(object_info_for({"2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}))
    server = FakeComfyUI(info).start()
    yield server
    server.stop()


def make_worker(fake, progress=None, **overrides):
    settings = replace(Settings.from_env({"COMFYUI_URL": fake.url}), **overrides)
    worker = Worker(settings, ComfyClient(settings.comfyui_url, 5), report_progress=progress)
    assert worker.prepare() == []
    return worker


def decode(image_json):
    return Image.open(io.BytesIO(base64.b64decode(image_json["image_base64"])))


def resolved(result):
    """`images` as a client of the list reads it (README): an entry with `same_as` is the field it names."""
    return [result[i["same_as"]] if "same_as" in i else i for i in result["images"]]


def test_prompt_in_png_out_in_the_contract(fake):
    result = make_worker(fake).handle({"id": "job-1", "input": {"prompt": "a lighthouse", "width": 512, "height": 768, "seed": 42}})
    assert result["status"] == "success" and result["model"] == MODEL_ID == "black-forest-labs/FLUX.1-dev"
    assert result["prompt"] == "a lighthouse" and result["seed"] == 42
    image = decode(result["image"])
    assert image.format == "PNG" and image.size == (512, 768)
    assert (result["image"]["width"], result["image"]["height"]) == (512, 768)
    assert result["images"][0] == {"same_as": "image", "width": 512, "height": 768, "format": "png"}
    assert result["timings"]["total_s"] >= result["timings"]["comfyui_execution_s"] >= 0
    sent = fake.prompts[-1]["prompt"]
    assert next(n for n in sent.values() if n["class_type"] == "KSampler")["inputs"]["seed"] == 42


def test_default_size_is_832x1536_and_random_seed_is_returned(fake):
    result = make_worker(fake).handle({"id": "j", "input": {"prompt": "x"}})
    assert decode(result["image"]).size == (832, 1536)
    sent = fake.prompts[-1]["prompt"]
    assert next(n for n in sent.values() if n["class_type"] == "KSampler")["inputs"]["seed"] == result["seed"]


def test_num_images_and_jpeg_output(fake):
    result = make_worker(fake).handle({"id": "j", "input": {"prompt": "x", "num_images": 3, "output_format": "jpeg", "quality": 80, "width": 256, "height": 256}})
    assert len(result["images"]) == 3
    assert all(decode(i).format == "JPEG" and i["format"] == "jpeg" for i in resolved(result))


def test_each_job_gets_its_own_output_prefix_so_cached_results_never_point_at_consumed_files(fake):
    worker = make_worker(fake)
    worker.handle({"id": "a", "input": {"prompt": "x", "seed": 1, "width": 256, "height": 256}})
    worker.handle({"id": "b", "input": {"prompt": "x", "seed": 1, "width": 256, "height": 256}})
    prefixes = [next(n for n in p["prompt"].values() if n["class_type"] == "FluxFastSaveImage")["inputs"]["filename_prefix"] for p in fake.prompts]
    assert prefixes[0] != prefixes[1]


def test_progress_reports_sampler_steps(fake):
    sent = []
    make_worker(fake, progress=lambda job, p: sent.append((job["id"], p))).handle({"id": "p", "input": {"prompt": "x", "num_inference_steps": 3, "width": 256, "height": 256}})
    assert sent and sent[-1][0] == "p"
    assert sent[-1][1]["value"] == 3 and sent[-1][1]["max"] == 3 and "step 3 of 3" in sent[-1][1]["message"]


def test_bad_input_is_one_error_and_the_next_job_runs(fake):
    worker = make_worker(fake)
    bad = worker.handle({"id": "bad", "input": {"prompt": "x", "width": 250}})
    assert set(bad) == {"error", "details"} and "'width'" in bad["error"] and "250" in bad["error"]
    assert worker.handle({"id": "no-input"})["details"]["field"] == "input"
    assert worker.handle({"id": "good", "input": {"prompt": "x", "width": 256, "height": 256}})["status"] == "success"


def test_validation_error_is_structured(fake):
    fake.mode = "validation"
    result = make_worker(fake).handle({"id": "v", "input": {"prompt": "x"}})
    assert result["details"]["type"] == "comfyui_validation_error"
    assert result["details"]["node_errors"]["1"]["errors"][0]["available"] == ["flux1-dev-fp8-e4m3fn.safetensors"]


def test_execution_error_names_the_node_without_traceback(fake):
    fake.mode = "exec_error"
    result = make_worker(fake).handle({"id": "e", "input": {"prompt": "x", "width": 256, "height": 256}})
    assert result["details"]["type"] == "comfyui_execution_error" and result["details"]["node_type"] == "KSampler"
    assert "RuntimeError" in result["error"] and "samplers.py" not in str(result)


def test_hung_prompt_times_out_and_is_interrupted(fake):
    fake.mode = "hang"
    worker = make_worker(fake, job_timeout_s=1.0)
    result = worker.handle({"id": "h", "input": {"prompt": "x", "width": 256, "height": 256, "num_inference_steps": 2}})
    assert result["details"]["type"] == "timeout" and "JOB_TIMEOUT_S" in result["error"]
    pid = fake.queue_deletes[-1]["delete"][0]
    assert fake.interrupts[-1] == {"prompt_id": pid}
    fake.mode = "ok"
    assert worker.handle({"id": "next", "input": {"prompt": "x", "width": 256, "height": 256}})["status"] == "success"


@pytest.mark.parametrize("mode", ["drop_ws", "no_ws"])
def test_lost_websocket_falls_back_to_polling_history(fake, mode):
    fake.mode = mode
    result = make_worker(fake).handle({"id": "d", "input": {"prompt": "x", "width": 256, "height": 256}})
    assert result["status"] == "success" and decode(result["image"]).size == (256, 256)


def test_an_output_node_reported_twice_returns_its_images_once(fake):
    # ComfyUI >= 0.30 sends a cached intermediate-output node's `executed` again at the end of a run.
    fake.mode = "resend_executed"
    result = make_worker(fake).handle({"id": "r", "input": {"prompt": "x", "width": 256, "height": 256, "num_images": 2}})
    assert result["status"] == "success" and len(result["images"]) == 2 and len(result["outputs"]) == 2


def test_comfyui_gone_is_a_clear_error_without_address(fake):
    worker = make_worker(fake)
    fake.stop()
    result = worker.handle({"id": "gone", "input": {"prompt": "x"}})
    assert result["details"]["type"] == "comfyui_unavailable" and result["refresh_worker"] is True
    assert "127.0.0.1" not in result["error"] and str(fake.port) not in result["error"]


def test_custom_api_workflow_runs_as_given_with_optional_fields(fake):
    graph = load_json(WORKFLOWS / "flux1-dev-t2i.api.json")
    result = make_worker(fake).handle({"id": "c", "input": {"workflow": graph, "prompt": "custom prompt", "width": 320, "height": 256}})
    assert result["status"] == "success" and decode(result["image"]).size == (320, 256)
    sent = fake.prompts[-1]["prompt"]
    assert next(n for n in sent.values() if n["class_type"] == "CLIPTextEncode")["inputs"]["text"] == "custom prompt"


def test_unexpected_exception_is_contained(fake, monkeypatch):
    worker = make_worker(fake)
    monkeypatch.setattr(worker.client, "run", lambda *a, **k: 1 / 0)
    result = worker.handle({"id": "boom", "input": {"prompt": "x"}})
    assert result["details"]["type"] == "internal_error" and "ZeroDivision" not in result["error"]


@pytest.fixture
def fake_real_info():
    """The fake serving a /object_info captured from a real ComfyUI v0.3.64 (tests/fixtures)."""
    server = FakeComfyUI(load_json(Path(__file__).parent / "fixtures" / "object_info.json")).start()
    yield server
    server.stop()


def test_ui_format_workflow_from_the_gui_is_converted_and_embedded_in_the_png_metadata(fake_real_info):
    ui_graph = load_json(WORKFLOWS / "flux1-dev-t2i.ui.json")
    result = make_worker(fake_real_info).handle({"id": "ui", "input": {"workflow": ui_graph, "prompt": "from the GUI", "width": 256, "height": 256}})
    assert result["status"] == "success"
    sent = fake_real_info.prompts[-1]
    assert next(n for n in sent["prompt"].values() if n["class_type"] == "CLIPTextEncode")["inputs"]["text"] == "from the GUI"
    # The PNG's GUI workflow carries the values that ran (issue 11), and nothing else changed.
    embedded = sent["extra_data"]["extra_pnginfo"]["workflow"]
    widgets = {n["title"]: n["widgets_values"] for n in embedded["nodes"] if n.get("title")}
    assert widgets["Prompt"] == ["from the GUI"]
    assert widgets["Image size"] == [256, 256, 1]
    assert widgets["Shift for image size"] == [1.15, 0.5, 256, 256]
    original = {n["title"]: n["widgets_values"] for n in ui_graph["nodes"] if n.get("title")}
    assert {k: v for k, v in widgets.items() if k not in ("Prompt", "Image size", "Shift for image size")} == \
        {k: v for k, v in original.items() if k not in ("Prompt", "Image size", "Shift for image size")}
    assert original["Prompt"] != ["from the GUI"]  # the caller's workflow itself is not modified


def test_input_images_are_checked_then_uploaded_before_the_prompt(fake):
    from fake_comfyui import png_bytes

    image_b64 = base64.b64encode(png_bytes(8, 8)).decode()
    graph = load_json(WORKFLOWS / "flux1-dev-t2i.api.json")
    result = make_worker(fake).handle({"id": "img", "input": {"workflow": graph, "images": [{"name": "face.png", "image": image_b64}]}})
    assert result["status"] == "success"
    (stored, data), = fake.uploads.items()
    assert stored.startswith("img-") and stored.endswith("/face.png") and data == png_bytes(8, 8)
    bad = make_worker(fake).handle({"id": "img2", "input": {"workflow": graph, "images": [{"name": "../../etc/x.png", "image": image_b64}]}})
    assert bad["details"]["field"].startswith("images[0]") and len(fake.prompts) == 1


def test_outputs_list_every_file_and_point_still_images_at_images(fake):
    result = make_worker(fake).handle({"id": "o", "input": {"prompt": "x", "num_images": 2, "width": 256, "height": 256}})
    assert [o["kind"] for o in result["outputs"]] == ["image", "image"]
    assert [o["images_index"] for o in result["outputs"]] == [0, 1]
    assert all(o["mime"] == "image/png" and o["node_id"] == "11" for o in result["outputs"])


def test_each_image_is_sent_once_and_the_original_image_field_still_decodes(fake):
    import json

    result = make_worker(fake).handle({"id": "once", "input": {"prompt": "x", "num_images": 2, "width": 256, "height": 320}})
    assert decode(result["image"]).size == (256, 320)  # the original diffusers client's read, unchanged
    assert result["images"][0] == {"same_as": "image", "width": 256, "height": 320, "format": "png"}
    assert decode(result[result["images"][0]["same_as"]]).size == (256, 320)  # how a client of `images` resolves it
    text = json.dumps(result)
    assert text.count('"image_base64"') == 2  # two images, two copies of bytes: `image` and `images[1]`
    assert decode(result["images"][1]).size == (256, 320)
    assert [o["images_index"] for o in result["outputs"]] == [0, 1]


def test_legacy_image_false_gives_a_uniform_images_list_and_no_image_field(fake):
    result = make_worker(fake).handle({"id": "u", "input": {"prompt": "x", "width": 256, "height": 256, "legacy_image": False}})
    assert "image" not in result and decode(result["images"][0]).size == (256, 256)
    bad = make_worker(fake).handle({"id": "u2", "input": {"prompt": "x", "legacy_image": "no"}})
    assert bad["details"]["type"] == "invalid_input" and bad["details"]["field"] == "legacy_image"


def test_preflight_counts_one_copy_per_image(fake, monkeypatch):
    from handler import payload

    seen = []
    real = payload.preflight
    monkeypatch.setattr(payload, "preflight", lambda **kw: seen.append(kw) or real(**kw))
    make_worker(fake).handle({"id": "pf", "input": {"prompt": "x", "num_images": 3, "width": 256, "height": 256}})
    assert seen and seen[0]["files"] == 3


def test_response_over_the_payload_limit_without_a_bucket_is_a_clear_error(fake):
    result = make_worker(fake, max_response_bytes=2000).handle({"id": "big", "input": {"prompt": "x", "width": 512, "height": 512}})
    assert result["details"]["type"] == "payload_too_large" and "bucket" in result["error"].lower()


def test_outputs_come_from_the_websocket_without_a_history_read(fake):
    result = make_worker(fake).handle({"id": "ws", "input": {"prompt": "x", "width": 256, "height": 256}})
    assert result["status"] == "success" and fake.history_reads == 0
    assert {"comfyui_connect_s", "comfyui_submit_s", "comfyui_history_s"} <= set(result["timings"])


def test_info_action_tells_a_power_user_what_will_run(fake_real_info):
    info = make_worker(fake_real_info).handle({"id": "i", "input": {"action": "info"}})
    assert info["comfyui_version"] == "0.3.64" and "H100" in info["devices"][0]["name"]
    assert info["models"]["diffusion_models"] == ["flux1-dev-fp8-e4m3fn.safetensors"]
    assert "t5xxl_fp8_e4m3fn.safetensors" in info["models"]["text_encoders"]
    assert "FluxFastPatch" in info["custom_nodes"]["flux_fast"]
    assert {"prompt", "width", "seed"} <= set(info["workflows"]["flux1-dev-t2i"]["parameters"])


def _png_b64(width=64, height=48):
    from fake_comfyui import png_bytes

    return base64.b64encode(png_bytes(width, height)).decode()


def test_img2img_workflow_by_name_takes_an_input_image_and_strength(fake):
    result = make_worker(fake).handle({"id": "i2i", "input": {
        "workflow_name": "flux1-dev-img2img", "prompt": "as a watercolor", "input_image": "photo.png",
        "images": [{"name": "photo.png", "image": _png_b64()}], "strength": 0.6, "width": 512, "height": 768}})
    assert result["status"] == "success" and decode(result["image"]).size == (512, 768)
    sent = {n["class_type"]: n["inputs"] for n in fake.prompts[-1]["prompt"].values()}
    # The caller's name is rewritten to this job's own input subfolder, where the upload went.
    assert sent["LoadImage"]["image"].startswith("i2i-") and sent["LoadImage"]["image"].endswith("/photo.png")
    assert sent["LoadImage"]["image"] in fake.uploads
    assert sent["KSampler"]["denoise"] == 0.6 and (sent["ImageScale"]["width"], sent["ImageScale"]["height"]) == (512, 768)
    assert sent["CLIPTextEncode"]["text"] == "as a watercolor"


@pytest.mark.parametrize("extra,field,fragment", [
    ({}, "input_image", "required by workflow 'flux1-dev-img2img'"),
    ({"input_image": "other.png"}, "input_image", "one of the entries in 'images'"),
    ({"input_image": "photo.png", "strength": 1.5}, "strength", "from 0 to 1"),
])
def test_img2img_input_errors_name_the_field(fake, extra, field, fragment):
    result = make_worker(fake).handle({"id": "bad", "input": {
        "workflow_name": "flux1-dev-img2img", "prompt": "x", "images": [{"name": "photo.png", "image": _png_b64()}], **extra}})
    assert result["details"]["field"] == field and fragment in result["error"]
    assert fake.prompts == []


def test_a_field_the_chosen_workflow_lacks_is_refused_not_ignored(fake):
    worker = make_worker(fake)
    t2i = worker.handle({"id": "s", "input": {"prompt": "x", "strength": 0.5}})
    assert t2i["details"]["type"] == "invalid_workflow" and "strength" in t2i["error"]
    i2i = worker.handle({"id": "n", "input": {"workflow_name": "flux1-dev-img2img", "prompt": "x", "input_image": "p.png",
                                              "images": [{"name": "p.png", "image": _png_b64()}], "num_images": 2}})
    assert "num_images" in i2i["error"]


def test_a_refused_workflow_uploads_nothing_and_queues_nothing(fake):
    graph = {"1": {"class_type": "LoadImage", "inputs": {"image": "/etc/secret.png"}},
             "11": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}
    result = make_worker(fake).handle({"id": "evil", "input": {"workflow": graph, "images": [{"name": "a.png", "image": _png_b64()}]}})
    assert result["details"]["type"] == "invalid_workflow"
    assert (result["details"]["node_id"], result["details"]["class_type"], result["details"]["input"]) == ("1", "LoadImage", "image")
    assert fake.uploads == {} and fake.prompts == []


def test_every_job_cleans_its_folders_and_an_interrupted_one_is_cleaned_again_later(fake, tmp_path):
    dirs = {name: tmp_path / name for name in ("input", "output", "temp")}
    for d in dirs.values():
        d.mkdir()
    fake.mode = "hang"
    worker = make_worker(fake, job_timeout_s=1.0, comfyui_input_dir=dirs["input"], comfyui_output_dir=dirs["output"],
                         comfyui_temp_dir=dirs["temp"])
    assert worker.handle({"id": "slow", "input": {"prompt": "x", "width": 256, "height": 256}})["details"]["type"] == "timeout"
    folder = next(n for n in fake.prompts[-1]["prompt"].values() if n["class_type"] == "FluxFastSaveImage")["inputs"]["filename_prefix"].split("/")[0]
    assert folder.startswith("slow-")
    late = dirs["output"] / folder / "flux_00001_.png"  # the interrupted prompt still saved its image
    late.parent.mkdir()
    late.write_bytes(b"png")
    fake.mode = "ok"
    assert worker.handle({"id": "next", "input": {"prompt": "x", "width": 256, "height": 256}})["status"] == "success"
    assert not late.parent.exists() and list(dirs["output"].iterdir()) == []


def test_a_gui_format_workflow_goes_through_the_same_policy(fake_real_info):
    ui_graph = load_json(Path(__file__).parent / "fixtures" / "ui" / "muted_bypassed.json")  # LoadImage "example.png"
    worker = make_worker(fake_real_info)
    refused = worker.handle({"id": "ui-evil", "input": {"workflow": ui_graph}})
    assert refused["details"]["type"] == "invalid_workflow" and refused["details"]["class_type"] == "LoadImage"
    assert fake_real_info.prompts == []
    ok = worker.handle({"id": "ui-ok", "input": {"workflow": ui_graph, "images": [{"name": "example.png", "image": _png_b64()}]}})
    assert ok.get("status") == "success", ok
    sent = next(n for n in fake_real_info.prompts[-1]["prompt"].values() if n["class_type"] == "LoadImage")
    assert sent["inputs"]["image"].startswith("ui-ok-") and sent["inputs"]["image"].endswith("/example.png")


# ---- LoRAs (issue 11) -------------------------------------------------------------------------------------------

def _lora_settings(folder, fmt="kohya"):
    from handler.config import LoraSettings
    from tools.standins import write_lora

    write_lora(folder / "style.safetensors", fmt)
    return LoraSettings(dirs=(folder,))


def test_a_listed_lora_is_checked_and_spliced_in_after_the_fast_path(fake_real_info, tmp_path):
    worker = make_worker(fake_real_info, loras=_lora_settings(tmp_path))
    result = worker.handle({"id": "lora", "input": {"prompt": "p", "width": 256, "height": 256,
                                                    "loras": [{"name": "style.safetensors", "strength": 0.6}]}})
    assert result["status"] == "success", result
    prompt = fake_real_info.prompts[-1]["prompt"]
    (lora,) = [n for n in prompt.values() if n["class_type"] == "LoraLoaderModelOnly"]
    fast = next(nid for nid, n in prompt.items() if n["class_type"] == "FluxFastPatch")
    assert lora["inputs"] == {"model": [fast, 0], "lora_name": "style.safetensors", "strength_model": 0.6}


def test_a_lora_comfyui_cannot_apply_is_refused_before_anything_is_queued(fake_real_info, tmp_path):
    worker = make_worker(fake_real_info, loras=_lora_settings(tmp_path, "sdxl"))
    result = worker.handle({"id": "bad-lora", "input": {"prompt": "p", "loras": [{"name": "style.safetensors"}]}})
    assert result["details"]["type"] == "invalid_input" and result["details"]["field"] == "loras[0].name"
    assert "must be a FLUX LoRA ComfyUI can apply: the file is for another model" in result["error"]
    assert fake_real_info.prompts == []


def test_an_unknown_lora_name_lists_what_is_available(fake_real_info, tmp_path):
    worker = make_worker(fake_real_info, loras=_lora_settings(tmp_path))
    result = worker.handle({"id": "x", "input": {"prompt": "p", "loras": [{"name": "missing.safetensors"}]}})
    assert result["details"]["field"] == "loras[0].name" and "available: style.safetensors" in result["error"]
    assert fake_real_info.prompts == []


def test_a_gui_workflow_with_loras_carries_no_gui_workflow_in_its_png(fake_real_info, tmp_path):
    """The caller's GUI workflow has no LoRA nodes: it would not reopen what ran, so it is left out."""
    worker = make_worker(fake_real_info, loras=_lora_settings(tmp_path))
    ui_graph = load_json(WORKFLOWS / "flux1-dev-t2i.ui.json")
    result = worker.handle({"id": "ui-lora", "input": {"workflow": ui_graph, "prompt": "x",
                                                       "loras": [{"name": "style.safetensors"}]}})
    assert result["status"] == "success", result
    sent = fake_real_info.prompts[-1]
    assert "workflow" not in (sent.get("extra_data") or {}).get("extra_pnginfo", {})
    assert any(n["class_type"] == "LoraLoaderModelOnly" for n in sent["prompt"].values())


def _lora_url_worker(fake, tmp_path) -> Worker:
    """A worker whose LoRA cache is under tmp_path/loras/dl and whose URL guard lets the local test server through."""
    from handler.config import LoraSettings
    from handler.url_fetch import AddressPolicy

    loras = LoraSettings(dirs=(tmp_path / "loras",), cache_dir=tmp_path / "loras" / "dl", cache_prefix="dl/",
                         allow_http=True)
    settings = replace(Settings.from_env({"COMFYUI_URL": fake.url}), loras=loras)
    worker = Worker(settings, ComfyClient(settings.comfyui_url, 5),
                    lora_policy=AddressPolicy(allow_networks=("127.0.0.1/32",)))
    assert worker.prepare() == []
    return worker


def test_a_lora_by_url_is_downloaded_once_and_handed_to_comfyui_by_its_cached_name(fake_real_info, tmp_path):
    from handler.lora_cache import cache_name
    from image_server import ImageServer, send
    from tools.standins import write_lora

    write_lora(tmp_path / "src.safetensors", "comfy")
    body = (tmp_path / "src.safetensors").read_bytes()
    worker = _lora_url_worker(fake_real_info, tmp_path)
    with ImageServer() as server:
        server.routes["/l.safetensors"] = lambda h: send(h, body, content_type="application/octet-stream")
        url = server.url("/l.safetensors")
        name = f"dl/{cache_name(url, None)}"
        job = {"prompt": "p", "width": 256, "height": 256, "loras": [{"url": url, "strength": 1.5}]}
        # ComfyUI does not list the file (its cache folder is not one of its loras folders): a clear error
        missing = worker.handle({"id": "u0", "input": job})
        assert missing["details"]["type"] == "invalid_workflow" and "not visible to ComfyUI" in missing["error"]
        fake_real_info.object_info["LoraLoaderModelOnly"]["input"]["required"]["lora_name"][0].append(name)
        for job_id in ("u1", "u2"):
            result = worker.handle({"id": job_id, "input": job})
            assert result["status"] == "success", result
            (lora,) = [n for n in fake_real_info.prompts[-1]["prompt"].values()
                       if n["class_type"] == "LoraLoaderModelOnly"]
            assert lora["inputs"]["lora_name"] == name and lora["inputs"]["strength_model"] == 1.5
        assert server.paths_requested() == ["/l.safetensors"]  # the first download was kept and reused
    assert (tmp_path / "loras" / name).read_bytes() == body


def test_a_callers_lora_loader_node_may_name_a_url_which_becomes_the_cached_file(fake_real_info, tmp_path):
    from handler.lora_cache import cache_name
    from image_server import ImageServer, send
    from tools.standins import write_lora

    write_lora(tmp_path / "src.safetensors", "diffusers")
    write_lora(tmp_path / "bad.safetensors", "sdxl")
    worker = _lora_url_worker(fake_real_info, tmp_path)
    graph = load_json(WORKFLOWS / "flux1-dev-t2i.api.json")
    graph["60"] = {"class_type": "LoraLoaderModelOnly", "inputs": {"model": ["12", 0], "lora_name": "", "strength_model": 0.9}}
    graph["8"]["inputs"]["model"] = ["60", 0]
    with ImageServer() as server:
        for name in ("src", "bad"):
            server.routes[f"/{name}.safetensors"] = lambda h, b=(tmp_path / f"{name}.safetensors").read_bytes(): send(h, b)
        good, bad = server.url("/src.safetensors"), server.url("/bad.safetensors")
        cached = f"dl/{cache_name(good, None)}"
        fake_real_info.object_info["LoraLoaderModelOnly"]["input"]["required"]["lora_name"][0].append(cached)
        graph["60"]["inputs"]["lora_name"] = good
        result = worker.handle({"id": "w1", "input": {"workflow": graph}})
        assert result["status"] == "success", result
        sent = fake_real_info.prompts[-1]["prompt"]
        assert sent["60"]["inputs"]["lora_name"] == cached and sent["60"]["inputs"]["strength_model"] == 0.9
        assert [n for n in sent.values() if n["class_type"] == "LoraLoaderModelOnly"] == [sent["60"]]
        graph["60"]["inputs"]["lora_name"] = bad
        refused = worker.handle({"id": "w2", "input": {"workflow": graph}})
        assert refused["details"]["field"] == "workflow node 60 lora_name" and "is for another model" in refused["error"]
        assert len(fake_real_info.prompts) == 1


def test_a_missing_required_field_reads_as_missing_not_as_a_bad_value(fake):
    result = make_worker(fake).handle({"id": "m", "input": {
        "workflow_name": "flux1-dev-img2img", "prompt": "x", "images": [{"name": "photo.png", "image": _png_b64()}]}})
    assert result["error"] == "Input 'input_image' is required by workflow 'flux1-dev-img2img'."
