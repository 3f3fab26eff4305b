"""What a caller's graph can make, bounded through every node and chain (handler/graph_sizes.py, graph_values.py).

Against ComfyUI v0.33.0's own /object_info for the classes involved (tests/object_info_v0330_callers.json, trimmed
from a running v0.33.0), so each input's declared type, which decides how ComfyUI converts a value, is the real one.
Each graph here is one a caller could send; before issue 19 every one of them passed the worker's checks.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from handler.errors import WorkflowError
from handler.graph_rules import WorkflowLimits
from handler.graph_sizes import Size, Text, Upload, check
from handler.graph_values import INVALID, UNKNOWN, Reader, coerce

ROOT = Path(__file__).resolve().parent.parent
OBJECT_INFO = json.loads((Path(__file__).resolve().parent / "object_info_v0330_callers.json").read_text())
T2I = json.loads((ROOT / "workflows" / "flux1-dev-t2i.api.json").read_text())
LIMITS = WorkflowLimits()  # batch 4, 2048x2048 pixels, 100k characters


def refused(graph, **kw) -> WorkflowError:
    with pytest.raises(WorkflowError) as caught:
        check(graph, OBJECT_INFO, LIMITS, **kw)
    return caught.value


def empty(w=64, h=64, b=1, cls="EmptyImage") -> dict:
    inputs = {"width": w, "height": h, "batch_size": b}
    if cls == "EmptyImage":
        inputs["color"] = 0
    return {"class_type": cls, "inputs": inputs}


# ---- 1. values read as ComfyUI reads them --------------------------------------------------------------------

@pytest.mark.parametrize("spelling", ["3000", 3000.0, 3000.9, " 3000 ", "3_000", {"__value__": 3000},
                                      {"__value__": "3000"}])
def test_every_spelling_of_a_number_is_the_number_comfyui_runs_with(spelling):
    assert coerce("INT", spelling) == 3000
    err = refused({"1": {"class_type": "EmptyImage", "inputs": {"width": spelling, "height": spelling,
                                                                "batch_size": 1, "color": 0}}})
    assert err.details["limit"] == "max_pixels" and err.details["node_id"] == "1"


@pytest.mark.parametrize("batch", ["5", 5.5, {"__value__": 5}, {"__value__": "5"}, True + 4])
def test_a_batch_in_any_spelling_is_held_to_the_batch_limit(batch):
    err = refused({"1": empty(b=batch)})
    assert err.details["limit"] == "max_batch" and "WORKFLOW_MAX_BATCH" in err.message


def test_a_value_comfyui_cannot_convert_is_left_to_comfyui_which_refuses_the_graph():
    assert coerce("INT", "1e9") is INVALID and coerce("INT", float("inf")) is INVALID
    check({"1": empty(w="1e9")}, OBJECT_INFO, LIMITS)  # ComfyUI: invalid_input_type, the graph never runs


def test_links_through_primitives_are_followed_whatever_else_the_primitive_carries():
    graph = {"1": empty(w=["9", 0], h=["9", 0]),
             "9": {"class_type": "PrimitiveInt", "inputs": {"value": "4096", "decoy": 1, "other": ["8", 0]}},
             "8": {"class_type": "PrimitiveInt", "inputs": {"value": 1}}}
    assert Reader(graph, OBJECT_INFO).value("1", "width") == 4096
    assert refused(graph).details["limit"] == "max_pixels"
    # a primitive fed by a primitive
    graph["9"]["inputs"]["value"] = ["7", 0]
    graph["7"] = {"class_type": "PrimitiveFloat", "inputs": {"value": {"__value__": "4096.0"}}}
    assert refused(graph).details["limit"] == "max_pixels"


def test_a_size_computed_by_a_node_the_worker_does_not_evaluate_is_refused():
    graph = {"1": empty(w=["2", 0]), "2": {"class_type": "GetImageSize", "inputs": {"image": ["3", 0]}},
             "3": empty()}
    assert Reader(graph, OBJECT_INFO).value("1", "width") is UNKNOWN
    err = refused(graph)
    assert err.details["input"] == "width" and "primitive node" in err.message


# ---- 2. growth through any node or chain ------------------------------------------------------------------------

def chain(first: dict, cls: str, link_input: str, n: int, **inputs) -> dict:
    graph = {"1": first}
    for i in range(2, n + 2):
        graph[str(i)] = {"class_type": cls, "inputs": {link_input: [str(i - 1), 0], **inputs}}
    return graph


def test_a_chain_of_repeats_each_within_the_limit_is_bounded_by_its_product():
    graph = chain(empty(512, 512, 1, "EmptyLatentImage"), "RepeatLatentBatch", "samples", 3, amount=4)
    err = refused(graph)
    assert (err.details["node_id"], err.details["limit"], err.details["batch"]) == ("3", "max_batch", 16)


def test_latent_batch_doubling_is_stopped_where_it_passes_the_limit():
    graph = {"1": empty(64, 64, 1, "EmptyLatentImage")}
    for i in range(2, 8):
        graph[str(i)] = {"class_type": "LatentBatch", "inputs": {"samples1": [str(i - 1), 0], "samples2": [str(i - 1), 0]}}
    err = refused(graph)
    assert (err.details["node_id"], err.details["batch"]) == ("4", 8)


@pytest.mark.parametrize("cls,link_input", [("ImageScaleBy", "image"), ("LatentUpscaleBy", "samples")])
def test_scale_by_chains_are_held_to_the_pixel_limit(cls, link_input):
    first = empty(1024, 1024, 1, "EmptyImage" if cls == "ImageScaleBy" else "EmptyLatentImage")
    graph = chain(first, cls, link_input, 4, upscale_method="nearest-exact", scale_by=1.5)
    err = refused(graph)
    assert err.details["limit"] == "max_pixels" and err.details["node_id"] == "3"  # 1024*1.5*1.5 = 2304


def test_padding_for_outpaint_is_growth_too():
    graph = {"1": empty(2048, 2048), "2": {"class_type": "ImagePadForOutpaint", "inputs": {
        "image": ["1", 0], "left": 8192, "top": 0, "right": 8192, "bottom": 0, "feathering": 0}}}
    assert refused(graph).details["limit"] == "max_pixels"


def test_a_video_latents_length_counts_its_frames_against_the_pixels():
    ok = {"1": {"class_type": "EmptyHunyuanLatentVideo", "inputs": {"width": 512, "height": 512, "length": 33,
                                                                   "batch_size": 1}}}
    check(ok, OBJECT_INFO, LIMITS)
    bomb = copy.deepcopy(ok)
    bomb["1"]["inputs"]["length"] = "1001"
    err = refused(bomb)
    assert err.details["limit"] == "max_total_pixels" and err.details["frames"] == 1001


def test_string_concatenation_doubling_is_bounded():
    graph = {"1": {"class_type": "PrimitiveString", "inputs": {"value": "x" * 1000}}}
    for i in range(2, 12):
        graph[str(i)] = {"class_type": "StringConcatenate", "inputs": {
            "string_a": [str(i - 1), 0], "string_b": [str(i - 1), 0], "delimiter": ""}}
    err = refused(graph)
    assert err.details["limit"] == "max_text_chars" and err.details["node_id"] == "8"  # 1000 * 2**7 = 128000


def test_string_replace_with_an_empty_find_is_growth():
    graph = {"1": {"class_type": "PrimitiveString", "inputs": {"value": "x" * 1000}},
             "2": {"class_type": "StringReplace", "inputs": {"string": ["1", 0], "find": "", "replace": "y" * 200}}}
    assert refused(graph).details["limit"] == "max_text_chars"


def test_growth_of_an_input_whose_size_is_unknown_is_refused():
    # A class the deployer added (here: one without a size rule) makes something of unknown size; scaling it up
    # cannot be bounded, scaling it down or keeping it can.
    graph = {"1": {"class_type": "ImageUpscaleWithModel", "inputs": {"upscale_model": ["0", 0], "image": ["2", 0]}},
             "2": empty(), "3": {"class_type": "ImageScaleBy", "inputs": {"image": ["1", 0],
                                                                         "upscale_method": "nearest-exact", "scale_by": 2}}}
    err = refused(graph)
    assert err.details["node_id"] == "3" and "does not model" in err.message
    graph["3"]["inputs"]["scale_by"] = 0.5
    check(graph, OBJECT_INFO, LIMITS)


def test_a_large_upload_may_be_kept_or_shrunk_but_not_grown():
    graph = {"1": {"class_type": "LoadImage", "inputs": {"image": "job/photo.png"}},
             "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
             "3": {"class_type": "ImageScaleBy", "inputs": {"image": ["2", 0], "upscale_method": "area", "scale_by": 0.5}}}
    uploads = {"job/photo.png": Upload(6000, 4000)}
    sizes = check(graph, OBJECT_INFO, LIMITS, uploads)
    assert sizes[("3", 0)] == Size(1, 1, 3000, 2000)
    graph["3"]["inputs"]["scale_by"] = "1.1"
    assert refused(graph, uploads=uploads).details["limit"] == "max_pixels"
    # an animated upload is a batch of its frames
    graph["4"] = {"class_type": "RepeatImageBatch", "inputs": {"image": ["1", 0], "amount": 2}}
    graph["3"]["inputs"]["scale_by"] = 0.5
    err = refused(graph, uploads={"job/photo.png": Upload(64, 64, frames=3)})
    assert err.details["batch"] == 6


def test_the_shipped_graph_at_the_largest_simple_request_passes_and_its_sizes_are_known():
    graph = copy.deepcopy(T2I)
    latent = next(n for n in graph.values() if n["class_type"] == "EmptySD3LatentImage")
    latent["inputs"].update(width=2048, height=2048, batch_size=4)
    sizes = check(graph, OBJECT_INFO, LIMITS)
    save = next(nid for nid, n in graph.items() if n["class_type"] == "FluxFastSaveImage")
    decoded = graph[save]["inputs"]["images"]
    assert sizes[(decoded[0], decoded[1])] == Size(4, 1, 2048, 2048)


def test_a_long_literal_prompt_is_refused_naming_the_input():
    graph = copy.deepcopy(T2I)
    encode = next(nid for nid, n in graph.items() if n["class_type"] == "CLIPTextEncode")
    graph[encode]["inputs"]["text"] = {"__value__": "x" * (LIMITS.max_text_chars + 1)}
    err = refused(graph)
    assert (err.details["node_id"], err.details["input"], err.details["limit"]) == (encode, "text", "max_text_chars")


def test_a_cycle_is_left_to_comfyui_and_a_long_chain_needs_no_recursion():
    cyc = {"1": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},
           "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}}}
    check(cyc, OBJECT_INFO, LIMITS)
    long = chain(empty(), "ImageInvert", "image", 1999)
    assert check(long, OBJECT_INFO, LIMITS)[("2000", 0)] == Size(1, 1, 64, 64)
    assert isinstance(check({"1": {"class_type": "PrimitiveString", "inputs": {"value": "ab"}}}, OBJECT_INFO,
                            LIMITS)[("1", 0)], Text)


def _to_total(megapixels, steps=1, source=None) -> dict:
    return {"1": source or empty(64, 64), "2": {"class_type": "ImageScaleToTotalPixels", "inputs": {
        "image": ["1", 0], "upscale_method": "nearest-exact", "megapixels": megapixels, "resolution_steps": steps}}}


@pytest.mark.parametrize("megapixels", [-1, 0, "-1"])
def test_a_total_below_comfyuis_minimum_is_left_to_comfyui_not_an_error_here(megapixels):
    check(_to_total(megapixels), OBJECT_INFO, LIMITS)  # ComfyUI refuses it (min 0.01); was a math domain error


def test_rounding_to_resolution_steps_counts_against_the_pixel_limit():
    """16x4000 scaled to 3.967 megapixels is 129x32250; rounded to multiples of 256, ComfyUI makes 256x32256
    (8.3 million pixels), twice the 2048x2048 limit though the megapixels asked are under it."""
    check(_to_total(3.8, 1, empty(16, 4000)), OBJECT_INFO, LIMITS)
    assert refused(_to_total(3.967, 256, empty(16, 4000))).details["limit"] == "max_pixels"
