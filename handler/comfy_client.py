"""The worker's only way to talk to ComfyUI: its HTTP API and its websocket.

`run()` queues an API-format prompt under a fresh client_id with the websocket already open (ComfyUI only sends
execution messages to the socket of the prompt's client_id), follows it to the `executing: null` message that
ComfyUI sends after the history is written, and reads the history. Progress messages go to a callback. If the
socket drops, it falls back to polling /history. At the deadline it interrupts the prompt (or removes it from the
queue) and raises `JobTimeoutError`; when ComfyUI is still busy with the prompt a grace period after the interrupt,
it is wedged and the error is `ComfyUnavailableError` instead (the worker asks to be replaced).

How ComfyUI's answers are classed: only a ComfyUI that does not answer (connection refused, reset, timed out) is
`ComfyUnavailableError`. A ComfyUI that answers with an HTTP error is alive and refusing what this job sent:
POST /prompt and /upload/image refusals are `ComfyValidationError`, a file it reported but cannot return is
`OutputUnavailableError`. A 5xx is first checked against a cheap probe (GET /features), so a ComfyUI that only
answers errors because it is dying is still recognised as unavailable.

History entries are dropped (POST /history delete) at the start of the next run, on this thread and with a short
timeout, rather than by a background thread that would share this client's HTTP session with the next job.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import quote, urlparse, urlunparse

import requests
import urllib3
import websocket

from . import comfy_errors
from .errors import (ComfyUnavailableError, ComfyValidationError, JobTimeoutError, OutputUnavailableError,
                     WorkerError, WorkflowError, safe_text)
from .workflow import combo_options

log = logging.getLogger(__name__)

ProgressCallback = Callable[[str, int, int], None]
_POLL_INTERVAL_S = 0.25
_HOUSEKEEPING_TIMEOUT_S = 2.0  # dropping history entries: never worth holding a job up for longer


@dataclass
class RunResult:
    prompt_id: str
    outputs: dict[str, Any]
    cached_nodes: set[str] = field(default_factory=set)
    node_seconds: dict[str, float] = field(default_factory=dict)
    queued_s: float = 0.0
    execution_s: float = 0.0
    # Where the handler's own time goes around ComfyUI's execution (seconds): websocket connect, POST /prompt
    # (ComfyUI validates the graph inside it), reading the history once ComfyUI is done.
    connect_s: float = 0.0
    submit_s: float = 0.0
    history_s: float = 0.0


class ComfyClient:
    def __init__(self, base_url: str, http_timeout_s: float = 30.0):
        self.base_url = base_url.rstrip("/")
        parsed = urlparse(self.base_url)
        self.ws_url = urlunparse(parsed._replace(scheme="wss" if parsed.scheme == "https" else "ws", path=parsed.path + "/ws"))
        self.http_timeout_s = http_timeout_s
        self.session = requests.Session()
        self._object_info: dict[str, Any] | None = None
        self._finished: list[str] = []  # prompt ids whose history entries are dropped before the next run

    # ---- plain HTTP -------------------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.http_timeout_s)
        try:
            return self.session.request(method, self.base_url + path, **kwargs)
        except requests.exceptions.InvalidJSONError:
            # The body never left this process (NaN or Infinity somewhere in it): ComfyUI is not at fault, and a
            # caller's data must not cost the worker (graph_rules refuses such numbers before this point).
            raise WorkflowError("The workflow could not be sent to ComfyUI: it holds a value JSON cannot carry "
                                "(NaN or Infinity).", {"field": "workflow"}) from None
        except requests.RequestException as exc:
            log.error("ComfyUI request %s %s failed: %s", method, safe_text(path), safe_text(exc, 300))
            raise ComfyUnavailableError("ComfyUI, the worker's backend, did not answer; the job was not run.") from None

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON of a 200 answer. An HTTP error is ComfyUI refusing this request (it answered, so it is alive),
        unless a 5xx comes from a ComfyUI that no longer answers its cheap probe (`_raise_refusal`)."""
        response = self._request(method, path, **kwargs)
        if response.status_code != 200:
            shown = safe_text(path, 120)  # /object_info/<class> carries a caller's class name
            self._raise_refusal(response, ComfyValidationError(
                f"ComfyUI answered {method} {shown} with HTTP {response.status_code}; it is running but refused "
                "the worker's request.", {"http_status": response.status_code, "path": shown}))
        return response.json()

    def ready(self) -> bool:
        """True once ComfyUI's HTTP server answers (it listens only after every node module is imported)."""
        try:
            return self.session.get(self.base_url + "/features", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def object_info(self, refresh: bool = False) -> dict[str, Any]:
        if self._object_info is None or refresh:
            self._object_info = self._json("GET", "/object_info")
        return self._object_info

    def input_options(self, class_type: str, input_name: str) -> list[Any] | None:
        """Current allowed values of a combo input (fresh: model folders change under a running worker)."""
        try:
            info = self._json("GET", f"/object_info/{class_type}").get(class_type, {})
            for section in ("required", "optional"):
                spec = (info.get("input", {}).get(section) or {}).get(input_name)
                if spec is not None:
                    return combo_options(spec)
        except (WorkerError, ValueError, AttributeError, TypeError):  # an answer not shaped as ComfyUI's: unknown
            return None
        return None

    def system_stats(self) -> dict[str, Any]:
        return self._json("GET", "/system_stats")

    def models(self, folder: str) -> list[str]:
        return self._json("GET", f"/models/{folder}")

    def model_folders(self) -> list[str]:
        return self._json("GET", "/models")

    def fast_path_status(self, wait_s: float = 0.0) -> dict[str, Any] | None:
        """What our FLUX fast-path nodes report (comfy_nodes/flux_fast), or None where they are not loaded. With
        `wait_s`, ComfyUI answers once its start-up preload has settled or after that many seconds."""
        params = {"wait_s": f"{wait_s:.1f}"} if wait_s > 0 else None
        response = self._request("GET", "/flux_fast/status", params=params,
                                 timeout=self.http_timeout_s + max(wait_s, 0.0))
        return response.json() if response.status_code == 200 else None

    def upload_image(self, name: str, data: bytes, subfolder: str = "") -> str:
        """Store `data` in ComfyUI's input folder as `name` (replacing a file of that name); return the LoadImage value."""
        files = {"image": (name, data, "application/octet-stream")}
        form = {"type": "input", "overwrite": "true", "subfolder": subfolder}
        response = self._request("POST", "/upload/image", files=files, data=form)
        if response.status_code != 200:
            self._raise_refusal(response, ComfyValidationError(
                f"ComfyUI refused the input image '{safe_text(name, 128)}' (HTTP {response.status_code}).",
                {"image": name, "http_status": response.status_code}))
        body = response.json()
        return f"{body['subfolder']}/{body['name']}" if body.get("subfolder") else body["name"]

    def view(self, filename: str, subfolder: str = "", folder_type: str = "output", *, max_bytes: int | None = None,
             deadline: float | None = None) -> bytes:
        """An output file over /view, read in chunks: at most `max_bytes` (`FileTooLarge` past it) and by
        `deadline` (time.monotonic(); JobTimeoutError past it), so that no answer can hold the job or its memory."""
        params = {"filename": filename, "subfolder": subfolder, "type": folder_type}
        response = self._request("GET", "/view", params=params, stream=True)
        try:
            if response.status_code != 200:
                self._raise_refusal(response, OutputUnavailableError(
                    f"ComfyUI reported the output file '{safe_text(filename, 128)}' but could not return it "
                    f"(HTTP {response.status_code}); the job can be sent again.",
                    {"filename": filename, "http_status": response.status_code}))
            body = bytearray()
            try:
                # read1: whatever has arrived, up to 1 MiB (iter_content would wait for a whole chunk, so a
                # server sending a byte at a time would never reach the deadline check).
                while chunk := response.raw.read1(1 << 20, decode_content=True):
                    body += chunk
                    if max_bytes is not None and len(body) > max_bytes:
                        raise FileTooLarge(len(body))
                    if deadline is not None and time.monotonic() > deadline:
                        raise JobTimeoutError("The job ran past JOB_TIMEOUT_S while its outputs were read from "
                                              "ComfyUI.", {"where": "reading outputs"})
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                log.error("ComfyUI /view %s failed: %s", safe_text(filename, 128), safe_text(exc, 300))
                raise OutputUnavailableError(
                    f"ComfyUI reported the output file '{safe_text(filename, 128)}' but its answer broke off; the "
                    "job can be sent again.", {"filename": filename}) from None
            return bytes(body)
        finally:
            response.close()

    def history(self, prompt_id: str) -> dict[str, Any] | None:
        """The prompt's history entry, or None while there is none (or none shaped as ComfyUI writes one)."""
        try:
            entry = self._json("GET", f"/history/{quote(prompt_id, safe='')}").get(prompt_id)
        except (ValueError, AttributeError):  # not JSON, not an object
            return None
        return entry if isinstance(entry, dict) else None

    def forget(self, prompt_ids: list[str], timeout_s: float = _HOUSEKEEPING_TIMEOUT_S) -> None:
        """Drop finished prompts' history entries: ComfyUI keeps up to 10,000 in memory otherwise."""
        self._request("POST", "/history", json={"delete": list(prompt_ids)}, timeout=timeout_s)

    def _forget_finished(self) -> None:
        """Housekeeping for the runs before this one; a failure is logged, never a job's failure."""
        if not self._finished:
            return
        pending, self._finished = self._finished, []
        try:
            self.forget(pending)
        except WorkerError:
            log.warning("could not delete %d history entr(y/ies) from ComfyUI", len(pending))

    def cancel(self, prompt_id: str) -> None:
        """Remove the prompt if still queued, and interrupt it if running (both are no-ops otherwise)."""
        self._request("POST", "/queue", json={"delete": [prompt_id]})
        self._request("POST", "/interrupt", json={"prompt_id": prompt_id})

    def queued_prompt_ids(self) -> list[str]:
        """The prompts ComfyUI is running or has queued (GET /queue), running first."""
        queue = self._json("GET", "/queue")
        queue = queue if isinstance(queue, dict) else {}
        items = [item for key in ("queue_running", "queue_pending")
                 for item in (queue.get(key) if isinstance(queue.get(key), list) else [])]
        return [str(item[1]) for item in items if isinstance(item, list) and len(item) > 1]

    def busy_with(self, prompt_id: str) -> bool:
        """Whether ComfyUI still has the prompt running or queued (GET /queue)."""
        return prompt_id in self.queued_prompt_ids()

    def alive(self) -> bool:
        """Whether ComfyUI answers at all (an HTTP error from it still means it is alive)."""
        try:
            self.session.get(self.base_url + "/features", timeout=5)
            return True
        except requests.RequestException:
            return False

    def _raise_refusal(self, response: requests.Response, refusal: WorkerError) -> None:
        """An HTTP error from ComfyUI: `refusal` when ComfyUI is alive (a 4xx always is), else unavailable."""
        log.warning("ComfyUI %s %s answered HTTP %s: %s", response.request.method, urlparse(response.url).path,
                    response.status_code, safe_text(response.text, 500))
        if response.status_code >= 500 and not self.alive():
            raise ComfyUnavailableError("ComfyUI, the worker's backend, stopped answering; the job was not finished.")
        raise refusal

    # ---- running a prompt -----------------------------------------------------------------------------
    def run(
        self,
        prompt: dict[str, Any],
        *,
        timeout_s: float,
        on_progress: ProgressCallback | None = None,
        extra_data: dict[str, Any] | None = None,
        interrupt_grace_s: float = 60.0,
    ) -> RunResult:
        started = time.monotonic()
        deadline = started + timeout_s
        self._forget_finished()
        client_id = uuid.uuid4().hex
        ws = self._connect(client_id)
        connected = time.monotonic()
        prompt_id = None
        try:
            prompt_id = self.queue(prompt, client_id, extra_data)
            tracker = _Tracker(prompt_id, on_progress)
            if ws is not None:
                self._follow(ws, tracker, deadline, interrupt_grace_s)
            ended = time.monotonic()
            # The websocket already carried every output (`executed`) and the outcome: skip the /history read,
            # which right after a prompt waits behind ComfyUI's own gc.collect() and cache flush for up to ~0.1 s.
            entry = tracker.entry_from_messages() or self._wait_for_history(prompt_id, deadline, interrupt_grace_s)
        finally:
            if ws is not None:
                ws.close()
            if prompt_id is not None:
                self._finished.append(prompt_id)
        result = tracker.result(entry)
        result.connect_s = round(connected - started, 4)
        result.submit_s = round(tracker.queued_at - connected, 4)
        result.history_s = round(time.monotonic() - ended, 4)
        return result

    def queue(self, prompt: dict[str, Any], client_id: str, extra_data: dict[str, Any] | None = None) -> str:
        body = {"prompt": prompt, "client_id": client_id, "extra_data": extra_data or {}}
        response = self._request("POST", "/prompt", json=body)
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        if not isinstance(payload, dict):
            payload = {}
        status = response.status_code
        if (400 <= status < 500 and (payload.get("error") or payload.get("node_errors"))) or (status == 200 and payload.get("node_errors")):
            raise comfy_errors.validation_error(payload, self.input_options)
        if status != 200 or not isinstance(payload.get("prompt_id"), str) or not payload["prompt_id"]:
            # ComfyUI answered, so it is alive: a 500 here is a node's validation code raising on this graph.
            why = ("a node's own checks failed on it; check the graph in the ComfyUI GUI" if status >= 500 else
                   "the request is too large" if status == 413 else "the request was refused")
            self._raise_refusal(response, ComfyValidationError(
                f"ComfyUI refused to queue the workflow (HTTP {status}): {why}.", {"http_status": status}))
        return payload["prompt_id"]

    def _connect(self, client_id: str) -> websocket.WebSocket | None:
        try:
            return websocket.create_connection(f"{self.ws_url}?clientId={client_id}", timeout=10)
        except (OSError, websocket.WebSocketException) as exc:
            # The HTTP API may still work; the job then follows the prompt by polling /history.
            log.warning("websocket to ComfyUI failed (%s); following the prompt by polling", exc)
            return None

    def _follow(self, ws: websocket.WebSocket, tracker: "_Tracker", deadline: float, grace_s: float) -> None:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._time_out(tracker.prompt_id, grace_s)
            ws.settimeout(remaining)
            try:
                frame = ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            except (OSError, websocket.WebSocketException) as exc:
                log.warning("websocket to ComfyUI dropped (%s); following prompt %s by polling", exc, tracker.prompt_id)
                return
            if isinstance(frame, bytes):
                continue  # previews; our workflows save images to the output folder
            try:
                message = json.loads(frame)
            except ValueError:
                continue
            if tracker.handle(message):
                return

    def _wait_for_history(self, prompt_id: str, deadline: float, grace_s: float) -> dict[str, Any]:
        while True:
            entry = self.history(prompt_id)
            if entry and isinstance(entry.get("status"), dict) and entry["status"].get("completed") is not None:
                return entry
            if time.monotonic() >= deadline:
                self._time_out(prompt_id, grace_s)
            time.sleep(_POLL_INTERVAL_S)

    def _time_out(self, prompt_id: str, grace_s: float) -> None:
        """Interrupt the prompt and raise JobTimeoutError; if ComfyUI is still busy with it `grace_s` later, the
        interrupt had no effect (a wedged node, a hung model load): raise ComfyUnavailableError so the worker is
        replaced instead of timing out every later job behind it."""
        log.warning("prompt %s ran past the job deadline; interrupting it", prompt_id)
        self.cancel(prompt_id)  # no answer: ComfyUnavailableError, and the worker is replaced
        until = time.monotonic() + grace_s
        while self.busy_with(prompt_id):
            if time.monotonic() >= until:
                log.error("ComfyUI is still running prompt %s %.0f s after the interrupt; it is wedged", prompt_id, grace_s)
                raise ComfyUnavailableError(
                    f"The job ran past its time limit and ComfyUI did not stop it within {grace_s:g} s of the "
                    "interrupt; the worker will be replaced.",
                    {"prompt_id": prompt_id, "reason": "interrupt_ignored"},
                )
            time.sleep(_POLL_INTERVAL_S)
        raise JobTimeoutError(
            "The job ran past its time limit and was stopped; raise JOB_TIMEOUT_S or ask for fewer steps or a smaller image.",
            {"prompt_id": prompt_id},
        )


class FileTooLarge(Exception):
    """An output file past the size its reader was allowed (outputs.py turns it into the caller's error)."""

    def __init__(self, size: int):
        super().__init__(size)
        self.size = size


def _hashable(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float))


