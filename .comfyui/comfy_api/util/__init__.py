# This file only exists for backwards compatibility.
from comfy_api.latest._util import VideoContainer, VideoCodec, VideoComponents

__all__ = [
    "VideoContainer",
    "VideoCodec",
    "VideoComponents",
]
