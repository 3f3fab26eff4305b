"""The packaging files say what they must: pins, versions, secrets, paths.

No Docker engine runs on the test machines, so the Dockerfile, compose file and GitHub
workflows are checked as text and YAML for the properties that matter (a token never in a
layer, the ComfyUI version the tests target, exact pins). extra_model_paths.yaml is also
checked for real: with COMFYUI_PATH set, ComfyUI is started on the CPU with a copy whose
network-volume base points at a temporary folder, and must list the files placed there and
load a custom node from the comfy_nodes folder next to the yaml.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
TARGET_COMFYUI_VERSION = "v0.33.0"
TARGET_COMFYUI_COMMIT = "2f35f4a08176d993cded35dac3332be4f7287f41"
VOLUME_BASE = "/runpod-volume/models"
# ComfyUI folder name -> the subfolders of the network volume it must search.
VOLUME_FOLDERS = {
    "checkpoints": {"checkpoints"},
    "diffusion_models": {"diffusion_models", "unet"},
    "text_encoders": {"text_encoders", "clip"},
    "vae": {"vae"},
    "loras": {"loras"},
    "upscale_models": {"upscale_models"},
    "controlnet": {"controlnet"},
    "clip_vision": {"clip_vision"},
    "embeddings": {"embeddings"},
}
LEGACY = {"clip": "text_encoders", "unet": "diffusion_models"}  # ComfyUI's folder_paths.map_legacy


def _yaml(path: Path):
    return yaml.safe_load(path.read_text())


def _dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def _instructions(text: str) -> list[tuple[str, str]]:
    """Dockerfile instructions as (KEYWORD, arguments), continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        current += " " + stripped.rstrip("\\").strip() if current else stripped.rstrip("\\").strip()
        if not stripped.endswith("\\"):
            logical.append(current)
            current = ""
    out = []
    for instr in logical:
        keyword, _, args = instr.partition(" ")
        out.append((keyword.upper(), args.strip()))
    return out


def _arg_default(name: str) -> str | None:
    for keyword, args in _instructions(_dockerfile()):
        if keyword == "ARG" and args.split("=", 1)[0] == name:
            return args.split("=", 1)[1] if "=" in args else None
    return None


def _workflow_on(doc: dict):
    return doc.get("on", doc.get(True))  # PyYAML reads the bare key `on` as True


# ------------------------------------------------------------ requirements --


def _requirement_lines(path: Path) -> list[str]:
    lines = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


@pytest.mark.parametrize("name", ["requirements.txt", "requirements-dev.txt", "requirements-comfyui.txt"])
def test_every_requirement_is_pinned_exactly(name):
    for line in _requirement_lines(ROOT / name):
        if line.startswith("-r "):
            assert (ROOT / line[3:].strip()).is_file(), line
            continue
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*(\[[a-z0-9,_-]+\])?==[0-9][A-Za-z0-9.+!-]*", line), (
            f"{name}: {line!r} is not pinned with =="
        )


def _pins(name: str) -> dict[str, str]:
    pins = {}
    for line in _requirement_lines(ROOT / name):
        if "==" in line:
            pkg, version = line.split("==")
            pkg = re.sub(r"\[.*\]", "", pkg)
            pins[re.sub(r"[-_.]+", "-", pkg).lower()] = version
    return pins


def test_runtime_requirements_cover_the_worker():
    pins = _pins("requirements.txt")
    for pkg in ("runpod", "websocket-client", "requests", "pillow", "huggingface-hub", "boto3"):
        assert pkg in pins, pkg
    assert pins["runpod"] == "1.12.0"


def test_dev_requirements_include_runtime_and_never_torch():
    lines = _requirement_lines(ROOT / "requirements-dev.txt")
    assert "-r requirements.txt" in lines
    pins = _pins("requirements-dev.txt")
    assert "pytest" in pins and "pyyaml" in pins
    assert not {"torch", "torchvision", "torchaudio"} & set(pins)


