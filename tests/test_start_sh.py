"""start.sh's process supervision, with stand-in processes for ComfyUI, the handler and the GPU check.

A real ComfyUI cannot be made to see no GPU on demand, and a real GPU check cannot be made slow, so these tests
give start.sh a fake interpreter: `python -c ...` (the GPU pre-flight) sleeps, records when it ended and exits
with FAKE_CUDA_RC; `python main.py ...` (ComfyUI) records when it started and its argv, then waits to be stopped;
`python -m handler` records its pid and waits to be stopped. What a user would notice: a GPU-less worker exits 1 with the reason in
seconds, ComfyUI's start does not wait for the check, and SIGTERM stops everything.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

FAKE_PYTHON = f"""#!/usr/bin/env bash
if [[ "$1" == "-c" ]]; then  # the GPU pre-flight
  sleep "${{FAKE_CHECK_S:-1}}"
  {sys.executable} -c 'import time; print(time.time())' > "$FAKE_DIR/preflight_end"
  exit "${{FAKE_CUDA_RC:-0}}"
fi
if [[ "$1" == "-m" && "$2" == "handler" ]]; then  # the handler
  exec {sys.executable} "$FAKE_DIR/fake_handler.py"
fi
exec {sys.executable} "$@"
"""

FAKE_MAIN = """import json, os, sys, time
d = os.environ["FAKE_DIR"]
json.dump({"start": time.time(), "argv": sys.argv[1:], "pid": os.getpid(),
           "tcmalloc_release_rate": os.environ.get("TCMALLOC_RELEASE_RATE")}, open(os.path.join(d, "comfy.json"), "w"))
