"""The integration tier: the real worker (start.sh -> ComfyUI + handler) against a real ComfyUI checkout.

Why real processes: the contract that matters is what a caller gets from the Runpod API of a worker started
exactly as in production, so the fixtures start `bash start.sh --rp_serve_api ...` (or only ComfyUI, with the
same flags) and talk to them over HTTP. Models are the random-weight stand-ins of tools/standins.py (real
key names, shapes and dtypes; the DiT cut to 1 double + 1 single block so CPU sampling is fast), generated
once into a cache directory and reused across runs.

Environment:
  COMFYUI_PATH     a ComfyUI checkout (the pinned release, v0.33.0); unset -> the whole tier is skipped.
  COMFYUI_PYTHON   interpreter with ComfyUI's deps (torch); default: the interpreter running pytest.
  STANDINS_DIR     where the stand-ins are cached; default <repo>/.cache/standins (gitignored).
  INTEGRATION_READY_TIMEOUT_S  how long a server may take to answer after start (default 240).

One heavy process at a time: a ComfyUI that has run the FLUX graph holds ~11 GiB. The session keeps at most
one server alive, so `comfyui` reuses the worker's ComfyUI when a worker is running (it is started with the
same flags), and `worker` stops a standalone ComfyUI before starting. Every stop sends SIGTERM to the whole
process group and checks that it is gone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

from tools.soak import free_port, http_json  # one copy of the loopback HTTP helpers

REPO = Path(__file__).resolve().parents[2]
SKIP_REASON = "COMFYUI_PATH not set: integration tier against a real ComfyUI skipped"
READY_TIMEOUT_S = float(os.environ.get("INTEGRATION_READY_TIMEOUT_S", "240"))
STOP_TIMEOUT_S = 60.0
# One CPU generation at 256x256 takes 30-100 s on two cores, the first one more (T5 load).
RUNSYNC_TIMEOUT_S = 900.0


# ---- helpers ---------------------------------------------------------------------------------------------

@dataclass
class Server:
    """A process group started by a fixture, with its log file and the URLs it serves."""

    name: str
    process: subprocess.Popen
    log_path: Path
    base_url: str                 # the URL tests talk to (Runpod API for the worker, ComfyUI otherwise)
    comfyui_url: str
    stopped: bool = field(default=False)

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def assert_alive(self) -> None:
        if self.process.poll() is not None:
            pytest.fail(f"{self.name} exited with status {self.process.returncode}; log tail:\n{self.log_tail()}")

    def wait_ready(self, probe: Callable[[], bool], timeout_s: float = READY_TIMEOUT_S) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if self.process.poll() is not None:
                pytest.fail(f"{self.name} exited with status {self.process.returncode} before it was ready; "
                            f"log tail:\n{self.log_tail()}")
            try:
                if probe():
                    return time.monotonic() - started
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.5)
        self.stop()
        pytest.fail(f"{self.name} did not answer within {timeout_s:.0f} s; log tail:\n{self.log_tail()}")

    def stop(self) -> Optional[int]:
        """SIGTERM the process group, wait, and make sure nothing of it is left; return the exit status."""
        if self.stopped:
            return self.process.returncode
        self.stopped = True
        pgid = self.process.pid   # start_new_session: the leader's pid is the group id
        _signal_group(pgid, signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            _signal_group(pgid, signal.SIGKILL)
            self.process.wait(10)
            raise AssertionError(f"{self.name} ignored SIGTERM for {STOP_TIMEOUT_S:.0f} s and was killed; "
                                 f"log tail:\n{self.log_tail()}")
        deadline = time.monotonic() + 30
        while _group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _group_alive(pgid):
            _signal_group(pgid, signal.SIGKILL)
            raise AssertionError(f"{self.name}: processes of its group outlived SIGTERM; log tail:\n{self.log_tail()}")
        return self.process.returncode


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    """True while any process (zombies excluded) is still in the group."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            return True
    return False


@dataclass
class Worker:
    """What the `worker` fixture yields: the local Runpod API of a worker started by start.sh."""

    server: Server

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def comfyui_url(self) -> str:
        return self.server.comfyui_url

    def runsync(self, job_input: Any, timeout: float = RUNSYNC_TIMEOUT_S) -> dict:
        """POST /runsync {"input": job_input}; return the API's JSON (id, status, output or error)."""
        self.server.assert_alive()
        status, body = http_json("POST", f"{self.base_url}/runsync", {"input": job_input}, timeout=timeout)
        assert status == 200, f"/runsync answered HTTP {status}: {body!r}\nworker log tail:\n{self.server.log_tail()}"
        assert isinstance(body, dict), body
        return body

    def log_text(self) -> str:
        return self.server.log_text()


