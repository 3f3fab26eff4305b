"""Install the custom node packs of custom_nodes.txt into a ComfyUI, at build time, and prove they load.

Run by the Dockerfile with the Python of the venv ComfyUI runs in (never at worker start):

    python tools/install_node_packs.py --list custom_nodes.txt --comfyui /comfyui \
        --constraints /tmp/torch-pins.txt --constraints requirements-comfyui.txt --constraints requirements.txt \
        --record /comfyui/custom_nodes/node_packs.json

For each line of the list, in order:

* `<git URL> <40-hex commit>`: `git fetch` of exactly that commit into `custom_nodes/<repo name>` (the checked-out
  HEAD must be the commit; submodules at the commits it records). `<registry id>@<exact version>`: that version's
  archive from the Comfy Registry (`GET <registry>/nodes/<id>/install?version=<v>` -> `downloadUrl`, the call
  comfy-cli's `registry-install` makes), unpacked into `custom_nodes/<id>`.
* The pack's requirements.txt is installed with pip into the same interpreter, under a constraints file made of
  every `name==version` of the `--constraints` files plus the installed versions of torch, torchvision, torchaudio,
  torchsde and triton. So a pack can never change them: a requirement that no pinned version satisfies fails the
  build naming the pack and the package it wanted, before pip runs; a conflict pip finds deeper (a dependency of a
  dependency) fails naming the pinned packages pip reports; and the pinned packages' installed versions are
  compared before and after each pack, so nothing that slipped through (an install script's own pip call) goes
  unnoticed.
* Its install.py runs only where the deployer allowed it (`--allow-install-script NAME`, or `all`; the
  NODE_PACKS_ALLOW_INSTALL_SCRIPTS build argument of the Dockerfile), with PIP_CONSTRAINT set to the same pins.
* Then ComfyUI's own start-up is run once on the CPU (tools/node_pack_probe.py: ComfyUI's main.py imported as a
  module, prestartup scripts and `nodes.init_extra_nodes` included, without serving) and the build fails naming
  every pack whose import failed or that registered no node class.
* The record (`--record`, JSON: each pack's name, the line that pinned it, its node classes and import time) is
  what the worker reads for `action: info` and for naming a missing pack (handler/node_packs.py).

Exit status: 0 installed and loaded (or nothing to install), 1 a pack failed (the message names it), 2 a bad list.
Stdlib only plus `packaging` (one of ComfyUI's requirements), so it runs before the worker's code is in the image.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

log = logging.getLogger("install_node_packs")

# Never changed by a pack, whatever the --constraints files say (ComfyUI-Manager protects the same family).
PROTECTED = ("torch", "torchvision", "torchaudio", "torchsde", "triton")
REGISTRY_URL = "https://api.comfy.org"
RECORD_VERSION = 1
PROBE = Path(__file__).resolve().with_name("node_pack_probe.py")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_REGISTRY_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
_EXACT_VERSION = re.compile(r"\d+(\.\d+){0,3}([.-]?(a|b|rc|alpha|beta|dev|post)\.?\d*)?")
_GIT_URL = re.compile(r"(https?|ssh|git|file)://\S+|git@[\w.-]+:\S+")
_DIR_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class PackError(Exception):
    """A pack could not be installed or loaded; the message names it."""


class PackListError(PackError):
    """custom_nodes.txt is malformed; the message names the line."""


@dataclass(frozen=True)
class PackSpec:
    """One line of custom_nodes.txt."""

    line_no: int
    line: str  # the line as written (without its comment), what the record and error hints repeat
    kind: str  # "git" | "registry"
    name: str  # the folder under custom_nodes/
    url: str = ""
    commit: str = ""
    registry_id: str = ""
    version: str = ""

    @property
    def pin(self) -> str:
        return self.commit if self.kind == "git" else self.version


@dataclass
class PackResult:
    name: str
    line: str
    kind: str
    pin: str
    url: str | None = None
    registry_id: str | None = None
    requirements: list[str] = field(default_factory=list)
    install_script: str = "none"  # none | ran | skipped (not allowed)
    classes: list[str] = field(default_factory=list)
    import_s: float | None = None


# ---- the list ----------------------------------------------------------------------------------------------

def parse(text: str, source: str = "custom_nodes.txt") -> list[PackSpec]:
    """The packs of a custom_nodes.txt; PackListError names the first bad line."""
    specs: list[PackSpec] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{source} line {number} ({line!r})"
        words = line.split()
        if len(words) == 2:
            url, commit = words
            if not _GIT_URL.fullmatch(url) or url.startswith("-"):
                raise PackListError(f"{where}: '{url}' is not a git URL (https://..., ssh://..., git@host:..., "
                                    "file://...)")
            if not _COMMIT.fullmatch(commit):
                raise PackListError(f"{where}: a git pack is pinned by its full 40-hex commit, not '{commit}' "
                                    "(a branch or tag can move)")
            spec = PackSpec(number, line, "git", git_name(url), url=url, commit=commit)
        elif len(words) == 1 and "@" in line and not _GIT_URL.fullmatch(line):
            registry_id, _, version = line.partition("@")
            if not _REGISTRY_ID.fullmatch(registry_id):
                raise PackListError(f"{where}: '{registry_id}' is not a registry id (lowercase letters, digits, "
                                    "'-', '_', '.')")
            if not _EXACT_VERSION.fullmatch(version):
                raise PackListError(f"{where}: a registry pack is pinned by an exact version such as 1.2.3, not "
                                    f"'{version}'")
            spec = PackSpec(number, line, "registry", registry_id, registry_id=registry_id, version=version)
        else:
            raise PackListError(f"{where}: expected '<git URL> <40-hex commit>' or '<registry id>@<version>'")
        if not _DIR_NAME.fullmatch(spec.name) or spec.name in (".", ".."):
            raise PackListError(f"{where}: '{spec.name}' cannot be a custom_nodes folder name")
        if spec.name.lower() in seen:
            raise PackListError(f"{where}: pack folder '{spec.name}' is already installed by line "
                                f"{seen[spec.name.lower()]}")
        seen[spec.name.lower()] = number
        specs.append(spec)
    return specs


def git_name(url: str) -> str:
    """The folder a git pack gets: the repository's name, as `git clone` would name it."""
    tail = re.split(r"[/:]", url.rstrip("/"))[-1]
    return tail[:-4] if tail.endswith(".git") else tail


