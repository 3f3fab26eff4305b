"""A caller's GUI workflow in the PNG carries the values that ran, or is left out (handler/ui_params.py)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from handler import ui_to_api, workflow
from handler.graph_rules import WorkflowLimits
from handler.ui_params import workflow_that_ran

ROOT = Path(__file__).resolve().parent.parent
OBJECT_INFO = json.loads((ROOT / "tests" / "fixtures" / "object_info.json").read_text())
UI = json.loads((ROOT / "workflows" / "flux1-dev-t2i.ui.json").read_text())
PARAMS = workflow.load_template(ROOT / "workflows", "flux1-dev-t2i").parameters
LIMITS = WorkflowLimits()


def _ran(ui, values):
    return workflow.fill(ui_to_api.convert(ui, OBJECT_INFO), PARAMS, values)


def _node(ui, title):
    return next(n for n in ui["nodes"] if n.get("title") == title)


def test_every_bound_field_is_written_into_its_widget_and_the_result_converts_to_what_ran():
    values = {"prompt": "a fox", "seed": 7, "num_inference_steps": 4, "width": 512, "height": 256,
              "guidance_scale": 2.0, "num_images": 2}
    got = workflow_that_ran(UI, PARAMS, values, _ran(UI, values), OBJECT_INFO, LIMITS)
    assert _node(got, "Prompt")["widgets_values"] == ["a fox"]
    assert _node(got, "Sampler")["widgets_values"] == [7, "randomize", 4, 1.0, "euler", "simple", 1.0]
    assert _node(got, "Image size")["widgets_values"] == [512, 256, 2]
    assert _node(got, "Guidance")["widgets_values"] == [2.0]
    assert ui_to_api.convert(got, OBJECT_INFO) == _ran(UI, values)
    assert _node(UI, "Prompt")["widgets_values"] != ["a fox"]  # the caller's object is not modified


def test_no_values_means_the_callers_workflow_as_it_is():
    assert workflow_that_ran(UI, PARAMS, {}, _ran(UI, {}), OBJECT_INFO, LIMITS) is UI


def test_a_widget_fed_by_a_link_cannot_be_written_so_the_workflow_is_left_out():
    """The seed comes from a PrimitiveNode: writing the sampler's widget would not change what the GUI queues."""
    ui = copy.deepcopy(UI)
    sampler = _node(ui, "Sampler")
    link_id = max(link[0] for link in ui["links"]) + 1
    ui["nodes"].append({"id": 99, "type": "PrimitiveNode", "pos": [0, 0], "size": [200, 80], "flags": {}, "order": 0,
                        "mode": 0, "inputs": [], "properties": {"Run widget replace on values": False},
                        "outputs": [{"name": "INT", "type": "INT", "links": [link_id],
                                     "widget": {"name": "seed"}}], "widgets_values": [123, "fixed"]})
    sampler["inputs"].append({"name": "seed", "type": "INT", "widget": {"name": "seed"}, "link": link_id})
    ui["links"].append([link_id, 99, 0, sampler["id"], len(sampler["inputs"]) - 1, "INT"])
    values = {"seed": 5}
    assert workflow_that_ran(ui, PARAMS, values, _ran(ui, values), OBJECT_INFO, LIMITS) is None


def test_an_ambiguous_title_leaves_the_workflow_out():
    ui = copy.deepcopy(UI)
    twin = copy.deepcopy(_node(ui, "Prompt"))
    twin["id"] = 98
    twin["outputs"][0]["links"] = None
    twin["inputs"][0]["link"] = None
    ui["nodes"].append(twin)
    values = {"prompt": "x"}
    ran = workflow.fill(ui_to_api.convert(UI, OBJECT_INFO), PARAMS, values)
    assert workflow_that_ran(ui, PARAMS, values, ran, OBJECT_INFO, LIMITS) is None


def test_a_graph_changed_beyond_the_fields_leaves_the_workflow_out():
    values = {"prompt": "x"}
    ran = _ran(UI, values)
    ran = {**ran, "extra": {"class_type": "LoraLoaderModelOnly", "inputs": {}, "_meta": {"title": "LoRA 1"}}}
    assert workflow_that_ran(UI, PARAMS, values, ran, OBJECT_INFO, LIMITS) is None
