"""How much a caller's graph can make, bounded from what each node does, before ComfyUI runs it.

Why: a limit on input names (`batch_size`, `width` x `height`) misses every node that multiplies: chains of
RepeatLatentBatch each within the batch limit, LatentBatch fed itself twice per level, ImageScaleBy and
LatentUpscaleBy chains, ImagePadForOutpaint, a video latent's `length`, string concatenation doubling. A single
tensor operation of that size cannot be interrupted; it outlives the interrupt grace (or the host's memory) and
the worker has to be replaced for one request. So the worker follows sizes through the graph instead:

* Each node class a caller may use has a rule here (`RULES`): what its outputs' sizes are, given its inputs'
  sizes and its values (read as ComfyUI reads them, graph_values.py). An image, latent, mask or video is a
  `Size` (batch, frames, width, height, in image pixels: a latent counts as the image it decodes to); a string is
  a `Text` (characters). Outputs of other types (MODEL, CONDITIONING, ...) carry nothing to bound.
* Sizes are propagated from the sources (Empty*Image/Latent nodes, the job's own uploaded images) through every
  node, in dependency order, so a chain multiplies exactly as it would at run time.
* A node may not make more than the limits (`WORKFLOW_MAX_BATCH` images, `WORKFLOW_MAX_PIXELS` per frame,
  `WORKFLOW_MAX_BATCH` x `WORKFLOW_MAX_PIXELS` in all its frames together, `WORKFLOW_MAX_TEXT_CHARS` of text)
  unless it makes no more than its largest input (a large uploaded photo may still be inverted or scaled down).
* Classes without a rule here have outputs of unknown size. By default callers may not use them at all
  (`CALLER_NODES` is the default allow-list, workflow_policy.py); a deployer who adds classes
  (WORKFLOW_EXTRA_NODES, WORKFLOW_ALLOWED_NODES) vouches for them. A node with a rule that would grow an input of
  unknown size, or that takes a size from a value computed at run time (a link from a math node), is refused:
  its size cannot be bounded.

Every refusal is a `WorkflowError` (`invalid_workflow`) naming the node, its class, the input and the limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from .errors import WorkflowError, safe_text
from .graph_values import INVALID, MISSING, UNKNOWN, Reader, declared_inputs, input_type, is_link, known
from .graph_rules import WorkflowLimits

SIZED_TYPES = frozenset({"IMAGE", "LATENT", "MASK", "VIDEO"})
TEXT_TYPE = "STRING"


@dataclass(frozen=True)
class Size:
    """Upper bound of one image/latent/mask/video output, in image pixels."""

    batch: int
    frames: int
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def total(self) -> int:
        return self.batch * self.frames * self.pixels

    def describe(self) -> str:
        frames = f" x {self.frames} frames" if self.frames > 1 else ""
        return f"{self.batch} x {self.width}x{self.height}{frames}"


@dataclass(frozen=True)
class Text:
    chars: int


Estimate = Any  # Size | Text | None (unknown) per output slot; absent for types with nothing to bound


@dataclass(frozen=True)
class Upload:
    """What the worker knows of one uploaded image (image_bytes.py measured it)."""

    width: int
    height: int
    frames: int = 1


class _Refusal(Exception):
    def __init__(self, input_name: str | None, value: Any, rule: str):
        super().__init__(rule)
        self.input_name, self.value, self.rule = input_name, value, rule


class Node:
    """One node as its rule sees it: its values and its linked inputs' sizes."""

    def __init__(self, node_id: str, class_type: str, reader: Reader, sizes: Mapping[tuple[str, int], Estimate],
                 uploads: Mapping[str, Upload]):
        self.id, self.class_type, self.reader, self._sizes, self.uploads = node_id, class_type, reader, sizes, uploads
        self.inputs = reader.graph[node_id].get("inputs") or {}

    def number(self, name: str, *, default: float | None = None) -> float:
        value = self.reader.value(self.id, name)
        if value is MISSING and default is not None:
            return default
        if value is UNKNOWN:
            raise _Refusal(name, self.inputs.get(name), "must be a number written in the graph or given by a "
                           "primitive node: the worker bounds what this node makes from it before it runs")
        if value is INVALID or value is MISSING or isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _NotRunnable()
        if isinstance(value, float) and not math.isfinite(value):
            raise _NotRunnable()  # ComfyUI refuses NaN and Infinity itself (graph_rules refuses them earlier)
        # Beyond any limit anyway: kept there, so that sizes made from it stay finite (1e308 x 2 is inf, and
        # int(inf) raises) and the refusal names a number of readable length.
        return max(-_NUMBER_CAP, min(value, _NUMBER_CAP))

    def text(self, name: str) -> str | None:
        value = self.reader.value(self.id, name)
        return value if isinstance(value, str) else None

    def size(self, name: str) -> Any:
        """The estimate of a linked input: Size, Text, None (unknown); MISSING when not linked."""
        raw = self.inputs.get(name)
        if not is_link(raw) or not isinstance(raw[1], int):
            return MISSING
        return self._sizes.get((raw[0], raw[1]))

    def known_size(self, name: str) -> Size | None:
        """A linked input's Size, refusing when it is unknown (this node would grow it)."""
        got = self.size(name)
        if got is None:
            src = self.inputs.get(name)
            found = self.reader.source(src) if is_link(src) else None
            where = f"node {safe_text(found[0], 64)} ({safe_text(found[1], 64)})" if found else "another node"
            raise _Refusal(name, src, f"comes from {where}, whose output size this worker does not model, and this "
                           "node can make it larger, so what it makes cannot be bounded")
        return got if isinstance(got, Size) else None

    def linked_sizes(self) -> list[Any]:
        return [self._sizes.get((v[0], v[1])) for v in self.inputs.values() if is_link(v) and isinstance(v[1], int)
                and (v[0], v[1]) in self._sizes]