# ---- pins --------------------------------------------------------------------------------------------------

def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(paths: Iterable[Path]) -> dict[str, tuple[str, str]]:
    """canonical name -> (name, version) of every `name==version` line of the files (comments, options, `-r`
    and unpinned lines are not pins). A later file does not override an earlier one's pin of the same package."""
    pins: dict[str, tuple[str, str]] = {}
    for path in paths:
        for raw in Path(path).read_text().splitlines():
            line = raw.split("#", 1)[0].split(";", 1)[0].strip()
            match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*===?\s*([^\s,]+)", line)
            if match:
                pins.setdefault(canonical(match.group(1)), (match.group(1), match.group(3)))
    return pins


def installed_versions(python: str, names: Iterable[str] | None = None) -> dict[str, str]:
    """canonical name -> installed version in `python`'s environment (all distributions when `names` is None)."""
    code = ("import importlib.metadata as m, json, re\n"
            "print(json.dumps({re.sub(r'[-_.]+', '-', d.metadata['Name']).lower(): d.version "
            "for d in m.distributions() if d.metadata['Name']}))")
    out = subprocess.run([python, "-c", code], check=True, capture_output=True, text=True, timeout=120).stdout
    found = json.loads(out)
    if names is None:
        return found
    wanted = {canonical(n) for n in names}
    return {k: v for k, v in found.items() if k in wanted}


def constraint_pins(files: Sequence[Path], python: str) -> dict[str, tuple[str, str]]:
    """The pins every pack installs under: the files' plus the installed torch family's (which win)."""
    pins = read_pins(files)
    for name, version in installed_versions(python, PROTECTED).items():
        pins[name] = (name, version)
    return pins


def write_constraints(pins: Mapping[str, tuple[str, str]], path: Path) -> Path:
    path.write_text("".join(f"{name}=={version}\n" for name, version in sorted(pins.values())))
    return path


def requirement_lines(path: Path) -> list[str]:
    """The requirement lines of a requirements.txt (options and nested files are left to pip)."""
    lines = []
    for raw in path.read_text(errors="replace").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-")):
            lines.append(line)
    return lines


