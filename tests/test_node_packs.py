"""Node packs on the worker side (handler/node_packs.py): the build's record, `action: info`, the one refusal of a
missing class (UI and API format alike, with the custom_nodes.txt line where the GUI node says its pack), and the
workflow policy for pack classes (unknown sizes, path and URL inputs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from handler import node_packs
from handler.config import Settings
from handler.errors import ConfigError, MissingNodeError, WorkflowPolicyError
from handler.info import describe
from handler.ui_to_api import convert
from handler.workflow_policy import JobNames, NodeRules, enforce

FIXTURES = Path(__file__).resolve().parent / "fixtures"
OBJECT_INFO = json.loads((FIXTURES / "object_info.json").read_text())
NAMES = JobNames("job1-abcd", {})
COMMIT = "3f20054214fec9f9234fd3841ae6f1e4287948f6"


def _pack_class(inputs: dict, module: str = "custom_nodes.test-pack") -> dict:
    return {"input": {"required": inputs}, "input_order": {"required": list(inputs)}, "output": ["IMAGE"],
            "output_name": ["IMAGE"], "output_is_list": [False], "name": "x", "display_name": "x",
            "python_module": module, "category": "test", "output_node": False}


PACK_INFO = {
    **json.loads((Path(__file__).resolve().parent / "object_info_v0330_callers.json").read_text()),
    "PackBlur": _pack_class({"image": ["IMAGE"], "radius": ["INT", {"default": 1, "min": 0, "max": 10}]}),
    "PackLoadFromFolder": _pack_class({"folder": ["STRING", {"default": ""}], "count": ["INT", {"default": 1}]}),
    "PackFetch": _pack_class({"image_url": ["STRING", {"default": ""}]}),
    "PackSaveAs": _pack_class({"images": ["IMAGE"], "filename_prefix": ["STRING", {"default": "x"}]}),
}
RECORD = node_packs.PackRecord((
    node_packs.Pack("test-pack", f"https://github.com/me/test-pack {COMMIT}", "git", COMMIT,
                    ("PackBlur", "PackLoadFromFolder", "PackFetch", "PackSaveAs")),
    node_packs.Pack("gone-pack", "gone-pack@1.0.0", "registry", "1.0.0", ("GoneNode",)),
))


def write_record(path: Path, packs: list[dict]) -> Path:
    path.write_text(json.dumps({"version": 1, "packs": packs}))
    return path


# ---- the record ---------------------------------------------------------------------------------------------

def test_no_record_means_no_packs_and_a_record_is_read_as_the_build_wrote_it(tmp_path):
    assert node_packs.load(tmp_path / "absent.json") == node_packs.PackRecord()
    assert node_packs.load(None).packs == ()
    path = write_record(tmp_path / "r.json", [{"name": "ComfyUI-GGUF", "line": "https://x/ComfyUI-GGUF " + COMMIT,
                                                "kind": "git", "pin": COMMIT, "classes": ["UnetLoaderGGUF"],
                                                "import_s": 0.02, "url": "https://x/ComfyUI-GGUF"}])
    record = node_packs.load(path)
    assert record.packs[0].classes == ("UnetLoaderGGUF",) and record.provider("UnetLoaderGGUF").name == "ComfyUI-GGUF"


@pytest.mark.parametrize("body", ["not json", json.dumps({"version": 9, "packs": []}), json.dumps({"version": 1}),
                                  json.dumps({"version": 1, "packs": [{"name": "x"}]})])
def test_a_malformed_record_stops_the_worker_naming_the_variable(tmp_path, body):
    path = tmp_path / "r.json"
    path.write_text(body)
    with pytest.raises(ConfigError) as err:
        Settings.from_env({"NODE_PACKS_RECORD": str(path)})
    assert "NODE_PACKS_RECORD" in err.value.message


def test_the_record_defaults_to_comfyuis_custom_nodes_folder(tmp_path):
    (tmp_path / "custom_nodes").mkdir()
    write_record(tmp_path / "custom_nodes" / "node_packs.json",
                 [{"name": "p", "line": "p@1.0.0", "kind": "registry", "pin": "1.0.0", "classes": ["A"]}])
    settings = Settings.from_env({"COMFYUI_PATH": str(tmp_path)})
    assert settings.node_packs_record == tmp_path / "custom_nodes" / "node_packs.json"
    assert [p.name for p in settings.node_packs.packs] == ["p"]
    assert Settings.from_env({}).node_packs.packs == ()


def test_info_lists_each_pack_with_its_pin_classes_and_whether_they_are_loaded():
    class Client:
        def system_stats(self):
            return {"system": {}, "devices": []}

        def model_folders(self):
            return []

        def object_info(self, refresh=False):
            return PACK_INFO

        def fast_path_status(self):
            return {}

    info = describe(Client(), {}, packs=RECORD)
    first, second = info["node_packs"]
    assert first == {"name": "test-pack", "source": "git", "pin": COMMIT,
                     "custom_nodes_line": f"https://github.com/me/test-pack {COMMIT}",
                     "node_classes": ["PackBlur", "PackLoadFromFolder", "PackFetch", "PackSaveAs"], "loaded": True}
    assert second["loaded"] is False and second["custom_nodes_line"] == "gone-pack@1.0.0"
    assert describe(Client(), {})["node_packs"] == []


# ---- the line to add -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("properties, line", [
    ({"cnr_id": "comfyui-kjnodes", "ver": "1.1.7"}, "comfyui-kjnodes@1.1.7"),
    ({"cnr_id": "comfyui-kjnodes", "aux_id": "kijai/ComfyUI-KJNodes", "ver": COMMIT},
     f"https://github.com/kijai/ComfyUI-KJNodes {COMMIT}"),
    ({"aux_id": "kijai/ComfyUI-KJNodes", "ver": COMMIT}, f"https://github.com/kijai/ComfyUI-KJNodes {COMMIT}"),
    ({"aux_id": "kijai/ComfyUI-KJNodes"}, None),  # no commit: a hint, not a line
    ({"cnr_id": "comfyui-kjnodes"}, None),
    ({"cnr_id": "comfy-core", "ver": "0.40.1"}, None),
    ({"cnr_id": "x\n; rm -rf /", "ver": "1.0"}, None),  # the caller's text is echoed only in the expected shapes
    ({"Node name for S&R": "X"}, None), (None, None), ("nope", None),
])
def test_the_custom_nodes_line_comes_from_the_gui_nodes_pack_properties(properties, line):
    assert node_packs.suggested_line(properties)[0] == line


def test_hints_without_an_exact_pin_say_what_to_pin():
    assert "'https://github.com/kijai/ComfyUI-KJNodes <commit>'" in node_packs.suggested_line({"aux_id": "kijai/ComfyUI-KJNodes"})[1]
    assert "'comfyui-kjnodes@<version>'" in node_packs.suggested_line({"cnr_id": "comfyui-kjnodes"})[1]
    core = node_packs.suggested_line({"cnr_id": "comfy-core", "ver": "0.40.1"})
    assert core[0] is None and "core node of ComfyUI 0.40.1" in core[1]
    # a core node the worker lacks is either newer than its ComfyUI or a paid API node it does not load (a template
    # of ComfyUI 0.8.2's API nodes on a v0.33.0 worker): the hint names both, never "another release" alone
    assert "newer ComfyUI release" in core[1] and "--disable-api-nodes" in core[1]


# ---- a missing class: one refusal, UI and API format ---------------------------------------------------------

def _ui_with_pack_nodes() -> dict:
    return {"nodes": [
        {"id": 1, "type": "EmptyLatentImage", "mode": 0, "widgets_values": [512, 512, 1],
         "outputs": [{"name": "LATENT", "type": "LATENT", "links": []}]},
        {"id": 12, "type": "GetImageSizeAndCount", "mode": 0, "title": "Size", "widgets_values": [],
         "properties": {"cnr_id": "comfyui-kjnodes", "ver": "1.1.7", "Node name for S&R": "GetImageSizeAndCount"}},
        {"id": 13, "type": "Image Comparer (rgthree)", "mode": 0, "widgets_values": [],
         "properties": {"aux_id": "rgthree/rgthree-comfy", "ver": COMMIT}},
        {"id": 14, "type": "SomethingMuted", "mode": 2, "widgets_values": []},
    ], "links": [], "version": 0.4}


def test_a_gui_workflow_needing_a_missing_pack_is_invalid_workflow_with_the_line_to_add():
    with pytest.raises(MissingNodeError) as caught:
        convert(_ui_with_pack_nodes(), OBJECT_INFO)
    response = caught.value.to_response()
    details = response["details"]
    assert details["type"] == "invalid_workflow"
    assert (details["node_id"], details["class_type"], details["node_title"]) == ("12", "GetImageSizeAndCount", "Size")
    assert details["custom_nodes_line"] == "comfyui-kjnodes@1.1.7"
    assert "node 12 (GetImageSizeAndCount) 'Size'" in response["error"]
    assert "add the line 'comfyui-kjnodes@1.1.7' to custom_nodes.txt" in response["error"]
    assert details["missing"] == [
        {"node_id": "12", "class_type": "GetImageSizeAndCount", "title": "Size", "custom_nodes_line": "comfyui-kjnodes@1.1.7"},
        {"node_id": "13", "class_type": "Image Comparer (rgthree)", "title": None,
         "custom_nodes_line": f"https://github.com/rgthree/rgthree-comfy {COMMIT}"}]  # the muted node is not run


def test_an_api_graph_needing_missing_classes_is_refused_by_the_policy_naming_all_of_them():
    graph = {"3": {"class_type": "UnetLoaderGGUF", "inputs": {"unet_name": "x.gguf"}, "_meta": {"title": "GGUF"}},
             "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
             "5": {"class_type": "GetImageSizeAndCount", "inputs": {},
                   "_meta": {"title": "Size", "cnr_id": "comfyui-kjnodes", "ver": "1.1.7"}}}
    with pytest.raises(MissingNodeError) as caught:
        enforce(graph, OBJECT_INFO, NAMES, rules=NodeRules())
    details = caught.value.details
    assert (details["node_id"], details["class_type"], details["node_title"]) == ("3", "UnetLoaderGGUF", "GGUF")
    assert [m["node_id"] for m in details["missing"]] == ["3", "5"]
    assert details["missing"][1]["custom_nodes_line"] == "comfyui-kjnodes@1.1.7"


def test_a_class_an_installed_pack_should_provide_names_the_pack_that_did_not_load():
    graph = {"7": {"class_type": "GoneNode", "inputs": {}}}
    with pytest.raises(MissingNodeError) as caught:
        enforce(graph, PACK_INFO, NAMES, rules=NodeRules(packs=RECORD))
    assert "Pack 'gone-pack' (gone-pack@1.0.0) provides it but its nodes are not loaded" in caught.value.message


def test_shipped_workflows_are_not_checked_for_classes():
    graph = {"7": {"class_type": "GoneNode", "inputs": {}}}
    assert enforce(graph, OBJECT_INFO, NAMES, rules=None) == graph


# ---- pack classes under the workflow policy ------------------------------------------------------------------

def _blur_graph() -> dict:
    return {"1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
            "2": {"class_type": "PackBlur", "inputs": {"image": ["1", 0], "radius": 2}}}


def test_a_pack_class_of_unknown_size_is_refused_unless_the_deployer_vouches_for_it():
    with pytest.raises(WorkflowPolicyError) as caught:
        enforce(_blur_graph(), PACK_INFO, NAMES, rules=NodeRules())
    assert caught.value.details["class_type"] == "PackBlur" and "WORKFLOW_EXTRA_NODES" in caught.value.details["rule"]
    assert enforce(_blur_graph(), PACK_INFO, NAMES, rules=NodeRules(extra=frozenset({"PackBlur"})))


@pytest.mark.parametrize("class_type, inputs, named", [
    ("PackLoadFromFolder", {"folder": "faces", "count": 1}, "folder"),
    ("PackFetch", {"image_url": "https://example.com/x.png"}, "image_url"),
])
def test_a_pack_class_with_a_path_or_url_input_is_refused_even_when_vouched_for(class_type, inputs, named):
    graph = {"1": {"class_type": class_type, "inputs": inputs}}
    vouched = NodeRules(extra=frozenset({class_type}))
    with pytest.raises(WorkflowPolicyError) as caught:
        enforce(graph, PACK_INFO, NAMES, rules=vouched)
    rule = caught.value.details["rule"]
    assert named in rule and "WORKFLOW_ALLOWED_PACK_NODES" in rule and caught.value.details["input"] is None
    # the same class under an allow-list: still refused, only WORKFLOW_ALLOWED_PACK_NODES allows its paths
    with pytest.raises(WorkflowPolicyError):
        enforce(graph, PACK_INFO, NAMES, rules=NodeRules(allowed=frozenset({class_type})))
    allowed = NodeRules(extra=frozenset({class_type}), pack_path_nodes=frozenset({class_type}))
    assert enforce(graph, PACK_INFO, NAMES, rules=allowed)


def test_an_allowed_pack_classs_paths_stay_relative():
    graph = {"1": {"class_type": "PackLoadFromFolder", "inputs": {"folder": "/etc", "count": 1}}}
    rules = NodeRules(extra=frozenset({"PackLoadFromFolder"}), pack_path_nodes=frozenset({"PackLoadFromFolder"}))
    with pytest.raises(WorkflowPolicyError) as caught:
        enforce(graph, PACK_INFO, NAMES, rules=rules)
    assert caught.value.details["input"] == "folder" and "absolute" in caught.value.details["rule"]


def test_a_pack_save_nodes_prefix_goes_into_the_jobs_folder_like_a_core_one():
    graph = {"1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
             "2": {"class_type": "PackSaveAs", "inputs": {"images": ["1", 0], "filename_prefix": "mine"}}}
    out = enforce(graph, PACK_INFO, NAMES, rules=NodeRules(extra=frozenset({"PackSaveAs"})))
    assert out["2"]["inputs"]["filename_prefix"] == "job1-abcd/mine"


def test_the_settings_carry_the_allowed_pack_nodes():
    settings = Settings.from_env({"WORKFLOW_ALLOWED_PACK_NODES": "PackFetch, Load From Folder (pack)"})
    assert settings.workflow_allowed_pack_nodes == {"PackFetch", "Load From Folder (pack)"}