class _NotRunnable(Exception):
    """A value ComfyUI refuses at validation: the graph never runs, so there is nothing to bound."""


# ---- what each node does ----------------------------------------------------------------------------------

_NUMBER_CAP = 2**62


def _int(x: float) -> int:
    return min(max(int(math.ceil(x)), 0), _NUMBER_CAP)


def made(batch: str | None = "batch_size", length: str | None = None, width: str = "width",
         height: str = "height") -> Callable[[Node], list[Estimate]]:
    """Sources: a new image/latent of width x height (x length frames) x batch."""
    def rule(node: Node) -> list[Estimate]:
        b = node.number(batch, default=1) if batch else 1
        frames = node.number(length, default=1) if length else 1
        return [Size(_int(b), _int(frames), _int(node.number(width)), _int(node.number(height)))]
    return rule


def keeps(*names: str) -> Callable[[Node], list[Estimate]]:
    """Outputs no larger than the largest of the named inputs (every sized input when none are named)."""
    def rule(node: Node) -> list[Estimate]:
        found = [node.size(n) for n in names] if names else node.linked_sizes()
        found = [s for s in found if s is not MISSING]
        if any(s is None for s in found):
            return [None]
        sizes = [s for s in found if isinstance(s, Size)]
        texts = [s for s in found if isinstance(s, Text)]
        if sizes:
            return [Size(max(s.batch for s in sizes), max(s.frames for s in sizes), max(s.width for s in sizes),
                         max(s.height for s in sizes))]
        if texts:
            return [Text(max(t.chars for t in texts))]
        return [None] if not found else [Text(0)]
    return rule


def scaled_by(image: str, factor: str = "scale_by") -> Callable[[Node], list[Estimate]]:
    def rule(node: Node) -> list[Estimate]:
        s = node.number(factor)
        size = node.known_size(image) if s > 1 else node.size(image)
        if not isinstance(size, Size):
            return [size if size is not MISSING else None]
        return [Size(size.batch, size.frames, _int(size.width * s), _int(size.height * s))]
    return rule


def scaled_to(image: str, width: str = "width", height: str = "height") -> Callable[[Node], list[Estimate]]:
    """ImageScale/LatentUpscale: a new width and height; 0 keeps the input's aspect from the other side."""
    def rule(node: Node) -> list[Estimate]:
        w, h = node.number(width), node.number(height)
        size = node.known_size(image) if (w == 0 or h == 0) else node.size(image)
        # An input of unknown size (from a class a deployer added): its new pixel size is still bounded.
        base = size if isinstance(size, Size) else Size(1, 1, 1, 1)
        if w == 0 and h == 0:
            w, h = base.width, base.height
        elif w == 0:
            w = base.width * h / max(base.height, 1)
        elif h == 0:
            h = base.height * w / max(base.width, 1)
        return [Size(base.batch, base.frames, _int(w), _int(h))]
    return rule


