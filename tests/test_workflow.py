"""The shipped workflow, its named parameters, and the start-up check against /object_info."""

import json
from pathlib import Path

import pytest

from handler import workflow
from handler.errors import WorkflowError

WORKFLOWS = Path(__file__).resolve().parent.parent / "workflows"


@pytest.fixture(scope="module")
def template():
    return workflow.load_template(WORKFLOWS, "flux1-dev-t2i")


def test_shipped_workflow_is_the_flux_graph(template):
    classes = {node["class_type"] for node in template.graph.values()}
    assert {"FluxFastUNETLoader", "FluxFastDualCLIPLoader", "FluxFastVAELoader", "CLIPTextEncode", "FluxGuidance", "EmptySD3LatentImage",
            "ModelSamplingFlux", "KSampler", "FluxFastDecode", "FluxFastSaveImage"} <= classes
    sampler = next(n for n in template.graph.values() if n["class_type"] == "KSampler")["inputs"]
    assert (sampler["cfg"], sampler["sampler_name"], sampler["scheduler"]) == (1.0, "euler", "simple")
    clip = next(n for n in template.graph.values() if n["class_type"] == "FluxFastDualCLIPLoader")["inputs"]
    assert clip["type"] == "flux"


def test_every_request_field_has_a_parameter(template):
    assert {"prompt", "width", "height", "guidance_scale", "num_inference_steps", "seed", "num_images"} <= set(template.parameters)


def test_fill_writes_each_field_to_every_bound_input_and_leaves_the_template_alone(template):
    before = json.dumps(template.graph, sort_keys=True)
    filled = workflow.fill(template.graph, template.parameters,
                           {"prompt": "a fox", "width": 512, "height": 768, "seed": 7, "num_inference_steps": 4,
                            "guidance_scale": 2.0, "num_images": 2})
    assert json.dumps(template.graph, sort_keys=True) == before
    by_class = {n["class_type"]: n["inputs"] for n in filled.values()}
    assert by_class["CLIPTextEncode"]["text"] == "a fox"
    assert (by_class["EmptySD3LatentImage"]["width"], by_class["EmptySD3LatentImage"]["height"]) == (512, 768)
    # ModelSamplingFlux's shift depends on the image size: it must follow the request, not stay at 832x1536.
    assert (by_class["ModelSamplingFlux"]["width"], by_class["ModelSamplingFlux"]["height"]) == (512, 768)
    assert by_class["EmptySD3LatentImage"]["batch_size"] == 2
    assert (by_class["KSampler"]["seed"], by_class["KSampler"]["steps"]) == (7, 4)
    assert by_class["FluxGuidance"]["guidance"] == 2.0


def test_fill_refuses_a_field_the_workflow_does_not_have(template):
    with pytest.raises(WorkflowError) as caught:
        workflow.fill(template.graph, {}, {"prompt": "x"})
    assert "prompt" in caught.value.message


def test_binding_to_a_missing_title_is_caught_at_load(tmp_path):
    (tmp_path / "w.api.json").write_text(json.dumps({"1": {"class_type": "CLIPTextEncode", "inputs": {"text": ""}, "_meta": {"title": "Positive"}}}))
    (tmp_path / "w.params.json").write_text(json.dumps({"parameters": {"prompt": [{"node": "Prompt", "input": "text"}]}}))
    with pytest.raises(WorkflowError) as caught:
        workflow.load_template(tmp_path, "w")
    assert "'Prompt'" in caught.value.message and "no node" in caught.value.message


def test_unknown_workflow_name_lists_the_shipped_ones():
    with pytest.raises(WorkflowError) as caught:
        workflow.load_template(WORKFLOWS, "sdxl")
    assert "flux1-dev-t2i" in caught.value.message


def test_check_graph_reports_missing_classes_models_and_inputs(template):
    info = {
        "FluxFastUNETLoader": {"input": {"required": {"unet_name": [["other.safetensors"], {}], "weight_dtype": [["default", "fp8_e4m3fn"], {}]}}},
        "FluxFastVAELoader": {"input": {"required": {"vae_name": [["ae.safetensors"], {}]}}},
        "FluxGuidance": {"input": {"required": {"conditioning": ["CONDITIONING", {}], "guidance": ["FLOAT", {}]}}},
    }
    problems = workflow.check_graph(template.graph, info)
    text = "\n".join(problems)
    assert "flux1-dev-fp8-e4m3fn.safetensors' is not available; this ComfyUI offers: other.safetensors" in text
    assert "'FluxFastDualCLIPLoader' is not installed" in text
    assert not any("VAELoader" in p for p in problems)


def test_combo_options_understands_v1_and_v3_specs():
    assert workflow.combo_options([["a", "b"], {}]) == ["a", "b"]
    assert workflow.combo_options(["COMBO", {"options": ["x"]}]) == ["x"]
    assert workflow.combo_options(["INT", {}]) is None


@pytest.mark.parametrize("name", workflow.available(WORKFLOWS))
def test_every_shipped_workflow_has_a_gui_copy_that_converts_back_exactly(name):
    from handler.ui_to_api import convert

    object_info = json.loads((Path(__file__).parent / "fixtures" / "object_info.json").read_text())
    ui = json.loads((WORKFLOWS / f"{name}.ui.json").read_text())
    assert convert(ui, object_info) == json.loads((WORKFLOWS / f"{name}.api.json").read_text()), (
        f"regenerate: python -m tools.api_to_ui workflows/{name}.api.json --object-info tests/fixtures/object_info.json")


def test_inputs_filled_per_request_are_not_checked_at_start():
    template = workflow.load_template(WORKFLOWS, "flux1-dev-img2img")
    info = {"LoadImage": {"input": {"required": {"image": [[], {"image_upload": True}]}}}}
    graph = {k: v for k, v in template.graph.items() if v["class_type"] == "LoadImage"}
    assert workflow.check_graph(graph, info) != []
    assert workflow.check_graph(graph, info, template.bound_inputs()) == []
    assert template.required == ("input_image",)
