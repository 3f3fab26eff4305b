"""The `loras` input (handler/loras.py): validation, name resolution and where the loader nodes go."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from handler import inputs
from handler.errors import InputError, WorkflowError
from handler.loras import LOADER_CLASS, LoraSpec, insert, parse, resolve
from tools.standins import write_lora

ROOT = Path(__file__).resolve().parent.parent
OBJECT_INFO = json.loads((ROOT / "tests" / "fixtures" / "object_info.json").read_text())
T2I = json.loads((ROOT / "workflows" / "flux1-dev-t2i.api.json").read_text())


# ---- parse ------------------------------------------------------------------------------------------------------

def test_a_name_and_a_url_with_defaults():
    specs = parse([{"name": "style.safetensors"}, {"url": "https://x.test/a.safetensors", "strength": 0.5,
                                                   "sha256": "AB" * 32}])
    assert specs == (LoraSpec("loras[0]", "style.safetensors", None, 1.0),
                     LoraSpec("loras[1]", None, "https://x.test/a.safetensors", 0.5, "ab" * 32))


def test_the_request_carries_its_loras():
    request = inputs.parse({"prompt": "p", "loras": [{"name": "a.safetensors", "strength": 2}]})
    assert request.loras == (LoraSpec("loras[0]", "a.safetensors", None, 2.0),)
    assert inputs.parse({"prompt": "p"}).loras == ()


@pytest.mark.parametrize("raw, field, rule", [
    ("a.safetensors", "loras", "must be a list"),
    ([{"name": "a"}] * 5, "loras", "at most 4"),
    (["a.safetensors"], "loras[0]", "must be an object"),
    ([{"name": "a", "url": "https://x"}], "loras[0]", "exactly one of 'name'"),
    ([{"strength": 1}], "loras[0]", "exactly one of 'name'"),
    ([{"name": "a", "weight": 1}], "loras[0].weight", "unknown field"),
    ([{"name": ""}], "loras[0].name", "file name of a LoRA"),
    ([{"name": "a", "strength": 2.5}], "loras[0].strength", "from 0 to 2"),
    ([{"name": "a", "strength": -0.1}], "loras[0].strength", "from 0 to 2"),
    ([{"name": "a", "strength": True}], "loras[0].strength", "from 0 to 2"),
    ([{"name": "a", "strength": "1"}], "loras[0].strength", "from 0 to 2"),
    ([{"name": "a", "sha256": "ab" * 32}], "loras[0].sha256", "only accepted with 'url'"),
    ([{"url": "https://x", "sha256": "xyz"}], "loras[0].sha256", "64 hexadecimal"),
    ([{"url": 7}], "loras[0].url", "https URL"),
])
def test_each_bad_entry_gets_one_error_naming_field_and_rule(raw, field, rule):
    with pytest.raises(InputError) as err:
        inputs.parse({"prompt": "p", "loras": raw})
    assert err.value.field == field and rule in err.value.rule


# ---- insert -----------------------------------------------------------------------------------------------------

def _by_class(graph, cls):
    return [nid for nid, n in graph.items() if n["class_type"] == cls]


def test_loras_go_after_the_fast_path_node_and_feed_what_it_fed():
    graph = insert(T2I, [("a.safetensors", 0.8), ("b.safetensors", 1.0)], OBJECT_INFO)
    (fast,) = _by_class(graph, "FluxFastPatch")
    first, second = sorted(_by_class(graph, LOADER_CLASS), key=lambda n: graph[n]["_meta"]["title"])
    assert graph[first]["inputs"] == {"model": [fast, 0], "lora_name": "a.safetensors", "strength_model": 0.8}
    assert graph[second]["inputs"] == {"model": [first, 0], "lora_name": "b.safetensors", "strength_model": 1.0}
    (shift,) = _by_class(graph, "ModelSamplingFlux")
    assert graph[shift]["inputs"]["model"] == [second, 0]
    # nothing else consumes the fast path's model any more, and the template itself is untouched
    assert [n for n, node in graph.items() if node["inputs"].get("model") == [fast, 0]] == [first]
    assert T2I == json.loads((ROOT / "workflows" / "flux1-dev-t2i.api.json").read_text())


def test_without_loras_the_graph_is_the_same_object():
    assert insert(T2I, [], OBJECT_INFO) is T2I


def test_without_a_fast_path_node_loras_go_right_after_the_loader_and_feed_every_consumer():
    graph = copy.deepcopy(T2I)
    (fast,) = _by_class(graph, "FluxFastPatch")
    (loader,) = _by_class(graph, "FluxFastUNETLoader")
    del graph[fast]
    (shift,) = _by_class(graph, "ModelSamplingFlux")
    graph[shift]["inputs"]["model"] = [loader, 0]
    graph["99"] = {"class_type": "ModelSamplingFlux", "inputs": {**graph[shift]["inputs"]}}  # a second consumer
    out = insert(graph, [("a.safetensors", 1.0)], OBJECT_INFO)
    (lora,) = _by_class(out, LOADER_CLASS)
    assert out[lora]["inputs"]["model"] == [loader, 0]
    assert out[shift]["inputs"]["model"] == out["99"]["inputs"]["model"] == [lora, 0]


def test_new_node_ids_never_collide_with_the_callers():
    graph = copy.deepcopy(T2I)
    graph["lora1"] = {"class_type": "SaveImage", "inputs": {"images": ["10", 0], "filename_prefix": "x"}}
    out = insert(graph, [("a.safetensors", 1.0)], OBJECT_INFO)
    assert out["lora1"]["class_type"] == "SaveImage" and len(_by_class(out, LOADER_CLASS)) == 1


def test_a_graph_with_two_model_loaders_is_refused():
    graph = copy.deepcopy(T2I)
    graph["50"] = copy.deepcopy(graph["1"])
    with pytest.raises(WorkflowError, match="exactly one model loader.*found 2"):
        insert(graph, [("a.safetensors", 1.0)], OBJECT_INFO)


# ---- resolve ----------------------------------------------------------------------------------------------------

def _resolve(specs, listed, dirs=(), cache=None):
    return resolve(specs, listed=lambda: listed, search_dirs=dirs, cache=cache, cache_prefix="_url_cache/",
                   deadline_s=lambda: 60.0)


def test_a_name_comfyui_does_not_list_is_refused_with_what_is_available():
    with pytest.raises(InputError) as err:
        _resolve(parse([{"name": "nope.safetensors"}]), ["style.safetensors", "_url_cache/url-1.safetensors"])
    assert err.value.field == "loras[0].name" and "available: style.safetensors" in err.value.rule
    assert "_url_cache" not in err.value.rule  # downloaded files are not advertised


def test_a_listed_name_is_key_checked_from_the_local_folder(tmp_path):
    write_lora(tmp_path / "good.safetensors", "kohya")
    write_lora(tmp_path / "sub" / "sdxl.safetensors", "sdxl")
    listed = ["good.safetensors", "sub/sdxl.safetensors"]
    assert _resolve(parse([{"name": "good.safetensors", "strength": 0.7}]), listed, [tmp_path]) == [("good.safetensors", 0.7)]
    with pytest.raises(InputError) as err:
        _resolve(parse([{"name": "sub/sdxl.safetensors"}]), listed, [tmp_path])
    assert err.value.field == "loras[0].name" and "is for another model" in err.value.rule


def test_a_url_without_a_cache_folder_is_refused():
    with pytest.raises(InputError, match="no LoRA cache folder"):
        _resolve(parse([{"url": "https://x.test/a.safetensors"}]), [])


def test_no_lora_loader_in_comfyui_is_a_workflow_error():
    with pytest.raises(WorkflowError, match="no LoraLoaderModelOnly"):
        _resolve(parse([{"name": "a"}]), None)


def test_only_lora_name_inputs_of_lora_loaders_are_taken_as_urls():
    from handler.loras import url_inputs

    graph = copy.deepcopy(T2I)
    graph["4"]["inputs"]["text"] = "https://example.com/a.safetensors"  # a prompt that happens to be a URL
    graph["60"] = {"class_type": LOADER_CLASS, "inputs": {"model": ["12", 0], "lora_name": "https://x.test/l.safetensors",
                                                          "strength_model": 1.0}}
    graph["61"] = {"class_type": LOADER_CLASS, "inputs": {"model": ["60", 0], "lora_name": "style.safetensors",
                                                          "strength_model": 1.0}}
    assert url_inputs(graph, OBJECT_INFO) == (LoraSpec("workflow node 60 lora_name", None, "https://x.test/l.safetensors", 1.0,
                                                           node_id="60"),)
    graph["60"]["inputs"]["lora_name"] = "https://x.test/" + "a" * 5000
    with pytest.raises(InputError) as err:
        url_inputs(graph, OBJECT_INFO)
    assert err.value.field == "workflow node 60 lora_name"


# ---- issue 19: a URL's file is its caller's; downloads bounded per job -----------------------------------------

def test_a_file_of_the_url_cache_cannot_be_named_by_a_caller_who_did_not_send_its_url():
    listed = ["style.safetensors", "_url_cache/url-" + "a" * 64 + ".safetensors"]
    with pytest.raises(InputError) as err:
        _resolve(parse([{"name": listed[1]}]), listed)
    assert err.value.field == "loras[0].name" and "_url_cache" not in err.value.rule.split("available:")[1]


class CountingCache:
    """Stands in for LoraCache: every URL is a fresh download of `size` bytes, within the job's allowance."""

    def __init__(self, size: int):
        self.size, self.calls = size, []

    def get(self, url, *, field, sha256=None, deadline_s=None, max_bytes=None, logger=None):
        from handler.lora_cache import CachedLora

        self.calls.append((url, max_bytes))
        if max_bytes is not None and self.size > max_bytes:
            raise InputError(field, url, f"must be at most {max_bytes} bytes")
        return CachedLora(Path("/cache") / f"{len(self.calls)}.safetensors", hit=False, downloaded=self.size)


