# This file only exists for backwards compatibility.
from comfy_api.latest._input.basic_types import (
    ImageInput,
    AudioInput,
    MaskInput,
    LatentInput,
)

__all__ = [
    "ImageInput",
    "AudioInput",
    "MaskInput",
    "LatentInput",
]