class _Tracker:
    """Reads one prompt's websocket messages: progress, per-node times, cached nodes, the end."""

    def __init__(self, prompt_id: str, on_progress: ProgressCallback | None):
        self.prompt_id = prompt_id
        self.on_progress = on_progress
        self.cached: set[str] = set()
        self.node_seconds: dict[str, float] = {}
        self.queued_at = time.monotonic()
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self._node: str | None = None
        self._node_start = 0.0
        self._outputs: dict[str, Any] = {}
        self._seen_outputs: dict[str, list[dict]] = {}   # node id -> the `executed` outputs already merged
        self._outputs_complete = True
        self._status: tuple[str, dict[str, Any]] | None = None

    def handle(self, message: Any) -> bool:
        # A custom node can send what it likes on ComfyUI's socket: anything not shaped as ComfyUI's own messages
        # is not about this prompt.
        if not isinstance(message, dict) or not isinstance(message.get("data") or {}, dict):
            return False
        kind, data = message.get("type"), message.get("data") or {}
        if not _hashable(data.get("prompt_id")) or data.get("prompt_id") not in (None, self.prompt_id):
            return False
        now = time.monotonic()
        if kind == "execution_start" and data.get("prompt_id") == self.prompt_id:
            self.started_at = now
        elif kind == "execution_cached" and data.get("prompt_id") == self.prompt_id:
            nodes = data.get("nodes")
            self.cached.update(str(n) for n in (nodes if isinstance(nodes, list) else []))
        elif kind == "executing" and data.get("prompt_id") == self.prompt_id:
            self._close_node(now)
            node = data.get("node")
            if node is None:
                self.finished_at = now
                return True
            self._node, self._node_start = str(node), now
        elif kind == "executed" and data.get("prompt_id") == self.prompt_id:
            output = data.get("output")
            # ComfyUI >= 0.30 re-sends a cached node's UI as `executed` at the end of a run (intermediate output
            # nodes): the same message again names the same files, not more of them.
            seen = self._seen_outputs.setdefault(str(data.get("node")), [])
            if isinstance(output, dict) and output not in seen:
                seen.append(output)
                merged = self._outputs.setdefault(str(data.get("node")), {})
                for key, value in output.items():
                    earlier = merged.get(key)
                    merged[key] = earlier + value if isinstance(value, list) and isinstance(earlier, list) else value
            elif not isinstance(output, dict):
                self._outputs_complete = False  # a cached node without its UI: the history has it
        elif kind in ("execution_success", "execution_error", "execution_interrupted") and data.get("prompt_id") == self.prompt_id:
            self._status = (kind, data)
        elif kind == "progress" and data.get("prompt_id") == self.prompt_id and self.on_progress:
            try:
                self.on_progress(str(data.get("node")), int(data.get("value", 0)), int(data.get("max", 0)))
            except Exception:  # progress is best effort; never fail a job over it
                log.debug("progress callback failed", exc_info=True)
        return False

    def entry_from_messages(self) -> dict[str, Any] | None:
        """A history-shaped entry built from the websocket, or None when the messages did not tell everything."""
        if self.finished_at is None or self._status is None:
            return None
        kind, data = self._status
        if kind == "execution_success" and not self._outputs_complete:
            return None
        return {
            "outputs": self._outputs,
            "status": {"status_str": "success" if kind == "execution_success" else "error",
                       "completed": kind == "execution_success", "messages": [[kind, data]]},
        }

    def _close_node(self, now: float) -> None:
        if self._node is not None:
            self.node_seconds[self._node] = round(now - self._node_start, 4)
            self._node = None

    def result(self, entry: dict[str, Any]) -> RunResult:
        status = entry.get("status") if isinstance(entry.get("status"), dict) else {}
        if status.get("status_str") == "error":
            messages = status.get("messages") if isinstance(status.get("messages"), list) else []
            for message in messages:
                if not (isinstance(message, list) and len(message) == 2 and isinstance(message[1], dict)):
                    continue
                event, data = message
                if event == "execution_error":
                    raise comfy_errors.execution_error(data)
                if event == "execution_interrupted":
                    raise comfy_errors.execution_error(
                        {**data, "exception_type": "Interrupted", "exception_message": "the prompt was interrupted"}
                    )
            raise comfy_errors.execution_error({"node_id": None, "exception_message": "ComfyUI reported an error"})
        started = self.started_at or self.queued_at
        finished = self.finished_at or time.monotonic()
        return RunResult(
            prompt_id=self.prompt_id,
            outputs=entry.get("outputs") if isinstance(entry.get("outputs"), dict) else {},
            cached_nodes=self.cached,
            node_seconds=self.node_seconds,
            queued_s=round(started - self.queued_at, 4),
            execution_s=round(finished - started, 4),
        )
