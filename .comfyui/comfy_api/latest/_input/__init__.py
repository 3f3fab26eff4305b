from .basic_types import ImageInput, AudioInput, MaskInput, LatentInput
from .curve_types import CurvePoint, CurveInput, MonotoneCubicCurve, LinearCurve
from .range_types import RangeInput
from .video_types import VideoInput

__all__ = [
    "ImageInput",
    "AudioInput",
    "VideoInput",
    "MaskInput",
    "LatentInput",
    "CurvePoint",
    "CurveInput",
    "MonotoneCubicCurve",
    "LinearCurve",
    "RangeInput",
]