def to_total_pixels(image: str = "image", megapixels: str = "megapixels") -> Callable[[Node], list[Estimate]]:
    def rule(node: Node) -> list[Estimate]:
        size = node.known_size(image)
        if size is None:
            return [None]
        target = node.number(megapixels) * 1024 * 1024
        steps = node.number("resolution_steps", default=1)
        if target <= 0 or steps < 1:
            raise _NotRunnable()  # under ComfyUI's minimums (0.01 megapixels, 1 step): it refuses them itself
        s = math.sqrt(target / max(size.pixels, 1))
        # Each side is rounded to a multiple of resolution_steps (up to 256): at most half a step more.
        return [Size(size.batch, size.frames, _int(size.width * s + steps / 2) + 1, _int(size.height * s + steps / 2) + 1)]
    return rule


def repeated(samples: str, amount: str = "amount") -> Callable[[Node], list[Estimate]]:
    def rule(node: Node) -> list[Estimate]:
        n = node.number(amount)
        size = node.known_size(samples) if n > 1 else node.size(samples)
        if not isinstance(size, Size):
            return [None]
        return [Size(size.batch * _int(n), size.frames, size.width, size.height)]
    return rule


def batched(*names: str) -> Callable[[Node], list[Estimate]]:
    """ImageBatch/LatentBatch: the batches one after the other, at the largest width and height."""
    def rule(node: Node) -> list[Estimate]:
        sizes = [node.known_size(n) for n in names if node.size(n) is not MISSING]
        sizes = [s for s in sizes if s is not None]
        if not sizes:
            return [None]
        return [Size(sum(s.batch for s in sizes), max(s.frames for s in sizes), max(s.width for s in sizes),
                     max(s.height for s in sizes))]
    return rule


def concatenated(a: str = "samples1", b: str = "samples2", dim: str = "dim") -> Callable[[Node], list[Estimate]]:
    """LatentConcat: two latents joined along x, y or t."""
    def rule(node: Node) -> list[Estimate]:
        one, two = node.known_size(a), node.known_size(b)
        if one is None or two is None:
            return [None]
        axis = str(node.text(dim) or "x").lstrip("-")
        return [Size(max(one.batch, two.batch), one.frames + two.frames if axis == "t" else max(one.frames, two.frames),
                     one.width + two.width if axis == "x" else max(one.width, two.width),
                     one.height + two.height if axis == "y" else max(one.height, two.height))]
    return rule


def padded(image: str = "image") -> Callable[[Node], list[Estimate]]:
    """ImagePadForOutpaint: the image grown by its four margins (IMAGE and MASK)."""
    def rule(node: Node) -> list[Estimate]:
        size = node.known_size(image)
        if size is None:
            return [None, None]
        w = size.width + _int(node.number("left")) + _int(node.number("right"))
        h = size.height + _int(node.number("top")) + _int(node.number("bottom"))
        out = Size(size.batch, size.frames, w, h)
        return [out, out]
    return rule


def uploaded(image: str = "image") -> Callable[[Node], list[Estimate]]:
    """LoadImage/LoadImageMask: the job's own upload, as measured (each frame one image of the batch)."""
    def rule(node: Node) -> list[Estimate]:
        value = node.reader.value(node.id, image)
        up = node.uploads.get(value) if isinstance(value, str) else None
        if up is None:
            return [None, None]
        size = Size(up.frames, 1, up.width, up.height)
        return [size, size]
    return rule


def text_literal(name: str = "value") -> Callable[[Node], list[Estimate]]:
    def rule(node: Node) -> list[Estimate]:
        value = node.text(name)
        return [Text(len(value)) if value is not None else None]
    return rule


def _chars(node: Node, name: str) -> int | None:
    """Characters of a STRING input: its literal or its linked estimate; None when unknown."""
    got = node.size(name)
    if got is MISSING:
        value = node.text(name)
        return len(value) if value is not None else 0
    return got.chars if isinstance(got, Text) else None


def text_joined(*names: str) -> Callable[[Node], list[Estimate]]:
    def rule(node: Node) -> list[Estimate]:
        parts = [_chars(node, n) for n in names]
        if any(p is None for p in parts):
            raise _Refusal(names[0], node.inputs.get(names[0]), "comes from a node whose text length this worker "
                           "does not model, and joining can make it longer, so it cannot be bounded")
        return [Text(sum(parts))]
    return rule


def text_replaced(string: str = "string", replace: str = "replace") -> Callable[[Node], list[Estimate]]:
    """StringReplace: every occurrence replaced; with an empty `find` Python inserts at every position."""
    def rule(node: Node) -> list[Estimate]:
        s, r = _chars(node, string), _chars(node, replace)
        if s is None or r is None:
            raise _Refusal(string, node.inputs.get(string), "comes from a node whose text length this worker does "
                           "not model, and replacing can make it longer, so it cannot be bounded")
        return [Text((s + 1) * (r + 1))]
    return rule


