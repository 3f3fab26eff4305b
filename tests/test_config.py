"""Configuration is read once, with defaults, and a bad value stops the start naming the variable."""

from pathlib import Path

import pytest

from handler.config import Settings
from handler.errors import ConfigError


def test_defaults():
    settings = Settings.from_env({})
    assert settings.comfyui_url == "http://127.0.0.1:8188"
    assert settings.job_timeout_s == 600 and settings.warmup_steps == 0
    assert not settings.bucket.configured


def test_values_are_parsed():
    settings = Settings.from_env({"COMFYUI_URL": "http://10.0.0.2:9000/", "JOB_TIMEOUT_S": "30", "WARMUP_STEPS": "2",
                                  "BUCKET_NAME": "b", "BUCKET_PREFIX": "/out/", "LOG_LEVEL": "debug"})
    assert settings.comfyui_url == "http://10.0.0.2:9000"
    assert settings.job_timeout_s == 30.0 and settings.warmup_steps == 2 and settings.log_level == "DEBUG"
    assert settings.bucket.configured and settings.bucket.prefix == "out"


@pytest.mark.parametrize("name,value", [("JOB_TIMEOUT_S", "soon"), ("JOB_TIMEOUT_S", "-1"), ("COMFYUI_URL", "localhost:8188"),
                                        ("WARMUP_STEPS", "-2"), ("LOG_LEVEL", "LOUD"), ("MAX_RESPONSE_BYTES", "0"),
                                        ("FLUX_FAST_COMPUTE", "int4"), ("FLUX_FAST_COMPILE", "maybe"),
                                        ("FLUX_FAST_DECODE", "whole"), ("FLUX_FAST_VRAM_MARGIN_GB", "lots")])
def test_bad_values_name_the_variable(name, value):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({name: value})
    assert name in caught.value.message


def test_secrets_are_not_in_repr():
    settings = Settings.from_env({"BUCKET_SECRET_ACCESS_KEY": "s3cr3t", "BUCKET_ACCESS_KEY_ID": "AKIA123"})
    assert "s3cr3t" not in repr(settings) and "AKIA123" not in repr(settings)


def test_warmup_sizes_are_parsed_and_checked():
    assert Settings.from_env({}).warmup_sizes == ((832, 1536),)
    assert Settings.from_env({"WARMUP_SIZES": "832x1536, 1024X1024"}).warmup_sizes == ((832, 1536), (1024, 1024))
    for bad in ("832", "832x1530", "4096x4096"):
        with pytest.raises(ConfigError) as caught:
            Settings.from_env({"WARMUP_SIZES": bad})
        assert "WARMUP_SIZES" in caught.value.message


def test_input_image_limits_are_part_of_the_settings():
    assert Settings.from_env({"INPUT_IMAGE_MAX_BYTES": "1000"}).input_limits.max_bytes == 1000
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"INPUT_URL_DEADLINE_S": "soon"})
    assert "INPUT_URL_DEADLINE_S" in caught.value.message


def test_comfyui_input_and_temp_folders_are_where_comfyui_puts_them():
    from pathlib import Path

    # ComfyUI's defaults under COMFYUI_PATH (what the image runs)
    s = Settings.from_env({"COMFYUI_PATH": "/comfyui", "COMFYUI_OUTPUT_DIR": "/comfyui/output"})
    assert (s.comfyui_input_dir, s.comfyui_temp_dir) == (Path("/comfyui/input"), Path("/comfyui/temp"))
    # the flags ComfyUI is started with win over its defaults; --temp-directory D means D/temp
    s = Settings.from_env({"COMFYUI_PATH": "/comfyui", "COMFYUI_ARGS": "--cpu --input-directory /data/in --temp-directory=/scratch"})
    assert (s.comfyui_input_dir, s.comfyui_temp_dir) == (Path("/data/in"), Path("/scratch/temp"))
    s = Settings.from_env({"COMFYUI_ARGS": "--base-directory /base"})
    assert (s.comfyui_input_dir, s.comfyui_temp_dir) == (Path("/base/input"), Path("/base/temp"))
    # explicit settings win over everything
    s = Settings.from_env({"COMFYUI_ARGS": "--input-directory /data/in", "COMFYUI_INPUT_DIR": "/x", "COMFYUI_TEMP_DIR": "/y"})
    assert (s.comfyui_input_dir, s.comfyui_temp_dir) == (Path("/x"), Path("/y"))
    # no ComfyUI path at all: beside the output folder, else unknown
    s = Settings.from_env({"COMFYUI_OUTPUT_DIR": "/srv/comfy/output"})
    assert (s.comfyui_input_dir, s.comfyui_temp_dir) == (Path("/srv/comfy/input"), Path("/srv/comfy/temp"))
    assert Settings.from_env({}).comfyui_input_dir is None


def test_node_class_lists_for_caller_workflows():
    from handler.workflow_policy import DENIED_NODES

    s = Settings.from_env({})
    assert s.workflow_allowed_nodes is None and s.workflow_denied_nodes == DENIED_NODES and "VAESave" in DENIED_NODES
    s = Settings.from_env({"WORKFLOW_ALLOWED_NODES": "LoadImage, SaveImage,Image Resize (custom)",
                           "WORKFLOW_DENIED_NODES": "PreviewAny"})
    assert s.workflow_allowed_nodes == {"LoadImage", "SaveImage", "Image Resize (custom)"}
    assert s.workflow_denied_nodes == DENIED_NODES | {"PreviewAny"}
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"WORKFLOW_ALLOWED_NODES": " , "})
    assert "WORKFLOW_ALLOWED_NODES" in caught.value.message