time.sleep(60)
"""

FAKE_HANDLER = """import os, signal, time
if os.environ.get("FAKE_HANDLER_IGNORES_TERM"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
open(os.path.join(os.environ["FAKE_DIR"], "handler_pid"), "w").write(str(os.getpid()))
time.sleep(60)
"""


@pytest.fixture
def fake(tmp_path):
    comfy = tmp_path / "comfyui"
    comfy.mkdir()
    (comfy / "main.py").write_text(FAKE_MAIN)
    (tmp_path / "fake_handler.py").write_text(FAKE_HANDLER)
    py = tmp_path / "fakepython"
    py.write_text(FAKE_PYTHON)
    py.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("SKIP_GPU_CHECK", "COMFYUI_ARGS", "LD_PRELOAD")}
    env.update(COMFYUI_PATH=str(comfy), COMFYUI_PYTHON=str(py), HANDLER_PYTHON=str(py), FAKE_DIR=str(tmp_path),
               COMFYUI_URL="http://127.0.0.1:18188", COMFYUI_OUTPUT_DIR=str(tmp_path / "out"))
    return tmp_path, env


def start(env, **extra):
    return subprocess.Popen(["bash", str(REPO / "start.sh")], env={**env, **extra}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_for(path: Path, timeout=20.0):
    t0 = time.time()
    while not path.exists() or not path.read_text():
        if time.time() - t0 > timeout:
            raise AssertionError(f"{path.name} never appeared")
        time.sleep(0.05)
    time.sleep(0.05)
    return path.read_text()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie of an exited child counts as gone
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[1].startswith("Z"))


def test_no_gpu_exits_1_with_the_reason_and_stops_comfyui(fake):
    d, env = fake
    p = start(env, FAKE_CUDA_RC="1", FAKE_CHECK_S="2")
    try:
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 1
    assert "GPU pre-flight failed" in err
    comfy = json.loads((d / "comfy.json").read_text())
    assert not alive(comfy["pid"]), "ComfyUI was left running after the failed pre-flight"
    assert not alive(int((d / "handler_pid").read_text()))


def test_comfyui_starts_while_the_gpu_check_runs_and_sigterm_stops_both(fake):
    d, env = fake
    p = start(env, FAKE_CUDA_RC="0", FAKE_CHECK_S="2")
    try:
        comfy = json.loads(wait_for(d / "comfy.json"))
        preflight_end = float(wait_for(d / "preflight_end"))
        assert comfy["start"] < preflight_end, "ComfyUI waited for the GPU check before starting"
        handler_pid = int(wait_for(d / "handler_pid"))
        time.sleep(1.0)
        assert p.poll() is None, "start.sh exited although the GPU check passed"
        os.kill(p.pid, signal.SIGTERM)
        p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 143
    assert not alive(comfy["pid"]) and not alive(handler_pid)


def test_bench_starts_comfyui_with_the_flags_start_sh_passes(fake):
    """The bench's shipped scenarios read start.sh's defaults; this checks they are what start.sh really passes."""
    from bench.run import start_sh_defaults

    d, env = fake
    p = start(env, SKIP_GPU_CHECK="1")
    try:
        comfy = json.loads(wait_for(d / "comfy.json"))
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        p.communicate(timeout=30)
    flags, alloc_env = start_sh_defaults()
    argv = comfy["argv"]
    assert flags and all(f in argv for f in flags)
    assert "--disable-api-nodes" in flags
    assert alloc_env == {"TCMALLOC_RELEASE_RATE": "0"}


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period(fake):
    d, env = fake
    p = start(env, SKIP_GPU_CHECK="1", FAKE_HANDLER_IGNORES_TERM="1", STOP_GRACE_S="2")
    try:
        comfy = json.loads(wait_for(d / "comfy.json"))
        handler_pid = int(wait_for(d / "handler_pid"))
        time.sleep(0.5)
        t0 = time.time()
        os.kill(p.pid, signal.SIGTERM)
        p.communicate(timeout=30)
        stopped_in = time.time() - t0
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 143
    assert not alive(handler_pid) and not alive(comfy["pid"])
    assert 0.9 < stopped_in < 10, f"stopped in {stopped_in:.1f} s, grace was 2 s (whole seconds)"


FAKE_NVIDIA_SMI = """#!/usr/bin/env bash
[[ -n "${FAKE_SMI_RC:-}" ]] && exit "$FAKE_SMI_RC"
echo "$*" > "$FAKE_DIR/smi_args"
echo "${FAKE_CARD_MIB}"
"""


def comfy_argv_and_log(d: Path, env: dict, **extra) -> tuple[list[str], str]:
    """ComfyUI's argv and start.sh's log lines, with a fake nvidia-smi first on PATH."""
    smi_dir = d / "smi"
    smi_dir.mkdir(exist_ok=True)
    (smi_dir / "nvidia-smi").write_text(FAKE_NVIDIA_SMI)
    (smi_dir / "nvidia-smi").chmod(0o755)
    p = start({**env, "PATH": f"{smi_dir}:{env['PATH']}"}, SKIP_GPU_CHECK="1", PREFETCH_MODELS="0", **extra)
    try:
        comfy = json.loads(wait_for(d / "comfy.json"))
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        _, err = p.communicate(timeout=30)
    return comfy["argv"], err


@pytest.mark.parametrize("card_mib, resident", [(81559, True), (24564, True), (20475, True), (16376, False),
                                                (12282, False)])
def test_dynamic_vram_stays_on_where_the_card_cannot_hold_the_dit(fake, card_mib, resident):
    """16 GB cards keep ComfyUI's dynamic VRAM, which streams T5 and the VAE beside the DiT FluxFastPatch makes
    resident (with dynamic VRAM off, every model resident made them slower); 20 GB and up keep every model resident."""
    d, env = fake
    argv, err = comfy_argv_and_log(d, env, FAKE_CARD_MIB=str(card_mib))
    assert ("--disable-dynamic-vram" in argv) is resident, (argv, err)
    assert f"{card_mib // 1024} GiB card" in err


def test_the_first_visible_gpu_is_the_one_asked_about(fake):
    d, env = fake
    argv, _ = comfy_argv_and_log(d, env, FAKE_CARD_MIB="24564", CUDA_VISIBLE_DEVICES="3,1")
    assert "-i 3" in (d / "smi_args").read_text()
    assert "--disable-dynamic-vram" in argv


def test_an_unknown_card_leaves_comfyui_its_default_and_still_starts(fake):
    """nvidia-smi failing must not stop the worker (start.sh runs under set -e); ComfyUI decides for itself."""
    d, env = fake
    argv, err = comfy_argv_and_log(d, env, FAKE_SMI_RC="9")
    assert "--disable-dynamic-vram" not in argv
    assert "card memory unknown" in err


@pytest.mark.parametrize("setting, card_mib, resident", [("off", 16376, True), ("on", 81559, False)])
def test_comfyui_dynamic_vram_on_and_off_override_the_card_size(fake, setting, card_mib, resident):
    d, env = fake
    argv, _ = comfy_argv_and_log(d, env, FAKE_CARD_MIB=str(card_mib), COMFYUI_DYNAMIC_VRAM=setting)
    assert ("--disable-dynamic-vram" in argv) is resident


def test_a_bad_dynamic_vram_setting_stops_the_start_naming_the_value(fake):
    d, env = fake
    p = start(env, SKIP_GPU_CHECK="1", PREFETCH_MODELS="0", COMFYUI_DYNAMIC_VRAM="sometimes")
    _, err = p.communicate(timeout=30)
    assert p.returncode == 2
    assert "COMFYUI_DYNAMIC_VRAM must be auto, on or off, not 'sometimes'" in err
    assert not (d / "comfy.json").exists()


def test_bench_applies_start_sh_card_rule_to_capped_scenarios():
    """A capped bench scenario stands for a smaller card: it must get the flags start.sh would give that card."""
    from bench.run import start_sh_dynamic_vram_flags

    assert start_sh_dynamic_vram_flags(16) == []
    assert start_sh_dynamic_vram_flags(24) == ["--disable-dynamic-vram"]
    assert start_sh_dynamic_vram_flags(79.6) == ["--disable-dynamic-vram"]


def _start_with_a_model_file(d: Path, env: dict, **extra: str):
    """start.sh with one file of models.txt in ComfyUI's models folder, its output (both streams) in a log."""
    vae = d / "comfyui" / "models" / "vae" / "ae.safetensors"
    vae.parent.mkdir(parents=True)
    vae.write_bytes(b"\x01" * 5000)
    log = d / "start.out"
    with open(log, "w") as out:
        p = subprocess.Popen(["bash", str(REPO / "start.sh")], env={**env, **extra}, stdout=out,
                             stderr=subprocess.STDOUT, start_new_session=True)
    return log, p


def test_the_prefetch_reads_the_models_with_the_read_size_asked_for(fake):
    """PREFETCH_READ_MIB reaches the boot-time read (handler/prefetch.py), which logs the size it used."""
    d, env = fake
    log, p = _start_with_a_model_file(d, env, SKIP_GPU_CHECK="1", PREFETCH_READ_MIB="2")
    try:
        deadline = time.time() + 20
        while "prefetch: read" not in log.read_text() and time.time() < deadline:
            time.sleep(0.1)
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(timeout=30)
    text = log.read_text()
    assert "prefetch: read 1 file(s)" in text and "2 MiB reads" in text, text[-2000:]


def test_a_stop_grace_that_is_not_whole_seconds_stops_the_start_naming_it(fake):
    """STOP_GRACE_S=1.5 made bash's arithmetic fail inside the stop path: the shell left without stopping its
    children."""
    d, env = fake
    p = start(env, SKIP_GPU_CHECK="1", PREFETCH_MODELS="0", STOP_GRACE_S="1.5")
    _, err = p.communicate(timeout=30)
    assert p.returncode == 2 and "STOP_GRACE_S must be a whole number of seconds, not '1.5'" in err
    assert not (d / "comfy.json").exists()


@pytest.mark.parametrize("spelling", ["false", "OFF"])
def test_prefetch_models_off_in_any_spelling_reads_nothing(fake, spelling):
    d, env = fake
    log, p = _start_with_a_model_file(d, env, SKIP_GPU_CHECK="true", PREFETCH_MODELS=spelling)
    try:
        wait_for(d / "handler_pid")
        deadline = time.time() + 4  # a prefetch of 5 KB logs within a second of the start
        while "prefetch" not in log.read_text() and time.time() < deadline:
            time.sleep(0.1)
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(timeout=30)
    assert "prefetch" not in log.read_text(), log.read_text()[-2000:]