def nothing_to_bound(node: Node) -> list[Estimate]:
    return []


RULES: dict[str, Callable[[Node], list[Estimate]]] = {
    # sources
    **{c: made() for c in ("EmptyImage", "EmptyLatentImage", "EmptySD3LatentImage", "EmptyFlux2LatentImage",
                           "EmptyHunyuanImageLatent", "EmptyChromaRadianceLatentImage")},
    **{c: made(length="length") for c in ("EmptyHunyuanLatentVideo", "EmptyMochiLatentVideo", "EmptyLTXVLatentVideo",
                                          "EmptyCosmosLatentVideo", "EmptyHunyuanVideo15Latent")},
    "SolidMask": made(batch=None),
    "LoadImage": uploaded(), "LoadImageMask": uploaded(),
    # growth
    "RepeatLatentBatch": repeated("samples"), "RepeatImageBatch": repeated("image"),
    "LatentBatch": batched("samples1", "samples2"), "ImageBatch": batched("image1", "image2"),
    "LatentConcat": concatenated(),
    "ImageScaleBy": scaled_by("image"), "LatentUpscaleBy": scaled_by("samples"),
    "ImageScale": scaled_to("image"), "LatentUpscale": scaled_to("samples"),
    "ImageScaleToTotalPixels": to_total_pixels(),
    "ImagePadForOutpaint": padded(),
    # the same size out as in
    **{c: keeps() for c in ("ImageInvert", "VAEDecode", "VAEDecodeTiled", "VAEEncode", "FluxFastDecode",
                            "MaskToImage", "ImageToMask", "ImageBlur", "ImageSharpen", "ImageCrop", "ImageFromBatch",
                            "LatentFromBatch", "SetLatentNoiseMask", "ImageCompositeMasked", "LatentBlend",
                            "CreateVideo", "GetVideoComponents", "InvertMask", "GrowMask", "ThresholdMask",
                            "ImageColorToMask", "SplitImageWithAlpha", "JoinImageWithAlpha")},
    **{c: keeps("latent_image") for c in ("KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced")},
    # text
    "PrimitiveString": text_literal(), "PrimitiveStringMultiline": text_literal(),
    "StringConcatenate": text_joined("string_a", "string_b", "delimiter"),
    "StringReplace": text_replaced(),
    **{c: keeps("string") for c in ("StringSubstring", "StringTrim", "CaseConverter")},
}

# Sources whose size was measured and bounded already (the job's uploads: INPUT_IMAGE_* limits).
MEASURED = frozenset({"LoadImage", "LoadImageMask"})
# Classes callers may use whose outputs carry nothing this module bounds (models, conditioning, numbers) or that
# only save what they are given. CLIPTextEncode's text is bounded as every literal string is.
NO_SIZE = frozenset({
    "PrimitiveInt", "PrimitiveFloat", "PrimitiveBoolean", "StringLength", "StringContains", "StringCompare",
    "CheckpointLoaderSimple", "UNETLoader", "DualCLIPLoader", "CLIPLoader", "VAELoader", "LoraLoaderModelOnly",
    "FluxFastUNETLoader", "FluxFastDualCLIPLoader", "FluxFastCLIPLoader", "FluxFastVAELoader",
    "LoraLoader", "CLIPSetLastLayer", "ModelSamplingFlux", "ModelSamplingDiscrete", "ModelSamplingSD3",
    "FluxFastPatch", "CLIPTextEncode", "CLIPTextEncodeFlux", "FluxGuidance", "ConditioningZeroOut",
    "ConditioningSetTimestepRange", "ReferenceLatent", "FluxKontextImageScale", "BasicGuider", "CFGGuider",
    "RandomNoise", "DisableNoise", "KSamplerSelect", "BasicScheduler", "BetaSamplingScheduler",
    "SaveImage", "FluxFastSaveImage", "PreviewImage", "SaveAnimatedWEBP", "SaveAnimatedPNG", "SaveWEBM", "SaveVideo", "LoadAudio",
    "SaveAudio", "PreviewAudio", "PreviewAny",
    # Custom sampling as FLUX workflows use it: sigmas that only shrink or change values, schedulers whose length
    # is `steps` as BasicScheduler's is (ExtendIntermediateSigmas multiplies it, so it is not here), sampler settings.
    "SplitSigmas", "SplitSigmasDenoise", "FlipSigmas", "SetFirstSigma", "KarrasScheduler", "ExponentialScheduler",
    "PolyexponentialScheduler", "LaplaceScheduler", "VPScheduler", "SDTurboScheduler", "AlignYourStepsScheduler",
    "GITSScheduler", "OptimalStepsScheduler", "SamplerEulerAncestral", "SamplerEulerAncestralCFGPP", "SamplerLMS",
    "SamplerDPMPP_2M_SDE", "SamplerDPMPP_3M_SDE", "SamplerDPMPP_SDE", "SamplerDPMPP_2S_Ancestral",
    "SamplerDPMAdaptative", "SamplerER_SDE",
    # ControlNets (FLUX Union and the like): a model from the list ComfyUI shows, and conditioning that refers to a
    # control image some other node made and bounded.
    "ControlNetLoader", "DiffControlNetLoader", "SetUnionControlNetType", "ControlNetApplyAdvanced",
    "ControlNetApplySD3",
})
# FluxKontextImageScale picks one of a fixed list of sizes around 1 megapixel.
RULES["FluxKontextImageScale"] = lambda node: [Size(_batch_of(node.size("image")), 1, 1568, 1568)]
CALLER_NODES = frozenset(RULES) | NO_SIZE


