"""Hostile or broken workflows are the caller's error (`invalid_workflow`), named and bounded, never a crash.

The converter and the graph rules run against the saved /object_info of ComfyUI 0.3.64 (no ComfyUI needed).
The fuzz loop is deterministic (a fixed seed, no hypothesis): it mutates every fixture UI workflow and every
shipped GUI workflow and requires that each mutation either converts or raises a WorkerError, never anything
else (which the job boundary would report as `internal_error`).
"""

from __future__ import annotations

import copy
import json
import math
import random
import time
import tracemalloc
from pathlib import Path

import pytest

from handler.errors import WorkerError, WorkflowError
from handler.graph_rules import WorkflowLimits, check_api_graph, check_workflow_json, mark_output_nodes
from handler.ui_to_api import convert

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
OBJECT_INFO = json.loads((FIXTURES / "object_info.json").read_text())
UI_FILES = sorted((FIXTURES / "ui").glob("*.json")) + sorted((ROOT / "workflows").glob("*.ui.json"))
T2I = json.loads((ROOT / "workflows" / "flux1-dev-t2i.api.json").read_text())


def load(path: Path) -> dict:
    return json.loads(path.read_text())


# ---- exponential subgraphs and deep nesting ---------------------------------------------------------------

def _tenfold_chain(levels: int) -> dict:
    """Subgraph definitions where each holds 10 instances of the next: 10**levels nodes from a few KB of JSON."""
    defs = []
    for level in range(levels):
        inner = f"sg{level + 1}" if level + 1 < levels else "Note"
        defs.append({"id": f"sg{level}", "name": f"level {level}", "nodes": [
            {"id": i, "type": inner, "mode": 0, "inputs": [], "outputs": []} for i in range(10)], "links": []})
    return {"nodes": [{"id": 1, "type": "sg0", "mode": 0, "inputs": [], "outputs": []}], "links": [],
            "definitions": {"subgraphs": defs}, "version": 0.4}


def _deep_chain(depth: int) -> dict:
    defs = [{"id": f"d{i}", "nodes": [{"id": 1, "type": f"d{i + 1}" if i + 1 < depth else "Note", "mode": 0}],
             "links": []} for i in range(depth)]
    return {"nodes": [{"id": 1, "type": "d0", "mode": 0}], "links": [], "definitions": {"subgraphs": defs}}


def test_exponential_subgraphs_are_refused_before_expansion_in_bounded_time_and_memory():
    workflow = _tenfold_chain(6)  # a million nodes if expanded
    assert len(json.dumps(workflow)) < 10_000
    tracemalloc.start()
    started = time.monotonic()
    with pytest.raises(WorkflowError) as caught:
        convert(workflow, OBJECT_INFO, WorkflowLimits(max_nodes=2000))
    elapsed = time.monotonic() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    err = caught.value
    assert err.code == "invalid_workflow" and err.details["limit"] == "max_nodes"
    assert "2000" in err.message and "WORKFLOW_MAX_NODES" in err.message
    assert elapsed < 1.0 and peak < 20_000_000


def test_a_graph_within_the_node_limit_still_expands():
    with pytest.raises(WorkflowError) as caught:  # 1 + 10 + 100 notes: all notes, nothing to run
        convert(_tenfold_chain(2), OBJECT_INFO, WorkflowLimits(max_nodes=200))
    assert "no nodes that ComfyUI can run" in caught.value.message


def test_deep_subgraph_nesting_is_refused_naming_the_limit_not_a_recursion_error():
    with pytest.raises(WorkflowError) as caught:
        convert(_deep_chain(2000), OBJECT_INFO, WorkflowLimits(max_subgraph_depth=16))
    assert caught.value.code == "invalid_workflow" and caught.value.details["limit"] == "max_subgraph_depth"
    assert "16" in caught.value.message and "WORKFLOW_MAX_SUBGRAPH_DEPTH" in caught.value.message