def test_shared_pins_agree_between_runtime_and_comfyui_constraints():
    runtime, comfy = _pins("requirements.txt"), _pins("requirements-comfyui.txt")
    for pkg in set(runtime) & set(comfy):
        assert runtime[pkg] == comfy[pkg], f"{pkg}: {runtime[pkg]} vs {comfy[pkg]}"
    assert not {"torch", "torchvision", "torchaudio"} & set(comfy), "torch is pinned by the Dockerfile"


# -------------------------------------------------------------- Dockerfile --


def test_dockerfile_comfyui_version_is_the_one_the_tests_target():
    assert _arg_default("COMFYUI_VERSION") == TARGET_COMFYUI_VERSION
    assert _arg_default("COMFYUI_COMMIT") == TARGET_COMFYUI_COMMIT
    ci = _yaml(ROOT / ".github" / "workflows" / "tests.yml")
    assert ci["env"]["COMFYUI_VERSION"] == TARGET_COMFYUI_VERSION
    assert ci["env"]["COMFYUI_COMMIT"] == TARGET_COMFYUI_COMMIT


def test_the_build_refuses_a_tag_that_no_longer_names_the_pinned_commit():
    run_text = " ".join(args for keyword, args in _instructions(_dockerfile()) if keyword == "RUN")
    assert 'test "$(git -C /comfyui rev-parse HEAD)" = "${COMFYUI_COMMIT}"' in run_text
    ci = (ROOT / ".github" / "workflows" / "tests.yml").read_text()
    assert 'rev-parse HEAD)" = "$COMFYUI_COMMIT"' in ci


def test_target_version_matches_the_comfyui_under_test():
    path = os.environ.get("COMFYUI_PATH")
    if not path:
        pytest.skip("COMFYUI_PATH is not set: no ComfyUI checkout to compare the version with")
    text = (Path(path) / "comfyui_version.py").read_text()
    assert f'__version__ = "{TARGET_COMFYUI_VERSION[1:]}"' in text


def test_hf_token_is_never_a_build_arg_or_env():
    for keyword, args in _instructions(_dockerfile()):
        if keyword in ("ARG", "ENV", "LABEL"):
            assert "HF_TOKEN" not in args.upper() and "hf_token" not in args.lower(), (keyword, args)
        if keyword == "RUN":
            assert not re.search(r"echo[^;&|]*(HF_TOKEN|hf_token)", args), args


def test_models_are_baked_through_the_buildkit_secret_or_skipped():
    runs = [args for keyword, args in _instructions(_dockerfile()) if keyword == "RUN" and "model_files" in args]
    assert runs, "the Dockerfile should bake models with handler/model_files.py"
    folders = set()
    for args in runs:
        assert args.startswith("--mount=type=secret,id=hf_token"), args
        assert "--token-file /run/secrets/hf_token" in args
        assert '"${BAKE_MODELS}" = "true"' in args
        folders.update(re.findall(r"--only (\w+)", args))
    from handler.model_files import load_manifest

    assert folders == {e.folder for e in load_manifest(ROOT / "models.txt")}
    assert _arg_default("BAKE_MODELS") == "true"
    assert (ROOT / "Dockerfile").read_text().splitlines()[0] == "# syntax=docker/dockerfile:1.7"


def test_dockerfile_base_python_torch_and_cmd_are_pinned():
    instructions = _instructions(_dockerfile())
    base = _arg_default("CUDA_IMAGE")
    assert re.fullmatch(r"nvidia/cuda:12\.8\.\d+-cudnn-runtime-ubuntu24\.04@sha256:[0-9a-f]{64}", base)
    assert ("FROM", "${CUDA_IMAGE}") in instructions
    # cu130: ComfyUI >= 0.2x disables comfy-kitchen's CUDA kernels (FLUX's RoPE among them) on older builds.
    assert _arg_default("TORCH_VERSION").endswith("+cu130")
    assert _arg_default("TORCH_INDEX_URL").endswith("/cu130")
    for pkg in ("TORCHVISION_VERSION", "TORCHAUDIO_VERSION"):
        assert _arg_default(pkg).endswith("+cu130"), pkg
    assert instructions[-1] == ("CMD", '["/start.sh"]')
    run_text = " ".join(args for keyword, args in instructions if keyword == "RUN")
    assert 'git clone --depth 1 --branch "${COMFYUI_VERSION}"' in run_text
    assert "-c /tmp/requirements-comfyui.txt" in run_text
    assert "/comfyui/user/default/workflows" in run_text
    assert "libtcmalloc-minimal4t64" in run_text