def check_requirements(pack: str, lines: Iterable[str], pins: Mapping[str, tuple[str, str]]) -> None:
    """PackError naming the pack and the package when a requirement cannot be met by a pinned version."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.version import InvalidVersion, Version

    for line in lines:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue  # pip's to judge (a URL, an editable, ...)
        if req.marker is not None and not req.marker.evaluate():
            continue
        pinned = pins.get(canonical(req.name))
        if pinned is None:
            continue
        name, version = pinned
        if req.url:
            raise PackError(f"pack '{pack}' wants {req.name} from {req.url}, but the image pins {name}=={version}; "
                            "a pack may not replace a pinned package")
        try:
            ok = req.specifier.contains(Version(version), prereleases=True)
        except InvalidVersion:
            ok = True
        if not ok:
            raise PackError(f"pack '{pack}' wants {line!r}, but the image pins {name}=={version} (torch, ComfyUI's "
                            "and the worker's requirements never change); pin a version of the pack that accepts it")


# ---- installing ----------------------------------------------------------------------------------------------

def _run(command: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None,
         timeout: float = 1800) -> subprocess.CompletedProcess:
    log.debug("running %s", " ".join(command))
    return subprocess.run(list(command), cwd=cwd, env=dict(env) if env is not None else None, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def _tail(result: subprocess.CompletedProcess, lines: int = 15) -> str:
    text = (result.stdout or "") + (result.stderr or "")
    return "\n".join(text.strip().splitlines()[-lines:])


def install_git(spec: PackSpec, dest: Path) -> None:
    """Exactly `spec.commit` of `spec.url` in `dest`: a shallow fetch of the commit, else a full fetch."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    dest.mkdir(parents=True)

    def git(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = _run(["git", "-C", str(dest), *args], env=env)
        if check and result.returncode != 0:
            raise PackError(f"pack '{spec.name}' ({spec.line}): git {args[0]} failed: {_tail(result, 5)}")
        return result

    git("init", "-q")
    git("remote", "add", "origin", spec.url)
    if git("fetch", "-q", "--depth", "1", "origin", spec.commit, check=False).returncode != 0:
        git("fetch", "-q", "origin")  # servers that do not serve a commit by id: the whole history
    if git("cat-file", "-e", f"{spec.commit}^{{commit}}", check=False).returncode != 0:
        raise PackError(f"pack '{spec.name}' ({spec.line}): commit {spec.commit} is not in {spec.url}")
    git("checkout", "-q", "--detach", spec.commit)
    head = git("rev-parse", "HEAD").stdout.strip()
    if head != spec.commit:
        raise PackError(f"pack '{spec.name}': checked out {head}, not the pinned {spec.commit}")
    if (dest / ".gitmodules").is_file():
        git("submodule", "update", "--init", "--recursive")


def install_registry(spec: PackSpec, dest: Path, registry_url: str = REGISTRY_URL, timeout_s: float = 120) -> None:
    """The pinned version's archive from the Comfy Registry, unpacked into `dest`."""
    query = urllib.parse.urlencode({"version": spec.version})
    url = f"{registry_url.rstrip('/')}/nodes/{urllib.parse.quote(spec.registry_id)}/install?{query}"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            info = json.load(response)
        download = info.get("downloadUrl") if isinstance(info, dict) else None
        if not download:
            raise PackError(f"pack '{spec.name}' ({spec.line}): the registry gave no download for version "
                            f"{spec.version}")
        got = info.get("version")
        if got and got != spec.version:
            raise PackError(f"pack '{spec.name}' ({spec.line}): the registry answered version {got}, not "
                            f"{spec.version}")
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / "pack.zip"
            with urllib.request.urlopen(download, timeout=timeout_s) as response, open(archive, "wb") as out:
                shutil.copyfileobj(response, out)
            _unzip(archive, dest, spec)
    except OSError as exc:  # URLError, HTTPError, timeouts
        raise PackError(f"pack '{spec.name}' ({spec.line}): the Comfy Registry ({registry_url}) could not be "
                        f"read: {exc}") from None


def _unzip(archive: Path, dest: Path, spec: PackSpec) -> None:
    dest.mkdir(parents=True)
    root = dest.resolve()
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.infolist():
                target = (dest / member.filename).resolve()
                if not target.is_relative_to(root):
                    raise PackError(f"pack '{spec.name}': its archive has an entry outside its folder "
                                    f"({member.filename!r})")
            zf.extractall(dest)
    except zipfile.BadZipFile as exc:
        raise PackError(f"pack '{spec.name}' ({spec.line}): the registry's archive is not a zip file: {exc}") from None


def _pip(python: str) -> list[str]:
    """pip for `python`'s environment: its own, or this interpreter's pip pointed at it (pip --python)."""
    if Path(python).resolve() == Path(sys.executable).resolve():
        return [sys.executable, "-m", "pip"]
    return [sys.executable, "-m", "pip", "--python", python]


def install_requirements(spec: PackSpec, pack_dir: Path, python: str, constraints: Path,
                         pins: Mapping[str, tuple[str, str]]) -> list[str]:
    requirements = pack_dir / "requirements.txt"
    if not requirements.is_file():
        return []
    lines = requirement_lines(requirements)
    check_requirements(spec.name, lines, pins)
    if not lines:
        return []
    result = _run([*_pip(python), "install", "--disable-pip-version-check", "--no-input", "-r", str(requirements),
                   "-c", str(constraints)], env={**os.environ, "PIP_CONSTRAINT": str(constraints)})
    if result.returncode != 0:
        raise PackError(pip_failure(spec.name, result))
    return lines


def pip_failure(pack: str, result: subprocess.CompletedProcess) -> str:
    """A pip failure in one sentence that names the pack and, for a conflict, the pinned packages involved."""
    text = (result.stdout or "") + (result.stderr or "")
    pinned = sorted(set(re.findall(r"The user requested \(constraint\) ([A-Za-z0-9._-]+)", text)))
    wants = [line.strip() for line in text.splitlines() if " depends on " in line]
    if pinned or "ResolutionImpossible" in text or "conflicting dependencies" in text:
        involved = f" ({', '.join(pinned)} pinned)" if pinned else ""
        return (f"pack '{pack}': its requirements conflict with the image's pinned packages{involved}: "
                + ("; ".join(wants[:6]) or _tail(result, 8)))
    return f"pack '{pack}': pip could not install its requirements (status {result.returncode}):\n{_tail(result)}"


def verify_pins(pack: str, before: Mapping[str, str], after: Mapping[str, str], step: str) -> None:
    changed = [f"{name} {before[name]} -> {after.get(name, 'removed')}" for name in sorted(before)
               if after.get(name) != before[name]]
    if changed:
        raise PackError(f"pack '{pack}': its {step} changed pinned packages ({', '.join(changed)}); the image's "
                        "torch, ComfyUI and worker requirements may not change")


def allowed_scripts(args_allowed: Sequence[str], env: Mapping[str, str]) -> set[str]:
    names = {n.strip() for n in env.get("NODE_PACKS_ALLOW_INSTALL_SCRIPTS", "").split(",") if n.strip()}
    return names | {n.strip() for n in args_allowed if n.strip()}


def run_install_script(spec: PackSpec, pack_dir: Path, python: str, constraints: Path, allowed: set[str]) -> str:
    script = pack_dir / "install.py"
    if not script.is_file():
        return "none"
    if "all" not in allowed and spec.name not in allowed:
        log.warning("pack '%s' has an install.py; not run (allow it with --allow-install-script %s or "
                    "NODE_PACKS_ALLOW_INSTALL_SCRIPTS)", spec.name, spec.name)
        return "skipped"
    result = _run([python, str(script)], cwd=pack_dir, env={**os.environ, "PIP_CONSTRAINT": str(constraints)})
    if result.returncode != 0:
        raise PackError(f"pack '{spec.name}': its install.py failed (status {result.returncode}):\n{_tail(result)}")
    return "ran"


# ---- the load probe ----------------------------------------------------------------------------------------

def probe(comfyui: Path, python: str, names: Sequence[str], comfyui_args: Sequence[str] = (),
          custom_nodes: Path | None = None, timeout_s: float = 900) -> dict[str, dict]:
    """ComfyUI's own start-up once on the CPU: name -> {"loaded", "classes", "import_s"} for every pack.
    `custom_nodes`: a folder of packs outside ComfyUI's own custom_nodes/ (given to ComfyUI as an extra path)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "probe.json"
        if custom_nodes is not None and custom_nodes.resolve() != (comfyui / "custom_nodes").resolve():
            extra = Path(tmp) / "packs_paths.yaml"
            extra.write_text(f"node_packs:\n  custom_nodes: {json.dumps(str(custom_nodes.resolve()))}\n")
            comfyui_args = [*comfyui_args, "--extra-model-paths-config", str(extra)]
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
        result = _run([python, str(PROBE), "--out", str(out), "--", *comfyui_args], cwd=comfyui, env=env,
                      timeout=timeout_s)
        if not out.is_file():
            raise PackError(f"ComfyUI's start-up (the load probe) failed with status {result.returncode} before "
                            f"it could report the packs:\n{_tail(result, 30)}")
        report = json.loads(out.read_text())
    modules = report.get("modules", {})
    classes = report.get("classes", {})
    found = {}
    for name in names:
        module = modules.get(name)
        found[name] = {"loaded": bool(module and module.get("loaded")), "classes": sorted(classes.get(name, [])),
                       "import_s": module.get("seconds") if module else None,
                       "log": report.get("log_tail", "")}
    return found


# ---- the whole build step ----------------------------------------------------------------------------------

def install(specs: Sequence[PackSpec], *, comfyui: Path, python: str, constraint_files: Sequence[Path],
            record: Path | None, allow_scripts: set[str], registry_url: str = REGISTRY_URL,
            run_probe: bool = True, comfyui_args: Sequence[str] = (),
            custom_nodes: Path | None = None) -> list[PackResult]:
    custom_nodes = custom_nodes or comfyui / "custom_nodes"
    custom_nodes.mkdir(parents=True, exist_ok=True)
    results: list[PackResult] = []
    with tempfile.TemporaryDirectory() as tmp:
        pins = constraint_pins(constraint_files, python)
        constraints = write_constraints(pins, Path(tmp) / "constraints.txt")
        log.info("%d pack(s); %d pinned packages may not change", len(specs), len(pins))
        for spec in specs:
            started = time.monotonic()
            dest = custom_nodes / spec.name
            if dest.exists():
                raise PackError(f"pack '{spec.name}' ({spec.line}): custom_nodes/{spec.name} already exists")
            if spec.kind == "git":
                install_git(spec, dest)
            else:
                install_registry(spec, dest, registry_url)
            before = installed_versions(python, [n for n, _ in pins.values()])
            result = PackResult(spec.name, spec.line, spec.kind, spec.pin, url=spec.url or None,
                                registry_id=spec.registry_id or None)
            result.requirements = install_requirements(spec, dest, python, constraints, pins)
            verify_pins(spec.name, before, installed_versions(python, before), "requirements")
            result.install_script = run_install_script(spec, dest, python, constraints, allow_scripts)
            verify_pins(spec.name, before, installed_versions(python, before), "install.py")
            results.append(result)
            log.info("pack '%s' installed at %s in %.1f s", spec.name, spec.pin, time.monotonic() - started)
    if specs and run_probe:
        loaded = probe(comfyui, python, [s.name for s in specs], comfyui_args, custom_nodes)
        failed = [name for name, info in loaded.items() if not info["loaded"] or not info["classes"]]
        if failed:
            why = "; ".join(f"'{n}' ({'import failed' if not loaded[n]['loaded'] else 'registered no node class'})"
                            for n in failed)
            raise PackError(f"the nodes of {len(failed)} pack(s) did not load in ComfyUI: {why}\n"
                            f"{loaded[failed[0]]['log']}")
        for result in results:
            result.classes = loaded[result.name]["classes"]
            result.import_s = loaded[result.name]["import_s"]
            log.info("pack '%s': %d node classes, imported in %.2f s", result.name, len(result.classes),
                     result.import_s or 0.0)
    if record is not None:
        write_record(record, results)
    return results


def write_record(path: Path, results: Sequence[PackResult]) -> None:
    body = {"version": RECORD_VERSION, "packs": [asdict(r) for r in results]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=2) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", type=Path, required=True, help="custom_nodes.txt")
    parser.add_argument("--comfyui", type=Path, required=True, help="the ComfyUI checkout (its custom_nodes/)")
    parser.add_argument("--custom-nodes", type=Path,
                        help="install the packs here instead of <comfyui>/custom_nodes (tests: a copy of the folder)")
    parser.add_argument("--python", default=sys.executable, help="the interpreter ComfyUI runs with (default: this)")
    parser.add_argument("--constraints", type=Path, action="append", default=[],
                        help="a requirements file whose name==version pins no pack may change (repeatable)")
    parser.add_argument("--record", type=Path, help="where to write the JSON record the worker reads")
    parser.add_argument("--allow-install-script", action="append", default=[], metavar="PACK",
                        help="run this pack's install.py ('all': every pack's); also NODE_PACKS_ALLOW_INSTALL_SCRIPTS")
    parser.add_argument("--registry-url", default=os.environ.get("COMFY_REGISTRY_URL", REGISTRY_URL))
    parser.add_argument("--no-probe", action="store_true", help="skip the load check (tests only)")
    parser.add_argument("--comfyui-arg", action="append", default=[], help="an extra ComfyUI flag for the probe")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="install_node_packs: %(message)s", stream=sys.stdout)
    try:
        specs = parse(args.list.read_text(), str(args.list.name))
    except PackListError as err:
        log.error("%s", err)
        return 2
    try:
        install(specs, comfyui=args.comfyui, python=args.python, constraint_files=args.constraints,
                record=args.record, allow_scripts=allowed_scripts(args.allow_install_script, os.environ),
                registry_url=args.registry_url, run_probe=not args.no_probe, comfyui_args=args.comfyui_arg,
                custom_nodes=args.custom_nodes)
    except PackError as err:
        log.error("FAILED: %s", err)
        return 1
    if not specs:
        log.info("no packs listed in %s: nothing installed", args.list)
    return 0


if __name__ == "__main__":
    sys.exit(main())
