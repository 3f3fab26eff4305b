"""The start-up preload's reading of a workflow and its hand-over rules (comfy_nodes/flux_fast/preload.py).

preload.py imports only the standard library (ComfyUI loads it before torch), so these run in the unit tier. What
they pin down is what a deployer and a caller notice: which nodes of a workflow are preloaded (only what the first
prompt will ask for with the same inputs), that each preloaded model goes to one prompt and then belongs to
ComfyUI's cache, and that a prompt using none of them lets them go. The loading itself runs in a real ComfyUI:
tests/integration/test_preload_live.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from comfy_nodes.flux_fast import preload
from comfy_nodes.flux_fast.preload import Preload, key_of, spec_of
from handler.readiness import PreloadGate

REPO = Path(__file__).resolve().parent.parent


def shipped(name: str = "flux1-dev-t2i") -> dict:
    return json.loads((REPO / "workflows" / f"{name}.api.json").read_text())


def test_every_shipped_workflow_preloads_its_three_loaders_text_encoders_first_and_its_patch():
    for name in ("flux1-dev-t2i", "flux1-dev-img2img"):
        graph = shipped(name)
        spec = spec_of(graph)
        assert [i.class_type for i in spec.loaders] == ["FluxFastDualCLIPLoader", "FluxFastUNETLoader",
                                                        "FluxFastVAELoader"], name
        assert all(i.inputs == graph[i.node]["inputs"] for i in spec.loaders)
        ((patch, source),) = spec.patches
        assert graph[patch.node]["class_type"] == "FluxFastPatch"
        assert graph[patch.node]["inputs"]["model"] == [source, 0]
        assert "model" not in patch.inputs and patch.inputs == {k: v for k, v in graph[patch.node]["inputs"].items()
                                                                if k != "model"}


def test_only_loaders_with_plain_inputs_and_a_patch_fed_straight_by_one_are_preloaded():
    graph = {
        "1": {"class_type": "FluxFastUNETLoader", "inputs": {"unet_name": "a.safetensors", "weight_dtype": "default"}},
        "2": {"class_type": "FluxFastVAELoader", "inputs": {"vae_name": ["9", 0]}},          # a link: not known ahead
        "3": {"class_type": "UNETLoader", "inputs": {"unet_name": "b.safetensors", "weight_dtype": "default"}},
        "4": {"class_type": "LoraLoaderModelOnly", "inputs": {"model": ["1", 0], "lora_name": "x", "strength_model": 1}},
        "5": {"class_type": "FluxFastPatch", "inputs": {"model": ["4", 0], "compute": "default", "compile": True,
                                                        "upcast_weights": "auto"}},        # behind a LoRA
        "6": {"class_type": "FluxFastPatch", "inputs": {"model": ["1", 0], "compute": ["8", 0], "compile": True,
                                                        "upcast_weights": "auto"}},        # a linked input
        "7": "not a node",
    }
    spec = spec_of(graph)
    assert [i.node for i in spec.loaders] == ["1"]
    assert spec.patches == []
    assert spec_of(["not", "a", "graph"]).loaders == []


def _ready(tmp_path, graph) -> Preload:
    """A registry that read `graph` and holds an object per loader, as the thread leaves it."""
    path = tmp_path / "wf.api.json"
    path.write_text(json.dumps(graph))
    current = Preload(str(path))
    current.spec = spec_of(graph)
    for item in current.spec.loaders:
        current._objects[item.key] = (f"model of {item.node}",)
    current._finish("ready", "test")
    return current


def test_each_preloaded_model_goes_to_one_prompt_and_only_for_the_same_inputs(tmp_path):
    graph = shipped()
    current = _ready(tmp_path, graph)
    unet = graph["1"]["inputs"]
    assert current.take("FluxFastUNETLoader", {**unet, "weight_dtype": "fp8_e4m3fn"}) is None   # other options
    assert current.take("FluxFastUNETLoader", dict(unet)) == ("model of 1",)
    assert current.take("FluxFastUNETLoader", dict(unet)) is None          # ComfyUI's cache holds it from now on
    assert current.status()["unclaimed"] == 2


def test_a_prompt_that_uses_no_preloaded_model_releases_them_and_the_default_workflow_does_not(tmp_path):
    graph = shipped()
    current = _ready(tmp_path, graph)
    assert current.on_prompt({"prompt": graph}) == {"prompt": graph}       # the hook passes the prompt through
    assert current.status()["unclaimed"] == 3
    other = {"1": {"class_type": "UNETLoader", "inputs": graph["1"]["inputs"]}}
    current.on_prompt({"prompt": other})
    state = current.status()
    assert state["unclaimed"] == 0 and state["state"] == "released"
    assert current.take("FluxFastUNETLoader", graph["1"]["inputs"]) is None
    current.on_prompt({"prompt": None})                                     # nothing held: nothing to do, no error


def test_no_preload_without_the_setting_and_a_failed_one_says_why(tmp_path):
    assert preload.start({}) is None and preload.start({"FLUX_FAST_PRELOAD": "  "}) is None
    missing = Preload(str(tmp_path / "missing.api.json"))
    missing.start()
    assert missing.done.is_set() and missing.state == "failed" and "missing.api.json" in missing.reason
    empty = tmp_path / "empty.api.json"
    empty.write_text(json.dumps({"1": {"class_type": "KSampler", "inputs": {}}}))
    nothing = Preload(str(empty))
    nothing.start()
    assert nothing.state == "nothing to preload" and nothing.take("FluxFastVAELoader", {}) is None
    assert key_of("A", {"b": 1, "a": 2}) == key_of("A", {"a": 2, "b": 1})


class _Client:
    """ComfyUI's /flux_fast/status as an older node answers it: at once, whatever `wait_s` says."""

    def __init__(self, states):
        self.states, self.calls, self.waits = list(states), 0, []

    def fast_path_status(self, wait_s=0.0):
        self.calls += 1
        self.waits.append(wait_s)
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return None if state is None else {"preload": {"state": state}}


