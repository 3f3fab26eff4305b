"""Fetch and verify the model files listed in models.txt.

The worker's workflows name model files (for example
``diffusion_models/flux1-dev-fp8-e4m3fn.safetensors``); models.txt says where each
comes from on Hugging Face and what its sha256 must be. This module is the one
place that turns that manifest into files on disk: the Dockerfile bakes models
with it, and a developer uses it to fill a local models folder.

Why the care: the files are tens of gigabytes, one repo is gated behind a
license, and a truncated or swapped file only shows up much later as an obscure
load error inside ComfyUI. So every file is checked against its sha256, files
already present with the right hash are skipped, and each failure (denied
access, missing file, wrong checksum) becomes one sentence a user can act on.

Command line::

    python -m handler.model_files --models-dir DIR [--manifest models.txt]
        [--only folder,...] [--verify-only] [--token-file PATH]

The Hugging Face token comes from ``--token-file`` (a Docker BuildKit secret,
for example), else ``HF_TOKEN_FILE``, else the ``HF_TOKEN`` environment variable.
It is passed to huggingface_hub and never logged.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable, Sequence

from huggingface_hub import hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

log = logging.getLogger(__name__)

DEFAULT_MANIFEST = Path(__file__).resolve().parent.parent / "models.txt"

# ComfyUI's model folder names (folder_paths.py, v0.33.0), plus the legacy
# aliases it still accepts ("clip" for text_encoders, "unet" for diffusion_models).
COMFY_MODEL_FOLDERS = frozenset(
    {
        "audio_encoders",
        "checkpoints",
        "classifiers",
        "clip",
        "clip_vision",
        "configs",
        "controlnet",
        "diffusers",
        "diffusion_models",
        "embeddings",
        "gligen",
        "hypernetworks",
        "loras",
        "model_patches",
        "photomaker",
        "style_models",
        "text_encoders",
        "unet",
        "upscale_models",
        "vae",
        "vae_approx",
    }
)

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_REVISION_RE = re.compile(r"^[0-9a-f]{40}$")
_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_HASH_CHUNK = 8 * 1024 * 1024
_STAGING_DIR = ".model-downloads"


class ModelFilesError(Exception):
    """Base class: a model file could not be listed, fetched or verified."""


class ManifestError(ModelFilesError):
    """models.txt has a line that does not follow the format."""

    def __init__(self, manifest: str, line_no: int, message: str) -> None:
        super().__init__(f"{manifest}:{line_no}: {message}")
        self.manifest = manifest
        self.line_no = line_no


class AccessDeniedError(ModelFilesError):
    """Hugging Face refused the download (gated or private repo, bad token)."""


class RemoteFileMissingError(ModelFilesError):
    """The repo, revision or file named in models.txt does not exist."""


class LocalFileMissingError(ModelFilesError):
    """A listed file is not in the models folder (--verify-only)."""


class DownloadError(ModelFilesError):
    """The download failed for another reason (network, disk, server error)."""


class ChecksumMismatchError(ModelFilesError):
    """A file's sha256 is not the one models.txt expects."""


@dataclass(frozen=True)
class ModelFile:
    """One line of models.txt: where a model file comes from and its hash."""

    folder: str
    repo: str
    path: str
    sha256: str
    revision: str | None = None
    line_no: int = 0

    @property
    def filename(self) -> str:
        return PurePosixPath(self.path).name

    @property
    def rel_path(self) -> str:
        """Path under the models folder, as ComfyUI and the workflows see it."""
        return f"{self.folder}/{self.filename}"

    def destination(self, models_dir: Path) -> Path:
        return Path(models_dir) / self.folder / self.filename


# ---------------------------------------------------------------- manifest --


def parse_manifest(text: str, source: str = "models.txt") -> list[ModelFile]:
    """Parse manifest text; raise ManifestError naming the first bad line."""
    entries: list[ModelFile] = []
    seen: dict[str, int] = {}
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) not in (4, 5):
            raise ManifestError(
                source,
                line_no,
                f"expected 4 or 5 fields '<comfy folder> <huggingface repo> <path in repo> "
                f"<sha256> [revision]', got {len(fields)}: {line!r}",
            )
        folder, repo, path, sha = fields[:4]
        revision = fields[4] if len(fields) == 5 else None
        if folder not in COMFY_MODEL_FOLDERS:
            raise ManifestError(
                source,
                line_no,
                f"folder {folder!r} is not a ComfyUI model folder "
                f"(one of: {', '.join(sorted(COMFY_MODEL_FOLDERS))})",
            )
        if not _REPO_RE.match(repo):
            raise ManifestError(
                source, line_no, f"repo {repo!r} is not of the form 'owner/name'"
            )
        pure = PurePosixPath(path)
        if pure.is_absolute() or ".." in pure.parts or not pure.name:
            raise ManifestError(
                source, line_no, f"path {path!r} must be a relative path inside the repo"
            )
        if not _SHA256_RE.match(sha):
            raise ManifestError(
                source,
                line_no,
                f"sha256 {sha!r} must be 64 lowercase hexadecimal characters",
            )
        if revision is not None and not _REVISION_RE.match(revision):
            raise ManifestError(
                source,
                line_no,
                f"revision {revision!r} must be a full 40-character commit hash",
            )
        entry = ModelFile(folder, repo, path, sha, revision, line_no)
        if entry.rel_path in seen:
            raise ManifestError(
                source,
                line_no,
                f"{entry.rel_path} is already listed on line {seen[entry.rel_path]}",
            )
        seen[entry.rel_path] = line_no
        entries.append(entry)
    return entries