def _batch_of(size: Any) -> int:
    return size.batch if isinstance(size, Size) else 1


# ---- the walk ------------------------------------------------------------------------------------------------

def check(graph: Mapping[str, Any], object_info: Mapping[str, Any], limits: WorkflowLimits,
          uploads: Mapping[str, Upload] | None = None) -> dict[tuple[str, int], Estimate]:
    """Refuse (WorkflowError) the first node that would make more than the limits; return every output's bound."""
    reader = Reader(graph, object_info)
    uploads = uploads or {}
    sizes: dict[tuple[str, int], Estimate] = {}
    for node_id in _dependency_order(graph):
        node = graph[node_id]
        class_type = node.get("class_type")
        _check_literal_texts(node_id, class_type, node, reader, limits)
        outputs = list((object_info.get(class_type) or {}).get("output") or [])
        rule = RULES.get(class_type)
        estimates: list[Estimate]
        if rule is None:
            _check_named_sizes(node_id, class_type, reader, limits)
            estimates = [None] * len(outputs)
        else:
            view = Node(node_id, class_type, reader, sizes, uploads)
            try:
                estimates = rule(view)
            except _NotRunnable:
                estimates = [None] * len(outputs)
            except _Refusal as refusal:
                raise _refused(node_id, class_type, refusal.input_name, refusal.value, refusal.rule, None) from None
            if class_type not in MEASURED:
                _check_estimates(node_id, class_type, estimates, view.linked_sizes(), limits)
        for slot, kind in enumerate(outputs):
            if kind in SIZED_TYPES or kind == TEXT_TYPE:
                sizes[(node_id, slot)] = estimates[slot] if slot < len(estimates) else (
                    estimates[0] if estimates and kind in SIZED_TYPES else None)
    return sizes


def _check_literal_texts(node_id: str, class_type: Any, node: Mapping[str, Any], reader: Reader,
                         limits: WorkflowLimits) -> None:
    """Every literal string of the graph within WORKFLOW_MAX_TEXT_CHARS (a prompt is encoded whole)."""
    declared = declared_inputs(reader.object_info, class_type)
    for name, raw in (node.get("inputs") or {}).items():
        if name in declared and input_type(declared[name]) == TEXT_TYPE and not is_link(raw):
            value = reader.literal(node_id, name, raw)
            if isinstance(value, str) and len(value) > limits.max_text_chars:
                raise _refused(node_id, class_type, name, None,
                               f"holds {len(value)} characters, over this worker's limit of {limits.max_text_chars} "
                               "(WORKFLOW_MAX_TEXT_CHARS)", "max_text_chars")


