"""The build step of custom_nodes.txt (tools/install_node_packs.py), with packs the tests make: the list's format,
git packs at their commit, registry packs from a local fake registry, requirements under the image's pins (a pack
that wants another torch, a pinned package or a dependency's conflict fails naming the pack and the package),
install.py only where allowed, the record. Network: none (pip installs local wheels into a throwaway venv).
The load probe against a real ComfyUI is in tests/integration/test_node_packs_live.py."""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import json
import subprocess
import sys
import threading
import venv
import zipfile
from pathlib import Path

import pytest

from tools import install_node_packs as inp

ROOT = Path(__file__).resolve().parent.parent
COMMIT = "795e45156ece99afbc3efef911e63fcb46e6a20d"


# ---- helpers: packs, wheels, a venv --------------------------------------------------------------------------

def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


def make_pack(root: Path, name: str, files: dict[str, str]) -> tuple[Path, list[str]]:
    """A git repository with two commits: the files, then a change to __init__.py. Returns it and the commits."""
    repo = root / name
    repo.mkdir(parents=True)
    git(repo, "init", "-q")
    for rel, text in files.items():
        (repo / rel).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "first")
    first = git(repo, "rev-parse", "HEAD")
    (repo / "__init__.py").write_text("raise ImportError('the second commit is broken')\n")
    git(repo, "commit", "-qam", "second")
    return repo, [first, git(repo, "rev-parse", "HEAD")]


NODE = "NODE_CLASS_MAPPINGS = {}\n"


