"""LoRAs on the real ComfyUI (stand-in DiT and stand-in LoRAs from tools.standins): a LoRA changes the image,
the same request without it gives back the no-LoRA image exactly (no patch left behind), and a LoRA ComfyUI
cannot apply is refused before sampling instead of being silently ignored."""

from __future__ import annotations

import base64
import io

from PIL import Image, ImageChops

SMALL = {"prompt": "a lighthouse", "seed": 31337, "width": 256, "height": 256, "num_inference_steps": 2}


def _pixels(response: dict) -> Image.Image:
    assert response.get("status") == "COMPLETED", response
    image = Image.open(io.BytesIO(base64.b64decode(response["output"]["image"]["image_base64"])))
    image.load()
    return image.convert("RGB")


def _differs(a: Image.Image, b: Image.Image) -> bool:
    return ImageChops.difference(a, b).getbbox() is not None


def test_a_lora_changes_the_image_and_removing_it_restores_the_plain_one_exactly(worker):
    plain = _pixels(worker.runsync(SMALL))
    with_lora = _pixels(worker.runsync({**SMALL, "loras": [{"name": "standin-kohya.safetensors", "strength": 1.0}]}))
    assert _differs(plain, with_lora), "the LoRA did not change the image: ComfyUI did not apply it"
    other = _pixels(worker.runsync({**SMALL, "loras": [{"name": "standin-diffusers.safetensors", "strength": 2}]}))
    assert _differs(plain, other) and _differs(with_lora, other)
    again = _pixels(worker.runsync(SMALL))
    assert not _differs(plain, again), "the image without a LoRA changed after LoRA requests: a patch was left behind"
    assert "lora key not loaded" not in worker.log_text()


def test_a_lora_comfyui_cannot_apply_is_refused_before_sampling(worker):
    for name, why in (("standin-sdxl.safetensors", "is for another model"),
                      ("standin-text_encoder.safetensors", "only text-encoder keys")):
        response = worker.runsync({**SMALL, "loras": [{"name": name}]})
        assert response.get("status") == "FAILED", response
        assert "loras[0].name" in response["error"] and why in response["error"], response
    response = worker.runsync({**SMALL, "loras": [{"name": "nope.safetensors"}]})
    assert response.get("status") == "FAILED" and "standin-kohya.safetensors" in response["error"], response
