"""README.md says what the code does: every error type a caller can get, every setting the worker reads.

Why a test: the error table and the configuration table are the contract callers and operators read, and both
drifted from the code before (three error types and four variables were missing, a default was wrong).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import handler
from handler.errors import ConfigError, WorkerError

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _error_table() -> set[str]:
    section = README.split("| `details.type` | when |", 1)[1].split("\n\n", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)` \|", section, re.MULTILINE))


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_error_type_a_caller_can_get_is_in_the_readme_table():
    for module in pkgutil.iter_modules(handler.__path__):
        importlib.import_module(f"handler.{module.name}")
    codes = {cls.code for cls in _subclasses(WorkerError) if not issubclass(cls, ConfigError)}
    codes.add("internal_error")  # the job boundary's answer to anything unexpected
    listed = _error_table()
    assert codes - listed == set(), f"error types missing from README: {sorted(codes - listed)}"
    assert listed - codes == set(), f"README lists error types the code never returns: {sorted(listed - codes)}"


def test_every_variable_the_worker_reads_is_documented():
    access = re.compile(r'(?:_get\(env, |env\.get\(|num\(|environ\.get\(|environ\[)"([A-Z][A-Z0-9_]+)"')
    read = set()
    for path in sorted((ROOT / "handler").glob("*.py")):
        read |= set(access.findall(path.read_text()))
    assert {"JOB_TIMEOUT_S", "WORKFLOW_MAX_NODES", "INPUT_URL_DEADLINE_S", "HF_TOKEN_FILE"} <= read  # the pattern works
    read -= {"COMFYUI_PID", "RUNPOD_WEBHOOK_POST_OUTPUT"}  # set by start.sh / the Runpod platform, not an operator
    missing = sorted(name for name in read if f"`{name}`" not in README)
    assert missing == []
    start_sh = (ROOT / "start.sh").read_text()
    # LD_PRELOAD is the loader's and CUDA_VISIBLE_DEVICES CUDA's (the platform sets it), not ours
    for name in set(re.findall(r"\$\{([A-Z][A-Z0-9_]+):-", start_sh)) - {"LD_PRELOAD", "CUDA_VISIBLE_DEVICES"}:
        assert f"`{name}`" in README, f"start.sh reads {name}, which README does not document"


def test_the_bucket_presign_default_in_the_readme_is_the_codes():
    from handler.config import Settings

    ttl = Settings.from_env({}).bucket.presign_ttl_s
    assert re.search(rf"\| `BUCKET_PRESIGN_TTL_S` \| {ttl} \|", README)