def make_wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> Path:
    """A tiny pure-Python wheel, written by hand (no build backend needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    dist = f"{name}-{version}.dist-info"
    files = {f"{name}.py": f"VERSION = {version!r}\n",
             f"{dist}/METADATA": "Metadata-Version: 2.1\n" f"Name: {name}\nVersion: {version}\n"
                                 + "".join(f"Requires-Dist: {r}\n" for r in requires),
             f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = []
    for rel, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{rel},sha256={digest},{len(text.encode())}")
    files[f"{dist}/RECORD"] = "\n".join(record + [f"{dist}/RECORD,,"]) + "\n"
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for rel, text in files.items():
            zf.writestr(rel, text)
    return path


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("wheels")
    make_wheel(folder, "tinydep", "1.0")
    make_wheel(folder, "tinydep", "2.0")
    make_wheel(folder, "tinywrap", "1.0", ("tinydep>=2",))
    return folder


@pytest.fixture
def target(tmp_path, wheels, monkeypatch) -> str:
    """A throwaway venv (no pip of its own: this interpreter's pip installs into it) and pip kept off the network."""
    venv.create(tmp_path / "venv", with_pip=False)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    return str(tmp_path / "venv" / "bin" / "python")


def pins_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pins.txt"
    path.write_text(text)
    return path


# ---- the list ------------------------------------------------------------------------------------------------

def test_the_shipped_list_is_empty_so_the_default_image_does_not_change():
    assert inp.parse((ROOT / "custom_nodes.txt").read_text()) == []


def test_git_and_registry_lines_with_comments():
    specs = inp.parse(f"# packs\n\nhttps://github.com/city96/ComfyUI-GGUF.git {COMMIT}  # gguf\n"
                      "comfyui-kjnodes@1.1.7\ngit@github.com:rgthree/rgthree-comfy " + "a" * 40 + "\n")
    assert [(s.kind, s.name, s.pin, s.line_no) for s in specs] == [
        ("git", "ComfyUI-GGUF", COMMIT, 3), ("registry", "comfyui-kjnodes", "1.1.7", 4),
        ("git", "rgthree-comfy", "a" * 40, 5)]
    assert specs[0].line == f"https://github.com/city96/ComfyUI-GGUF.git {COMMIT}"


@pytest.mark.parametrize("line, says", [
    ("https://github.com/city96/ComfyUI-GGUF main", "40-hex commit"),
    ("https://github.com/city96/ComfyUI-GGUF 795e451", "40-hex commit"),
    (f"not-a-url {COMMIT}", "not a git URL"),
    (f"--upload-pack=evil {COMMIT}", "not a git URL"),
    ("comfyui-kjnodes@latest", "exact version"),
    ("comfyui-kjnodes@>=1.0", "exact version"),
    ("ComfyUI KJNodes@1.0.0", "not a git URL"),
    ("comfyui-kjnodes", "expected"),
    (f"https://github.com/a/.. {COMMIT}", "folder name"),
])
def test_a_bad_line_is_refused_naming_the_line(line, says):
    with pytest.raises(inp.PackListError) as err:
        inp.parse(f"# header\n{line}\n")
    assert "line 2" in str(err.value) and says in str(err.value)


def test_two_packs_in_one_folder_are_refused():
    with pytest.raises(inp.PackListError) as err:
        inp.parse(f"https://github.com/a/pack {COMMIT}\nhttps://gitlab.com/b/Pack.git {COMMIT}\n")
    assert "line 2" in str(err.value) and "already installed by line 1" in str(err.value)


def test_main_exits_2_on_a_bad_list_and_0_on_an_empty_one_writing_an_empty_record(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("comfyui-kjnodes@main\n")
    assert inp.main(["--list", str(bad), "--comfyui", str(tmp_path)]) == 2
    record = tmp_path / "record.json"
    assert inp.main(["--list", str(ROOT / "custom_nodes.txt"), "--comfyui", str(tmp_path / "comfy"),
                     "--record", str(record)]) == 0
    assert json.loads(record.read_text()) == {"version": 1, "packs": []}


# ---- pins ----------------------------------------------------------------------------------------------------

def test_pins_are_the_exact_versions_of_the_files_first_file_first(tmp_path):
    a = pins_file(tmp_path, "# c\ntorch==2.11.0+cu130\nNumPy==2.4.6 ; python_version>'3'\n-r other.txt\nrequests>=2\n")
    b = tmp_path / "b.txt"
    b.write_text("numpy==1.0\nPillow==13.0.0  # imaging\n")
    assert inp.read_pins([a, b]) == {"torch": ("torch", "2.11.0+cu130"), "numpy": ("NumPy", "2.4.6"),
                                     "pillow": ("Pillow", "13.0.0")}


PINS = {"torch": ("torch", "2.11.0+cu130"), "numpy": ("numpy", "2.4.6"), "tinydep": ("tinydep", "1.0")}


@pytest.mark.parametrize("line, package", [("torch<2", "torch"), ("torch==2.5.1", "torch"), ("numpy<2", "numpy"),
                                           ("tinydep>=2", "tinydep"),
                                           ("torch @ https://example.com/torch.whl", "torch")])
def test_a_requirement_no_pinned_version_meets_fails_naming_the_pack_and_the_package(line, package):
    with pytest.raises(inp.PackError) as err:
        inp.check_requirements("torch-changer", ["einops", line], PINS)
    assert "pack 'torch-changer'" in str(err.value) and f"{package}==" in str(err.value)


def test_requirements_the_pins_meet_pass():
    inp.check_requirements("fine", ["torch>=2.0", "numpy", "tinydep==1.0", "gguf>=0.13.0",
                                    "torch<2 ; python_version < '3'", "git+https://example.com/x.git"], PINS)


def test_pip_conflicts_name_the_pinned_packages():
    result = subprocess.CompletedProcess([], 1, "", (
        "ERROR: Cannot install tinywrap==1.0 because these package versions have conflicting dependencies.\n"
        "The conflict is caused by:\n    tinywrap 1.0 depends on tinydep>=2\n"
        "    The user requested (constraint) tinydep==1.0\n"))
    text = inp.pip_failure("wrapper", result)
    assert "pack 'wrapper'" in text and "tinydep pinned" in text and "tinywrap 1.0 depends on tinydep>=2" in text


def test_a_changed_pin_is_named():
    with pytest.raises(inp.PackError) as err:
        inp.verify_pins("sneaky", {"torch": "2.11.0", "numpy": "2.4.6"}, {"torch": "2.5.1", "numpy": "2.4.6"},
                        "install.py")
    assert "pack 'sneaky'" in str(err.value) and "torch 2.11.0 -> 2.5.1" in str(err.value)
    inp.verify_pins("fine", {"torch": "2.11.0"}, {"torch": "2.11.0", "new": "1"}, "requirements")


# ---- git packs -----------------------------------------------------------------------------------------------

def test_a_git_pack_is_checked_out_at_exactly_its_commit_not_the_branch_head(tmp_path):
    repo, (first, second) = make_pack(tmp_path / "src", "my-pack", {"__init__.py": NODE})
    spec = inp.parse(f"file://{repo} {first}\n")[0]
    inp.install_git(spec, tmp_path / "cn" / spec.name)
    assert (tmp_path / "cn" / "my-pack" / "__init__.py").read_text() == NODE
    assert git(tmp_path / "cn" / "my-pack", "rev-parse", "HEAD") == first != second


def test_a_commit_that_is_not_in_the_repository_fails_naming_the_pack(tmp_path):
    repo, _ = make_pack(tmp_path / "src", "my-pack", {"__init__.py": NODE})
    spec = inp.parse(f"file://{repo} {'0' * 40}\n")[0]
    with pytest.raises(inp.PackError) as err:
        inp.install_git(spec, tmp_path / "cn" / spec.name)
    assert "pack 'my-pack'" in str(err.value)


# ---- registry packs ------------------------------------------------------------------------------------------

@pytest.fixture
def registry(tmp_path):
    """A fake Comfy Registry: /nodes/<id>/install?version=V -> {"downloadUrl"}, and the archives."""
    archives: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path.startswith("/nodes/"):
                node_id = self.path.split("/")[2]
                version = self.path.split("version=")[1]
                key = f"{node_id}@{version}"
                if key not in archives:
                    self.send_response(404)
                    self.end_headers()
                    return
                body = json.dumps({"downloadUrl": f"http://127.0.0.1:{self.server.server_port}/zip/{key}",
                                   "version": version}).encode()
            else:
                body = archives[self.path.split("/zip/")[1]]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", archives
    server.shutdown()


def zipped(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for rel, text in files.items():
            zf.writestr(rel, text)
    return buffer.getvalue()


def test_a_registry_pack_is_that_versions_archive(tmp_path, registry):
    url, archives = registry
    archives["reg-pack@1.2.3"] = zipped({"__init__.py": NODE, "nodes/x.py": ""})
    spec = inp.parse("reg-pack@1.2.3\n")[0]
    inp.install_registry(spec, tmp_path / "cn" / "reg-pack", url)
    assert (tmp_path / "cn" / "reg-pack" / "nodes" / "x.py").is_file()
    with pytest.raises(inp.PackError) as err:
        inp.install_registry(inp.parse("reg-pack@9.9.9\n")[0], tmp_path / "cn" / "other", url)
    assert "pack 'reg-pack'" in str(err.value) and "Comfy Registry" in str(err.value)


def test_a_registry_archive_cannot_write_outside_its_folder(tmp_path, registry):
    url, archives = registry
    archives["evil@1.0.0"] = zipped({"__init__.py": NODE, "../../escaped.py": "x"})
    with pytest.raises(inp.PackError) as err:
        inp.install_registry(inp.parse("evil@1.0.0\n")[0], tmp_path / "cn" / "evil", url)
    assert "outside its folder" in str(err.value) and not (tmp_path / "escaped.py").exists()


# ---- requirements, install.py and the record (pip into a throwaway venv, local wheels) -------------------------

def _install(tmp_path, target, list_text, pins_text="tinydep==1.0\n", allow=()):
    comfy = tmp_path / "comfy"
    comfy.mkdir(exist_ok=True)
    return inp.install(inp.parse(list_text), comfyui=comfy, python=target,
                       constraint_files=[pins_file(tmp_path, pins_text)], record=tmp_path / "record.json",
                       allow_scripts=set(allow), run_probe=False)


def test_a_packs_requirement_is_installed_into_comfyuis_venv_under_the_pins(tmp_path, target):
    repo, (first, _) = make_pack(tmp_path / "src", "needs-dep", {"__init__.py": NODE, "requirements.txt": "tinydep\n"})
    results = _install(tmp_path, target, f"file://{repo} {first}\n")
    assert inp.installed_versions(target, ["tinydep"]) == {"tinydep": "1.0"}  # 2.0 exists: the pin held
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["packs"][0] | {"classes": []} == {
        "name": "needs-dep", "line": f"file://{repo} {first}", "kind": "git", "pin": first, "url": f"file://{repo}",
        "registry_id": None, "requirements": ["tinydep"], "install_script": "none", "classes": [], "import_s": None}
    assert results[0].requirements == ["tinydep"]


def test_a_pack_that_tries_to_change_torch_fails_the_build_naming_it(tmp_path, target):
    repo, (first, _) = make_pack(tmp_path / "src", "old-torch", {"__init__.py": NODE,
                                                                  "requirements.txt": "tinydep\ntorch==2.1.0\n"})
    with pytest.raises(inp.PackError) as err:
        _install(tmp_path, target, f"file://{repo} {first}\n", "torch==2.11.0\ntinydep==1.0\n")
    assert "pack 'old-torch' wants 'torch==2.1.0'" in str(err.value) and "torch==2.11.0" in str(err.value)
    assert inp.installed_versions(target, ["tinydep"]) == {}  # refused before pip ran


def test_a_dependencys_conflict_with_a_pin_fails_naming_the_pack_and_the_package(tmp_path, target):
    repo, (first, _) = make_pack(tmp_path / "src", "wrapper", {"__init__.py": NODE, "requirements.txt": "tinywrap\n"})
    with pytest.raises(inp.PackError) as err:
        _install(tmp_path, target, f"file://{repo} {first}\n")
    assert "pack 'wrapper'" in str(err.value) and "tinydep" in str(err.value)
    assert inp.installed_versions(target, ["tinydep", "tinywrap"]) == {}


def test_install_py_runs_only_where_the_deployer_allowed_it(tmp_path, target):
    script = "open('ran.txt', 'w').write('yes')\n"
    repo, (first, _) = make_pack(tmp_path / "src", "scripted", {"__init__.py": NODE, "install.py": script})
    results = _install(tmp_path, target, f"file://{repo} {first}\n")
    assert results[0].install_script == "skipped" and not (tmp_path / "comfy/custom_nodes/scripted/ran.txt").exists()
    other = tmp_path / "second"
    other.mkdir()
    results = _install(other, target, f"file://{repo} {first}\n", allow=("scripted",))
    assert results[0].install_script == "ran" and (other / "comfy/custom_nodes/scripted/ran.txt").read_text() == "yes"
    assert inp.allowed_scripts(["a"], {"NODE_PACKS_ALLOW_INSTALL_SCRIPTS": "b, c"}) == {"a", "b", "c"}


def test_a_failing_install_py_fails_the_build_naming_the_pack(tmp_path, target):
    repo, (first, _) = make_pack(tmp_path / "src", "broken-script",
                                 {"__init__.py": NODE, "install.py": "raise SystemExit('no compiler')\n"})
    with pytest.raises(inp.PackError) as err:
        _install(tmp_path, target, f"file://{repo} {first}\n", allow=("all",))
    assert "pack 'broken-script': its install.py failed" in str(err.value) and "no compiler" in str(err.value)


def test_the_installer_runs_with_the_image_python_alone():
    """The Dockerfile runs it before the worker's code is in the image: stdlib plus `packaging` only."""
    source = (ROOT / "tools" / "install_node_packs.py").read_text()
    assert "import handler" not in source and "from handler" not in source
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "install_node_packs.py"), "--help"],
                            capture_output=True, text=True)
    assert result.returncode == 0 and "--constraints" in result.stdout
