"""The UI-format -> API-format converter, against a saved /object_info of ComfyUI v0.33.0 (no ComfyUI needed).

Every test states the exact API prompt a user gets for a graph the GUI saves: that prompt is what ComfyUI
validates and runs, so a wrong widget position or a dropped link is a wrong picture or a refused job.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from handler import convert as convert_cli
from handler.errors import WorkerError
from handler.ui_to_api import UnknownNodeTypeError, WorkflowConversionError, convert, is_ui_format

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
OBJECT_INFO = json.loads((FIXTURES / "object_info.json").read_text())


def load(name: str) -> dict:
    return json.loads((FIXTURES / "ui" / name).read_text())


def node(id, type, *, inputs=(), outputs=(), widgets=None, mode=0, title=None):
    """A UI-format node as the GUI saves it. inputs: (name, type, link[, widget]); outputs: (name, type)."""
    raw = {
        "id": id, "type": type, "pos": [0, 0], "size": [300, 100], "flags": {}, "order": 0, "mode": mode,
        "inputs": [
            {"name": i[0], "type": i[1], "link": i[2], **({"widget": {"name": i[0]}} if len(i) > 3 and i[3] else {})}
            for i in inputs
        ],
        "outputs": [{"name": o[0], "type": o[1], "links": []} for o in outputs],
        "properties": {},
    }
    if widgets is not None:
        raw["widgets_values"] = widgets
    if title:
        raw["title"] = title
    return raw


def graph(nodes, links, **extra):
    return {"last_node_id": 99, "last_link_id": 99, "nodes": nodes, "links": links, "groups": [], "config": {},
            "extra": {}, "version": 0.4, **extra}


def api(class_type, title, **inputs):
    return {"class_type": class_type, "inputs": inputs, "_meta": {"title": title}}


# ---- the shipped workflow ------------------------------------------------------------------------------------


def test_shipped_ui_workflow_converts_to_the_shipped_api_workflow():
    ui = json.loads((ROOT / "workflows" / "flux1-dev-t2i.ui.json").read_text())
    expected = json.loads((ROOT / "workflows" / "flux1-dev-t2i.api.json").read_text())
    got = convert(ui, OBJECT_INFO)
    for entry in (*got.values(), *expected.values()):
        entry["_meta"] = {"title": entry.get("_meta", {}).get("title")}
    assert got == expected, (
        "workflows/flux1-dev-t2i.ui.json no longer converts to the API workflow; regenerate it with "
        "python -m tools.api_to_ui workflows/flux1-dev-t2i.api.json --object-info tests/fixtures/object_info.json"
    )


def test_shipped_ui_workflow_is_what_the_generator_writes():
    """workflows/*.ui.json must be regenerated (python -m tools.api_to_ui) when the API workflow changes."""
    from tools.api_to_ui import api_to_ui

    prompt = json.loads((ROOT / "workflows" / "flux1-dev-t2i.api.json").read_text())
    ui = json.loads((ROOT / "workflows" / "flux1-dev-t2i.ui.json").read_text())
    assert api_to_ui(prompt, OBJECT_INFO) == ui, (
        "regenerate: python -m tools.api_to_ui workflows/flux1-dev-t2i.api.json "
        "--object-info tests/fixtures/object_info.json (a new node class must first be added to the fixture: "
        "see tests/fixtures/trim_object_info.py)"
    )


def test_shipped_ui_workflow_keeps_the_seed_control_value_and_titles():
    ui = json.loads((ROOT / "workflows" / "flux1-dev-t2i.ui.json").read_text())
    sampler = next(n for n in ui["nodes"] if n["type"] == "KSampler")
    assert sampler["widgets_values"] == [0, "randomize", 28, 1.0, "euler", "simple", 1.0]
    assert sampler["title"] == "Sampler"
    assert ui["version"] == 0.4


# ---- format detection -----------------------------------------------------------------------------------------


def test_is_ui_format_tells_the_two_formats_apart():
    assert is_ui_format(load("muted_bypassed.json"))
    assert not is_ui_format(json.loads((ROOT / "workflows" / "flux1-dev-t2i.api.json").read_text()))
    assert not is_ui_format({"nodes": "x"})
    assert not is_ui_format([1, 2])


# ---- sample graphs (also submitted to a real ComfyUI by tests/integration/test_ui_workflows.py) -------------------


def test_reroutes_primitive_nodes_and_notes():
    """Legacy Reroute and native (extra.reroutes) reroutes forward the origin; the PrimitiveNode's value lands
    in the KSampler seed and is not emitted; the real PrimitiveInt node feeds two width widgets by link; notes
    and groups vanish; the seed's "randomize" control value never reaches the prompt."""
    got = convert(load("reroutes_primitives.json"), OBJECT_INFO)
    assert got == {
        "1": api("UNETLoader", "Load Diffusion Model", unet_name="flux1-dev-fp8-e4m3fn.safetensors",
                 weight_dtype="default"),
        "2": api("DualCLIPLoader", "Load CLIP (Dual)", clip_name1="t5xxl_fp8_e4m3fn.safetensors",
                 clip_name2="clip_l.safetensors", type="flux", device="default"),
        "3": api("VAELoader", "Load VAE", vae_name="ae.safetensors"),
        "4": api("CLIPTextEncode", "Positive prompt", text="a red fox in fresh snow, morning light", clip=["2", 0]),
        "5": api("FluxGuidance", "FluxGuidance", conditioning=["4", 0], guidance=3.5),
        "6": api("ConditioningZeroOut", "Conditioning Zero Out", conditioning=["4", 0]),
        "7": api("EmptySD3LatentImage", "EmptySD3LatentImage", width=["13", 0], height=768, batch_size=1),
        "8": api("ModelSamplingFlux", "ModelSamplingFlux", model=["1", 0], max_shift=1.15, base_shift=0.5,
                 width=["13", 0], height=768),
        "9": api("KSampler", "KSampler", model=["8", 0], seed=123456789, steps=20, cfg=1.0, sampler_name="euler",
                 scheduler="simple", positive=["5", 0], negative=["6", 0], latent_image=["7", 0], denoise=1.0),
        "10": api("VAEDecode", "VAE Decode", samples=["9", 0], vae=["3", 0]),
        "11": api("SaveImage", "Save Image", images=["10", 0], filename_prefix="fox"),
        "13": api("PrimitiveInt", "Width", value=1024),
    }


def test_bypassed_node_passes_its_input_through_and_muted_nodes_are_dropped():
    """ImageInvert (bypassed) hands LoadImage's IMAGE to ImageScale; the muted branch disappears; LoadImage's
    upload widget value ("image") is skipped; a V3 COMBO widget (ImageScaleToTotalPixels) maps by order."""
    got = convert(load("muted_bypassed.json"), OBJECT_INFO)
    assert got == {
        "1": api("LoadImage", "Load Image", image="example.png"),
        "3": api("ImageScale", "Upscale Image", image=["1", 0], upscale_method="nearest-exact", width=256,
                 height=192, crop="disabled"),
        "4": api("SaveImage", "Save Image", images=["3", 0], filename_prefix="bypass-test"),
        # Saved before the node gained resolution_steps: the new widget keeps its default, as in the browser.
        "7": api("ImageScaleToTotalPixels", "Scale Image to Total Pixels", image=["3", 0], upscale_method="bilinear",
                 megapixels=0.05, resolution_steps=1),
        "8": api("PreviewImage", "Preview Image", images=["7", 0]),
    }


def test_subgraph_is_flattened_with_path_ids_and_its_promoted_widget_value():
    """Version-1 file: links are objects, a native reroute sits on the VAE link (parentId), and a subgraph's
    inner nodes come out as "20:21".. (ids 1-3 are root nodes too, so the frontend renumbers them after the last
    node id, 20) with the prompt typed on the subgraph node."""
    got = convert(load("subgraph_v1.json"), OBJECT_INFO)
    assert got["20:21"] == api("CLIPTextEncode", "CLIP Text Encode (Prompt)", text="a castle on a hill at sunset",
                              clip=["2", 0])
    assert got["20:22"] == api("FluxGuidance", "FluxGuidance", conditioning=["20:21", 0], guidance=4.0)
    assert got["20:23"] == api("ConditioningZeroOut", "Conditioning Zero Out", conditioning=["20:21", 0])
    assert got["9"]["inputs"]["positive"] == ["20:22", 0]
    assert got["9"]["inputs"]["negative"] == ["20:23", 0]
    assert got["9"]["inputs"]["seed"] == 42
    assert got["10"]["inputs"] == {"samples": ["9", 0], "vae": ["3", 0]}
    assert "20" not in got and "20:4" not in got  # the instance itself and the inner Note
    assert sorted(got) == ["1", "10", "11", "2", "20:21", "20:22", "20:23", "3", "7", "8", "9"]


def test_subgraph_without_a_saved_promoted_value_keeps_the_inner_widget_value():
    wf = load("subgraph_v1.json")
    instance = next(n for n in wf["nodes"] if n["id"] == 20)
    del instance["widgets_values"]
    got = convert(wf, OBJECT_INFO)
    assert got["20:21"]["inputs"]["text"] == "placeholder inside the subgraph"


def test_subgraph_input_fed_by_a_link_from_outside():
    wf = load("subgraph_v1.json")
    wf["nodes"].append(node(30, "PrimitiveString", outputs=[("STRING", "STRING")], widgets=["from outside"]))
    wf["links"].append({"id": 11, "origin_id": 30, "origin_slot": 0, "target_id": 20, "target_slot": 1,
                        "type": "STRING"})
    next(n for n in wf["nodes"] if n["id"] == 20)["inputs"][1]["link"] = 11
    got = convert(wf, OBJECT_INFO)
    assert got["20:21"]["inputs"]["text"] == ["30", 0]
    assert got["30"] == api("PrimitiveString", "Text", value="from outside")


def test_nested_subgraphs_get_colon_path_ids():
    outer_id, inner_id = "outer-sg", "inner-sg"

    def sg(id, nodes, links, inputs, outputs):
        return {"id": id, "name": id, "inputNode": {"id": -10}, "outputNode": {"id": -20}, "nodes": nodes,
                "links": links, "inputs": inputs, "outputs": outputs, "widgets": []}

    def L(id, a, b, c, d, t):
        return {"id": id, "origin_id": a, "origin_slot": b, "target_id": c, "target_slot": d, "type": t}

    inner = sg(inner_id, [node(7, "ImageInvert", inputs=[("image", "IMAGE", 1)], outputs=[("IMAGE", "IMAGE")])],
               [L(1, -10, 0, 7, 0, "IMAGE"), L(2, 7, 0, -20, 0, "IMAGE")],
               [{"name": "image", "type": "IMAGE", "linkIds": [1]}], [{"name": "IMAGE", "type": "IMAGE", "linkIds": [2]}])
    outer = sg(outer_id, [node(3, inner_id, inputs=[("image", "IMAGE", 1)], outputs=[("IMAGE", "IMAGE")])],
               [L(1, -10, 0, 3, 0, "IMAGE"), L(2, 3, 0, -20, 0, "IMAGE")],
               [{"name": "image", "type": "IMAGE", "linkIds": [1]}], [{"name": "IMAGE", "type": "IMAGE", "linkIds": [2]}])
    wf = graph(
        [node(1, "LoadImage", outputs=[("IMAGE", "IMAGE"), ("MASK", "MASK")], widgets=["example.png", "image"]),
         node(5, outer_id, inputs=[("image", "IMAGE", 1)], outputs=[("IMAGE", "IMAGE")]),
         node(6, "PreviewImage", inputs=[("images", "IMAGE", 2)])],
        [[1, 1, 0, 5, 0, "IMAGE"], [2, 5, 0, 6, 0, "IMAGE"]],
        definitions={"subgraphs": [outer, inner]}, version=1,
    )
    got = convert(wf, OBJECT_INFO)
    assert got == {
        "1": api("LoadImage", "Load Image", image="example.png"),
        "5:3:7": api("ImageInvert", "Invert Image Colors", image=["1", 0]),
        "6": api("PreviewImage", "Preview Image", images=["5:3:7", 0]),
    }


# ---- single behaviours --------------------------------------------------------------------------------------------


def test_legacy_reroute_chain_forwards_the_origin():
    wf = graph(
        [node(1, "LoadImage", outputs=[("IMAGE", "IMAGE"), ("MASK", "MASK")], widgets=["example.png", "image"]),
         node(2, "Reroute", inputs=[("", "*", 1)], outputs=[("", "IMAGE")]),
         node(3, "Reroute", inputs=[("", "*", 2)], outputs=[("", "IMAGE")]),
         node(4, "SaveImage", inputs=[("images", "IMAGE", 3)], widgets=["r"])],
        [[1, 1, 0, 2, 0, "*"], [2, 2, 0, 3, 0, "*"], [3, 3, 0, 4, 0, "IMAGE"]],
    )
    assert convert(wf, OBJECT_INFO) == {
        "1": api("LoadImage", "Load Image", image="example.png"),
        "4": api("SaveImage", "Save Image", images=["1", 0], filename_prefix="r"),
    }


def test_native_reroutes_in_version_1_links_are_transparent():
    wf = graph(
        [node(1, "LoadImage", outputs=[("IMAGE", "IMAGE"), ("MASK", "MASK")], widgets=["example.png", "image"]),
         node(4, "SaveImage", inputs=[("images", "IMAGE", 5)], widgets=["n"])],
        [{"id": 5, "origin_id": 1, "origin_slot": 0, "target_id": 4, "target_slot": 0, "type": "IMAGE", "parentId": 2}],
        version=1, reroutes=[{"id": 1, "pos": [0, 0], "linkIds": [5]}, {"id": 2, "parentId": 1, "pos": [9, 9], "linkIds": [5]}],
    )
    assert convert(wf, OBJECT_INFO)["4"]["inputs"] == {"images": ["1", 0], "filename_prefix": "n"}


def test_primitive_node_feeding_a_seed_replaces_the_saved_seed():
    wf = graph(
        [node(1, "RandomNoise", inputs=[("noise_seed", "INT", 1, True)], outputs=[("NOISE", "NOISE")],
              widgets=[5, "randomize"]),
         node(2, "PrimitiveNode", outputs=[("INT", "INT")], widgets=[987654321, "fixed"], title="Seed")],
        [[1, 2, 0, 1, 0, "INT"]],
    )
    assert convert(wf, OBJECT_INFO) == {"1": api("RandomNoise", "RandomNoise", noise_seed=987654321)}


def test_unconnected_primitive_node_changes_nothing():
    wf = graph([node(1, "RandomNoise", outputs=[("NOISE", "NOISE")], widgets=[5, "fixed"]),
                node(2, "PrimitiveNode", outputs=[("connect to widget input", "*")], widgets=[])], [])
    assert convert(wf, OBJECT_INFO) == {"1": api("RandomNoise", "RandomNoise", noise_seed=5)}


def test_converted_widget_fed_by_a_link_overrides_the_saved_value():
    wf = graph(
        [node(1, "PrimitiveInt", outputs=[("INT", "INT")], widgets=[640, "increment"]),
         node(2, "EmptyLatentImage", inputs=[("height", "INT", 1, True)], outputs=[("LATENT", "LATENT")],
              widgets=[512, 512, 2])],
        [[1, 1, 0, 2, 0, "INT"]],
    )
    assert convert(wf, OBJECT_INFO) == {
        "1": api("PrimitiveInt", "Int", value=640),
        "2": api("EmptyLatentImage", "Empty Latent Image", width=512, height=["1", 0], batch_size=2),
    }


def test_input_linked_to_a_muted_node_is_dropped():
    """Exactly as the GUI does it: the link is dropped and so is the widget value it overrode."""
    wf = graph(
        [node(1, "PrimitiveInt", outputs=[("INT", "INT")], widgets=[640, "fixed"], mode=2),
         node(2, "EmptyLatentImage", inputs=[("height", "INT", 1, True)], outputs=[("LATENT", "LATENT")],
              widgets=[512, 512, 1])],
        [[1, 1, 0, 2, 0, "INT"]],
    )
    assert convert(wf, OBJECT_INFO) == {
        "2": api("EmptyLatentImage", "Empty Latent Image", width=512, batch_size=1),
    }


def test_bypass_prefers_the_same_slot_then_the_first_input_of_the_output_type():
    # VAEEncode bypassed: its LATENT output has no LATENT input -> the downstream input is dropped.
    # ImageInvert bypassed twice in a row: IMAGE passes through both.
    wf = graph(
        [node(1, "LoadImage", outputs=[("IMAGE", "IMAGE"), ("MASK", "MASK")], widgets=["example.png", "image"]),
         node(2, "ImageInvert", inputs=[("image", "IMAGE", 1)], outputs=[("IMAGE", "IMAGE")], mode=4),
         node(3, "ImageInvert", inputs=[("image", "IMAGE", 2)], outputs=[("IMAGE", "IMAGE")], mode=4),
         node(4, "VAEEncode", inputs=[("pixels", "IMAGE", 3), ("vae", "VAE", None)], outputs=[("LATENT", "LATENT")], mode=4),
         node(5, "LatentUpscaleBy", inputs=[("samples", "LATENT", 4)], outputs=[("LATENT", "LATENT")],
              widgets=["nearest-exact", 1.5]),
         node(6, "PreviewImage", inputs=[("images", "IMAGE", 5)])],
        [[1, 1, 0, 2, 0, "IMAGE"], [2, 2, 0, 3, 0, "IMAGE"], [3, 3, 0, 4, 0, "IMAGE"], [4, 4, 0, 5, 0, "LATENT"],
         [5, 3, 0, 6, 0, "IMAGE"]],
    )
    assert convert(wf, OBJECT_INFO) == {
        "1": api("LoadImage", "Load Image", image="example.png"),
        "5": api("LatentUpscaleBy", "Upscale Latent By", upscale_method="nearest-exact", scale_by=1.5),
        "6": api("PreviewImage", "Preview Image", images=["1", 0]),
    }


def test_bypassed_node_passes_the_matching_type_not_the_first_input():
    # KSampler bypassed: its LATENT output passes its latent_image input (slot 3), not its model (slot 0).
    wf = graph(
        [node(1, "EmptyLatentImage", outputs=[("LATENT", "LATENT")], widgets=[512, 512, 1]),
         node(2, "KSampler", inputs=[("model", "MODEL", None), ("positive", "CONDITIONING", None),
                                     ("negative", "CONDITIONING", None), ("latent_image", "LATENT", 1)],
              outputs=[("LATENT", "LATENT")], widgets=[1, "fixed", 20, 8.0, "euler", "normal", 1.0], mode=4),
         node(3, "LatentUpscaleBy", inputs=[("samples", "LATENT", 2)], outputs=[("LATENT", "LATENT")],
              widgets=["bilinear", 2.0])],
        [[1, 1, 0, 2, 3, "LATENT"], [2, 2, 0, 3, 0, "LATENT"]],
    )
    assert convert(wf, OBJECT_INFO)["3"]["inputs"] == {"samples": ["1", 0], "upscale_method": "bilinear",
                                                        "scale_by": 2.0}


def test_note_and_markdown_nodes_are_skipped():
    wf = graph(
        [node(1, "Note", widgets=["remember to pick a seed"]), node(2, "MarkdownNote", widgets=["# hi"]),
         node(3, "PrimitiveString", outputs=[("STRING", "STRING")], widgets=["x"])], [],
    )
    assert convert(wf, OBJECT_INFO) == {"3": api("PrimitiveString", "Text", value="x")}


def test_control_values_after_seeds_are_skipped_in_ksampler_advanced():
    wf = graph([node(1, "KSamplerAdvanced", inputs=[], outputs=[("LATENT", "LATENT")],
                     widgets=["enable", 77, "increment", 30, 4.5, "dpmpp_2m", "karras", 0, 10000, "disable"])], [])
    assert convert(wf, OBJECT_INFO)["1"]["inputs"] == {
        "add_noise": "enable", "noise_seed": 77, "steps": 30, "cfg": 4.5, "sampler_name": "dpmpp_2m",
        "scheduler": "karras", "start_at_step": 0, "end_at_step": 10000, "return_with_leftover_noise": "disable",
    }


def test_upload_widget_value_is_optional():
    """Some frontends save LoadImage as ["x.png", "image"], others as ["x.png"]: both mean image="x.png"."""
    for saved in (["x.png", "image"], ["x.png"]):
        wf = graph([node(1, "LoadImageMask", outputs=[("MASK", "MASK")], widgets=[*saved[:1], "red", *saved[1:]])], [])
        assert convert(wf, OBJECT_INFO)["1"]["inputs"] == {"image": "x.png", "channel": "red"}


def test_force_input_makes_no_widget():
    # SaveText.text is a STRING with forceInput: a socket, no widget value is saved for it.
    wf = graph([node(1, "SaveText", inputs=[("text", "STRING", None)], widgets=["notes", "md"])], [])
    assert convert(wf, OBJECT_INFO)["1"]["inputs"] == {"filename_prefix": "notes", "format": "md"}


def test_a_multi_type_input_gets_the_widget_its_widget_type_names():
    # LTXVEmptyLatentAudio.frame_rate accepts FLOAT or INT links and is drawn as a FLOAT widget: its saved value
    # sits between frames_number and batch_size and reaches the prompt.
    wf = graph([node(1, "LTXVEmptyLatentAudio", inputs=[("audio_vae", "VAE", None)], widgets=[49, 24.0, 2])], [])
    assert convert(wf, OBJECT_INFO)["1"]["inputs"] == {"frames_number": 49, "frame_rate": 24.0, "batch_size": 2}


def test_a_dynamic_combo_brings_the_widgets_of_the_option_it_holds():
    # ResizeImageMaskNode.resize_type: "scale dimensions" adds width, height and crop right after the combo;
    # scale_method comes after them (as frontend 1.48.7 saves and exports it).
    wf = graph([node(1, "LoadImage", outputs=[("IMAGE", "IMAGE"), ("MASK", "MASK")], widgets=["example.png", "image"]),
                node(2, "ResizeImageMaskNode", inputs=[("input", "IMAGE", 1)], outputs=[("resized", "IMAGE")],
                     widgets=["scale dimensions", 1024, 768, "center", "lanczos"])],
               [[1, 1, 0, 2, 0, "IMAGE"]])
    assert convert(wf, OBJECT_INFO)["2"]["inputs"] == {
        "input": ["1", 0], "resize_type": "scale dimensions", "resize_type.width": 1024, "resize_type.height": 768,
        "resize_type.crop": "center", "scale_method": "lanczos"}
    other = graph([node(2, "ResizeImageMaskNode", inputs=[("input", "IMAGE", None)],
                        widgets=["scale by multiplier", 1.5, "area"])], [])
    assert convert(other, OBJECT_INFO)["2"]["inputs"] == {
        "resize_type": "scale by multiplier", "resize_type.multiplier": 1.5, "scale_method": "area"}


def test_nested_dynamic_combos_and_their_defaults():
    # SaveVideo.codec "h264" adds codec.encoding, itself a dynamic combo whose "re-encode" adds codec.encoding.crf.
    saved = node(1, "SaveVideo", inputs=[("video", "VIDEO", None)], widgets=["clip", "mp4", "h264", "re-encode", 18])
    assert convert(graph([saved], []), OBJECT_INFO)["1"]["inputs"] == {
        "filename_prefix": "clip", "format": "mp4", "codec": "h264", "codec.encoding": "re-encode",
        "codec.encoding.crf": 18}
    # Saved before codec existed: the combo and what its default option adds keep their defaults.
    old = node(1, "SaveVideo", inputs=[("video", "VIDEO", None)], widgets=["clip", "mp4"])
    assert convert(graph([old], []), OBJECT_INFO)["1"]["inputs"] == {
        "filename_prefix": "clip", "format": "mp4", "codec": "auto"}


def test_subgraph_instance_that_saved_fewer_inputs_than_its_definition():
    # The frontend re-attaches an instance's saved inputs by name: a definition input the instance did not save
    # is unconnected, and the next one still finds its own link.
    wf = load("subgraph_v1.json")
    instance = next(n for n in wf["nodes"] if n["id"] == 20)
    definition = wf["definitions"]["subgraphs"][0]
    definition["inputs"].insert(0, {"name": "unsaved", "type": "INT", "linkIds": []})
    for link in definition["links"]:
        if link["origin_id"] == -10:
            link["origin_slot"] += 1
    assert convert(wf, OBJECT_INFO) == convert(load("subgraph_v1.json"), OBJECT_INFO)
    assert instance["inputs"]


def test_subgraph_values_fill_the_definitions_promoted_widgets_by_position_even_where_the_instance_saved_fewer():
    """What the GUI shows on a subgraph node is what runs. The frontend fills the node's promoted widgets (one per
    definition input that feeds an inner widget, in the definition's order) from `widgets_values` by position; saved
    instances of ComfyUI's own templates list fewer inputs than that. Reading only the saved inputs ran the inner
    nodes' stale values instead (another prompt, seed or model file: 10 templates of 0.1.47 against frontend 1.48.7)."""
    wf = load("subgraph_v1.json")
    instance = next(n for n in wf["nodes"] if n["id"] == 20)
    definition = wf["definitions"]["subgraphs"][0]
    definition["inputs"].append({"id": "a3", "name": "guidance", "type": "FLOAT", "linkIds": [107]})
    definition["links"].append({"id": 107, "origin_id": -10, "origin_slot": 2, "target_id": 2, "target_slot": 1,
                                "type": "FLOAT"})
    guidance = next(n for n in definition["nodes"] if n["id"] == 2)
    guidance["inputs"].append({"name": "guidance", "type": "FLOAT", "widget": {"name": "guidance"}, "link": 107})
    instance["widgets_values"] = ["a lighthouse in a storm", 2.5]    # the instance saved only `text` among its inputs
    got = convert(wf, OBJECT_INFO)
    assert got["20:21"]["inputs"]["text"] == "a lighthouse in a storm"
    assert got["20:22"]["inputs"]["guidance"] == 2.5                  # not the inner node's stale 4.0
    # a value count that matches neither the saved inputs nor the definition's widgets is not guessed at
    instance["widgets_values"] = ["a lighthouse in a storm", 2.5, 7]
    got = convert(wf, OBJECT_INFO)
    assert got["20:21"]["inputs"]["text"] == "placeholder inside the subgraph" and got["20:22"]["inputs"]["guidance"] == 4.0


def test_widgets_values_as_an_object_are_mapped_by_name():
    info = copy.deepcopy(OBJECT_INFO)
    info["MyCustomNode"] = {
        "input": {"required": {"image": ["IMAGE"], "strength": ["FLOAT", {"default": 1.0}],
                               "tags": ["STRING", {"default": ""}]},
                  "optional": {"mode": [["a", "b"], {"default": "a"}]}},
        "input_order": {"required": ["image", "strength", "tags"], "optional": ["mode"]},
        "output": ["IMAGE"], "output_name": ["IMAGE"], "name": "MyCustomNode", "display_name": "My Custom Node",
    }
    wf = graph(
        [node(1, "LoadImage", outputs=[("IMAGE", "IMAGE"), ("MASK", "MASK")], widgets=["example.png", "image"]),
         node(2, "MyCustomNode", inputs=[("image", "IMAGE", 1)], outputs=[("IMAGE", "IMAGE")],
              widgets={"tags": ["cat", "dog"], "strength": 0.25, "unrelated_ui_state": True})],
        [[1, 1, 0, 2, 0, "IMAGE"]],
    )
    assert convert(wf, info)["2"] == api(
        "MyCustomNode", "My Custom Node", image=["1", 0], strength=0.25, tags={"__value__": ["cat", "dog"]}, mode="a"
    )


def test_list_widget_values_are_wrapped():
    wf = graph([node(1, "PrimitiveString", outputs=[("STRING", "STRING")], widgets=[["a", "b"]])], [])
    assert convert(wf, OBJECT_INFO)["1"]["inputs"] == {"value": {"__value__": ["a", "b"]}}


def test_missing_widget_values_fall_back_to_the_declared_defaults():
    wf = graph([node(1, "EmptyLatentImage", outputs=[("LATENT", "LATENT")], widgets=[768])], [])
    assert convert(wf, OBJECT_INFO)["1"]["inputs"] == {"width": 768, "height": 512, "batch_size": 1}


def test_unknown_node_type_is_a_clear_error_naming_node_and_type():
    wf = graph(
        [node(1, "LoadImage", outputs=[("IMAGE", "IMAGE"), ("MASK", "MASK")], widgets=["example.png", "image"]),
         node(7, "FaceDetailer", inputs=[("image", "IMAGE", 1)], outputs=[("IMAGE", "IMAGE")], widgets=[1, 2],
              title="Fix faces")],
        [[1, 1, 0, 7, 0, "IMAGE"]],
    )
    with pytest.raises(UnknownNodeTypeError) as err:
        convert(wf, OBJECT_INFO)
    assert "node 7 (FaceDetailer) 'Fix faces'" in err.value.message
    assert "not installed" in err.value.message
    assert err.value.to_response()["details"]["type"] == "invalid_workflow"
    assert err.value.details["node_id"] == "7" and err.value.details["node_title"] == "Fix faces"
    assert err.value.details["missing"] == [{"node_id": "7", "class_type": "FaceDetailer", "title": "Fix faces"}]
    assert isinstance(err.value, WorkerError)


def test_unknown_node_type_is_fine_when_the_node_is_muted_or_bypassed():
    wf = graph(
        [node(1, "LoadImage", outputs=[("IMAGE", "IMAGE"), ("MASK", "MASK")], widgets=["example.png", "image"]),
         node(7, "FaceDetailer", inputs=[("image", "IMAGE", 1)], outputs=[("IMAGE", "IMAGE")], mode=4),
         node(8, "PreviewImage", inputs=[("images", "IMAGE", 2)])],
        [[1, 1, 0, 7, 0, "IMAGE"], [2, 7, 0, 8, 0, "IMAGE"]],
    )
    assert convert(wf, OBJECT_INFO)["8"]["inputs"] == {"images": ["1", 0]}


def test_link_missing_from_the_links_table_names_the_node_and_input():
    wf = graph([node(4, "SaveImage", inputs=[("images", "IMAGE", 42)], widgets=["x"])], [])
    with pytest.raises(WorkflowConversionError) as err:
        convert(wf, OBJECT_INFO)
    assert "Node 4 (SaveImage)" in err.value.message and "'images'" in err.value.message and "42" in err.value.message
    assert err.value.details["node_id"] == "4"


def test_legacy_group_node_is_refused_with_a_way_out():
    wf = graph([node(3, "workflow>Upscale", widgets=[])], [], extra={"groupNodes": {"Upscale": {"nodes": []}}})
    with pytest.raises(WorkflowConversionError) as err:
        convert(wf, OBJECT_INFO)
    assert "Node 3 (workflow>Upscale)" in err.value.message and "subgraph" in err.value.message


def test_graph_with_nothing_to_run_is_an_error():
    with pytest.raises(WorkflowConversionError, match="no nodes that ComfyUI can run"):
        convert(graph([node(1, "Note", widgets=["x"])], []), OBJECT_INFO)


def test_api_format_is_refused():
    with pytest.raises(WorkflowConversionError, match="not in the ComfyUI GUI format"):
        convert(json.loads((ROOT / "workflows" / "flux1-dev-t2i.api.json").read_text()), OBJECT_INFO)


# ---- the command ---------------------------------------------------------------------------------------------------


def test_cli_prints_the_api_format_offline(capsys):
    rc = convert_cli.main([str(ROOT / "workflows" / "flux1-dev-t2i.ui.json"),
                           "--object-info", str(FIXTURES / "object_info.json")])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["9"]["inputs"]["seed"] == 0 and printed["9"]["_meta"]["title"] == "Sampler"


def test_cli_reports_a_conversion_error_and_exits_1(tmp_path, capsys):
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(graph([node(2, "NotInstalled", widgets=[])], [])))
    rc = convert_cli.main([str(path), "--object-info", str(FIXTURES / "object_info.json")])
    assert rc == 1
    assert "node 2 (NotInstalled) needs node type 'NotInstalled'" in capsys.readouterr().err


def test_cli_without_a_reachable_comfyui_says_how_to_work_offline(capsys):
    rc = convert_cli.main([str(ROOT / "workflows" / "flux1-dev-t2i.ui.json"), "--comfyui-url", "http://127.0.0.1:9"])
    assert rc == 2
    assert "--object-info" in capsys.readouterr().err


def test_each_shipped_ui_workflow_has_its_own_id_and_is_what_the_generator_writes():
    """The GUI tracks open workflows by id: two files with one id are taken for one workflow."""
    from tools.api_to_ui import api_to_ui

    ids = {}
    for path in sorted((ROOT / "workflows").glob("*.ui.json")):
        stem = path.name[: -len(".ui.json")]
        ui = json.loads(path.read_text())
        prompt = json.loads((ROOT / "workflows" / f"{stem}.api.json").read_text())
        assert api_to_ui(prompt, OBJECT_INFO, workflow_name=stem) == ui, f"regenerate {path.name}"
        ids[stem] = ui["id"]
    assert len(ids) >= 2 and len(set(ids.values())) == len(ids), ids


def test_img2img_ui_workflow_names_an_image_a_stock_comfyui_has():
    """ComfyUI's checkout ships input/example.png; a name that does not exist shows a broken preview in the GUI."""
    ui = json.loads((ROOT / "workflows" / "flux1-dev-img2img.ui.json").read_text())
    loader = next(n for n in ui["nodes"] if n["type"] == "LoadImage")
    assert loader["widgets_values"][0] == "example.png"


# ---- widgets the frontend itself defines (each expected prompt is frontend 1.48.7's own export of the fixture) -------


def test_frontend_defined_widget_types_are_sent_like_any_widget():
    """COLOR, CURVE, PAINTER, BOUNDING_BOX and IMAGECOMPARE are drawn by the frontend's own widgets and their values
    are queued: ImageCompare's `compare_view` is never saved yet always sent (without it ComfyUI refuses the
    required input), Painter's PAINTER mask takes its own saved position (before, width got the mask's file name and
    every later value shifted), and a bounding box's four helper numbers are saved but never sent."""
    got = convert(load("frontend_widgets.json"), OBJECT_INFO)
    assert got["2"] == api("ImageCompare", "Compare Images", compare_view={"__value__": ["", ""]},
                           image_a=["1", 0], image_b=["1", 0])
    assert got["3"] == api("Painter", "Painter", mask="painter/painter-3.png [temp]", width=640, height=832,
                           bg_color="#112233")
    assert got["4"] == api("ColorToRGBInt", "Color Picker", color="#0a9299")
    assert got["5"] == api("CurveEditor", "Curve Editor",
                           curve={"points": [[0, 0], [0.4, 0.6], [1, 1]], "interpolation": "monotone_cubic"})
    assert got["6"] == api("ImageCropV2", "Crop Image", image=["1", 0],
                           crop_region={"x": 16, "y": 32, "width": 256, "height": 128})


def test_frontend_widget_defaults_are_fresh_values_where_nothing_was_saved():
    """A node saved without values gets the widgets' starting values, as the GUI would queue them; list and dict
    defaults are copies, so filling one node never changes another."""
    workflow = {"version": 0.4, "links": [], "nodes": [
        node(1, "CurveEditor", widgets=[]), node(2, "CurveEditor", widgets=[]), node(3, "ColorToRGBInt", widgets=[])]}
    got = convert(workflow, OBJECT_INFO)
    assert got["1"]["inputs"]["curve"] == OBJECT_INFO["CurveEditor"]["input"]["required"]["curve"][1]["default"]
    assert got["1"]["inputs"]["curve"] is not got["2"]["inputs"]["curve"]
    assert got["3"]["inputs"]["color"] == "#ffffff"


def test_custom_combo_sends_its_options_and_the_index_of_its_choice():
    """CustomCombo's options are widgets the frontend adds itself; ComfyUI passes them all to the node, whose INDEX
    output is the `index` sent. Loading stops at the first empty option (node 7's "c" is lost in the GUI too), and
    a choice among no option has index -1."""
    got = convert(load("frontend_widgets.json"), OBJECT_INFO)
    assert got["7"]["inputs"] == {"choice": "b", "index": 1, "option1": "a", "option2": "b", "option3": ""}
    assert got["8"]["inputs"] == {"choice": "zzz", "index": -1, "option1": "x", "option2": "y", "option3": ""}


def test_the_3d_viewers_injected_widget_is_sent_and_keeps_later_values_in_place():
    got = convert(load("frontend_widgets.json"), OBJECT_INFO)
    assert got["9"] == api("SaveGLB", "Save 3D Model", filename_prefix="3d/test", image="")


def test_a_view_only_the_browser_renders_is_refused_naming_the_node():
    """Load3D's `image` is a screenshot of the GUI's 3D viewer, uploaded to the GUI's own ComfyUI as it queues."""
    workflow = {"version": 0.4, "links": [], "nodes": [
        node(3, "Load3D", outputs=[("image", "IMAGE")], widgets=["toy.glb", "upload3dmodel", 1024, 1024])]}
    with pytest.raises(WorkflowConversionError) as err:
        convert(workflow, OBJECT_INFO)
    assert err.value.node_id == "3"
    assert "input 'image' is a LOAD_3D view" in str(err.value) and "Load3D" in str(err.value)
    workflow["nodes"][0]["mode"] = 4  # bypassed: nothing to render, the rest converts
    workflow["nodes"].append(node(4, "ColorToRGBInt", widgets=["#000000"]))
    assert sorted(convert(workflow, OBJECT_INFO)) == ["4"]


def test_subgraph_node_ids_are_made_unique_across_the_file_as_the_frontend_does():
    """Two definitions reuse inner ids 1 and 2, and id 1 is a root node too. The frontend renumbers a taken id to
    the next free one after the file's last node id (5 here, then raised by every id kept), in file order, and
    the definition's links follow; prompt ids are `<instance>:<inner id>`, so they must match what the GUI queues."""
    got = convert(load("subgraph_ids.json"), OBJECT_INFO)
    assert sorted(got) == ["1", "4:2", "4:6", "4:7", "5:3", "5:8"]
    assert got["4:7"]["inputs"] == {"string_a": ["4:6", 0], "string_b": ["4:2", 0], "delimiter": " + "}
    assert got["4:6"]["inputs"] == {"value": "left"} and got["5:8"]["inputs"] == {"value": "inner one"}
    assert load("subgraph_ids.json")["definitions"]["subgraphs"][0]["nodes"][0]["id"] == 1  # the file is untouched


def test_api_to_ui_saves_frontend_widgets_as_the_gui_does_and_converts_back():
    """tools.api_to_ui (which writes the shipped .ui.json files) saves a bounding box's helper numbers after it and
    never saves ImageCompare's view, so the GUI file loads with every value in its place."""
    from tools.api_to_ui import api_to_ui

    prompt = {"1": api("LoadImage", "Load Image", image="example.png"),
              "2": api("ImageCompare", "Compare Images", compare_view={"__value__": ["", ""]}, image_a=["1", 0],
                       image_b=["6", 0]),
              "6": api("ImageCropV2", "Crop Image", image=["1", 0],
                       crop_region={"x": 16, "y": 32, "width": 256, "height": 128})}
    ui = api_to_ui(prompt, OBJECT_INFO)
    saved = {n["type"]: n["widgets_values"] for n in ui["nodes"]}
    assert saved["ImageCompare"] == [] and saved["ImageCropV2"][1:] == [16, 32, 256, 128]
    assert convert(ui, OBJECT_INFO) == prompt


def test_a_socket_fed_by_an_unset_subgraph_input_reads_the_widget_the_same_input_feeds():
    """A subgraph input that feeds an inner widget is shown on the instance as that widget; an inner socket fed by
    the same input (PreviewAny's source here, a switch's branch in ComfyUI's templates) gets the widget's value.
    Where the instance saved no value (newer frontends keep promoted widgets in `proxyWidgets`), that is the inner
    widget's own value; dropping the input instead made ComfyUI refuse a required input (6 templates of 0.1.47)."""
    wf = load("subgraph_v1.json")
    instance = next(n for n in wf["nodes"] if n["id"] == 20)
    instance["widgets_values"] = []
    definition = wf["definitions"]["subgraphs"][0]
    definition["inputs"][1]["linkIds"].append(108)
    definition["links"].append({"id": 108, "origin_id": -10, "origin_slot": 1, "target_id": 5, "target_slot": 0,
                                "type": "*"})
    definition["nodes"].append(node(5, "PreviewAny", inputs=[("source", "*", 108)]))
    got = convert(wf, OBJECT_INFO)
    assert got["20:21"]["inputs"]["text"] == "placeholder inside the subgraph"
    assert got["20:5"]["inputs"] == {"source": "placeholder inside the subgraph"}
    instance["widgets_values"] = ["a castle on a hill at sunset"]  # a saved value wins, for both
    got = convert(wf, OBJECT_INFO)
    assert got["20:5"]["inputs"] == {"source": "a castle on a hill at sunset"}


def test_a_bypassed_subgraph_inside_a_subgraph_still_queues_its_inner_nodes_as_the_gui_does():
    """The frontend skips the inner nodes of muted and bypassed instances of the root graph only (instance 11 here);
    a bypassed instance inside a subgraph (10:5) passes its inputs through, but its inner nodes are queued with their
    own modes (frontend 1.48.7's export of this fixture; USO's reference template does this)."""
    got = convert(load("nested_bypass.json"), OBJECT_INFO)
    assert got == {"10:5:1": api("PrimitiveString", "Text", value="inner"),
                   "10:6": api("PrimitiveString", "Text", value="outer")}