# ------------------------------------------------- what ships is what was measured (issue 10) --

_RUN_NUMBER = re.compile(r"run(\d+)")


def _major_minor(version: str) -> tuple[int, int]:
    """(2, 11) of '2.11.0+cu130', '2.11.0', '3.6.0'."""
    match = re.match(r"(\d+)\.(\d+)", version)
    assert match, f"not a version: {version!r}"
    return int(match[1]), int(match[2])


def _cuda_of(torch_version: str) -> tuple[int, int] | None:
    """(12, 8) of '2.11.0+cu128'; None for a build without a CUDA tag."""
    match = re.search(r"\+cu(\d+)(\d)$", torch_version)
    return (int(match[1]), int(match[2])) if match else None


def newest_benchmark_envs(bench: Path) -> dict[str, dict]:
    """The `_env` of the newest benchmark records: bench/results.json (the run BENCHMARKS.md is rendered from)
    and the coldstart profiles of the highest run number (bench/profiles/coldstart-<gpu>-run<N>.json)."""
    envs = {}
    results = bench / "results.json"
    if results.is_file():
        envs[results.name] = json.loads(results.read_text()).get("_env", {})
    coldstarts = {}
    for path in bench.glob("profiles/coldstart-*.json"):
        match = _RUN_NUMBER.search(path.stem)
        coldstarts[path] = int(match[1]) if match else -1
    if coldstarts:
        newest = max(coldstarts.values())
        for path, number in sorted(coldstarts.items()):
            if number == newest:
                envs[f"profiles/{path.name}"] = json.loads(path.read_text()).get("_env", {})
    return {name: env for name, env in envs.items() if isinstance(env, dict) and env.get("torch")}


def pin_drift(pins: dict[str, str], envs: dict[str, dict]) -> list[str]:
    """Where the image's pins (`TORCH_VERSION`, `TRITON_VERSION` ARGs) and the benchmark's recorded versions part
    in major.minor, and where the image's CUDA build would need a newer driver than the one the bench ran on."""
    problems = []
    torch_pin, triton_pin = pins["TORCH_VERSION"], pins.get("TRITON_VERSION")
    for name, env in envs.items():
        if _major_minor(env["torch"]) != _major_minor(torch_pin):
            problems.append(f"{name}: bench measured torch {env['torch']}, the image pins {torch_pin}")
        if triton_pin and env.get("triton") and _major_minor(env["triton"]) != _major_minor(triton_pin):
            problems.append(f"{name}: bench measured Triton {env['triton']}, the image pins {triton_pin}")
        image_cuda, bench_cuda = _cuda_of(torch_pin), env.get("cuda")
        if image_cuda and bench_cuda and image_cuda > _major_minor(str(bench_cuda)):
            problems.append(f"{name}: the image's CUDA {image_cuda} is newer than the bench's {bench_cuda}")
    return problems


def _docker_pins() -> dict[str, str]:
    return {name: _arg_default(name) for name in ("TORCH_VERSION", "TRITON_VERSION") if _arg_default(name)}


