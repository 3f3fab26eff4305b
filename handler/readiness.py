"""The readiness gates: the Runpod loop starts only once ComfyUI answers; a prompt is queued only once ComfyUI's
start-up preload has settled.

Waits for ComfyUI's HTTP server with a deadline, and gives up at once if the ComfyUI process (its pid comes from
start.sh as COMFYUI_PID) has exited, so a broken image fails in seconds with a clear log line instead of taking
jobs it cannot run.

The preload (comfy_nodes/flux_fast/preload.py; off unless FLUX_FAST_PRELOAD names a workflow) loads that
workflow's models inside ComfyUI while it starts, through ComfyUI's model management, which is not thread-safe: no
prompt may run beside it. Jobs are taken, checked and filled meanwhile; only queueing waits (`PreloadGate`), once per
worker; with the preload off (Settings.preload_workflow None) nothing is asked.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from comfy_nodes.flux_fast.preload import BUSY as PRELOAD_BUSY

from .comfy_client import ComfyClient
from .errors import ComfyUnavailableError

log = logging.getLogger(__name__)


def wait_for_comfyui(client: ComfyClient, timeout_s: float, pid: int | None = None, interval_s: float = 0.1) -> float:
    """Block until ComfyUI answers; return the seconds waited. Raise ComfyUnavailableError on exit or deadline.

    Polled every 0.1 s: the wait sits on every cold start's path to the first image (half the interval on average),
    and a refused local connection costs microseconds."""
    started = time.monotonic()
    deadline = started + timeout_s
    while True:
        if client.ready():
            waited = time.monotonic() - started
            log.info("ComfyUI answered after %.1f s", waited)
            return waited
        if pid is not None and not process_alive(pid):
            raise ComfyUnavailableError(f"ComfyUI (pid {pid}) exited before it became ready; see its log above.")
        if time.monotonic() >= deadline:
            raise ComfyUnavailableError(f"ComfyUI did not answer within {timeout_s:.0f} s (COMFY_READY_TIMEOUT_S).")
        time.sleep(interval_s)


def process_alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (exited, not yet reaped by start.sh) counts as gone."""
    stat = Path(f"/proc/{pid}/stat")
    try:
        state = stat.read_text().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except FileNotFoundError:
        return False
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True


class PreloadGate:
    """Blocks the first queueing until ComfyUI's start-up preload has settled (/flux_fast/status); free after that.

    Not a failure when it cannot tell (no flux_fast nodes, an older status) or the wait runs out: the preload's own
    nodes wait for it too, so the worst case is the race it exists to avoid, logged."""

    # Each request waits inside ComfyUI until the preload settles, up to this long (/flux_fast/status?wait_s=).
    LONG_POLL_S = 30.0

    def __init__(self, client: ComfyClient, timeout_s: float, interval_s: float = 0.05, enabled: bool = True):
        """`enabled` false (no FLUX_FAST_PRELOAD): open from the start, so the first job asks ComfyUI nothing.
        `interval_s`: the pause between requests that came back at once with the preload still busy (nodes that do
        not hold the request); the ones that hold it are asked again at once."""
        self.client, self.timeout_s, self.interval_s = client, timeout_s, interval_s
        self.open = not enabled

    def wait(self) -> None:
        if self.open:
            return
        started = time.monotonic()
        while True:
            asked = time.monotonic()
            try:
                remaining = self.timeout_s - (asked - started)
                status = self.client.fast_path_status(wait_s=max(min(self.LONG_POLL_S, remaining), 0.0)) or {}
            except Exception as exc:  # ComfyUI's own failure shows in the job that follows
                log.warning("could not read the preload's state (%s); queueing anyway", exc)
                break
            state = (status.get("preload") or {}).get("state", "off")
            if state not in PRELOAD_BUSY:
                # Once per worker: the first answer may itself have been held until the preload settled.
                log.info("ComfyUI's start-up preload %s; waited %.2f s to queue", state, time.monotonic() - started)
                break
            if time.monotonic() - started >= self.timeout_s:
                log.warning("ComfyUI's start-up preload still %s after %.0f s; queueing anyway", state, self.timeout_s)
                break
            if time.monotonic() - asked < self.interval_s:
                time.sleep(self.interval_s)
        self.open = True