def test_a_long_reroute_chain_is_refused_not_a_recursion_error():
    nodes = [{"id": 1, "type": "LoadImage", "mode": 0, "inputs": [], "outputs": [{"name": "IMAGE", "type": "IMAGE"}],
              "widgets_values": ["example.png", "image"]}]
    links = []
    for i in range(2, 1500):
        nodes.append({"id": i, "type": "Reroute", "mode": 0, "inputs": [{"name": "", "type": "*", "link": i}],
                      "outputs": [{"name": "", "type": "IMAGE"}]})
        links.append([i, i - 1, 0, i, 0, "IMAGE"])
    nodes.append({"id": 1500, "type": "PreviewImage", "mode": 0, "inputs": [{"name": "images", "type": "IMAGE", "link": 1500}]})
    links.append([1500, 1499, 0, 1500, 0, "IMAGE"])
    with pytest.raises(WorkflowError) as caught:
        convert({"nodes": nodes, "links": links}, OBJECT_INFO)
    assert caught.value.details["limit"] == "max_link_hops"


def test_json_nested_hundreds_of_levels_is_refused_before_any_recursive_walk():
    value: list = []
    for _ in range(900):
        value = [value]
    graph = {"1": {"class_type": "PrimitiveString", "inputs": {"value": {"__value__": value}}}}
    with pytest.raises(WorkflowError) as caught:
        check_workflow_json(graph, WorkflowLimits())
    assert caught.value.details["limit"] == "max_json_depth"
    check_workflow_json(load(UI_FILES[0]), WorkflowLimits())  # real GUI files pass


def test_the_node_limit_applies_to_api_graphs():
    graph = {str(i): {"class_type": "PrimitiveInt", "inputs": {"value": i}} for i in range(30)}
    with pytest.raises(WorkflowError) as caught:
        check_api_graph(graph, WorkflowLimits(max_nodes=20))
    assert caught.value.details == {"field": "workflow", "nodes": 30, "limit": "max_nodes", "max_nodes": 20}


# ---- API-format structure (ComfyUI answers 500 to some of these) ------------------------------------------

@pytest.mark.parametrize("node,field", [
    ({"class_type": ["SaveImage"], "inputs": {}}, "class_type"),
    ({"class_type": {"a": 1}, "inputs": {}}, "class_type"),
    ({"class_type": 7, "inputs": {}}, "class_type"),
    ({"inputs": {}}, "class_type"),
    ({"class_type": "SaveImage", "inputs": "abc"}, "inputs"),
    ({"class_type": "SaveImage"}, "inputs"),
    ({"class_type": "SaveImage", "inputs": {"images": ["1", 0, 0]}}, "inputs.images"),
    ({"class_type": "SaveImage", "inputs": {"images": [1, 0]}}, "inputs.images"),
    ({"class_type": "SaveImage", "inputs": {"images": ["nope", 0]}}, "inputs.images"),
    ({"class_type": "SaveImage", "inputs": {"images": ["1", "0"]}}, "inputs.images"),
    ({"class_type": "SaveImage", "inputs": {"images": ["1", -1]}}, "inputs.images"),
    ("SaveImage", None),
])
def test_api_graph_structure_is_checked_naming_node_and_field(node, field):
    graph = {"1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
             "2": node}
    with pytest.raises(WorkflowError) as caught:
        check_api_graph(graph, WorkflowLimits())
    err = caught.value
    assert err.code == "invalid_workflow" and err.details["node_id"] == "2" and err.details.get("field") == field
    assert "node 2" in err.message.lower()


def test_the_shipped_graph_passes_the_shape_rules():
    assert check_api_graph(copy.deepcopy(T2I), WorkflowLimits()) is not None


def test_output_nodes_get_a_per_job_mark_and_nothing_else_changes():
    marked = mark_output_nodes(T2I, OBJECT_INFO, "job-7")
    save = next(nid for nid, n in T2I.items() if n["class_type"] == "FluxFastSaveImage")
    assert marked[save]["inputs"] == {**T2I[save]["inputs"], "worker_job_id": "job-7"}
    assert {nid: n for nid, n in marked.items() if nid != save} == {nid: n for nid, n in T2I.items() if nid != save}
    assert "worker_job_id" not in T2I[save]["inputs"]  # the caller's graph is not modified in place
    preview = {"1": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}}
    assert mark_output_nodes(preview, OBJECT_INFO, "job-7") == preview  # temp files: never deleted, cache is right