def load_manifest(path: Path | str = DEFAULT_MANIFEST) -> list[ModelFile]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelFilesError(f"cannot read manifest {path}: {exc.strerror or exc}") from exc
    return parse_manifest(text, source=str(path))


def select(entries: Iterable[ModelFile], only: Sequence[str] | None) -> list[ModelFile]:
    """Keep the entries whose folder is in ``only`` (all when ``only`` is empty)."""
    entries = list(entries)
    if not only:
        return entries
    unknown = sorted(set(only) - COMFY_MODEL_FOLDERS)
    if unknown:
        raise ModelFilesError(
            f"--only names unknown folder(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(COMFY_MODEL_FOLDERS))}"
        )
    return [e for e in entries if e.folder in set(only)]


# ----------------------------------------------------------------- hashing --


def sha256_file(path: Path | str) -> str:
    """Hash a file in chunks, so a 12 GB model never sits in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def is_present(entry: ModelFile, models_dir: Path) -> bool:
    """True when the file exists at its destination with the expected hash."""
    dest = entry.destination(models_dir)
    return dest.is_file() and sha256_file(dest) == entry.sha256


# ------------------------------------------------------------------- token --


def resolve_token(token_file: Path | str | None = None) -> str | None:
    """The Hugging Face token: token file, then HF_TOKEN_FILE, then HF_TOKEN.

    A missing token file is not an error (a build without the secret still
    fetches the public files); the gated file then fails with a clear message.
    """
    candidates = [token_file, os.environ.get("HF_TOKEN_FILE")]
    for candidate in candidates:
        if not candidate:
            continue
        path = Path(candidate)
        if path.is_file():
            token = path.read_text(encoding="utf-8").strip()
            if token:
                log.info("using the Hugging Face token from file %s", path)
                return token
            log.warning("token file %s is empty", path)
        else:
            log.info("no token file at %s", path)
    token = os.environ.get("HF_TOKEN", "").strip()
    if token:
        log.info("using the Hugging Face token from HF_TOKEN")
        return token
    return None


# ---------------------------------------------------------------- download --


def _status_code(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _translate(entry: ModelFile, exc: Exception) -> ModelFilesError:
    """Turn a huggingface_hub error into one sentence a user can act on."""
    where = f"{entry.repo}/{entry.path}" + (f"@{entry.revision}" if entry.revision else "")
    status = _status_code(exc)
    license_hint = (
        f"accept the license at https://huggingface.co/{entry.repo} with your "
        f"Hugging Face account and set HF_TOKEN (or pass --token-file) to a token "
        f"of that account"
    )
    if isinstance(exc, GatedRepoError):
        return AccessDeniedError(
            f"access to {where} was denied (HTTP {status or 'error'}): {license_hint}"
        )
    if isinstance(exc, RevisionNotFoundError):
        return RemoteFileMissingError(
            f"revision {entry.revision} does not exist in {entry.repo} "
            f"(models.txt line {entry.line_no})"
        )
    if isinstance(exc, RepositoryNotFoundError):
        # The Hub answers 401 RepoNotFound both for a missing repo and, without a token,
        # for a private one; a gated repo gets GatedRepoError (handled above).
        return RemoteFileMissingError(
            f"repository {entry.repo} was not found or is private "
            f"(models.txt line {entry.line_no}); if it is private or gated, {license_hint}"
        )
    if status in (401, 403):
        return AccessDeniedError(
            f"access to {where} was denied (HTTP {status}): {license_hint}"
        )
    if isinstance(exc, LocalEntryNotFoundError):
        return DownloadError(
            f"could not reach Hugging Face to download {where}: {exc}"
        )
    if isinstance(exc, EntryNotFoundError) or status == 404:
        return RemoteFileMissingError(
            f"file {entry.path} does not exist in {entry.repo}"
            + (f" at revision {entry.revision}" if entry.revision else "")
            + f" (models.txt line {entry.line_no})"
        )
    if isinstance(exc, HfHubHTTPError):
        return DownloadError(f"downloading {where} failed (HTTP {status}): {exc}")
    return DownloadError(f"downloading {where} failed: {exc}")


def fetch(
    entry: ModelFile,
    models_dir: Path,
    token: str | None = None,
    endpoint: str | None = None,
) -> Path:
    """Download one file into place, verified; return its destination.

    The file is downloaded into a staging folder on the same filesystem and only
    renamed to its final name once its sha256 matches, so a failed or partial
    download never leaves a file that ComfyUI would try to load. ``endpoint``
    overrides the Hub URL (default: huggingface_hub's, which honours HF_ENDPOINT).
    """
    models_dir = Path(models_dir)
    dest = entry.destination(models_dir)
    staging = models_dir / _STAGING_DIR / entry.repo.replace("/", "--")
    staging.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s from %s%s", entry.rel_path, entry.repo,
             f"@{entry.revision[:7]}" if entry.revision else "")
    try:
        downloaded = hf_hub_download(
            repo_id=entry.repo,
            filename=entry.path,
            revision=entry.revision,
            local_dir=staging,
            token=token,
            endpoint=endpoint,
        )
    except (HfHubHTTPError, EntryNotFoundError, OSError, ValueError) as exc:
        raise _translate(entry, exc) from exc

    downloaded = Path(downloaded)
    actual = sha256_file(downloaded)
    if actual != entry.sha256:
        downloaded.unlink(missing_ok=True)
        raise ChecksumMismatchError(
            f"{entry.rel_path} from {entry.repo}/{entry.path} has sha256 {actual}, "
            f"expected {entry.sha256} (models.txt line {entry.line_no}); "
            f"the downloaded file was deleted"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(downloaded, dest)
    log.info("verified %s (sha256 %s)", entry.rel_path, actual[:12])
    return dest


def _cleanup_staging(models_dir: Path) -> None:
    shutil.rmtree(Path(models_dir) / _STAGING_DIR, ignore_errors=True)


def ensure(
    entries: Iterable[ModelFile],
    models_dir: Path | str,
    token: str | None = None,
    endpoint: str | None = None,
) -> list[ModelFilesError]:
    """Make every entry present and verified; return the failures (empty: all good).

    A present file with a wrong hash is deleted and downloaded again. Every file
    is attempted even when an earlier one fails, so one run reports all problems.
    """
    models_dir = Path(models_dir)
    failures: list[ModelFilesError] = []
    try:
        for entry in entries:
            dest = entry.destination(models_dir)
            if dest.is_file():
                actual = sha256_file(dest)
                if actual == entry.sha256:
                    log.info("ok %s (already present, sha256 matches)", entry.rel_path)
                    continue
                log.warning(
                    "%s has sha256 %s, expected %s: deleting it and downloading again",
                    entry.rel_path, actual, entry.sha256,
                )
                dest.unlink()
            try:
                fetch(entry, models_dir, token, endpoint)
            except ModelFilesError as exc:
                log.error("%s", exc)
                failures.append(exc)
    finally:
        _cleanup_staging(models_dir)
    return failures


def verify(entries: Iterable[ModelFile], models_dir: Path | str) -> list[ModelFilesError]:
    """Check every entry is present with the right hash; change nothing."""
    models_dir = Path(models_dir)
    failures: list[ModelFilesError] = []
    for entry in entries:
        dest = entry.destination(models_dir)
        if not dest.is_file():
            failures.append(LocalFileMissingError(f"{entry.rel_path} is missing from {models_dir}"))
            log.error("%s", failures[-1])
            continue
        actual = sha256_file(dest)
        if actual != entry.sha256:
            failures.append(
                ChecksumMismatchError(
                    f"{dest} has sha256 {actual}, expected {entry.sha256} "
                    f"(models.txt line {entry.line_no})"
                )
            )
            log.error("%s", failures[-1])
        else:
            log.info("ok %s", entry.rel_path)
    return failures


# --------------------------------------------------------------------- CLI --


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m handler.model_files",
        description="Download the model files listed in models.txt and verify their sha256.",
    )
    parser.add_argument("--models-dir", required=True, type=Path,
                        help="ComfyUI models folder (files land in DIR/<folder>/<name>)")
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST,
                        help="manifest file (default: the repo's models.txt)")
    parser.add_argument("--only", default="",
                        help="comma-separated folders to handle, e.g. text_encoders,vae")
    parser.add_argument("--verify-only", action="store_true",
                        help="only check presence and sha256; download nothing")
    parser.add_argument("--token-file", type=Path, default=None,
                        help="file holding the Hugging Face token (else HF_TOKEN_FILE, HF_TOKEN)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: 0 all files verified, 1 a file failed, 2 bad manifest/arguments."""
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    only = [f.strip() for f in args.only.split(",") if f.strip()]
    try:
        entries = select(load_manifest(args.manifest), only)
    except ModelFilesError as exc:
        log.error("%s", exc)
        return 2
    if not entries:
        log.error("no entries in %s match --only %s", args.manifest, args.only)
        return 2
    if args.verify_only:
        failures = verify(entries, args.models_dir)
    else:
        failures = ensure(entries, args.models_dir, resolve_token(args.token_file))
    if failures:
        log.error("%d of %d model file(s) failed", len(failures), len(entries))
        return 1
    log.info("all %d model file(s) present and verified in %s", len(entries), args.models_dir)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
