"""One job's files in ComfyUI's folders: a subfolder of its own, and nothing of it left on disk afterwards.

Why: ComfyUI's input/, output/ and temp/ folders are shared by every job the worker runs. Without care, an
upload overwrites another job's file of the same name and is never deleted, a later caller's
`LoadImage("private.png")` gets an earlier caller's image, and previews, the outputs of failed jobs and files of
nodes the handler does not collect pile up until the disk is full. So each job gets a folder name of its own
(`<job id>-<random>`: a retried job id never meets its earlier attempt's files): its uploads go to
input/<folder>/, its save nodes' prefixes are rewritten to output/<folder>/ (workflow_policy.py), and when the
job ends, success or failure, `clean()` deletes those folders and every file that appeared in output/ and temp/
while it ran (previews, or a custom node writing outside its prefix). The worker runs one job at a time, so
what appeared during the job is the job's.

The folders must be on this machine (start.sh runs ComfyUI beside the handler); a folder that is not configured
or does not exist is skipped. A prompt stopped at the job deadline may still write for a moment after `clean`:
the worker cleans such a job's folders again after the next job (`clean_folders`); a file it writes outside its
folders by then is not found.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
from pathlib import Path

log = logging.getLogger(__name__)


def folder_name(job_id: str) -> str:
    """A folder name for this job: its id made safe for paths, plus randomness so attempts never share it."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", job_id)[:64] or "job"
    return f"{safe}-{secrets.token_hex(4)}"


class JobFiles:
    def __init__(self, job_id: str, *, input_dir: Path | None, output_dir: Path | None, temp_dir: Path | None):
        self.folder = folder_name(job_id)
        self.input_dir, self.output_dir, self.temp_dir = input_dir, output_dir, temp_dir
        # Files already in output/ and temp/ before the job: never the job's to delete.
        self._before = {d: _entries(d) for d in (output_dir, temp_dir) if d is not None}

    def clean(self) -> int:
        """Delete the job's folders and the files that appeared in output/ and temp/ since it started; return
        how many files were removed. Never raises: a file that cannot be deleted is logged."""
        removed = self.clean_folders()
        for root, (before, dirs_before) in self._before.items():
            new = _entries(root)[0] - before
            for rel in sorted(new):
                try:
                    (root / rel).unlink()
                    removed += 1
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    log.warning("could not delete %s: %s", root / rel, exc)
            _remove_empty_new_dirs(root, {Path(r).parent for r in new}, dirs_before)
        return removed

    def clean_folders(self) -> int:
        """Delete the job's own folders only (again, for a prompt interrupted at its deadline that may have
        written there after `clean`); return how many files were removed."""
        return sum(_remove_tree(root / self.folder) for root in (self.input_dir, self.output_dir, self.temp_dir)
                   if root is not None)


def _entries(root: Path) -> tuple[set[str], set[str]]:
    """Relative paths of every file and every folder under root (symlinks listed, not followed)."""
    files: set[str] = set()
    dirs: set[str] = set()
    if not root.is_dir():
        return files, dirs
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        for name in filenames:
            files.add(name if rel_dir == "." else os.path.join(rel_dir, name))
        for name in dirnames:
            dirs.add(name if rel_dir == "." else os.path.join(rel_dir, name))
    return files, dirs


def _remove_tree(path: Path) -> int:
    if path.is_symlink() or not path.exists():
        return 0
    count = len(_entries(path)[0])
    shutil.rmtree(path, onerror=lambda _f, p, exc: log.warning("could not delete %s: %s", p, exc[1]))
    return count


def _remove_empty_new_dirs(root: Path, dirs: set[Path], dirs_before: set[str]) -> None:
    """Remove the folders the job created that are empty now, deepest first; folders that were there stay."""
    candidates: set[Path] = set()
    for rel in dirs:
        while str(rel) not in ("", ".") and str(rel) not in dirs_before:
            candidates.add(rel)
            rel = rel.parent
    for rel in sorted(candidates, key=lambda p: len(p.parts), reverse=True):
        try:
            (root / rel).rmdir()
        except OSError:
            pass  # not empty (files that were there before, or of someone else): keep it