# ---- malformed UI workflows: the caller's error, naming node and field -------------------------------------

def _t2i_ui() -> dict:
    return load(ROOT / "workflows" / "flux1-dev-t2i.ui.json")


def _first_node(wf: dict) -> dict:
    return wf["nodes"][0]


@pytest.mark.parametrize("mutate,field", [
    (lambda wf: _first_node(wf).__setitem__("mode", "x"), "mode"),
    (lambda wf: _first_node(wf).__setitem__("inputs", "abc"), "inputs"),
    (lambda wf: _first_node(wf).__setitem__("outputs", 5), "outputs"),
    (lambda wf: _first_node(wf).__setitem__("inputs", [1, 2]), "inputs[0]"),
    (lambda wf: _first_node(wf).__setitem__("title", ["t"]), "title"),
    (lambda wf: wf.__setitem__("extra", [1]), "extra"),
    (lambda wf: wf.__setitem__("definitions", "x"), "definitions"),
    (lambda wf: wf["links"][0].__setitem__(2, math.inf), "links"),
    (lambda wf: wf.__setitem__("links", {"a": 1}), "links"),
])
def test_malformed_ui_workflow_is_invalid_workflow_naming_the_field(mutate, field):
    wf = _t2i_ui()
    mutate(wf)
    with pytest.raises(WorkflowError) as caught:
        convert(wf, OBJECT_INFO)
    assert caught.value.code == "invalid_workflow"
    assert caught.value.details.get("field") == field
    assert field.split("[")[0] in caught.value.message


def test_a_subgraph_instance_with_non_object_inputs_names_the_node():
    wf = load(FIXTURES / "ui" / "subgraph_v1.json")
    instance = next(n for n in wf["nodes"] if n["type"] in {d["id"] for d in wf["definitions"]["subgraphs"]})
    instance["inputs"] = ["clip", "text"]
    with pytest.raises(WorkflowError) as caught:
        convert(wf, OBJECT_INFO)
    assert caught.value.details == {"node_id": str(instance["id"]), "field": "inputs[0]"}


# ---- the fuzz loop ------------------------------------------------------------------------------------------

_REPLACEMENTS = [None, "x", "", -1, 0, 7, 2**70, 1.5, math.inf, -math.inf, math.nan, True, [], [None], [1, 2, 3],
                 {}, {"a": 1}, "abc" * 10, [[0, 1, 2, 3, 4, "X"]], {"id": 1}]