def test_a_job_may_name_only_so_many_lora_urls_counting_its_workflows_loader_nodes():
    specs = parse([{"url": f"https://x.test/{i}.safetensors"} for i in range(3)]) + tuple(
        LoraSpec(f"workflow node {n} lora_name", None, f"https://x.test/{n}.safetensors?v={n}", 1.0, node_id=str(n))
        for n in (60, 61))
    cache = CountingCache(10)
    with pytest.raises(InputError) as err:
        resolve(specs, listed=lambda: [], search_dirs=(), cache=cache, cache_prefix="_url_cache/",
                deadline_s=lambda: 60.0, max_urls=4)
    assert err.value.field == "workflow node 61 lora_name" and "LORA_JOB_MAX_URLS" in err.value.rule
    assert cache.calls == []  # refused before anything was downloaded


def test_a_jobs_downloads_share_one_byte_allowance():
    specs = parse([{"url": f"https://x.test/{i}.safetensors"} for i in range(3)])
    cache = CountingCache(40)
    with pytest.raises(InputError) as err:
        resolve(specs, listed=lambda: [f"_url_cache/{i}.safetensors" for i in (1, 2, 3)], search_dirs=(), cache=cache, cache_prefix="_url_cache/",
                deadline_s=lambda: 60.0, max_bytes=100)
    assert err.value.field == "loras[2].url"
    assert [allowance for _, allowance in cache.calls] == [100, 60, 20]
