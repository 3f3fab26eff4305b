"""Validation of `job["input"]`: the caller's JSON becomes one typed `Request`, or one `InputError`.

Accepted shapes (all fields optional except where noted):
- text-to-image, the diffusers handler's contract: `prompt` (required unless `workflow` is given), `width`,
  `height`, `guidance_scale`, `num_inference_steps`, `seed`, plus `num_images`, `output_format`, `quality`;
- image-to-image (`workflow_name: "flux1-dev-img2img"`): `input_image` (the name of one of `images`), `strength`;
- power users: `workflow` (a ComfyUI graph, API or UI format) or `workflow_name` (a shipped workflow), `images`
  (input files, checked by `input_files`), `include_previews`;
- LoRAs (handler/loras.py): `loras`, up to 4 `{"name" | "url", "strength", "sha256"}`, on any workflow;
- response shape: `legacy_image` (default true: the original `image` field carries the first image's bytes and
  `images[0]` refers to it; false: no `image`, every `images` entry carries its own bytes; outputs.core_images);
- introspection: `{"action": "info"}`.
Unknown fields are refused rather than ignored, so a typo (`num_steps`) never silently falls back to a default.
A field sent as `null` is a field left out (clients that serialise `None` get the default, not a refusal). Text
anywhere in the input must be valid Unicode: a lone UTF-16 surrogate (a string cut inside an emoji) could be
neither sent on to ComfyUI nor echoed back as UTF-8, so it is refused up front, naming where it is.
"""

from __future__ import annotations

import math
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from . import loras as lora_input
from .errors import LONE_SURROGATE, InputError

DEFAULTS = {
    "width": 832,
    "height": 1536,
    "guidance_scale": 3.5,
    "num_inference_steps": 28,
    "num_images": 1,
    "output_format": "png",
    "quality": 90,
}
SIZE_MIN, SIZE_MAX, SIZE_STEP = 256, 2048, 16
PROMPT_MAX_CHARS = 10_000
SEED_MAX = 2**64 - 1
# Seeds we pick ourselves stay below 2**53 so JavaScript clients can send them back exactly.
_RANDOM_SEED_BITS = 53
OUTPUT_FORMATS = ("png", "jpeg", "webp")
_FORMAT_ALIASES = {"jpg": "jpeg"}
_WORKFLOW_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
ACTIONS = ("info",)

# Simple fields a workflow of our family binds to named parameters (see workflows/*.params.json).
PARAMETER_FIELDS = ("prompt", "width", "height", "guidance_scale", "num_inference_steps", "seed", "num_images",
                    "input_image", "strength")
KNOWN_FIELDS = frozenset(
    PARAMETER_FIELDS
    + ("output_format", "quality", "workflow", "workflow_name", "images", "include_previews", "legacy_image", "action", "loras")
)


@dataclass(frozen=True)
class Request:
    """A validated job. `parameters` holds only the named-parameter values to write into the workflow."""

    parameters: dict[str, Any]
    seed: int | None
    output_format: str = "png"
    quality: int = 90
    workflow: dict[str, Any] | None = None
    workflow_name: str | None = None
    images: list[Any] = field(default_factory=list)
    include_previews: bool = False
    legacy_image: bool = True
    action: str | None = None
    provided: frozenset[str] = frozenset()  # the fields the caller actually sent
    loras: tuple[lora_input.LoraSpec, ...] = ()

    @property
    def prompt(self) -> str | None:
        return self.parameters.get("prompt")