def _paths(value, prefix=()):
    """Every (path) into the JSON tree, containers included."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*prefix, index))


def _mutated(workflow: dict, path: tuple, action, rng: random.Random) -> dict:
    wf = copy.deepcopy(workflow)
    parent = wf
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    if action == "delete":
        if isinstance(parent, dict):
            del parent[key]
        else:
            parent.pop(key)
    elif action == "duplicate" and isinstance(parent, list):
        parent.insert(key, copy.deepcopy(parent[key]))
    else:
        parent[key] = copy.deepcopy(action)
    return wf


def test_fuzzed_ui_workflows_convert_or_raise_a_worker_error():
    rng = random.Random(20261201)
    tried, by_type = 0, {}
    for path_file in UI_FILES:
        workflow = load(path_file)
        paths = [p for p in _paths(workflow) if p]
        rng.shuffle(paths)
        for path in paths[:350]:
            for action in ["delete", "duplicate", *rng.sample(_REPLACEMENTS, 4)]:
                wf = _mutated(workflow, path, action, rng)
                tried += 1
                try:
                    convert(wf, OBJECT_INFO)
                except WorkerError as err:
                    by_type[err.code] = by_type.get(err.code, 0) + 1
                except Exception as exc:  # noqa: BLE001 - this is what the test is looking for
                    pytest.fail(f"{path_file.name}: {action!r} at {path} raised {type(exc).__name__}: {exc}")
    assert tried > 5000
    assert by_type.get("invalid_workflow", 0) > 100  # the loop does reach the shape checks


# ---- shapes a script (not the GUI) writes: refused by name, never a crash ----------------------------------

def _fixture(name: str) -> dict:
    return load(FIXTURES / "ui" / name)


def test_a_subgraph_input_whose_name_is_not_a_string_is_refused_naming_it():
    wf = _fixture("subgraph_v1.json")
    wf["definitions"]["subgraphs"][0]["inputs"][1]["name"] = ["text"]
    next(n for n in wf["nodes"] if n["id"] == 20)["widgets_values"] = {"text": "hi"}  # read by name: was a TypeError
    with pytest.raises(WorkflowError) as caught:
        convert(wf, OBJECT_INFO)
    assert caught.value.code == "invalid_workflow" and "inputs[1]" in caught.value.message
    assert "Encode prompt" in caught.value.message


def test_an_input_slot_without_a_name_is_refused_not_sent_under_null():
    wf = _fixture("reroutes_primitives.json")
    next(n for n in wf["nodes"] if n["id"] == 9)["inputs"][0].pop("name")
    with pytest.raises(WorkflowError) as caught:
        convert(wf, OBJECT_INFO)
    assert caught.value.details == {"node_id": "9", "field": "inputs[0].name"}


@pytest.mark.parametrize("mutate,says", [
    (lambda link: link[:4], "has 4 items"),
    (lambda link: [*link[:2], True, *link[3:]], "slot True is not a whole number"),
    (lambda link: [*link[:2], 0.5, *link[3:]], "slot 0.5 is not a whole number"),
])
def test_a_malformed_link_is_named_by_its_position_and_the_shape_expected(mutate, says):
    wf = _fixture("reroutes_primitives.json")
    wf["links"][2] = mutate(wf["links"][2])
    with pytest.raises(WorkflowError) as caught:
        convert(wf, OBJECT_INFO)
    assert caught.value.details == {"field": "links", "position": 2}
    assert says in caught.value.message and "[id, origin_id, origin_slot, target_id, target_slot, type]" in caught.value.message


def test_the_work_of_following_links_is_bounded_for_the_whole_workflow():
    """10,000 inputs each read through a chain of 140 reroutes is 2.8 million steps from 0.5 MB of JSON: refused
    at the total, where each link alone is within the per-link limit."""
    wf = _fixture("reroutes_primitives.json")
    nodes = {n["id"]: n for n in wf["nodes"]}
    reroute = next(n for n in wf["nodes"] if n["type"] == "Reroute")
    decode = next(n for n in wf["nodes"] if n["type"] == "VAEDecode")
    vae_link = next(l for l in wf["links"] if nodes[l[1]]["type"] == "VAELoader")
    prev, next_id, link_id = (vae_link[1], vae_link[2]), 5000, 90000
    for _ in range(140):
        r = copy.deepcopy(reroute)
        r["id"], r["inputs"][0]["link"] = next_id, link_id
        wf["links"].append([link_id, prev[0], prev[1], next_id, 0, "VAE"])
        wf["nodes"].append(r)
        prev, next_id, link_id = (next_id, 0), next_id + 1, link_id + 1
    for k in range(10_000):
        decode["inputs"].append({"name": f"extra{k}", "type": "VAE", "link": link_id})
        wf["links"].append([link_id, prev[0], prev[1], decode["id"], len(decode["inputs"]) - 1, "VAE"])
        link_id += 1
    with pytest.raises(WorkflowError) as caught:
        convert(wf, OBJECT_INFO)
    assert caught.value.details["limit"] == "max_total_link_hops"


def test_a_missing_node_type_of_any_length_keeps_the_sentence_whole():
    graph = {"1": {"class_type": "x" * 5000, "inputs": {}},
             "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "a"}}}
    from handler import workflow_policy
    from handler.workflow_policy import JobNames, NodeRules
    with pytest.raises(WorkflowError) as caught:
        workflow_policy.enforce(graph, OBJECT_INFO, JobNames("job", {}), rules=NodeRules())
    assert len(caught.value.message) < 600 and caught.value.message.endswith("is not installed on this worker.")
