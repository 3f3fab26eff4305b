"""ComfyUI's validation and execution failures become structured errors a caller can act on."""

from handler import comfy_errors

VALIDATION_400 = {
    "error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
              "details": "Value not in list: unet_name: 'nope.safetensors' not in [...]", "extra_info": {}},
    "node_errors": {
        "1": {"errors": [{"type": "value_not_in_list", "message": "Value not in list",
                          "details": "unet_name: 'nope.safetensors' not in (list of length 1)",
                          "extra_info": {"input_name": "unet_name", "input_config": None, "received_value": "nope.safetensors"}}],
              "dependent_outputs": ["11"], "class_type": "UNETLoader"},
        "9": {"errors": [{"type": "value_bigger_than_max", "message": "Value 20000 bigger than max of 10000",
                          "details": "steps", "extra_info": {"input_name": "steps", "received_value": 20000}}],
              "dependent_outputs": ["11"], "class_type": "KSampler"},
    },
}


def test_validation_error_is_structured_per_node_and_input_and_lists_visible_models():
    err = comfy_errors.validation_error(VALIDATION_400, lambda cls, name: ["flux1-dev-fp8-e4m3fn.safetensors"] if cls == "UNETLoader" else None)
    details = err.to_response()["details"]
    assert details["type"] == "comfyui_validation_error"
    unet = details["node_errors"]["1"]
    assert unet["class_type"] == "UNETLoader"
    assert unet["errors"][0]["input_name"] == "unet_name" and unet["errors"][0]["type"] == "value_not_in_list"
    assert unet["errors"][0]["available"] == ["flux1-dev-fp8-e4m3fn.safetensors"]
    assert details["node_errors"]["9"]["errors"][0]["received_value"] == 20000
    assert "node 1 (UNETLoader) input 'unet_name'" in err.message
    assert "available: flux1-dev-fp8-e4m3fn.safetensors" in err.message and "node 9 (KSampler)" in err.message


def test_prompt_level_error_without_node_errors_still_reads_well():
    err = comfy_errors.validation_error({"error": {"type": "invalid_prompt", "message": "Cannot execute because node Foo does not exist.", "details": "Node ID '#3'"}, "node_errors": {}})
    assert "Foo does not exist" in err.message and err.details["comfyui_error"]["type"] == "invalid_prompt"


def test_missing_node_type_is_an_invalid_workflow_naming_the_node():
    # The body ComfyUI v0.33.0 answers POST /prompt with (execution.py validate_prompt, HTTP 400).
    body = {"error": {"type": "missing_node_type", "message": "Node 'My upscaler' not found. The custom node may not be installed.",
                      "details": "Node ID '#42'", "extra_info": {"node_id": "42", "class_type": "UltimateSDUpscale", "node_title": "My upscaler"}},
            "node_errors": {}}
    err = comfy_errors.validation_error(body)
    response = err.to_response()
    assert response["details"]["type"] == "invalid_workflow"
    assert response["details"]["node_id"] == "42" and response["details"]["class_type"] == "UltimateSDUpscale"
    assert response["details"]["node_title"] == "My upscaler"
    assert "node 42 (UltimateSDUpscale) 'My upscaler'" in response["error"] and "not installed" in response["error"]


def test_missing_node_type_without_extra_info_still_reads_well():
    err = comfy_errors.validation_error({"error": {"type": "missing_node_type", "message": "Node 'ID #3' has no class_type."}, "node_errors": {}})
    assert err.to_response()["details"]["type"] == "invalid_workflow"


def test_execution_error_names_node_and_type_and_never_carries_the_traceback():
    err = comfy_errors.execution_error({
        "node_id": "9", "node_type": "KSampler", "exception_type": "torch.OutOfMemoryError",
        "exception_message": "CUDA out of memory. Tried to allocate 2 GiB\nTIPS: ...",
        "traceback": ["  File \"/comfyui/execution.py\", line 1\n"],
    })
    assert err.message.startswith("ComfyUI failed while running node 9 (KSampler): torch.OutOfMemoryError: CUDA out of memory")
    response = err.to_response()
    assert "traceback" not in str(response) and "execution.py" not in str(response)
    assert response["details"]["node_id"] == "9"
