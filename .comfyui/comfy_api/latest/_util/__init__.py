from .video_types import VideoContainer, VideoCodec, VideoComponents
from .geometry_types import VOXEL, MESH, SPLAT, File3D
from .image_types import SVG

__all__ = [
    # Utility Types
    "VideoContainer",
    "VideoCodec",
    "VideoComponents",
    "VOXEL",
    "MESH",
    "SPLAT",
    "File3D",
    "SVG",
]