def test_the_image_pins_the_torch_and_triton_the_newest_benchmarks_measured():
    envs = newest_benchmark_envs(ROOT / "bench")
    assert "results.json" in envs, "bench/results.json records no torch version (_env.torch)"
    pins = _docker_pins()
    assert pin_drift(pins, envs) == [], "\n".join(pin_drift(pins, envs))
    # torchvision/torchaudio are the releases of the same torch (2.11 -> 0.26 / 2.11), in the same CUDA build.
    torch_mm = _major_minor(pins["TORCH_VERSION"])
    build = pins["TORCH_VERSION"].partition("+")[2]
    assert _major_minor(_arg_default("TORCHVISION_VERSION")) == (0, torch_mm[1] + 15)
    assert _major_minor(_arg_default("TORCHAUDIO_VERSION")) == torch_mm
    assert {v.partition("+")[2] for v in (_arg_default("TORCHVISION_VERSION"), _arg_default("TORCHAUDIO_VERSION"))} == {build}
    assert _arg_default("TORCH_INDEX_URL").endswith(f"/{build}")


def test_the_cpu_tests_install_the_same_torch_release_as_the_image():
    ci = _yaml(ROOT / ".github" / "workflows" / "tests.yml")["env"]
    for name in ("TORCH_VERSION", "TORCHVISION_VERSION", "TORCHAUDIO_VERSION"):
        assert ci[name].partition("+")[0] == _arg_default(name).partition("+")[0], name
        assert ci[name].endswith("+cpu")


def test_pin_drift_is_caught_in_major_minor_only(tmp_path):
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (tmp_path / "results.json").write_text(json.dumps({"_env": {"torch": "2.11.0+cu130", "cuda": "13.0"}}))
    for run, torch in ((2, "2.9.1+cu128"), (3, "2.11.1+cu130")):
        (profiles / f"coldstart-h200-run{run}.json").write_text(
            json.dumps({"_env": {"torch": torch, "cuda": "13.0", "triton": "3.6.0"}}))
    envs = newest_benchmark_envs(tmp_path)
    assert set(envs) == {"results.json", "profiles/coldstart-h200-run3.json"}  # run2 is not the newest
    assert pin_drift({"TORCH_VERSION": "2.11.0+cu128", "TRITON_VERSION": "3.6.0"}, envs) == []
    drift = pin_drift({"TORCH_VERSION": "2.9.1+cu128", "TRITON_VERSION": "3.5.1"}, envs)
    assert len(drift) == 3 and "torch 2.11.0+cu130" in drift[0] and "Triton 3.6.0" in drift[2]
    assert pin_drift({"TORCH_VERSION": "2.11.0+cu132"}, envs)  # a newer CUDA than the bench's driver ran
    (profiles / "coldstart-h100-run4.json").write_text(json.dumps({"_env": {"torch": "2.12.0+cu130"}}))
    assert "2.12.0" in " ".join(pin_drift({"TORCH_VERSION": "2.11.0+cu128"}, newest_benchmark_envs(tmp_path)))


def test_dockerfile_precompiles_comfyui_and_worker_after_the_code_is_copied():
    # Cold starts run from a fresh container: bytecode not in the image is compiled on every cold start.
    instructions = _instructions(_dockerfile())
    compile_at = next(i for i, (k, a) in enumerate(instructions) if k == "RUN" and "compileall" in a)
    assert "/comfyui" in instructions[compile_at][1] and "/worker" in instructions[compile_at][1]
    last_copy = max(i for i, (k, a) in enumerate(instructions) if k == "COPY" and "/worker/" in a)
    assert compile_at > last_copy
    assert not any(k == "ENV" and "PYTHONDONTWRITEBYTECODE" in a for k, a in instructions)


def test_dockerfile_copies_only_paths_that_exist():
    for keyword, args in _instructions(_dockerfile()):
        if keyword == "COPY" and not args.startswith("--from"):
            for src in args.split()[:-1]:
                assert (ROOT / src).exists(), f"COPY source {src} is missing"


def test_dockerignore_keeps_weights_and_git_out_of_the_context():
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert ".git" in lines and "*.safetensors" in lines


# ------------------------------------------------------------------ compose --


