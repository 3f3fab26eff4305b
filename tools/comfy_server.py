"""A throwaway CPU ComfyUI on loopback, set up the way the worker runs it, for tools that read what it declares.

Why: the converter's fixtures (/object_info), the converter corpus, the frontend comparison and the upgrade check
all need "a real ComfyUI of this version with this repo's custom nodes loaded", and each must see the same thing
production sees: start.sh's flags (`--extra-model-paths-config extra_model_paths.yaml`, which loads comfy_nodes/,
and the default COMFYUI_PERF_ARGS), plus placeholder model files under the production names so the loaders'
combos list them. No model is ever loaded (empty files, nothing is queued), so no heavy.lock is needed.

Everything it writes lives in a temporary base directory (`--base-directory`), never inside the ComfyUI checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# start.sh's default COMFYUI_PERF_ARGS: what a production worker runs with.
PRODUCTION_ARGS = ("--preview-method", "none", "--disable-api-nodes")
# Placeholder files under the names the shipped workflows and the converter tests use.
PLACEHOLDER_MODELS = {
    "diffusion_models": ["flux1-dev-fp8-e4m3fn.safetensors"],
    "text_encoders": ["clip_l.safetensors", "t5xxl_fp8_e4m3fn.safetensors"],
    "vae": ["ae.safetensors"],
    "loras": ["style.safetensors"],
}
# A 1x1 PNG, so LoadImage's combo lists a file the way a worker with an earlier upload shows it.
_PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201a1e2c1e60000000049454e44ae426082"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyServer:
    """`with ComfyServer(path, python) as srv: srv.get_json("/object_info")` — started, ready, and stopped."""

    def __init__(self, comfyui: Path, python: str, *, production_args: bool = True, extra_args: tuple[str, ...] = (),
                 placeholders: bool = True, ready_timeout_s: float = 600.0, log_path: Path | None = None,
                 env: dict[str, str] | None = None):
        """`env`: variables set for ComfyUI's process on top of this one's (e.g. a FLUX_FAST_* switch)."""
        self.comfyui = Path(comfyui)
        self.env = env or {}
        self.python = python
        self.args = (*(PRODUCTION_ARGS if production_args else ()), *extra_args)
        self.placeholders = placeholders
        self.ready_timeout_s = ready_timeout_s
        self.log_path = log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._base: str | None = None
        self._proc: subprocess.Popen | None = None
        self._log = None

    def __enter__(self) -> "ComfyServer":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _make_base(self) -> str:
        base = tempfile.mkdtemp(prefix="comfy-tool-")
        for sub in ("models", "input", "output", "temp", "user", "custom_nodes"):
            os.makedirs(os.path.join(base, sub))
        if self.placeholders:
            for folder, names in PLACEHOLDER_MODELS.items():
                os.makedirs(os.path.join(base, "models", folder), exist_ok=True)
                for name in names:
                    Path(base, "models", folder, name).touch()
            Path(base, "input", "example.png").write_bytes(_PNG_1X1)
        return base

    def start(self) -> None:
        if not (self.comfyui / "main.py").is_file():
            raise FileNotFoundError(f"no ComfyUI at {self.comfyui} (main.py missing)")
        self._base = self._make_base()
        cmd = [self.python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
               "--disable-auto-launch", "--base-directory", self._base,
               "--database-url", f"sqlite:///{self._base}/user/comfyui.db",
               "--extra-model-paths-config", str(REPO / "extra_model_paths.yaml"), *self.args]
        log_path = self.log_path or Path(self._base, "comfyui.log")
        self._log = open(log_path, "wb")
        self._proc = subprocess.Popen(cmd, cwd=self.comfyui, stdout=self._log, stderr=subprocess.STDOUT,
                                      env={**os.environ, **self.env}, start_new_session=True)
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                message = (f"ComfyUI exited with {self._proc.returncode} while starting; log tail:\n"
                           + Path(log_path).read_text(errors="replace")[-3000:])
                self.stop()
                raise RuntimeError(message)
            try:
                self.get_json("/system_stats", timeout_s=5)
                return
            except (OSError, urllib.error.URLError, ValueError):
                time.sleep(1)
        self.stop()
        raise TimeoutError(f"ComfyUI did not answer within {self.ready_timeout_s:.0f} s; log: {log_path}")

    def get_json(self, path: str, timeout_s: float = 120) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=timeout_s) as resp:  # noqa: S310 - loopback
            return json.load(resp)

    def log_text(self) -> str:
        path = self.log_path or (Path(self._base, "comfyui.log") if self._base else None)
        return path.read_text(errors="replace") if path and path.exists() else ""

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._base is not None and self.log_path is None:
            shutil.rmtree(self._base, ignore_errors=True)
            self._base = None
