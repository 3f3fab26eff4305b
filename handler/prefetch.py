"""Boot-time read of the model files into the page cache, beside ComfyUI's imports.

Why: a new worker's first prompt loads ~16 GiB of weights, and ComfyUI reads them only when that prompt runs, ~6 s
after start (its imports), through memory-mapped page faults: with a cold disk the first image came 23 s later than
with the files in memory. start.sh runs this from the container's first second, while ComfyUI imports torch and its
nodes on other cores and the disk would otherwise sit idle; ComfyUI's own read then hits the page cache. Files
already cached cost a memory copy. The log line gives the disk's sequential read rate.

Which files: the entries of models.txt found in the given model folders (the image's, the network volume's), read
one after the other, smallest first: that is the order ComfyUI's loaders need them (VAE, text encoders, then the
diffusion model), and one sequential reader is what a disk serves fastest. Skipped with a log line when they would
not fit in the memory the container may use (the read would evict its own start).

Read size (`--read-mib`, start.sh's PREFETCH_READ_MIB, default 16): each read asks the disk for that many bytes at
once. On a cold disk ComfyUI's own imports (torch's libraries, page by page) queue behind them: with the page cache
dropped on an H100 machine, ComfyUI listened at 18.9 s with this read beside it, against 10.0 s warm (and 8.8 s on
an H200 machine without it). start.sh's `ionice -c 3` does nothing where the disk has no I/O scheduler (`none`,
usual for NVMe and virtual disks). Smaller reads keep fewer bytes queued ahead of ComfyUI's; whether the stream
keeps the disk's rate with them is what `bench.coldstart`'s shipped-colddisk-1mib variant measures.

    python -m handler.prefetch --models-dir /comfyui/models --models-dir /runpod-volume/models [--read-mib 16]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path
from typing import Sequence

from .model_files import DEFAULT_MANIFEST, load_manifest

log = logging.getLogger("handler.prefetch")
CHUNK = 16 * 2**20                  # the default read size
MAX_READ_MIB = 256
GIB = 2**30


def find_files(manifest: Path, models_dirs: Sequence[Path]) -> list[Path]:
    """The manifest's files that exist under one of `models_dirs` (first match wins, as in ComfyUI's search)."""
    found = []
    for entry in load_manifest(manifest):
        for models_dir in models_dirs:
            path = entry.destination(models_dir)
            if path.is_file():
                found.append(path)
                break
    return found


def memory_limit_bytes() -> int | None:
    """What this container may keep in memory: the cgroup limit where one is set, else the machine's total."""
    limits = []
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = Path(path).read_text().strip()
        except OSError:
            continue
        if raw.isdigit() and int(raw) < 2**60:
            limits.append(int(raw))
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                limits.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    return min(limits) if limits else None


def read_file(path: Path, counter: list[int], chunk: int = CHUNK) -> None:
    """Read `path` start to end through the page cache, `chunk` bytes a read; the bytes are dropped, the cache
    keeps them."""
    buffer = bytearray(chunk)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as fh:
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
        while True:
            n = fh.readinto(view)
            if not n:
                break
            counter[0] += n


def prefetch(files: Sequence[Path], limit: int | None, share: float = 0.8, chunk: int = CHUNK) -> dict[str, float]:
    """Read `files`, smallest first, `chunk` bytes a read; returns bytes, seconds and GiB/s (all 0 when skipped)."""
    total = sum(f.stat().st_size for f in files)
    if not files:
        log.info("prefetch: no model files of the manifest found; nothing to read")
        return {"bytes": 0, "seconds": 0.0, "gib_per_s": 0.0}
    if limit is not None and total > share * limit:
        log.info("prefetch: skipped: %.1f GiB of models would not fit in %.0f%% of the container's %.1f GiB",
                 total / GIB, share * 100, limit / GIB)
        return {"bytes": 0, "seconds": 0.0, "gib_per_s": 0.0}
    started = time.perf_counter()
    counter = [0]
    errors: list[str] = []
    for path in sorted(files, key=lambda f: f.stat().st_size):
        try:
            read_file(path, counter, chunk)
        except OSError as exc:
            errors.append(f"{path.name}: {exc.strerror or exc}")
    seconds = time.perf_counter() - started
    done = counter[0]
    rate = done / GIB / seconds if seconds > 0 else 0.0
    log.info("prefetch: read %d file(s), %.2f GiB in %.1f s (%.2f GiB/s, %g MiB reads)%s", len(files), done / GIB,
             seconds, rate, chunk / 2**20, f"; failed: {'; '.join(errors)}" if errors else "")
    return {"bytes": done, "seconds": round(seconds, 2), "gib_per_s": round(rate, 2)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument("--models-dir", type=Path, action="append", default=[], help="model folder (repeatable)")
    parser.add_argument("--read-mib", default=str(CHUNK // 2**20),
                        help=f"size of each read in MiB, > 0 and <= {MAX_READ_MIB} (default %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    chunk = read_size(args.read_mib)
    try:
        files = find_files(args.manifest, args.models_dir)
    except Exception as exc:  # a boot-time optimisation never stops the worker
        log.warning("prefetch: skipped: %s", exc)
        return 0
    prefetch(files, memory_limit_bytes(), chunk=chunk)
    return 0


def read_size(raw: str) -> int:
    """Bytes a read from PREFETCH_READ_MIB's text; the default, with a warning naming the value and the rule, for
    anything else (a boot-time optimisation never stops the worker)."""
    try:
        mib = float(raw)
    except ValueError:
        mib = -1.0
    if not 0 < mib <= MAX_READ_MIB:
        log.warning("prefetch: PREFETCH_READ_MIB=%r is not a number of MiB > 0 and <= %d; reading %d MiB at a time",
                    raw, MAX_READ_MIB, CHUNK // 2**20)
        return CHUNK
    return max(4096, int(mib * 2**20) // 4096 * 4096)


if __name__ == "__main__":
    sys.exit(main())