def test_compose_runs_gpu_worker_with_api_gui_models_and_secret():
    doc = _yaml(ROOT / "docker-compose.yml")
    worker = doc["services"]["worker"]
    assert worker["command"][:2] == ["/start.sh", "--rp_serve_api"]
    assert "--rp_api_host" in worker["command"] and "0.0.0.0" in worker["command"]
    assert {"8000:8000", "8188:8188"} <= set(worker["ports"])
    assert worker["environment"]["COMFYUI_LISTEN"] == "0.0.0.0"
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert f"models:{VOLUME_BASE}" in worker["volumes"]
    assert any(v.endswith(":/comfyui/user/default/workflows/repo") for v in worker["volumes"])
    assert doc["secrets"]["hf_token"] == {"environment": "HF_TOKEN"}
    models = doc["services"]["models"]
    assert "hf_token" in models["secrets"] and "handler.model_files" in models["command"]
    assert worker["depends_on"]["models"]["condition"] == "service_completed_successfully"


def test_compose_is_the_only_place_comfyui_listens_beyond_loopback():
    assert "COMFYUI_LISTEN" not in _dockerfile()


# ---------------------------------------------------------- GitHub workflows --


def test_tests_workflow_runs_unit_and_integration_tiers():
    doc = _yaml(ROOT / ".github" / "workflows" / "tests.yml")
    on = _workflow_on(doc)
    assert "push" in on and "pull_request" in on
    unit = json.dumps(doc["jobs"]["unit"])
    assert "pip install -r requirements-dev.txt" in unit and "pytest" in unit
    integ = doc["jobs"]["integration"]
    text = json.dumps(integ)
    assert "COMFYUI_PATH" in integ["env"]
    assert 'git clone --depth 1 --branch \\"$COMFYUI_VERSION\\"' in text
    assert "download.pytorch.org/whl/cpu" in json.dumps(doc["env"])
    assert doc["env"]["TORCH_VERSION"].endswith("+cpu")
    cache = [s for s in integ["steps"] if str(s.get("uses", "")).startswith("actions/cache@")]
    assert cache and "hashFiles('tools/standins.py')" in cache[0]["with"]["key"]
    assert "pytest" in text


def test_release_workflow_pushes_on_tags_with_token_as_buildkit_secret():
    doc = _yaml(ROOT / ".github" / "workflows" / "release.yml")
    assert _workflow_on(doc)["push"]["tags"] == ["v*"]
    text = json.dumps(doc)
    for secret in ("DOCKERHUB_USERNAME", "DOCKERHUB_TOKEN", "HF_TOKEN"):
        assert f"secrets.{secret}" in text
    (build,) = [s for s in doc["jobs"]["image"]["steps"] if str(s.get("uses", "")).startswith("docker/build-push-action@")]
    assert "hf_token=${{ secrets.HF_TOKEN }}" in build["with"]["secrets"]
    assert "HF_TOKEN" not in build["with"].get("build-args", "")
    assert build["with"]["push"] is True


# ------------------------------------------------------- extra_model_paths --


def _volume_search_paths(doc: dict) -> dict[str, set[str]]:
    """What ComfyUI will add, per (legacy-mapped) folder, from sections with the volume base."""
    found: dict[str, set[str]] = {}
    for section in doc.values():
        if not section or section.get("base_path") != VOLUME_BASE:
            continue
        for key, value in section.items():
            if key in ("base_path", "is_default"):
                continue
            for sub in value.split("\n"):
                if sub:
                    found.setdefault(LEGACY.get(key, key), set()).add(sub.strip())
    return found


def test_extra_model_paths_values_are_strings_and_cover_the_volume():
    doc = _yaml(ROOT / "extra_model_paths.yaml")
    for section in doc.values():
        for key, value in section.items():
            if key != "is_default":
                assert isinstance(value, str), (key, value)
    found = _volume_search_paths(doc)
    for folder, subs in VOLUME_FOLDERS.items():
        assert subs <= found.get(LEGACY.get(folder, folder), set()), folder


def test_extra_model_paths_loads_comfy_nodes_relative_to_the_yaml():
    doc = _yaml(ROOT / "extra_model_paths.yaml")
    sections = [s for s in doc.values() if "custom_nodes" in s]
    assert len(sections) == 1 and "base_path" not in sections[0]
    assert sections[0]["custom_nodes"] == "comfy_nodes"
    assert (ROOT / "comfy_nodes").is_dir()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.load(resp)


