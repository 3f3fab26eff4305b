"""The readiness gate: the Runpod loop starts only once ComfyUI answers.

Waits for ComfyUI's HTTP server with a deadline, and gives up at once if the ComfyUI process (its pid comes from
start.sh as COMFYUI_PID) has exited, so a broken image fails in seconds with a clear log line instead of taking
jobs it cannot run.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

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
