"""LoRA files downloaded by URL, kept in a folder ComfyUI's LoRA loaders see, bounded in bytes.

Why a cache: the same LoRA URL comes back request after request (a style, a product), and a LoRA is 20-600 MB;
downloading it every time would cost seconds per job. The folder is on the network volume when one is mounted,
so every worker of the endpoint shares it, and inside a `loras` folder ComfyUI searches, so the name given to
LoraLoaderModelOnly is simply `<subfolder>/<file>`.

* Names: `url-<sha256 of the URL>.safetensors`, always. A file is private to the URL that filled it: a caller
  reaches it only by sending that URL (loras.py refuses cache names given as `name`, the workflow policy refuses
  them in loader nodes, and neither refusals nor `action: info` list them). A `sha256` given with the URL is
  checked against the digest stored beside the file at download (`<name>.sha256`), never used to find a file:
  a digest is not a secret, a URL may be (signed URLs, private hosts).
* Two workers (or two jobs) fetching the same file: each downloads to its own temporary name (`.partial`, which
  ComfyUI never lists) and renames it into place (atomic on one file system), so no reader sees half a file and
  the last complete writer wins with identical bytes.
* Bound: after each download the least recently used files (by mtime; a hit touches its file) are deleted until
  the folder, downloads in progress (`.partial`) included, fits LORA_CACHE_MAX_BYTES. The file just written is
  never evicted. A download may write no more than the bound leaves after the downloads already in progress, and
  no more than the job's own allowance (`max_bytes`: LORA_JOB_MAX_BYTES less what the job already fetched), so
  one request cannot flush the shared cache or grow it past its bound. A file evicted by another worker
  between this job's check and ComfyUI's load fails that job with ComfyUI's own "not found" (rare; not retried).
* A file is checked (safetensors header, FLUX keys, sha256) before it is renamed into place, so the cache never
  holds a file that was refused.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from .errors import InputError
from .lora_files import LoraFileError, check_file
from .url_fetch import AddressPolicy, FetchLimits, Resolver, fetch_to_file, system_resolver

log = logging.getLogger(__name__)

SUFFIX = ".safetensors"
_PARTIAL = ".partial"
_STALE_PARTIAL_S = 3600.0  # a temporary file this old belongs to a worker that died mid-download


_DIGEST = ".sha256"


@dataclass(frozen=True)
class CachedLora:
    path: Path
    hit: bool
    downloaded: int = 0  # bytes this call fetched


def cache_name(url: str, sha256: str | None = None) -> str:
    """The file a URL fills; `sha256` plays no part (see the module docstring)."""
    return f"url-{hashlib.sha256(url.encode('utf-8')).hexdigest()}{SUFFIX}"


class LoraCache:
    def __init__(self, folder: Path, max_bytes: int, limits: FetchLimits, *, https_only: bool = True,
                 policy: AddressPolicy = AddressPolicy(), resolver: Resolver = system_resolver,
                 clock: Callable[[], float] = time.time):
        self.folder = folder
        self.max_bytes = max_bytes
        self.limits = limits
        self.https_only = https_only
        self.policy = policy
        self.resolver = resolver
        self.clock = clock

    def get(self, url: str, *, field: str, sha256: str | None = None, deadline_s: float | None = None,
            max_bytes: int | None = None, logger: logging.Logger | logging.LoggerAdapter = log) -> CachedLora:
        """The cached file for `url` (touched), else download, check and store it. Raises InputError naming
        `field` for every problem of the caller's URL or file. `max_bytes`: what this job may still download.
        `logger` carries the job id."""
        path = self.folder / cache_name(url)
        if path.is_file():
            if sha256 and _stored_digest(path) != sha256:
                raise InputError(field, url, f"must download a file whose sha256 is {sha256} (the file this URL "
                                 "gave has another)")
            try:
                os.utime(path)  # least recently *used*: a hit is a use
            except OSError:
                pass
            logger.info("LoRA %s: cache hit (%s)", field, path.name)
            return CachedLora(path, hit=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        limits = self.limits
        if deadline_s is not None and deadline_s < limits.deadline_s:
            limits = replace(limits, deadline_s=deadline_s)
        room = self.max_bytes - self._partial_bytes()  # downloads in progress (this worker's or others') count
        cap = min(limits.max_bytes, room, max_bytes if max_bytes is not None else limits.max_bytes)
        if cap <= 0:
            why = ("this job's LoRA downloads already reached LORA_JOB_MAX_BYTES" if max_bytes is not None and max_bytes <= 0
                   else "the LoRA cache is full of downloads in progress; send the job again shortly")
            raise InputError(field, url, f"cannot be downloaded now: {why}")
        if cap < limits.max_bytes:  # a file bigger than the whole cache (or the job's allowance) is never kept
            limits = replace(limits, max_bytes=cap)
        tmp = self.folder / f".{path.stem}.{os.getpid()}.{secrets.token_hex(4)}{_PARTIAL}"
        digest = hashlib.sha256()
        written = [0]
        try:
            with tmp.open("wb") as handle:
                def sink(chunk: bytes) -> None:
                    digest.update(chunk)
                    handle.write(chunk)
                    written[0] += len(chunk)

                fetch_to_file(url, field=field, sink=sink, limits=limits, policy=self.policy, resolver=self.resolver,
                              https_only=self.https_only, what="LoRA")
            if sha256 and digest.hexdigest() != sha256:
                raise InputError(field, url, f"must download a file whose sha256 is {sha256} (got {digest.hexdigest()})")
            try:
                check = check_file(tmp)
            except LoraFileError as exc:
                raise InputError(field, url, f"must be a FLUX LoRA in safetensors format: the downloaded file {exc}") from None
            _digest_path(path).write_text(digest.hexdigest())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        logger.info("LoRA %s: stored %s (%d of %d keys apply to the DiT)", field, path.name, check.matched, check.tensors)
        self.evict(keep=path, logger=logger)
        return CachedLora(path, hit=False, downloaded=written[0])

    def _partial_bytes(self) -> int:
        """Bytes of downloads in progress (fresh `.partial` files; stale ones are a dead worker's)."""
        now, total = self.clock(), 0
        try:
            entries = list(self.folder.iterdir())
        except OSError:
            return 0
        for entry in entries:
            if entry.name.endswith(_PARTIAL):
                try:
                    st = entry.stat()
                except OSError:
                    continue
                if now - st.st_mtime <= _STALE_PARTIAL_S:
                    total += st.st_size
        return total

    def evict(self, keep: Path | None = None, logger: logging.Logger | logging.LoggerAdapter = log) -> list[str]:
        """Delete least recently used files until the folder fits max_bytes; also stale temporary files."""
        now = self.clock()
        files = []
        partial = 0
        for entry in self.folder.iterdir():
            try:
                st = entry.stat()
            except OSError:
                continue
            if entry.name.endswith(_PARTIAL):
                if now - st.st_mtime > _STALE_PARTIAL_S:
                    entry.unlink(missing_ok=True)
                else:
                    partial += st.st_size  # in progress: not ours to delete, but it takes room
                continue
            if entry.name.endswith(_DIGEST) and not entry.with_suffix("").exists():
                entry.unlink(missing_ok=True)  # the digest of a file evicted by another worker
                continue
            if entry.is_file() and entry.name.endswith(SUFFIX):
                files.append((st.st_mtime, entry, st.st_size))
        total = partial + sum(size for _, _, size in files)
        removed = []
        for _mtime, entry, size in sorted(files, key=lambda f: f[0]):
            if total <= self.max_bytes:
                break
            if keep is not None and entry == keep:
                continue
            try:
                entry.unlink()
            except FileNotFoundError:  # another worker evicted it first
                pass
            _digest_path(entry).unlink(missing_ok=True)
            total -= size
            removed.append(entry.name)
        if removed:
            logger.info("LoRA cache: evicted %d least recently used file(s) to stay within %d bytes", len(removed),
                     self.max_bytes)
        return removed


def _digest_path(path: Path) -> Path:
    return path.with_name(path.name + _DIGEST)


def _stored_digest(path: Path) -> str | None:
    try:
        return _digest_path(path).read_text().strip()
    except OSError:
        return None