PROBE_NODE = '''
class PackagingProbe:
    CATEGORY = "testing"
    RETURN_TYPES = ()
    FUNCTION = "run"
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}
    def run(self):
        return ()

NODE_CLASS_MAPPINGS = {"PackagingProbe": PackagingProbe}
'''


def test_comfyui_finds_volume_models_and_comfy_nodes_through_the_yaml(tmp_path):
    """A real ComfyUI, started with a copy of the yaml whose volume base is a temp folder."""
    comfy = os.environ.get("COMFYUI_PATH")
    if not comfy:
        pytest.skip("COMFYUI_PATH is not set: no ComfyUI to load extra_model_paths.yaml")
    doc = _yaml(ROOT / "extra_model_paths.yaml")
    volume = tmp_path / "runpod-volume" / "models"
    for section in doc.values():
        if section.get("base_path") == VOLUME_BASE:
            section["base_path"] = str(volume)
    config_dir = tmp_path / "repo"  # the copy sits where the repo root would, beside comfy_nodes/
    (config_dir / "comfy_nodes" / "packaging_probe").mkdir(parents=True)
    (config_dir / "comfy_nodes" / "packaging_probe" / "__init__.py").write_text(PROBE_NODE)
    config = config_dir / "extra_model_paths.yaml"
    config.write_text(yaml.safe_dump(doc))

    placed = {
        "checkpoints": "checkpoints/ckpt.safetensors",
        "diffusion_models": "unet/legacy-unet.safetensors",
        "text_encoders": "clip/legacy-clip.safetensors",
        "vae": "vae/vol-vae.safetensors",
        "loras": "loras/vol-lora.safetensors",
        "upscale_models": "upscale_models/vol-up.pth",
        "controlnet": "controlnet/vol-cn.safetensors",
        "clip_vision": "clip_vision/vol-cv.safetensors",
        "embeddings": "embeddings/vol-emb.safetensors",
    }
    placed_extra = {"diffusion_models": "diffusion_models/vol-dit.safetensors",
                    "text_encoders": "text_encoders/vol-t5.safetensors"}
    for rel in [*placed.values(), *placed_extra.values()]:
        (volume / rel).parent.mkdir(parents=True, exist_ok=True)
        (volume / rel).write_bytes(b"")

    port = _free_port()
    empty_fe = tmp_path / "fe"
    empty_fe.mkdir()
    base = tmp_path / "comfy-base"
    (base / "custom_nodes").mkdir(parents=True)  # ComfyUI v0.3.64 crashes on a missing custom_nodes dir
    cmd = [os.environ.get("COMFYUI_PYTHON") or sys.executable, "main.py", "--cpu",
           "--listen", "127.0.0.1", "--port", str(port), "--disable-auto-launch",
           "--front-end-root", str(empty_fe), "--base-directory", str(base),
           "--database-url", "sqlite:///:memory:",
           "--extra-model-paths-config", str(config)]
    log_path = tmp_path / "comfyui.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=comfy, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 180
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"ComfyUI exited ({proc.returncode}):\n{log_path.read_text()[-3000:]}")
                try:
                    _get_json(f"http://127.0.0.1:{port}/system_stats")
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"ComfyUI not ready in 180 s:\n{log_path.read_text()[-3000:]}")
                    time.sleep(0.5)
            for folder, rel in placed.items():
                listed = _get_json(f"http://127.0.0.1:{port}/models/{folder}")
                assert Path(rel).name in listed, (folder, listed)
            for folder, rel in placed_extra.items():
                assert Path(rel).name in _get_json(f"http://127.0.0.1:{port}/models/{folder}")
            assert "PackagingProbe" in _get_json(f"http://127.0.0.1:{port}/object_info/PackagingProbe")
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    shutil.rmtree(base, ignore_errors=True)
