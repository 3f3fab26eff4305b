"""The workflow policy against real /object_info entries: what a caller's graph may name and use, and how its
file names are rewritten into the job's own folders (handler/workflow_policy.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from handler.errors import MissingNodeError, WorkflowPolicyError
from handler.workflow_policy import DENIED_NODES, JobNames, NodeRules, enforce

OBJECT_INFO = json.loads((Path(__file__).parent / "fixtures" / "object_info_policy.json").read_text(encoding="utf-8"))
NAMES = JobNames("job7-abcd1234", {"face.png": "job7-abcd1234/face.png"})
CALLER = NodeRules()


def load_graph(loader: str = "LoadImage", image: object = "face.png", **inputs) -> dict:
    return {
        "4": {"class_type": loader, "inputs": {"image": image, **inputs}},
        "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "out"}},
    }


def refusal(graph: dict, rules: NodeRules | None = CALLER, options=None) -> WorkflowPolicyError:
    with pytest.raises(WorkflowPolicyError) as info:
        enforce(graph, OBJECT_INFO, NAMES, rules=rules, options=options)
    return info.value


# ---------------------------------------------------------------------------------------- upload (file) inputs

def test_an_uploaded_plain_name_is_rewritten_to_the_jobs_folder_and_the_callers_graph_is_left_alone():
    graph = load_graph()
    out = enforce(graph, OBJECT_INFO, NAMES, rules=CALLER)
    assert out["4"]["inputs"]["image"] == "job7-abcd1234/face.png"
    assert out["5"]["inputs"]["filename_prefix"] == "job7-abcd1234/out"
    assert graph["4"]["inputs"]["image"] == "face.png" and out["5"]["inputs"]["images"] == ["4", 0]


@pytest.mark.parametrize("value, says", [
    ("/work/secret.png", "absolute"),
    ("/dev/zero", "absolute"),
    ("../../secret.png", "'..'"),
    ("face.png [output]", "annotation"),
    ("flux_00001_.png [temp]", "annotation"),
    ("C:\\secret.png", "absolute"),
    ("other-job-1234/face.png", "folders"),
    ("face.png\x00.txt", "uploaded with this job"),
    ("example.png", "uploaded with this job"),  # in ComfyUI's list (the input folder) but not this job's
    ("private.png", "uploaded with this job"),  # an earlier job's upload, or nothing: the same answer
    (7, "uploaded with this job"),
])
@pytest.mark.parametrize("loader", ["LoadImage", "LoadImageMask"])
def test_a_loader_names_only_this_jobs_uploads(loader, value, says):
    extra = {"channel": "alpha"} if loader == "LoadImageMask" else {}
    err = refusal(load_graph(loader, value, **extra))
    response = err.to_response()
    assert response["details"]["type"] == "invalid_workflow"
    assert (err.details["node_id"], err.details["class_type"], err.details["input"]) == ("4", loader, "image")
    assert says in err.details["rule"] and "face.png" in err.details["rule"]  # what was uploaded
    assert f"node 4 ({loader}) input 'image'" in err.message


def test_the_refusal_is_the_same_whether_or_not_the_file_exists(tmp_path):
    existing = tmp_path / "x.png"
    existing.write_bytes(b"not even an image")
    assert refusal(load_graph(image=str(existing))).details["rule"] == refusal(load_graph(image=str(tmp_path / "nope.png"))).details["rule"]


def test_every_upload_flag_counts_not_only_images():
    graph = {"1": {"class_type": "LoadAudio", "inputs": {"audio": "../x.flac"}}}
    assert refusal(graph).details["class_type"] == "LoadAudio"
    graph["1"]["inputs"]["audio"] = "face.png"
    assert enforce(graph, OBJECT_INFO, NAMES, rules=CALLER)["1"]["inputs"]["audio"] == "job7-abcd1234/face.png"


def test_an_upload_input_that_reads_the_output_folder_is_refused_even_when_allowed():
    graph = {"1": {"class_type": "LoadImageOutput", "inputs": {"image": "face.png"}}}
    assert "LoadImageOutput" in refusal(graph).details["rule"]  # denied class
    err = refusal(graph, NodeRules(allowed=frozenset({"LoadImageOutput"})))
    assert err.details["input"] == "image" and "output folder" in err.details["rule"]


def test_shipped_workflows_get_their_names_rewritten_too():
    graph = {"1": {"class_type": "LoadImage", "inputs": {"image": "face.png"}},
             "2": {"class_type": "VAESave", "inputs": {"vae": ["9", 0], "filename_prefix": "vae/x"}}}
    out = enforce(graph, OBJECT_INFO, NAMES, rules=None)  # trusted: the class is not checked
    assert out["1"]["inputs"]["image"] == "job7-abcd1234/face.png"
    assert out["2"]["inputs"]["filename_prefix"] == "job7-abcd1234/vae/x"
    graph["1"]["inputs"]["image"] = "/etc/x.png"
    assert refusal(graph, rules=None).details["input"] == "image"


# ---------------------------------------------------------------------------------------------- node classes

@pytest.mark.parametrize("class_type", ["VAESave", "CheckpointSave", "SaveLoRA", "LoadLatent", "WebcamCapture",
                                        "LoadImageDataSetFromFolder", "Load3D", "RecordAudio", "LoadImageOutput"])
def test_dangerous_classes_are_refused_by_default(class_type):
    # Installed (v0.33.0's names) and even when a deployer lists them in WORKFLOW_EXTRA_NODES: still refused.
    assert class_type in OBJECT_INFO
    err = refusal({"12": {"class_type": class_type, "inputs": {}}}, NodeRules(extra=frozenset({class_type})))
    assert (err.details["node_id"], err.details["class_type"], err.details["input"]) == ("12", class_type, None)
    assert "not allowed on this worker" in err.details["rule"] and f"node 12 ({class_type})" in err.message


def test_an_operator_deny_list_adds_classes_and_an_allow_list_replaces_the_rule():
    graph = load_graph()
    assert refusal(graph, NodeRules(denied=DENIED_NODES | {"SaveImage"})).details["class_type"] == "SaveImage"
    err = refusal(graph, NodeRules(allowed=frozenset({"LoadImage"})))
    assert err.details["class_type"] == "SaveImage" and "WORKFLOW_ALLOWED_NODES" in err.details["rule"]
    assert enforce(graph, OBJECT_INFO, NAMES, rules=NodeRules(allowed=frozenset({"LoadImage", "SaveImage"})))
    # naming a denied class in the allow-list is the operator's explicit choice
    vae = {"1": {"class_type": "VAESave", "inputs": {"vae": ["9", 0], "filename_prefix": "v"}}}
    assert enforce(vae, OBJECT_INFO, NAMES, rules=NodeRules(allowed=frozenset({"VAESave"})))


def test_a_class_this_comfyui_does_not_have_is_refused():
    with pytest.raises(MissingNodeError) as info:
        enforce({"3": {"class_type": "Load Image From Path (custom)", "inputs": {"path": "/etc/passwd"}}},
                OBJECT_INFO, NAMES, rules=CALLER)
    err = info.value
    assert err.to_response()["details"]["type"] == "invalid_workflow"
    assert err.details["class_type"] == "Load Image From Path (custom)" and "not installed" in err.message
    assert err.details["node_id"] == "3" and err.details["rule"] == "the node type must be installed"


# ------------------------------------------------------------------------------------------- other inputs

def test_a_raw_path_through_a_non_widget_input_is_refused_even_for_an_allowed_class():
    rules = NodeRules(allowed=frozenset({"WebcamCapture", "RecordAudio"}))
    for graph in ({"1": {"class_type": "WebcamCapture", "inputs": {"image": "/etc/x.png", "width": 0, "height": 0,
                                                                    "capture_on_queue": True}}},
                  {"1": {"class_type": "RecordAudio", "inputs": {"audio": "../../x.wav"}}}):
        err = refusal(graph, rules)
        assert err.details["input"] in ("image", "audio") and "link" in err.details["rule"]


def test_model_files_must_be_in_comfyuis_list_fresh_when_the_cached_one_lacks_them():
    graph = {"1": {"class_type": "VAELoader", "inputs": {"vae_name": "../../../etc/x.safetensors"}}}
    err = refusal(graph)
    assert err.details["input"] == "vae_name" and "ae.safetensors" in err.details["rule"]
    assert err.details["available"] == ["ae.safetensors", "pixel_space"]
    asked = []

    def fresh(class_type, name):
        asked.append((class_type, name))
        return ["ae.safetensors", "new-vae.safetensors"]

    graph["1"]["inputs"]["vae_name"] = "new-vae.safetensors"  # added to the volume after start
    assert enforce(graph, OBJECT_INFO, NAMES, rules=CALLER, options=fresh)["1"]["inputs"]["vae_name"] == "new-vae.safetensors"
    assert asked == [("VAELoader", "vae_name")]
    graph["1"]["inputs"]["vae_name"] = "/models/vae/ae.safetensors"
    assert "new-vae.safetensors" in refusal(graph, options=fresh).details["rule"]


def test_v3_combos_are_checked_too():
    # ComfyUI 0.3.64 does not check V3 combo values at validation.
    graph = {"1": {"class_type": "LatentConcat", "inputs": {"samples1": ["2", 0], "samples2": ["3", 0], "dim": "../z"}}}
    assert refusal(graph).details["input"] == "dim"
    graph["1"]["inputs"]["dim"] = "-x"
    assert enforce(graph, OBJECT_INFO, NAMES, rules=CALLER)["1"]["inputs"]["dim"] == "-x"


@pytest.mark.parametrize("prefix", ["../../input/x", "/tmp/x", "x [output]", "", "a/../../b", "~/x"])
def test_filename_prefixes_stay_relative(prefix):
    graph = load_graph()
    graph["5"]["inputs"]["filename_prefix"] = prefix
    err = refusal(graph)
    assert (err.details["node_id"], err.details["class_type"], err.details["input"]) == ("5", "SaveImage", "filename_prefix")


def test_text_inputs_named_like_paths_stay_relative():
    rules = NodeRules(extra=frozenset({"Preview3D"}))
    graph = {"1": {"class_type": "Preview3D", "inputs": {"model_file": "/etc/passwd"}}}
    assert refusal(graph, rules).details["input"] == "model_file"
    graph["1"]["inputs"]["model_file"] = "3d/model.glb"
    assert enforce(graph, OBJECT_INFO, NAMES, rules=rules)["1"]["inputs"]["model_file"] == "3d/model.glb"


def test_a_prompt_text_is_not_a_path():
    graph = {"1": {"class_type": "PreviewAny", "inputs": {"source": "see ../../etc and /dev/zero [output]"}}}
    assert enforce(graph, OBJECT_INFO, NAMES, rules=CALLER) == graph


def test_a_long_value_is_shortened_in_the_sentence():
    err = refusal(load_graph(image="/" + "a" * 5000 + ".png"))
    assert len(err.message) < 1000 and "..." in err.message and "value" not in err.details


def test_a_file_name_computed_by_another_node_is_refused():
    # A string node could feed LoadImage any path at run time; only a literal can be checked and rewritten.
    graph = load_graph(image=["9", 0])
    graph["9"] = {"class_type": "PreviewAny", "inputs": {"source": "x"}}  # stands in for any string-producing node
    err = refusal(graph)
    assert (err.details["node_id"], err.details["input"]) == ("4", "image") and "linked" in err.details["rule"]
    graph = load_graph()
    graph["5"]["inputs"]["filename_prefix"] = ["9", 0]
    assert refusal(graph).details["input"] == "filename_prefix"


@pytest.mark.parametrize("node", [{"class_type": ["LoadImage"], "inputs": {}}, {"class_type": "LoadImage", "inputs": "x"},
                                  "LoadImage"])
def test_a_malformed_node_is_one_clear_refusal(node):
    err = refusal({"4": node})
    assert err.details["node_id"] == "4" and "class_type" in err.details["rule"]


# ------------------------------------------------------------------------- issue 19: against ComfyUI v0.33.0

V0330 = json.loads((Path(__file__).parent / "object_info_v0330_callers.json").read_text(encoding="utf-8"))


def refusal_v0330(graph: dict, rules: NodeRules = CALLER) -> WorkflowPolicyError:
    with pytest.raises(WorkflowPolicyError) as info:
        enforce(graph, V0330, NAMES, rules=rules)
    return info.value


def dataset_save(folder_name) -> dict:
    return {"1": {"class_type": "SaveImageDataSetToFolder", "inputs": {
        "images": ["2", 0], "folder_name": folder_name, "filename_prefix": "x"}},
        "2": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}}}


@pytest.mark.parametrize("spelling", [{"__value__": "/etc/passwd"}, {"__value__": "../../etc"}])
def test_a_path_wrapped_in_value_is_read_as_comfyui_reads_it(spelling):
    # A deployer's allow-list may name a denied class on purpose; its path inputs are still checked.
    rules = NodeRules(allowed=frozenset({"SaveImageDataSetToFolder", "EmptyImage"}))
    err = refusal_v0330(dataset_save(spelling), rules)
    assert (err.details["node_id"], err.details["input"]) == ("1", "folder_name")


def test_a_path_from_a_primitive_is_checked_and_one_computed_at_run_time_is_refused():
    rules = NodeRules(allowed=frozenset({"SaveImageDataSetToFolder", "EmptyImage", "PrimitiveString",
                                         "StringConcatenate"}))
    graph = dataset_save(["3", 0])
    graph["3"] = {"class_type": "PrimitiveString", "inputs": {"value": "/etc", "extra": "ignored by ComfyUI"}}
    assert refusal_v0330(graph, rules).details["input"] == "folder_name"
    graph["3"]["inputs"]["value"] = "my_set"
    assert enforce(graph, V0330, NAMES, rules=rules)["1"]["inputs"]["folder_name"] == ["3", 0]
    graph["3"] = {"class_type": "StringConcatenate", "inputs": {"string_a": "/", "string_b": "etc", "delimiter": ""}}
    assert "primitive" in refusal_v0330(graph, rules).details["rule"]


def test_list_values_wrapped_in_value_are_unwrapped_and_checked():
    graph = {"1": {"class_type": "VAELoader", "inputs": {"vae_name": {"__value__": "../../x.safetensors"}}}}
    assert refusal_v0330(graph).details["input"] == "vae_name"
    graph["1"]["inputs"]["vae_name"] = {"__value__": "pixel_space"}
    assert enforce(graph, V0330, NAMES, rules=CALLER)["1"]["inputs"]["vae_name"] == "pixel_space"


def test_saving_a_dataset_into_an_output_folder_the_caller_names_is_denied_even_as_an_extra_node():
    err = refusal_v0330(dataset_save("my_set"), NodeRules(extra=frozenset({"SaveImageDataSetToFolder", "EmptyImage"})))
    assert err.details["class_type"] == "SaveImageDataSetToFolder" and "not allowed" in err.details["rule"]


@pytest.mark.parametrize("class_type", ["RegexReplace", "ConditioningCombine", "ImageStitch", "GetImageSize"])
def test_classes_whose_size_the_worker_cannot_bound_are_refused_unless_the_deployer_adds_them(class_type):
    err = refusal_v0330({"7": {"class_type": class_type, "inputs": {}}})
    assert err.details["class_type"] == class_type and "WORKFLOW_EXTRA_NODES" in err.details["rule"]
    enforce({"7": {"class_type": class_type, "inputs": {}}}, V0330, NAMES, rules=NodeRules(extra=frozenset({class_type})))


def test_torch_compile_is_refused_even_when_every_class_is_otherwise_allowed():
    graph = {"1": {"class_type": "TorchCompileModel", "inputs": {"model": ["2", 0], "backend": "inductor"}}}
    assert "TorchCompileModel" in DENIED_NODES
    assert refusal_v0330(graph, NodeRules(extra=frozenset({"TorchCompileModel"}))).details["class_type"] == "TorchCompileModel"


def test_a_callers_fast_path_settings_are_replaced_by_the_deployers():
    graph = {"12": {"class_type": "FluxFastPatch", "inputs": {"model": ["1", 0], "compute": "fp8_rowwise",
                                                              "compile": {"__value__": True}, "upcast_weights": "always"}}}
    out = enforce(graph, V0330, NAMES, rules=CALLER)
    assert out["12"]["inputs"] == {"model": ["1", 0], "compute": "default", "compile": True, "upcast_weights": "auto"}
    # a shipped workflow keeps what the deployer wrote in it
    assert enforce(graph, V0330, NAMES, rules=None)["12"]["inputs"]["upcast_weights"] == "always"


def test_lora_url_cache_files_are_not_a_callers_to_name_nor_listed():
    rules = NodeRules(hidden_prefix="_url_cache/")
    listed = V0330["LoraLoaderModelOnly"]["input"]["required"]["lora_name"][0]
    cached = "_url_cache/url-" + "ab" * 32 + ".safetensors"

    def fresh(class_type, name):
        return list(listed) + [cached]

    graph = {"1": {"class_type": "LoraLoaderModelOnly", "inputs": {"model": ["2", 0], "lora_name": cached,
                                                                   "strength_model": 1.0}}}
    with pytest.raises(WorkflowPolicyError) as info:
        enforce(graph, V0330, NAMES, rules=rules, options=fresh)
    assert cached not in info.value.details["available"] and cached not in info.value.message
    # a URL in lora_name is left for loras.py, which downloads it after every check passed
    graph["1"]["inputs"]["lora_name"] = "https://example.com/a.safetensors"
    out = enforce(graph, V0330, NAMES, rules=rules, options=fresh, pending=frozenset({("1", "lora_name")}))
    assert out["1"]["inputs"]["lora_name"] == "https://example.com/a.safetensors"


def test_a_dynamic_combo_takes_its_option_keys_and_the_chosen_options_inputs_as_comfyui_reads_them():
    # SaveVideo's `codec` (v0.33.0 V3 DynamicCombo): a literal key, with nested `codec.encoding` and its `crf`.
    rules = NodeRules(extra=frozenset({"SaveVideo", "CreateVideo", "EmptyImage"}))
    graph = {"5": {"class_type": "SaveVideo", "inputs": {"video": ["6", 0], "filename_prefix": "v", "format": "auto",
                                                         "codec": "h264", "codec.encoding": "re-encode",
                                                         "codec.encoding.crf": 20.0}}}
    out = enforce(graph, V0330, NAMES, rules=rules)
    assert out["5"]["inputs"]["codec"] == "h264" and out["5"]["inputs"]["codec.encoding.crf"] == 20.0
    graph["5"]["inputs"]["codec.encoding"] = "lossless"
    err = refusal_v0330(graph, rules)
    assert err.details["input"] == "codec.encoding" and "re-encode" in err.details["rule"]
    graph["5"]["inputs"].update({"codec": {"__value__": "vp9"}, "codec.encoding": "auto"})
    err = refusal_v0330(graph, rules)
    assert err.details["input"] == "codec" and "h264" in err.details["rule"]


# ------------------------------------------------------- literals of the widgets the frontend itself defines

GUI_INFO = json.loads((Path(__file__).parent / "fixtures" / "object_info.json").read_text(encoding="utf-8"))


def test_literals_of_frontend_drawn_widgets_pass_where_the_deployer_allows_the_class():
    """What the converter sends for a GUI workflow (a color, a curve) is a literal the GUI itself queues: a deployer
    who allows these classes must not get "takes a COLOR from another node's output" for them."""
    graph = {"1": {"class_type": "ColorToRGBInt", "inputs": {"color": "#0a9299"}},
             "2": {"class_type": "CurveEditor", "inputs": {"curve": {"points": [[0, 0], [1, 1]],
                                                                     "interpolation": "linear"}}}}
    rules = NodeRules(allowed=frozenset({"ColorToRGBInt", "CurveEditor"}))
    assert enforce(graph, GUI_INFO, NAMES, rules=rules) == graph


def test_a_painter_mask_must_be_this_jobs_upload_even_where_painter_is_allowed():
    """Painter's mask names a file the GUI wrote into ComfyUI's temp folder (another job's, or the GUI's own);
    on a worker it may only be an image uploaded with this job, like any upload input."""
    rules = NodeRules(allowed=frozenset({"Painter"}))
    graph = {"3": {"class_type": "Painter", "inputs": {"mask": "painter/painter-3.png [temp]", "width": 512,
                                                       "height": 512, "bg_color": "#000000"}}}
    with pytest.raises(WorkflowPolicyError) as info:
        enforce(graph, GUI_INFO, NAMES, rules=rules)
    assert info.value.details["input"] == "mask" and "uploaded with this job" in str(info.value)
    graph["3"]["inputs"]["mask"] = "face.png"
    assert enforce(graph, GUI_INFO, NAMES, rules=rules)["3"]["inputs"]["mask"] == "job7-abcd1234/face.png"


@pytest.mark.parametrize("class_type", ["SplitSigmas", "KarrasScheduler", "SamplerEulerAncestral",
                                        "ControlNetLoader", "ControlNetApplyAdvanced", "SetUnionControlNetType"])
def test_custom_sampling_and_controlnet_nodes_of_flux_workflows_are_allowed_by_default(class_type):
    assert NodeRules().refusal(class_type) is None


def test_a_sigmas_node_that_multiplies_their_length_still_needs_the_deployer():
    assert "WORKFLOW_EXTRA_NODES" in NodeRules().refusal("ExtendIntermediateSigmas")
