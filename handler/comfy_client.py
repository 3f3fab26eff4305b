"""The worker's only way to talk to ComfyUI: its HTTP API and its websocket.

`run()` queues an API-format prompt under a fresh client_id with the websocket already open (ComfyUI only sends
execution messages to the socket of the prompt's client_id), follows it to the `executing: null` message that
ComfyUI sends after the history is written, and reads the history. Progress messages go to a callback. If the
socket drops, it falls back to polling /history. At the deadline it interrupts the prompt (or removes it from the
queue) and raises `JobTimeoutError`. Connection failures become `ComfyUnavailableError`.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlparse, urlunparse

import requests
import websocket

from . import comfy_errors
from .errors import ComfyUnavailableError, JobTimeoutError, WorkerError
from .workflow import combo_options

log = logging.getLogger(__name__)

ProgressCallback = Callable[[str, int, int], None]
_POLL_INTERVAL_S = 0.25


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

    # ---- plain HTTP -------------------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.http_timeout_s)
        try:
            return self.session.request(method, self.base_url + path, **kwargs)
        except requests.RequestException as exc:
            log.error("ComfyUI request %s %s failed: %s", method, path, exc)
            raise ComfyUnavailableError("ComfyUI, the worker's backend, did not answer; the job was not run.") from None

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        if response.status_code != 200:
            log.error("ComfyUI %s %s answered %s: %s", method, path, response.status_code, response.text[:500])
            raise ComfyUnavailableError(f"ComfyUI answered {method} {path} with HTTP {response.status_code}.")
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
        except WorkerError:
            return None
        for section in ("required", "optional"):
            spec = (info.get("input", {}).get(section) or {}).get(input_name)
            if spec is not None:
                return combo_options(spec)
        return None

    def system_stats(self) -> dict[str, Any]:
        return self._json("GET", "/system_stats")

    def models(self, folder: str) -> list[str]:
        return self._json("GET", f"/models/{folder}")

    def model_folders(self) -> list[str]:
        return self._json("GET", "/models")

    def fast_path_status(self) -> dict[str, Any] | None:
        """What our FLUX fast-path nodes report (comfy_nodes/flux_fast), or None where they are not loaded."""
        response = self._request("GET", "/flux_fast/status")
        return response.json() if response.status_code == 200 else None

    def upload_image(self, name: str, data: bytes, subfolder: str = "") -> str:
        """Store `data` in ComfyUI's input folder as `name` (replacing a file of that name); return the LoadImage value."""
        files = {"image": (name, data, "application/octet-stream")}
        form = {"type": "input", "overwrite": "true", "subfolder": subfolder}
        response = self._request("POST", "/upload/image", files=files, data=form)
        if response.status_code != 200:
            raise ComfyUnavailableError(f"ComfyUI refused the upload of '{name}' (HTTP {response.status_code}).")
        body = response.json()
        return f"{body['subfolder']}/{body['name']}" if body.get("subfolder") else body["name"]

    def view(self, filename: str, subfolder: str = "", folder_type: str = "output") -> bytes:
        params = {"filename": filename, "subfolder": subfolder, "type": folder_type}
        response = self._request("GET", "/view", params=params)
        if response.status_code != 200:
            raise ComfyUnavailableError(f"ComfyUI could not return the output file '{filename}' (HTTP {response.status_code}).")
        return response.content

    def history(self, prompt_id: str) -> dict[str, Any] | None:
        return self._json("GET", f"/history/{prompt_id}").get(prompt_id)

    def forget(self, prompt_id: str) -> None:
        """Drop a finished prompt's history entry: ComfyUI keeps up to 10,000 in memory otherwise."""
        self._request("POST", "/history", json={"delete": [prompt_id]})

    def cancel(self, prompt_id: str) -> None:
        """Remove the prompt if still queued, and interrupt it if running (both are no-ops otherwise)."""
        self._request("POST", "/queue", json={"delete": [prompt_id]})
        self._request("POST", "/interrupt", json={"prompt_id": prompt_id})

    # ---- running a prompt -----------------------------------------------------------------------------
    def run(
        self,
        prompt: dict[str, Any],
        *,
        timeout_s: float,
        on_progress: ProgressCallback | None = None,
        extra_data: dict[str, Any] | None = None,
    ) -> RunResult:
        started = time.monotonic()
        deadline = started + timeout_s
        client_id = uuid.uuid4().hex
        ws = self._connect(client_id)
        connected = time.monotonic()
        try:
            prompt_id = self.queue(prompt, client_id, extra_data)
            tracker = _Tracker(prompt_id, on_progress)
            if ws is not None:
                self._follow(ws, tracker, deadline)
        finally:
            if ws is not None:
                ws.close()
        ended = time.monotonic()
        # The websocket already carried every output (`executed`) and the outcome: skip the /history read, which
        # right after a prompt waits behind ComfyUI's own gc.collect() and cache flush for up to ~0.1 s.
        entry = tracker.entry_from_messages() or self._wait_for_history(prompt_id, deadline)
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
        if response.status_code == 400 or (response.status_code == 200 and payload.get("node_errors")):
            raise comfy_errors.validation_error(payload, self.input_options)
        if response.status_code != 200 or "prompt_id" not in payload:
            log.error("POST /prompt answered %s: %s", response.status_code, response.text[:500])
            raise ComfyUnavailableError(f"ComfyUI could not queue the workflow (HTTP {response.status_code}).")
        return payload["prompt_id"]

    def _connect(self, client_id: str) -> websocket.WebSocket | None:
        try:
            return websocket.create_connection(f"{self.ws_url}?clientId={client_id}", timeout=10)
        except (OSError, websocket.WebSocketException) as exc:
            # The HTTP API may still work; the job then follows the prompt by polling /history.
            log.warning("websocket to ComfyUI failed (%s); following the prompt by polling", exc)
            return None

    def _follow(self, ws: websocket.WebSocket, tracker: "_Tracker", deadline: float) -> None:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._time_out(tracker.prompt_id)
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

    def _wait_for_history(self, prompt_id: str, deadline: float) -> dict[str, Any]:
        while True:
            entry = self.history(prompt_id)
            if entry and entry.get("status", {}).get("completed") is not None:
                return entry
            if time.monotonic() >= deadline:
                self._time_out(prompt_id)
            time.sleep(_POLL_INTERVAL_S)

    def _time_out(self, prompt_id: str) -> None:
        log.warning("prompt %s ran past the job deadline; interrupting it", prompt_id)
        try:
            self.cancel(prompt_id)
        except WorkerError:
            pass
        raise JobTimeoutError(
            "The job ran past its time limit and was stopped; raise JOB_TIMEOUT_S or ask for fewer steps or a smaller image.",
            {"prompt_id": prompt_id},
        )


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
        self._outputs_complete = True
        self._status: tuple[str, dict[str, Any]] | None = None

    def handle(self, message: dict[str, Any]) -> bool:
        kind, data = message.get("type"), message.get("data") or {}
        if data.get("prompt_id") not in (None, self.prompt_id):
            return False
        now = time.monotonic()
        if kind == "execution_start" and data.get("prompt_id") == self.prompt_id:
            self.started_at = now
        elif kind == "execution_cached" and data.get("prompt_id") == self.prompt_id:
            self.cached.update(str(n) for n in data.get("nodes", []))
        elif kind == "executing" and data.get("prompt_id") == self.prompt_id:
            self._close_node(now)
            node = data.get("node")
            if node is None:
                self.finished_at = now
                return True
            self._node, self._node_start = str(node), now
        elif kind == "executed" and data.get("prompt_id") == self.prompt_id:
            output = data.get("output")
            if isinstance(output, dict):
                merged = self._outputs.setdefault(str(data.get("node")), {})
                for key, value in output.items():
                    merged[key] = merged.get(key, []) + value if isinstance(value, list) else value
            else:
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
        status = entry.get("status", {})
        if status.get("status_str") == "error":
            for event, data in status.get("messages", []):
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
            outputs=entry.get("outputs", {}),
            cached_nodes=self.cached,
            node_seconds=self.node_seconds,
            queued_s=round(started - self.queued_at, 4),
            execution_s=round(finished - started, 4),
        )