# ---- LoRAs ------------------------------------------------------------------------------------------------------

def test_lora_defaults_without_a_network_volume(tmp_path):
    from handler.config import _lora_settings

    s = _lora_settings({"COMFYUI_PATH": "/comfyui"}, volume_loras=tmp_path / "no-volume" / "loras")
    assert s.dirs == (Path("/comfyui/models/loras"), tmp_path / "no-volume" / "loras")
    assert s.cache_dir == Path("/comfyui/models/loras/_url_cache") and s.cache_prefix == "_url_cache/"
    assert (s.cache_max_bytes, s.fetch.max_bytes, s.fetch.deadline_s, s.allow_http) == (20_000_000_000, 2_000_000_000, 300.0, False)
    assert _lora_settings({}, volume_loras=tmp_path / "no-volume" / "loras").cache_dir is None  # URLs refused


def test_lora_cache_goes_on_the_network_volume_when_one_is_mounted(tmp_path):
    from handler.config import _lora_settings

    volume = tmp_path / "models"
    volume.mkdir()
    s = _lora_settings({"COMFYUI_PATH": "/comfyui"}, volume_loras=volume / "loras")
    assert s.cache_dir == volume / "loras" / "_url_cache" and s.cache_prefix == "_url_cache/"


def test_lora_variables_are_read_and_checked():
    s = Settings.from_env({"LORA_DIRS": "/a/loras:/b/loras", "LORA_CACHE_DIR": "/b/loras/dl/cache",
                           "LORA_CACHE_MAX_BYTES": "1000", "LORA_URL_MAX_BYTES": "500", "LORA_URL_DEADLINE_S": "9",
                           "LORA_URL_ALLOW_HTTP": "true"}).loras
    assert s.dirs == (Path("/a/loras"), Path("/b/loras")) and s.cache_prefix == "dl/cache/"
    assert (s.cache_max_bytes, s.fetch.max_bytes, s.fetch.deadline_s, s.allow_http) == (1000, 500, 9.0, True)
    with pytest.raises(ConfigError, match="LORA_CACHE_DIR='/elsewhere' is invalid: it must be a subfolder"):
        Settings.from_env({"LORA_DIRS": "/a/loras", "LORA_CACHE_DIR": "/elsewhere"})
    for name, value in (("LORA_DIRS", "relative/loras"), ("LORA_CACHE_MAX_BYTES", "0"), ("LORA_URL_ALLOW_HTTP", "maybe")):
        with pytest.raises(ConfigError, match=name):
            Settings.from_env({name: value})

def test_png_compress_level_defaults_to_fast_and_is_checked():
    assert Settings.from_env({}).png_compress_level == 1
    assert Settings.from_env({"PNG_COMPRESS_LEVEL": "9"}).png_compress_level == 9
    for bad in ("10", "-1", "fast"):
        with pytest.raises(ConfigError, match="PNG_COMPRESS_LEVEL"):
            Settings.from_env({"PNG_COMPRESS_LEVEL": bad})


@pytest.mark.parametrize("name,value", [
    ("JOB_TIMEOUT_S", "inf"), ("JOB_TIMEOUT_S", "1e10"), ("COMFY_HTTP_TIMEOUT_S", "nan"),
    ("COMFYUI_URL", "http://[::1"), ("COMFYUI_URL", "http://127.0.0.1"), ("COMFYUI_URL", "http://h:99999"),
    ("COMFYUI_URL", "http://h:8188/x?y#z"), ("FLUX_FAST_VRAM_MARGIN_GB", "nan"), ("FLUX_FAST_VRAM_MARGIN_GB", "1e400"),
    ("INPUT_URL_DEADLINE_S", "nan"), ("INPUT_URL_READ_TIMEOUT_S", "inf"), ("BUCKET_PRESIGN_TTL_S", str(10**30)),
])
def test_values_that_would_break_a_job_later_are_refused_at_start(name, value):
    """inf seconds overflowed the job lock's timeout (every job an internal_error), a URL without its port pointed
    the handler at port 80 while start.sh started ComfyUI on 8188, NaN timeouts failed every URL image."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({name: value})
    assert name in caught.value.message


def test_blank_text_settings_are_not_set():
    settings = Settings.from_env({"BUCKET_NAME": " ", "BUCKET_ENDPOINT_URL": "  ", "COMFYUI_OUTPUT_DIR": " "})
    assert not settings.bucket.configured and settings.bucket.endpoint_url is None
    assert settings.comfyui_output_dir is None


def test_the_lora_cache_folder_is_judged_after_dot_dots_resolve(tmp_path):
    loras = tmp_path / "comfyui" / "models" / "loras"
    with pytest.raises(ConfigError, match="LORA_CACHE_DIR"):
        Settings.from_env({"COMFYUI_PATH": str(tmp_path / "comfyui"), "LORA_CACHE_DIR": f"{loras}/../../../etc"})


def test_a_bucket_half_configured_stops_the_start_with_one_line_not_a_traceback(monkeypatch, caplog):
    from handler import __main__ as entry

    monkeypatch.setenv("BUCKET_NAME", "b")
    monkeypatch.setenv("BUCKET_ACCESS_KEY_ID", "AKIA_TEST")
    monkeypatch.delenv("BUCKET_SECRET_ACCESS_KEY", raising=False)
    assert entry.main() == 2
    assert "configuration error" in caplog.text and "AKIA_TEST" not in caplog.text