@dataclass
class ComfyUI:
    """What the `comfyui` fixture yields: a ComfyUI started with the worker's flags and the stand-ins."""

    server: Server

    @property
    def base_url(self) -> str:
        return self.server.comfyui_url

    def get(self, path: str, timeout: float = 30.0) -> tuple[int, Any]:
        self.server.assert_alive()
        return http_json("GET", self.base_url + path, timeout=timeout)

    def post(self, path: str, body: Any, timeout: float = 30.0) -> tuple[int, Any]:
        self.server.assert_alive()
        return http_json("POST", self.base_url + path, body, timeout=timeout)


# ---- session state ---------------------------------------------------------------------------------------

@dataclass
class Setup:
    """Paths and environment shared by every server of the session."""

    comfyui_path: Path
    comfyui_python: str
    standins_dir: Path
    work_dir: Path
    model_paths_yaml: Path
    output_dir: Path
    input_dir: Path
    front_end_dir: Path

    def comfyui_args(self) -> list[str]:
        return ["--cpu", "--front-end-root", str(self.front_end_dir), "--output-directory", str(self.output_dir),
                "--input-directory", str(self.input_dir), "--extra-model-paths-config", str(self.model_paths_yaml)]


class ServerPool:
    """Keeps at most one heavy server alive; hands out the worker or a ComfyUI on demand."""

    def __init__(self, setup: Setup):
        self.setup = setup
        self.current: Optional[Server] = None
        self.counter = 0
        self.exit_statuses: dict[str, Optional[int]] = {}
        self.start_failures: dict[str, str] = {}   # kind -> why it did not start (not retried)

    def _stop_current(self) -> None:
        if self.current is not None:
            server, self.current = self.current, None
            self.exit_statuses[server.name] = server.stop()

    def _log_path(self, kind: str) -> Path:
        self.counter += 1
        return self.setup.work_dir / f"{self.counter:02d}-{kind}.log"

    def _start(self, kind: str, launch: Callable[[], Server]) -> Server:
        """Start a server once per kind: after a failed start, later tests fail at once with the same reason."""
        if kind in self.start_failures:
            pytest.fail(f"{kind} did not start earlier in this session:\n{self.start_failures[kind]}")
        try:
            return launch()
        except pytest.fail.Exception as exc:
            self.start_failures[kind] = str(exc)
            raise

    def worker(self) -> Server:
        if self.current is not None and self.current.name.startswith("worker") and self.current.process.poll() is None:
            return self.current
        return self._start("worker", self._launch_worker)

    def fresh_worker(self, kind: str, extra_env: dict[str, str]) -> Server:
        """A new worker process (stopping the current server) with `extra_env` on top of the usual environment."""
        return self._start(kind, lambda: self._launch_worker(extra_env, kind))

    def stop_current(self) -> None:
        """Stop the running server (for a test that starts one of its own, e.g. through a tool)."""
        self._stop_current()

    def worker_env(self, extra_env: Optional[dict[str, str]] = None) -> dict[str, str]:
        """The environment start.sh runs with in these tests (COMFYUI_URL aside), plus `extra_env`."""
        s = self.setup
        # nothing of a developer's Runpod settings leaks in: the worker must not reach a real endpoint
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("RUNPOD_")}
        return dict(base_env,
                    COMFYUI_PATH=str(s.comfyui_path), COMFYUI_PYTHON=s.comfyui_python,
                    HANDLER_PYTHON=sys.executable,
                    COMFYUI_ARGS=" ".join(s.comfyui_args()), COMFYUI_OUTPUT_DIR=str(s.output_dir),
                    COMFY_READY_TIMEOUT_S=str(int(READY_TIMEOUT_S)),
                    # the stand-in LoRAs (tools.standins writes <standins>/loras) and a URL cache ComfyUI lists there
                    LORA_DIRS=str(s.standins_dir / "loras"),
                    LORA_CACHE_DIR=str(s.standins_dir / "loras" / "_url_cache"), **(extra_env or {}))

    def _launch_worker(self, extra_env: Optional[dict[str, str]] = None, kind: str = "worker") -> Server:
        self._stop_current()
        api_port, comfy_port = free_port(), free_port()
        comfyui_url = f"http://127.0.0.1:{comfy_port}"
        env = dict(self.worker_env(extra_env), COMFYUI_URL=comfyui_url)
        log_path = self._log_path(kind)
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                ["bash", str(REPO / "start.sh"), "--rp_serve_api", "--rp_api_host", "127.0.0.1",
                 "--rp_api_port", str(api_port)],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        server = Server(f"{kind}#{self.counter}", process, log_path, f"http://127.0.0.1:{api_port}", comfyui_url)
        self.current = server
        # Ready = the local Runpod API answers; the handler starts it only after ComfyUI answered and the
        # shipped workflows passed their /object_info check.
        server.wait_ready(lambda: http_json("GET", f"{server.base_url}/openapi.json", timeout=5)[0] == 200)
        return server

    def comfyui(self) -> Server:
        if self.current is not None and self.current.process.poll() is None:
            return self.current   # the worker's ComfyUI runs with the same flags
        return self._start("comfyui", self._launch_comfyui)

    def _launch_comfyui(self) -> Server:
        self._stop_current()
        s = self.setup
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log_path = self._log_path("comfyui")
        command = [s.comfyui_python, "main.py", "--listen", "127.0.0.1", "--port", str(port), "--disable-auto-launch",
                   "--extra-model-paths-config", str(REPO / "extra_model_paths.yaml"), *s.comfyui_args()]
        with open(log_path, "wb") as log:
            process = subprocess.Popen(command, cwd=s.comfyui_path, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        server = Server(f"comfyui#{self.counter}", process, log_path, url, url)
        self.current = server
        server.wait_ready(lambda: http_json("GET", f"{url}/system_stats", timeout=5)[0] == 200)
        return server

    def close(self) -> None:
        self._stop_current()


# ---- fixtures --------------------------------------------------------------------------------------------

@pytest.fixture(scope="session", autouse=True)
def comfyui_path() -> Path:
    """The ComfyUI checkout; skips the whole tier (every test under tests/integration) when unset."""
    raw = os.environ.get("COMFYUI_PATH")
    if not raw:
        pytest.skip(SKIP_REASON)
    path = Path(raw).expanduser().resolve()
    if not (path / "main.py").is_file():
        pytest.fail(f"COMFYUI_PATH={raw} is not a ComfyUI checkout (no main.py there)")
    return path


@pytest.fixture(scope="session")
def comfyui_python() -> str:
    return os.environ.get("COMFYUI_PYTHON") or sys.executable


@pytest.fixture(scope="session")
def comfy_in_process(comfyui_path: Path) -> Path:
    """ComfyUI's modules and our nodes (comfy_nodes/) importable in this process, with ComfyUI's arguments parsed as
    a CPU server's (`--cpu`), for tests that drive its classes directly rather than through a server. Once per
    session: ComfyUI reads its arguments at the first import of comfy.model_management."""
    pytest.importorskip("torch", reason="ComfyUI in-process needs torch (the integration environment)")
    sys.path[:0] = [str(comfyui_path), str(REPO / "comfy_nodes")]
    import comfy.options

    comfy.options.enable_args_parsing()
    argv, sys.argv = sys.argv, ["main.py", "--cpu"]
    try:
        import comfy.model_management  # noqa: F401
    finally:
        sys.argv = argv
    return comfyui_path


@pytest.fixture(scope="session")
def standins_dir(comfyui_python: str) -> Path:
    """The stand-in models (generated by `python -m tools.standins`, a no-op when the cache is current)."""
    directory = Path(os.environ.get("STANDINS_DIR") or REPO / ".cache" / "standins").resolve()
    # ComfyUI's interpreter surely has torch; the test interpreter may not.
    result = subprocess.run([comfyui_python, "-m", "tools.standins", "--out", str(directory)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1800)
    if result.returncode != 0:
        pytest.fail(f"generating the stand-in models failed (status {result.returncode}):\n{result.stdout[-4000:]}")
    return directory


@pytest.fixture(scope="session")
def integration_setup(comfyui_path: Path, comfyui_python: str, standins_dir: Path,
                      tmp_path_factory: pytest.TempPathFactory) -> Setup:
    work = tmp_path_factory.mktemp("integration")
    dirs = {name: work / name for name in ("output", "input", "frontend")}
    for d in dirs.values():
        d.mkdir()
    yaml = work / "standin_model_paths.yaml"
    # ComfyUI's extra-paths format: one section, string values, folders joined onto base_path.
    yaml.write_text("standins:\n"
                    f"  base_path: {standins_dir}\n"
                    "  diffusion_models: diffusion_models\n"
                    "  text_encoders: text_encoders\n"
                    "  vae: vae\n"
                    "  loras: loras\n")
    return Setup(comfyui_path, comfyui_python, standins_dir, work, yaml, dirs["output"], dirs["input"],
                 dirs["frontend"])


@pytest.fixture(scope="session")
def server_pool(integration_setup: Setup):
    pool = ServerPool(integration_setup)
    yield pool
    pool.close()


@pytest.fixture
def worker(server_pool: ServerPool) -> Worker:
    """The whole worker, started like production (`bash start.sh --rp_serve_api ...`); shared by the session.

    Yields its local Runpod API (`base_url`, `runsync(input)`). Stopped (SIGTERM to its process group, exit
    checked) when the session ends or a test needs a standalone ComfyUI instead.
    """
    return Worker(server_pool.worker())


@pytest.fixture
def comfyui(server_pool: ServerPool) -> ComfyUI:
    """A ComfyUI with the worker's flags and the stand-ins, for tests that talk to ComfyUI directly."""
    return ComfyUI(server_pool.comfyui())
