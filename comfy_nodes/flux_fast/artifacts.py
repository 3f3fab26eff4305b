"""Compiled FLUX blocks on disk: which folders a worker loads them from, and why it may trust what it loads.

A compiled artifact is code: an AOTInductor package is a shared library that the serving process loads and runs.
Whoever can write a folder the worker loads from can run code in every worker that loads it. So a worker loads
only what its own deployment built:

* the **baked** folder (FLUX_FAST_BAKED_ARTIFACTS_DIR; start.sh: `<repo>/compile-artifacts`, part of the image): as
  trusted as the image's code, read only. Checksums guard against a damaged file, not against its author.
* the **shared** folder (FLUX_FAST_ARTIFACTS_DIR; start.sh: the network volume when one is mounted), where the
  first worker of a GPU model publishes what it built for every later one. Anyone with access to the volume can
  write there, so a manifest is loaded only if it carries an HMAC-SHA256 made with FLUX_FAST_ARTIFACTS_SECRET
  (a Runpod secret of this endpoint; never in the image or a log). Without the secret the shared folder is neither
  read nor written: each worker builds for itself.
* a worker's own builds, from a private temporary folder (aot_build.py's output), before they are published.

Layout of a folder: `<key>.json`, the manifest `{"format", "key", "lists": {list: {"file", "sha256", "bytes",
"inputs", "weights"}}, "hmac"}`, and one package per block list named by its content (`<key>.<sha256[:16]>.pt2`),
so a writer never changes a file a reader may be reading. Packages are written first, each to a temporary name
renamed into place; the manifest last, the same way: two workers publishing the same key at once leave one whole manifest whose
packages exist. A manifest whose signature, checksum or format is wrong is renamed `*.rejected` and never read
again; a package that loads but computes wrong (compiled_blocks.py checks every package against the eager block)
is set aside the same way. Neither is ever fatal: the worker serves eager and builds again. A build that fails is
noted, signed, as `<key>.failed.json` in the shared folder, so the endpoint's next workers serve eager without
building the same key again for FAILED_BUILD_RETRY_S (a failure is a property of the key: its GPU, torch build and
source); deleting the note retries at once. While a worker loads packages from the shared folder it leaves a signed
`<key>.loading.<id>.json` marker and removes it after; a marker that outlived LOAD_GRACE_S means a worker died in the
load, so the next worker sets those packages aside and notes the failure instead of crashing in turn.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("flux_fast")

FORMAT = 3
MANIFEST = ".json"
FAILED = ".failed.json"
FAILED_BUILD_RETRY_S = 6 * 3600   # how long a failed build stops other workers from building the same key
LOADING = ".loading."
LOAD_GRACE_S = 60.0               # a load takes seconds; a marker older than this belongs to a worker that died in it


@dataclass(frozen=True)
class Package:
    """One block list's verified package: its bytes (loaded from memory, so what was checked is what runs)."""

    list_name: str
    data: bytes
    inputs: list[dict[str, Any]]
    weights: tuple[str, ...] = ()       # the block's parameters the program takes after `inputs`, in order


def _canonical(manifest: dict[str, Any]) -> bytes:
    body = {k: v for k, v in manifest.items() if k != "hmac"}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def sign(manifest: dict[str, Any], secret: bytes) -> str:
    return hmac.new(secret, _canonical(manifest), hashlib.sha256).hexdigest()