def test_the_handler_queues_only_once_the_preload_settled_and_asks_once_per_worker():
    client = _Client(["waiting for ComfyUI", "loading", "loading", "ready"])
    gate = PreloadGate(client, timeout_s=5, interval_s=0.001)
    gate.wait()
    assert client.calls == 4 and gate.open
    gate.wait()
    assert client.calls == 4                                                 # settled once: never asked again
    for states in ([None], ["off"], ["failed"], ["released"]):                # nothing to wait for
        client = _Client(states)
        PreloadGate(client, timeout_s=5, interval_s=0.001).wait()
        assert client.calls == 1
    stuck = _Client(["loading"])
    PreloadGate(stuck, timeout_s=0.02, interval_s=0.001).wait()              # a stuck preload delays, never blocks
    assert stuck.calls >= 2


class _HoldingClient:
    """/flux_fast/status as our node answers `wait_s`: held until the preload settles (a thread), or for wait_s."""

    def __init__(self, settled):
        self.settled, self.waits = settled, []

    def fast_path_status(self, wait_s=0.0):
        self.waits.append(wait_s)
        self.settled.wait(wait_s)
        return {"preload": {"state": "ready" if self.settled.is_set() else "loading"}}


def test_the_gate_asks_comfyui_to_hold_its_answer_instead_of_polling_it_while_the_preload_loads():
    """Polling 20 times a second slowed the preload's loads by 20-45% on a 2-core machine: the gate's request
    waits inside ComfyUI instead, so a preload of any length costs one request, and the gate opens when it settles."""
    import threading
    import time

    settled, settled_at = threading.Event(), []
    client = _HoldingClient(settled)
    gate = PreloadGate(client, timeout_s=60, interval_s=0.05)
    threading.Timer(0.3, lambda: (settled_at.append(time.monotonic()), settled.set())).start()
    gate.wait()
    opened_at = time.monotonic()
    assert gate.open and opened_at >= settled_at[0]                          # opened once the preload settled
    assert len(client.waits) == 1 and client.waits[0] >= 1                    # one held request, not six polls
    short = _HoldingClient(threading.Event())                                   # never settles: the deadline holds
    PreloadGate(short, timeout_s=0.3, interval_s=0.05).wait()
    assert all(w <= 0.3 for w in short.waits) and len(short.waits) <= 3