def _check_named_sizes(node_id: str, class_type: Any, reader: Reader, limits: WorkflowLimits) -> None:
    """For a class without a rule (one a deployer added, or one that makes nothing sized): its `batch_size` and
    `width` x `height` inputs, where they are numbers, within the limits as a Size rule would hold them."""
    values = {n: reader.value(node_id, n) for n in ("batch_size", "width", "height")}
    numbers = {n: v for n, v in values.items() if known(v) and isinstance(v, (int, float)) and not isinstance(v, bool)}
    batch = numbers.get("batch_size")
    if batch is not None and batch > limits.max_batch:
        raise _refused(node_id, class_type, "batch_size", batch, f"asks for a batch of {batch}, over this worker's "
                       f"batch limit of {limits.max_batch} (WORKFLOW_MAX_BATCH)", "max_batch")
    width, height = numbers.get("width"), numbers.get("height")
    if width is not None and height is not None and width * height > limits.max_pixels:
        raise _refused(node_id, class_type, None, width * height, f"asks for {width}x{height} images, over this "
                       f"worker's limit of {limits.max_pixels} pixels per image (WORKFLOW_MAX_PIXELS)", "max_pixels")


def _check_estimates(node_id: str, class_type: str, estimates: list[Estimate], inputs: list[Any],
                     limits: WorkflowLimits) -> None:
    """A node may not make more than the limits, unless no more than its largest input (already bounded)."""
    in_sizes = [s for s in inputs if isinstance(s, Size)]
    in_texts = [s for s in inputs if isinstance(s, Text)]
    for est in estimates:
        if isinstance(est, Size):
            batch_in = max((s.batch for s in in_sizes), default=0)
            pixels_in = max((s.pixels for s in in_sizes), default=0)
            total_in = max((s.total for s in in_sizes), default=0)
            if est.batch > limits.max_batch and est.batch > batch_in:
                raise _refused(node_id, class_type, None, est.batch,
                               f"makes a batch of {est.batch} ({est.describe()}), over this worker's batch limit of "
                               f"{limits.max_batch} (WORKFLOW_MAX_BATCH)", "max_batch", est)
            if est.pixels > limits.max_pixels and est.pixels > pixels_in:
                raise _refused(node_id, class_type, None, est.pixels,
                               f"makes {est.width}x{est.height} images ({est.pixels} pixels), over this worker's "
                               f"limit of {limits.max_pixels} pixels per image (WORKFLOW_MAX_PIXELS)", "max_pixels", est)
            total_limit = limits.max_batch * limits.max_pixels
            if est.total > total_limit and est.total > total_in:
                raise _refused(node_id, class_type, None, est.total,
                               f"makes {est.describe()} = {est.total} pixels in all, over this worker's limit of "
                               f"{total_limit} (WORKFLOW_MAX_BATCH x WORKFLOW_MAX_PIXELS; video frames count as "
                               "images)", "max_total_pixels", est)
        elif isinstance(est, Text):
            chars_in = max((t.chars for t in in_texts), default=0)
            if est.chars > limits.max_text_chars and est.chars > chars_in:
                raise _refused(node_id, class_type, None, est.chars,
                               f"makes a text of up to {est.chars} characters, over this worker's limit of "
                               f"{limits.max_text_chars} (WORKFLOW_MAX_TEXT_CHARS)", "max_text_chars")


def _refused(node_id: str, class_type: Any, input_name: str | None, value: Any, rule: str, limit: str | None,
             size: Size | None = None) -> WorkflowError:
    where = f"node {safe_text(node_id, 64)} ({safe_text(class_type, 64)})" + (
        f" input '{safe_text(input_name, 64)}'" if input_name else "")
    details: dict[str, Any] = {"node_id": node_id, "class_type": class_type, "input": input_name, "rule": rule}
    if limit:
        details["limit"] = limit
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        details["value"] = value
    if size is not None:
        details.update(batch=size.batch, frames=size.frames, width=size.width, height=size.height)
    return WorkflowError(f"Workflow {where} is refused: it {rule}.", details)


def _dependency_order(graph: Mapping[str, Any]) -> Iterable[str]:
    """Node ids, each after the nodes it links from; nodes on a cycle (ComfyUI refuses those) come last, once."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    for start in graph:
        if state.get(start):
            continue
        stack: list[tuple[str, Iterable[str]]] = [(start, iter(_parents(graph, start)))]
        state[start] = 1
        while stack:
            node_id, parents = stack[-1]
            for parent in parents:
                if not state.get(parent):
                    state[parent] = 1
                    stack.append((parent, iter(_parents(graph, parent))))
                    break
            else:
                stack.pop()
                state[node_id] = 2
                order.append(node_id)
    return order


def _parents(graph: Mapping[str, Any], node_id: str) -> list[str]:
    inputs = graph[node_id].get("inputs") or {}
    return [v[0] for v in inputs.values() if is_link(v) and isinstance(v[0], str) and v[0] in graph]