class ArtifactFolder:
    """One folder of manifests and packages. `trusted` folders need no signature; others need `secret`."""

    def __init__(self, folder: Path, *, trusted: bool, secret: bytes | None = None, label: str = ""):
        self.folder = Path(folder)
        self.trusted = trusted
        self.secret = secret or None
        self.label = label or ("baked" if trusted else "shared")

    @property
    def usable(self) -> bool:
        return self.trusted or self.secret is not None

    def manifest_path(self, key: str) -> Path:
        return self.folder / f"{key}{MANIFEST}"

    # ---- reading ------------------------------------------------------------------------------------------
    def read(self, key: str) -> tuple[dict[str, Package] | None, str]:
        """({list: Package}, why) or (None, why); `why` is one sentence for the log and the status route."""
        if not self.usable:
            return None, f"{self.label} folder not used: FLUX_FAST_ARTIFACTS_SECRET is unset"
        path = self.manifest_path(key)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None, f"no artifacts for this build in the {self.label} folder"
        except OSError as exc:
            return None, f"{self.label} artifacts unreadable ({exc.__class__.__name__})"
        try:
            manifest = json.loads(raw)
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or manifest.get("key") != key:
                raise ValueError("not a manifest of this format and key")
            lists = manifest["lists"]
            if not isinstance(lists, dict) or not lists:
                raise ValueError("no block lists")
        except (ValueError, KeyError, TypeError) as exc:
            return None, self.reject(path, f"unreadable manifest ({exc})")
        if not self.trusted:
            given = manifest.get("hmac")
            if not isinstance(given, str) or not hmac.compare_digest(given, sign(manifest, self.secret)):
                return None, self.reject(path, "signature does not match FLUX_FAST_ARTIFACTS_SECRET")
        packages = {}
        for name, entry in lists.items():
            try:
                file = self.folder / Path(str(entry["file"])).name     # a name, never a path elsewhere
                data = file.read_bytes()
            except (OSError, KeyError, TypeError) as exc:
                return None, self.reject(path, f"package of {name} unreadable ({exc.__class__.__name__})")
            if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
                return None, self.reject(path, f"package of {name}: checksum mismatch")
            packages[name] = Package(name, data, list(entry.get("inputs") or []), tuple(entry.get("weights") or ()))
        size = sum(len(p.data) for p in packages.values()) / 2**20
        return packages, f"{size:.1f} MiB from the {self.label} folder"

    def reject(self, path: Path, why: str) -> str:
        """Set a bad manifest aside (kept for inspection, never read again) and say why."""
        try:
            os.replace(path, path.with_name(path.name + ".rejected"))
        except OSError:
            pass
        log.warning("flux_fast: ignoring artifacts %s: %s", path.name, why)
        return f"{self.label} artifacts rejected: {why}"

    def reject_key(self, key: str, why: str) -> str:
        return self.reject(self.manifest_path(key), why)

    def failed_path(self, key: str) -> Path:
        return self.folder / f"{key}{FAILED}"

    def recent_failure(self, key: str, now: float) -> str | None:
        """A sentence if a worker of this deployment failed to build `key` less than FAILED_BUILD_RETRY_S ago.

        Why: a build that fails does so for its key's software and hardware (a package that crashes on load, an
        export torch cannot do), so every new worker of the endpoint would spend a minute of CPU and GPU memory
        failing again. Signed like a manifest: an unsigned note would let anyone with the volume switch the fast
        path off."""
        path = self.failed_path(key)
        note = self._read_note(path, key, "note of a failed build")
        if note is None or not 0 <= now - note["at"] < FAILED_BUILD_RETRY_S:
            return None
        return (f"an earlier worker's build of these blocks failed {(now - note['at']) / 60:.0f} min ago "
                f"({str(note.get('reason'))[:300]}); not built again before {FAILED_BUILD_RETRY_S // 3600} h have "
                f"passed or {path.name} is deleted")

    def record_failure(self, key: str, reason: str, now: float) -> None:
        """Tell the endpoint's other workers that building `key` failed (shared, signed folders only)."""
        try:
            self._write_note(self.failed_path(key), key, now, reason=reason[:1000])
        except OSError as exc:
            log.warning("flux_fast: could not record the failed build in the %s folder: %s", self.label, exc)

    def mark_loading(self, key: str, now: float) -> Path | None:
        """A signed marker that this worker is loading `key`'s packages; the caller removes it when the load is over.

        Why: the build's child loads and checks every package before it is published, but a package that still
        crashed a serving process would crash every worker that loads it after a restart: a crash loop across the
        endpoint. A marker left behind (older than LOAD_GRACE_S) says a worker died while loading; the next one
        sets the packages aside instead (died_loading)."""
        if not self.manifest_path(key).exists():
            return None
        path = self.folder / f"{key}{LOADING}{os.getpid()}-{os.urandom(4).hex()}.json"
        try:
            return path if self._write_note(path, key, now) else None
        except OSError:
            return None

    def died_loading(self, key: str, now: float) -> str | None:
        """A sentence if a worker of this deployment died while loading `key`'s packages (see mark_loading)."""
        if self.trusted or self.secret is None:
            return None
        for path in sorted(self.folder.glob(f"{key}{LOADING}*.json")):
            note = self._read_note(path, key, "loading marker")
            if note is not None and now - note["at"] >= LOAD_GRACE_S:
                path.unlink(missing_ok=True)
                return (f"a worker died while loading these packages {(now - note['at']) / 60:.0f} min ago (it left "
                        f"{path.name}); set aside so that no worker loads them again")
        return None

    # ---- signed notes (failed builds, loading markers): shared folders with the secret only ----------------
    def _write_note(self, path: Path, key: str, now: float, **fields: Any) -> bool:
        """Write a signed note; False where this folder takes none (baked, or no secret). OSError propagates."""
        if self.trusted or self.secret is None:
            return False
        note: dict[str, Any] = {"format": FORMAT, "key": key, "at": now, **fields}
        note["hmac"] = sign(note, self.secret)
        self.folder.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, json.dumps(note, indent=1).encode())
        return True

    def _read_note(self, path: Path, key: str, what: str) -> dict[str, Any] | None:
        """A note this endpoint signed for `key`, its "at" a float; None if absent, unreadable or foreign (then set
        aside as *.rejected, so it is judged once)."""
        if self.trusted or self.secret is None:
            return None
        try:
            note = json.loads(path.read_bytes())
            valid = (note.get("format") == FORMAT and note.get("key") == key and isinstance(note.get("hmac"), str)
                     and hmac.compare_digest(note["hmac"], sign(note, self.secret)))
            note["at"] = float(note["at"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            valid = False
        if not valid:
            self.reject(path, f"unsigned or damaged {what}")
            return None
        return note

    # ---- writing ------------------------------------------------------------------------------------------
    def write(self, key: str, packages: dict[str, Package]) -> str:
        """Publish `packages` under `key`; returns a sentence for the log. Never raises for I/O problems."""
        if not self.usable:
            return f"not published to the {self.label} folder: FLUX_FAST_ARTIFACTS_SECRET is unset"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            lists = {}
            for name, package in packages.items():
                digest = hashlib.sha256(package.data).hexdigest()
                file = f"{key}.{digest[:16]}.pt2"
                if not (self.folder / file).exists():
                    _atomic_write(self.folder / file, package.data)
                lists[name] = {"file": file, "sha256": digest, "bytes": len(package.data), "inputs": package.inputs,
                               "weights": list(package.weights)}
            manifest: dict[str, Any] = {"format": FORMAT, "key": key, "lists": lists}
            if not self.trusted:
                manifest["hmac"] = sign(manifest, self.secret)
            _atomic_write(self.manifest_path(key), json.dumps(manifest, indent=1).encode())
        except OSError as exc:
            why = f"{exc.__class__.__name__}: {exc.strerror or exc}"
            return f"artifacts not published to the {self.label} folder: {why}"
        size = sum(len(p.data) for p in packages.values()) / 2**20
        return f"artifacts published: {size:.1f} MiB to the {self.label} folder"


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def folders(env: dict[str, str] | os._Environ) -> list[ArtifactFolder]:
    """The folders this worker loads from, in order: baked (trusted), then shared (signed)."""
    from .policy import ENV_ARTIFACTS, ENV_BAKED_ARTIFACTS, ENV_ARTIFACTS_SECRET

    out = []
    baked = env.get(ENV_BAKED_ARTIFACTS, "").strip()
    if baked:
        out.append(ArtifactFolder(Path(baked), trusted=True))
    shared = env.get(ENV_ARTIFACTS, "").strip()
    if shared:
        secret = env.get(ENV_ARTIFACTS_SECRET, "")
        out.append(ArtifactFolder(Path(shared), trusted=False, secret=secret.encode() if secret else None))
    return out