def parse(raw: Any) -> Request:
    """Validate a job's `input` and apply defaults; raise `InputError` at the first broken rule."""
    if raw is None:
        raise InputError("input", raw, "the job must carry an 'input' object, e.g. {\"input\": {\"prompt\": \"...\"}}")
    if not isinstance(raw, dict):
        raise InputError("input", raw, "must be a JSON object such as {\"prompt\": \"a red fox\"}")
    _refuse_lone_surrogates(raw)
    raw = {name: value for name, value in raw.items() if value is not None}
    unknown = sorted(k for k in raw if k not in KNOWN_FIELDS)
    if unknown:
        raise InputError(unknown[0], raw[unknown[0]], f"unknown field; accepted fields are {', '.join(sorted(KNOWN_FIELDS))}")

    action = raw.get("action")
    if action is not None:
        if action not in ACTIONS:
            raise InputError("action", action, f"must be one of {', '.join(ACTIONS)}")
        extra = sorted(k for k in raw if k != "action")
        if extra:
            raise InputError(extra[0], raw[extra[0]], "is not accepted together with 'action'")
        return Request(parameters={}, seed=None, action=action)

    workflow = raw.get("workflow")
    if workflow is not None:
        if isinstance(workflow, str):
            raise InputError("workflow", workflow, "must be a JSON object (a ComfyUI graph), not a string")
        if not isinstance(workflow, dict) or not workflow:
            raise InputError("workflow", workflow, "must be a non-empty JSON object: a ComfyUI graph in API or UI format")
    workflow_name = raw.get("workflow_name")
    if workflow_name is not None:
        if workflow is not None:
            raise InputError("workflow_name", workflow_name, "give either 'workflow' or 'workflow_name', not both")
        if not isinstance(workflow_name, str) or not _WORKFLOW_NAME.match(workflow_name):
            raise InputError("workflow_name", workflow_name, "must be the name of a shipped workflow (lowercase letters, digits, '-', '_', '.')")

    custom = workflow is not None
    params: dict[str, Any] = {}
    if "prompt" in raw or not custom:
        params["prompt"] = _prompt(raw.get("prompt"))
    for name in ("width", "height"):
        if name in raw or not custom:
            params[name] = _integer(raw, name, SIZE_MIN, SIZE_MAX, multiple_of=SIZE_STEP)
    if "guidance_scale" in raw or not custom:
        params["guidance_scale"] = _number(raw, "guidance_scale", 0.0, 30.0)
    if "num_inference_steps" in raw or not custom:
        params["num_inference_steps"] = _integer(raw, "num_inference_steps", 1, 100)
    if "num_images" in raw or not custom:
        params["num_images"] = _integer(raw, "num_images", 1, 4)

    if "input_image" in raw:
        value = raw["input_image"]
        if not isinstance(value, str) or not value or len(value) > 128:
            raise InputError("input_image", value, "must be the name of one of the entries in 'images'")
        params["input_image"] = value
    if "strength" in raw:
        params["strength"] = _number(raw, "strength", 0.0, 1.0)

    seed = None
    if raw.get("seed") is not None:
        seed = _integer(raw, "seed", 0, SEED_MAX)
    elif not custom:
        seed = secrets.randbits(_RANDOM_SEED_BITS)
    if seed is not None:
        params["seed"] = seed

    output_format = raw.get("output_format", DEFAULTS["output_format"])
    if not isinstance(output_format, str) or _FORMAT_ALIASES.get(output_format.lower(), output_format.lower()) not in OUTPUT_FORMATS:
        raise InputError("output_format", output_format, f"must be one of {', '.join(OUTPUT_FORMATS)}")
    output_format = _FORMAT_ALIASES.get(output_format.lower(), output_format.lower())
    quality = _integer(raw, "quality", 1, 100)

    images = raw.get("images")
    if images is None:
        images = []
    elif not isinstance(images, list):
        raise InputError("images", images, "must be a list of {\"name\", \"image\"} objects")

    include_previews = raw.get("include_previews", False)
    if not isinstance(include_previews, bool):
        raise InputError("include_previews", include_previews, "must be true or false")
    legacy_image = raw.get("legacy_image", True)
    if not isinstance(legacy_image, bool):
        raise InputError("legacy_image", legacy_image, "must be true or false")

    return Request(
        parameters=params,
        seed=seed,
        output_format=output_format,
        quality=quality,
        workflow=workflow,
        workflow_name=workflow_name,
        images=images,
        include_previews=include_previews,
        legacy_image=legacy_image,
        provided=frozenset(raw),
        loras=lora_input.parse(raw.get("loras")),
    )


_UNICODE_RULE = ("must be valid Unicode text: it holds a lone UTF-16 surrogate (a string cut in the middle of an "
                 "emoji or other character), which cannot be encoded as UTF-8")


def _refuse_lone_surrogates(raw: dict[str, Any]) -> None:
    """Refuse a string (or key) anywhere in `raw` holding a lone surrogate, named by its path (`prompt`,
    `images[0].name`, `workflow.6.inputs.text`). Iterative: a workflow can nest hundreds of levels."""
    stack: list[tuple[str, Any]] = [("", raw)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if LONE_SURROGATE.search(value):
                raise InputError(path, value, _UNICODE_RULE)
        elif isinstance(value, dict):
            for key, child in value.items():
                where = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and LONE_SURROGATE.search(key):
                    raise InputError(where, key, _UNICODE_RULE)
                stack.append((where, child))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", child) for i, child in enumerate(value))


def _prompt(value: Any) -> str:
    if value is None:
        raise InputError("prompt", value, "is required: a non-empty string describing the image")
    if not isinstance(value, str):
        raise InputError("prompt", value, "must be a string")
    if not value.strip():
        raise InputError("prompt", value, "must not be empty")
    if len(value) > PROMPT_MAX_CHARS:
        raise InputError("prompt", value, f"must be at most {PROMPT_MAX_CHARS:,} characters (got {len(value):,})")
    return value


def _integer(raw: dict[str, Any], name: str, low: int, high: int, multiple_of: int = 1) -> int:
    value = raw.get(name, DEFAULTS.get(name))
    rule = f"must be an integer from {low} to {high}" + (f" and a multiple of {multiple_of}" if multiple_of > 1 else "")
    if isinstance(value, bool):
        raise InputError(name, value, rule)
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        value = int(value)
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        # Above 2**53 a JSON number with a fraction part is not exact: 12345678901234567890.0 reads as ...7168.
        raise InputError(name, value, rule + " (beyond 2^53 a number written with a decimal point or exponent is "
                         "rounded; send it as a JSON integer)")
    if not isinstance(value, int) or not low <= value <= high or value % multiple_of:
        raise InputError(name, value, rule)
    return value


def _number(raw: dict[str, Any], name: str, low: float, high: float) -> float:
    value = raw.get(name, DEFAULTS.get(name))
    rule = f"must be a number from {low:g} to {high:g}"
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or (isinstance(value, float) and not math.isfinite(value)) or not low <= value <= high):
        raise InputError(name, value, rule)  # an int is compared exactly: 10**400 is out of range, not an overflow
    return float(value)
