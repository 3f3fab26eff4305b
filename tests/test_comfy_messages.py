"""ComfyUI's websocket as a custom node can fill it: messages of any shape are read or skipped, never a crash.

A node pack's node can send its own messages (PromptServer.send_sync) and return any `ui` dict, which ComfyUI
relays as `executed`. The tracker that follows one prompt must skip what is not shaped as ComfyUI's own messages
rather than fail the job with an internal error.
"""

from __future__ import annotations

import pytest

from handler.comfy_client import _Tracker


@pytest.mark.parametrize("message", [[1, 2], "x", 5, None, {"type": "executing", "data": "str"},
                                     {"type": "progress", "data": [1]}, {"type": "status", "data": {"prompt_id": ["p"]}},
                                     {"type": "execution_cached", "data": {"prompt_id": "p", "nodes": 5}},
                                     {"type": "execution_cached", "data": {"prompt_id": "p", "nodes": None}}])
def test_messages_not_shaped_as_comfyuis_are_skipped(message):
    tracker = _Tracker("p", None)
    assert tracker.handle(message) is False
    assert tracker.handle({"type": "executing", "data": {"prompt_id": "p", "node": None}}) is True


def test_a_node_whose_ui_changes_shape_between_messages_keeps_the_last_value():
    tracker = _Tracker("p", None)
    tracker.handle({"type": "executed", "data": {"prompt_id": "p", "node": "9", "output": {"images": "x"}}})
    image = {"filename": "a.png", "subfolder": "", "type": "output"}
    tracker.handle({"type": "executed", "data": {"prompt_id": "p", "node": "9", "output": {"images": [image]}}})
    tracker.handle({"type": "executed", "data": {"prompt_id": "p", "node": "9", "output": {"images": [image, image]}}})
    tracker.handle({"type": "execution_success", "data": {"prompt_id": "p"}})
    tracker.handle({"type": "executing", "data": {"prompt_id": "p", "node": None}})
    assert tracker.entry_from_messages()["outputs"]["9"]["images"] == [image, image, image]


@pytest.mark.parametrize("body", [
    {"error": {"type": "prompt_outputs_failed_validation"}, "node_errors": ["x"]},
    {"node_errors": {"4": "broken"}}, {"node_errors": {"4": {"errors": "x"}}}, {"node_errors": {"4": {"errors": ["x"]}}},
    {"node_errors": {"4": {"errors": [{"type": "value_not_in_list", "extra_info": {"input_name": ["a"]}}]}}},
    ["not", "an", "object"],
])
def test_validation_answers_of_any_shape_become_comfyuis_refusal(body):
    from handler import comfy_errors
    from handler.errors import WorkerError

    err = comfy_errors.validation_error(body, options=lambda c, i: ["a.safetensors"])
    assert isinstance(err, WorkerError) and err.message.startswith("ComfyUI rejected the workflow")


def test_an_execution_error_whose_message_is_not_text_is_still_the_nodes_error():
    from handler import comfy_errors

    err = comfy_errors.execution_error({"node_id": "9", "node_type": "X", "exception_type": "E",
                                        "exception_message": {"code": 7}})
    assert err.code == "comfyui_execution_error" and "code" in err.message


def _answer(status: int, body: bytes):
    import requests

    response = requests.Response()
    response.status_code, response._content = status, body
    response.url = "http://127.0.0.1:1/prompt"
    response.request = requests.Request("POST", response.url).prepare()
    return response


@pytest.mark.parametrize("body", [b'{"prompt_id": null}', b'{"prompt_id": 7}', b'{"prompt_id": {"a": 1}}',
                                  b'{"prompt_id": ""}'])
def test_a_queue_answer_without_a_usable_prompt_id_is_refused_at_once(monkeypatch, body):
    """Before, a prompt_id of null or 7 was followed until JOB_TIMEOUT_S, then reported as a timeout."""
    from handler.comfy_client import ComfyClient
    from handler.errors import ComfyValidationError

    client = ComfyClient("http://127.0.0.1:1", 1)
    monkeypatch.setattr(client, "_request", lambda *a, **k: _answer(200, body))
    with pytest.raises(ComfyValidationError):
        client.queue({"1": {"class_type": "X", "inputs": {}}}, "c")


@pytest.mark.parametrize("body", [b'[1, 2]', b'"done"', b'{"p": "x"}', b'{"p": {"status": "done"}}', b'not json'])
def test_a_history_answer_of_another_shape_is_no_entry_yet(monkeypatch, body):
    from handler.comfy_client import ComfyClient

    client = ComfyClient("http://127.0.0.1:1", 1)
    monkeypatch.setattr(client, "_request", lambda *a, **k: _answer(200, body))
    entry = client.history("p")
    assert entry is None or not isinstance(entry.get("status"), dict)
