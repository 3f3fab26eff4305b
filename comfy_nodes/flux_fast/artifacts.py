"""Compiled kernels that outlive the process: torch.compiler's cache artifacts, one file per build.

Why: compiling FLUX's two block types costs 15-25 s with an empty cache, and a serverless scale-up is a new process
in a new container, so without help every new worker pays it again. `torch.compiler.save_cache_artifacts()`
serialises what this process compiled (inductor's FX graphs with their Triton kernels, AOTAutograd entries,
autotuning results); `load_cache_artifacts()` puts them into a new process's caches, whose compile then hits them.

Where: FLUX_FAST_ARTIFACTS_DIR (start.sh: the network volume when one is mounted, else a folder of the image that
a build on a GPU machine can fill). One file per key; the key (policy.artifact_key) names everything that makes
kernels useless elsewhere: torch with its git version, Triton, CUDA, the GPU and its compute capability, Python,
ComfyUI, the compile mode and compute path, and this package's source. Inductor's caches are content-addressed,
so even a wrong file could only miss, never run a wrong kernel; the key keeps a worker from loading files it
cannot use.

A file is `MAGIC`, the payload's sha256 in hex, a newline, then the payload. One whose header or checksum does not
match, or that torch refuses, is renamed `*.rejected` and ignored: it costs a compile, never the worker. Writes go
to a temporary file renamed into place, so two workers saving the same key leave one whole file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger("flux_fast")

MAGIC = b"FLUXFAST-ARTIFACTS-1\n"
SUFFIX = ".bin"


class ArtifactStore:
    """Reads and writes the artifact file of one key in one folder."""

    def __init__(self, folder: Path, key: str):
        self.folder = Path(folder)
        self.key = key
        self.path = self.folder / f"{key}{SUFFIX}"

    def read(self) -> tuple[bytes | None, str]:
        """(payload, why) where payload is None when there is no usable file; `why` is for the log and status."""
        try:
            blob = self.path.read_bytes()
        except FileNotFoundError:
            return None, f"no artifacts for this build at {self.path}"
        except OSError as exc:
            return None, f"artifacts unreadable ({exc.__class__.__name__})"
        if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 65:
            return None, self.reject("not an artifact file")
        digest, payload = blob[len(MAGIC):len(MAGIC) + 64], blob[len(MAGIC) + 65:]
        if hashlib.sha256(payload).hexdigest().encode() != digest:
            return None, self.reject("checksum mismatch (truncated or corrupt)")
        return payload, f"{len(payload) / 2**20:.1f} MiB from {self.path}"

    def write(self, payload: bytes) -> str:
        """Store `payload` atomically; returns a sentence for the log. Never raises for I/O problems."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            header = MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n"
            fd, tmp = tempfile.mkstemp(prefix=f".{self.key}.", dir=self.folder)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(header)
                    fh.write(payload)
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            return f"artifacts not saved to {self.folder}: {exc.__class__.__name__}: {exc.strerror or exc}"
        return f"artifacts saved: {len(payload) / 2**20:.1f} MiB to {self.path}"

    def reject(self, why: str) -> str:
        """Move a bad file aside (kept for inspection, never read again) and say why."""
        try:
            os.replace(self.path, self.path.with_suffix(".rejected"))
        except OSError:
            pass
        log.warning("flux_fast: ignoring artifacts at %s: %s", self.path, why)
        return f"artifacts rejected: {why}"