def test_a_status_wait_is_read_as_a_bounded_number_of_seconds():
    assert preload.wait_seconds("12.5") == 12.5
    assert preload.wait_seconds("1e9") == preload.STATUS_WAIT_MAX_S            # never holds a request for long
    for raw in (None, "", "x", "-3", "nan", "0"):
        assert preload.wait_seconds(raw) == 0.0, raw


def test_a_prompt_posted_straight_to_comfyui_while_the_preload_loads_waits_for_it(tmp_path):
    import threading
    import time

    graph = shipped()
    path = tmp_path / "wf.api.json"
    path.write_text(json.dumps(graph))
    current = Preload(str(path))
    current.spec = spec_of(graph)
    current._objects[current.spec.loaders[0].key] = ("t5",)
    finished = []
    threading.Timer(0.2, lambda: (finished.append(time.monotonic()), current._finish("ready", "test"))).start()
    current.on_prompt({"prompt": {"9": {"class_type": "KSampler", "inputs": {}}}})
    returned = time.monotonic()
    assert finished and returned >= finished[0]                  # held until the preload was done
    assert current.status()["unclaimed"] == 0                   # and, taking nothing, it released what was held


def test_a_held_status_request_is_told_when_the_preload_settles_and_a_late_one_at_once(tmp_path):
    """How /flux_fast/status?wait_s= learns it may answer: the preload's end calls every waiter once; a waiter that
    comes after the end is called at once, and a waiter that fails (ComfyUI's loop closing) does not fail the rest."""
    current = Preload(str(tmp_path / "unused.json"))
    told = []
    current.when_done(lambda: told.append("first"))
    current.when_done(lambda: 1 / 0)
    current.when_done(lambda: told.append("second"))
    assert told == []
    current._finish("ready", "test")
    assert told == ["first", "second"]
    current._finish("ready", "again")                                        # nothing is told twice
    assert told == ["first", "second"]
    current.when_done(lambda: told.append("late"))
    assert told == ["first", "second", "late"]


@pytest.mark.skipif(not os.path.exists("/proc/thread-self/schedstat"), reason="Linux's per-thread counters only")
def test_a_preloaded_items_cpu_record_names_what_else_ran_beside_it():
    """What found the preload's slowdown on the CPU: over a load, the record names the other threads that burnt CPU
    beside it and counts finished child processes (there, inductor's probe), apart from the loading thread's own."""
    import subprocess
    import sys
    import threading
    import time

    burnt, release = threading.Event(), threading.Event()

    def burn(seconds):                       # CPU seconds, however loaded the machine; alive until measured
        start = time.thread_time()
        while time.thread_time() - start < seconds:
            pass
        burnt.set()
        release.wait(10)

    started = preload.Usage.now()
    burner = threading.Thread(target=burn, args=(0.2,), name="burner")
    burner.start()
    assert burnt.wait(30)
    subprocess.run([sys.executable, "-c", "import time\nt = time.process_time()\n"
                    "while time.process_time() - t < 0.2: pass"], check=True)
    used = preload.Usage.now().since(started)
    release.set()
    burner.join()
    assert ["burner"] == [name for name, cpu in used["busiest_other_threads"] if cpu >= 0.15]
    assert used["children_s"] >= 0.2
    assert used["thread_s"] < 0.15 < used["wall_s"]          # this thread waited, the others worked
    assert used["run_wait_s"] is not None and used["run_wait_s"] >= 0
