"""`action: info` (handler/info.py) shows no server path and no LoRA downloaded by URL (issue 19, items 3 and 7)."""

from __future__ import annotations

from handler.info import describe


class InfoClient:
    """What describe() asks ComfyUI, answered as a worker with a compile failure and two URL LoRAs would."""

    def system_stats(self):
        return {"system": {"comfyui_version": "0.33.0"}, "devices": []}

    def model_folders(self):
        return ["loras", "vae"]

    def models(self, folder):
        return {"loras": ["style.safetensors", "_url_cache/url-" + "a" * 64 + ".safetensors"],
                "vae": ["ae.safetensors"]}[folder]

    def object_info(self, refresh=False):
        return {"FluxFastPatch": {"python_module": "custom_nodes.flux_fast"}}

    def fast_path_status(self):
        return {"patch": {"state": "failed", "reason": "OSError: [Errno 28] No space left: "
                          "'/runpod-volume/.cache/flux-fast/h100-2.11.pt2'; model unpatched"},
                "compiled": [{"artifact": "/opt/comfyui/compile-artifacts/x.bin", "error": None}]}


def test_the_fast_paths_status_carries_no_server_path():
    info = describe(InfoClient(), {}, hidden_prefix="_url_cache/")
    text = repr(info["fast_path"])
    assert "/runpod-volume" not in text and "/opt/comfyui" not in text and "<server path>" in text
    assert info["fast_path"]["patch"]["state"] == "failed" and "No space left" in text  # the cause stays readable


def test_loras_downloaded_by_url_are_not_listed():
    info = describe(InfoClient(), {}, hidden_prefix="_url_cache/")
    assert info["models"]["loras"] == ["style.safetensors"] and info["models"]["vae"] == ["ae.safetensors"]
