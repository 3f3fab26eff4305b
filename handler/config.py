"""The worker's configuration: one typed object, read once from environment variables at start.

Every variable is documented in README.md ("Configuration"). `Settings.from_env()` checks each value and raises
`ConfigError` naming the variable, so a misconfigured worker fails at start rather than on its first job. That
includes the FLUX_FAST_* variables, which ComfyUI's process reads when our fast-path node runs: the rules live with
the node (comfy_nodes/flux_fast/policy.py, pure Python) and are checked here too, before any job is taken.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, TypeVar
from urllib.parse import urlparse

from comfy_nodes.flux_fast.policy import check_env as check_fast_path_env
from comfy_nodes.flux_fast.preload import ENV_PRELOAD

from . import node_packs
from .errors import ConfigError
from .graph_rules import WorkflowLimits
from .url_fetch import MAX_SECONDS, FetchLimits
from .workflow_policy import DENIED_NODES

REPO_ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


@dataclass(frozen=True)
class BucketSettings:
    """S3-compatible bucket for outputs; `configured` is false when no bucket name is set."""

    endpoint_url: str | None = None
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    name: str | None = None
    prefix: str = ""
    region: str | None = None
    presign_ttl_s: int = 3600

    @property
    def configured(self) -> bool:
        return bool(self.name)


@dataclass(frozen=True)
class LoraSettings:
    """Where LoRA files are found and where LoRAs named by URL are cached (README "LoRAs").

    `dirs`: folders the handler reads a listed LoRA's header from, for the key check (ComfyUI's own loras folders;
    ComfyUI's list decides what a name may be). `cache_dir`: inside one of `dirs`, so ComfyUI lists what is
    downloaded there as `cache_prefix + file`; None = LoRAs by URL are refused.
    """

    dirs: tuple[Path, ...] = ()
    cache_dir: Path | None = None
    cache_prefix: str = ""
    cache_max_bytes: int = 20_000_000_000
    fetch: FetchLimits = field(default_factory=lambda: FetchLimits(max_bytes=2_000_000_000, read_timeout_s=30.0,
                                                                    deadline_s=300.0))
    allow_http: bool = False
    # One job's LoRA URLs (the `loras` field and its workflow's loader nodes together): how many, and how many
    # bytes it may download in all, so one request cannot flush the shared cache or fill the disk.
    job_max_urls: int = 4
    job_max_bytes: int = 4_000_000_000


VOLUME_LORAS = Path("/runpod-volume/models/loras")
LORA_CACHE_SUBFOLDER = "_url_cache"


@dataclass(frozen=True)
class Settings:
    comfyui_url: str = "http://127.0.0.1:8188"
    comfyui_pid: int | None = None
    comfyui_output_dir: Path | None = None
    # Where ComfyUI keeps uploaded inputs and previews: each job's files there are deleted after the job.
    comfyui_input_dir: Path | None = None
    comfyui_temp_dir: Path | None = None
    workflows_dir: Path = REPO_ROOT / "workflows"
    default_workflow: str = "flux1-dev-t2i"
    ready_timeout_s: float = 300.0
    job_timeout_s: float = 600.0
    http_timeout_s: float = 30.0
    # After a timed-out prompt is interrupted: how long ComfyUI may stay busy with it before the worker counts
    # ComfyUI as wedged and asks to be replaced (an interrupt only lands between steps; a model load ignores it).
    interrupt_grace_s: float = 60.0
    # FLUX_FAST_PRELOAD (checked with the fast path's variables): ComfyUI loads this workflow's models at start, and
    # the first prompt waits for that (readiness.PreloadGate); None: no preload, nothing to wait for.
    preload_workflow: Path | None = None
    warmup_steps: int = 0
    warmup_sizes: tuple[tuple[int, int], ...] = ((832, 1536),)
    max_response_bytes: int = 10_000_000  # Runpod /run limit (decimal MB); /runsync allows 20_000_000
    # zlib level of the PNGs the worker encodes itself (a non-PNG still image asked for as png); lossless at any level.
    png_compress_level: int = 1
    log_level: str = "INFO"
    bucket: BucketSettings = field(default_factory=BucketSettings)
    input_limits: FetchLimits = field(default_factory=FetchLimits)
    # Caller workflows: None = every installed node class except the denied ones; a set = only those classes.
    workflow_allowed_nodes: frozenset[str] | None = None
    workflow_denied_nodes: frozenset[str] = DENIED_NODES
    # Classes added to the default list (graph_sizes.CALLER_NODES): the deployer vouches for what they make.
    workflow_extra_nodes: frozenset[str] = frozenset()
    # Custom node pack classes whose file, folder, path or URL inputs the deployer allows (workflow_policy).
    workflow_allowed_pack_nodes: frozenset[str] = frozenset()
    # The packs the build installed (custom_nodes.txt -> tools/install_node_packs.py -> NODE_PACKS_RECORD).
    node_packs_record: Path | None = None
    node_packs: node_packs.PackRecord = field(default_factory=node_packs.PackRecord)
    workflow_limits: WorkflowLimits = field(default_factory=WorkflowLimits)
    loras: LoraSettings = field(default_factory=LoraSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        d = cls()
        url = _get(env, "COMFYUI_URL", _comfyui_url, d.comfyui_url)
        out_dir = _text(env, "COMFYUI_OUTPUT_DIR")
        fast_path_problems = check_fast_path_env(env)
        if fast_path_problems:
            raise ConfigError("; ".join(fast_path_problems) + ".")
        input_dir, temp_dir = _comfyui_dirs(env, Path(out_dir) if out_dir else None)
        preload = env.get(ENV_PRELOAD, "").strip()
        comfy = _text(env, "COMFYUI_PATH")
        record = _get(env, "NODE_PACKS_RECORD", Path,
                      Path(comfy) / "custom_nodes" / "node_packs.json" if comfy else None)
        return cls(
            comfyui_url=url,
            comfyui_pid=_get(env, "COMFYUI_PID", _positive_int, None),
            comfyui_output_dir=Path(out_dir) if out_dir else None,
            comfyui_input_dir=input_dir,
            comfyui_temp_dir=temp_dir,
            workflows_dir=Path(_get(env, "WORKFLOWS_DIR", str, str(d.workflows_dir))),
            default_workflow=_get(env, "DEFAULT_WORKFLOW", str, d.default_workflow),
            preload_workflow=Path(preload) if preload else None,
            ready_timeout_s=_get(env, "COMFY_READY_TIMEOUT_S", _positive_float, d.ready_timeout_s),
            job_timeout_s=_get(env, "JOB_TIMEOUT_S", _positive_float, d.job_timeout_s),
            http_timeout_s=_get(env, "COMFY_HTTP_TIMEOUT_S", _positive_float, d.http_timeout_s),
            interrupt_grace_s=_get(env, "INTERRUPT_GRACE_S", _positive_float, d.interrupt_grace_s),
            warmup_steps=_get(env, "WARMUP_STEPS", _non_negative_int, d.warmup_steps),
            warmup_sizes=_get(env, "WARMUP_SIZES", _sizes, d.warmup_sizes),
            max_response_bytes=_get(env, "MAX_RESPONSE_BYTES", _positive_int, d.max_response_bytes),
            png_compress_level=_get(env, "PNG_COMPRESS_LEVEL", _zlib_level, d.png_compress_level),
            log_level=_get(env, "LOG_LEVEL", _log_level, d.log_level),
            bucket=BucketSettings(
                endpoint_url=_text(env, "BUCKET_ENDPOINT_URL"),
                access_key_id=_text(env, "BUCKET_ACCESS_KEY_ID"),
                secret_access_key=_text(env, "BUCKET_SECRET_ACCESS_KEY"),
                name=_text(env, "BUCKET_NAME"),
                prefix=env.get("BUCKET_PREFIX", "").strip().strip("/"),
                region=_text(env, "BUCKET_REGION"),
                presign_ttl_s=_get(env, "BUCKET_PRESIGN_TTL_S", _presign_ttl, 3600),
            ),
            input_limits=_input_limits(env),
            workflow_allowed_nodes=_get(env, "WORKFLOW_ALLOWED_NODES", _class_names, None),
            workflow_denied_nodes=DENIED_NODES | _get(env, "WORKFLOW_DENIED_NODES", _class_names, frozenset()),
            workflow_extra_nodes=_get(env, "WORKFLOW_EXTRA_NODES", _class_names, frozenset()),
            workflow_allowed_pack_nodes=_get(env, "WORKFLOW_ALLOWED_PACK_NODES", _class_names, frozenset()),
            node_packs_record=record,
            node_packs=node_packs.load(record),
            workflow_limits=_workflow_limits(env),
            loras=_lora_settings(env),
        )


def _lora_settings(env: Mapping[str, str], volume_loras: Path = VOLUME_LORAS) -> LoraSettings:
    """LORA_*: the folders, the URL cache (on the network volume when one is mounted, else under ComfyUI's
    models/loras) and the download bounds."""
    d = LoraSettings()
    comfy = _text(env, "COMFYUI_PATH")
    default_dirs = tuple(p for p in ((Path(comfy) / "models" / "loras") if comfy else None, volume_loras) if p)
    dirs = _get(env, "LORA_DIRS", _paths, default_dirs)
    if volume_loras.parent.is_dir():
        default_cache = volume_loras / LORA_CACHE_SUBFOLDER
    elif comfy:
        default_cache = Path(comfy) / "models" / "loras" / LORA_CACHE_SUBFOLDER
    else:
        default_cache = None
    raw_cache = env.get("LORA_CACHE_DIR", "").strip()
    # Normalised before the subfolder check: models/loras/../../../etc is not inside models/loras.
    cache_dir = Path(os.path.normpath(raw_cache)) if raw_cache else default_cache
    prefix = ""
    if cache_dir is not None:
        parent = next((folder for folder in dirs if cache_dir.is_relative_to(folder) and cache_dir != folder), None)
        if parent is None:
            raise ConfigError(f"LORA_CACHE_DIR={str(cache_dir)!r} is invalid: it must be a subfolder of one of the "
                              f"LoRA folders ComfyUI searches (LORA_DIRS: {', '.join(map(str, dirs)) or 'none'}).")
        prefix = cache_dir.relative_to(parent).as_posix() + "/"
    f = d.fetch
    return LoraSettings(
        dirs=dirs,
        cache_dir=cache_dir,
        cache_prefix=prefix,
        cache_max_bytes=_get(env, "LORA_CACHE_MAX_BYTES", _positive_int, d.cache_max_bytes),
        fetch=FetchLimits(max_bytes=_get(env, "LORA_URL_MAX_BYTES", _positive_int, f.max_bytes),
                          connect_timeout_s=f.connect_timeout_s, read_timeout_s=f.read_timeout_s,
                          deadline_s=_get(env, "LORA_URL_DEADLINE_S", _positive_float, f.deadline_s),
                          max_redirects=f.max_redirects),
        allow_http=_get(env, "LORA_URL_ALLOW_HTTP", _boolean, d.allow_http),
        job_max_urls=_get(env, "LORA_JOB_MAX_URLS", _positive_int, d.job_max_urls),
        job_max_bytes=_get(env, "LORA_JOB_MAX_BYTES", _positive_int, d.job_max_bytes),
    )


def _paths(raw: str) -> tuple[Path, ...]:
    """Folders separated by ':' (like PATH)."""
    paths = tuple(Path(os.path.normpath(p.strip())) for p in raw.split(":") if p.strip())
    if not paths or not all(p.is_absolute() for p in paths):
        raise ValueError("must list absolute folders separated by ':'")
    return paths


def _boolean(raw: str) -> bool:
    value = raw.lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no"):
        return False
    raise ValueError("must be true or false")


def _comfyui_dirs(env: Mapping[str, str], output_dir: Path | None) -> tuple[Path | None, Path | None]:
    """ComfyUI's input and temp folders, as ComfyUI itself will resolve them.

    COMFYUI_INPUT_DIR / COMFYUI_TEMP_DIR win; else the flags start.sh passes ComfyUI in COMFYUI_ARGS
    (`--input-directory X`; `--temp-directory D` means D/temp; `--base-directory B`); else ComfyUI's defaults
    under COMFYUI_PATH (the image sets it; start.sh's default is /comfyui); else the siblings of
    COMFYUI_OUTPUT_DIR. None when nothing says where ComfyUI runs (the handler then cannot delete files there).
    """
    flags = _flag_values(env.get("COMFYUI_ARGS", ""), ("--input-directory", "--temp-directory", "--base-directory"))
    base = flags.get("--base-directory") or env.get("COMFYUI_PATH") or None
    fallback = Path(base) if base else (output_dir.parent if output_dir is not None else None)
    input_dir = env.get("COMFYUI_INPUT_DIR") or flags.get("--input-directory")
    temp_dir = env.get("COMFYUI_TEMP_DIR") or (str(Path(flags["--temp-directory"]) / "temp")
                                              if flags.get("--temp-directory") else None)
    return (Path(input_dir) if input_dir else fallback / "input" if fallback else None,
            Path(temp_dir) if temp_dir else fallback / "temp" if fallback else None)


def _flag_values(args: str, names: tuple[str, ...]) -> dict[str, str]:
    """`--flag VALUE` and `--flag=VALUE` out of a whitespace-split argument string (as start.sh splits it)."""
    words, found = args.split(), {}
    for i, word in enumerate(words):
        name, eq, value = word.partition("=")
        if name in names:
            if eq:
                found[name] = value
            elif i + 1 < len(words):
                found[name] = words[i + 1]
    return found


def _class_names(raw: str) -> frozenset[str]:
    """Comma-separated node class names (class_type values; custom nodes' may hold spaces and brackets)."""
    names = frozenset(n.strip() for n in raw.split(",") if n.strip())
    if not names:
        raise ValueError("must list node class names separated by commas, e.g. SaveImage,LoadImage")
    return names


def _workflow_limits(env: Mapping[str, str]) -> WorkflowLimits:
    """Bounds on a caller's own graph (WORKFLOW_*): size after subgraph expansion, nesting, batch, pixels."""
    d = WorkflowLimits()
    return WorkflowLimits(
        max_nodes=_get(env, "WORKFLOW_MAX_NODES", _positive_int, d.max_nodes),
        max_subgraph_depth=_get(env, "WORKFLOW_MAX_SUBGRAPH_DEPTH", _positive_int, d.max_subgraph_depth),
        max_batch=_get(env, "WORKFLOW_MAX_BATCH", _positive_int, d.max_batch),
        max_pixels=_get(env, "WORKFLOW_MAX_PIXELS", _positive_int, d.max_pixels),
        max_text_chars=_get(env, "WORKFLOW_MAX_TEXT_CHARS", _positive_int, d.max_text_chars),
    )


def _input_limits(env: Mapping[str, str]) -> FetchLimits:
    """Caps on input images (INPUT_IMAGE_*, INPUT_URL_*); the URL guard itself is not configurable."""
    try:
        return FetchLimits.from_env(env)
    except ValueError as exc:
        raise ConfigError(f"{exc}.") from None


def _get(env: Mapping[str, str], name: str, parse: Callable[[str], T], default: T) -> T:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return parse(raw.strip())
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is invalid: {exc}.") from None


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("must be 0 or a positive integer")
    return value


def _positive_float(raw: str) -> float:
    """A number of seconds."""
    value = float(raw)
    if not 0 < value <= MAX_SECONDS:
        raise ValueError(f"must be a positive number of seconds, at most {MAX_SECONDS:g} (a week)")
    return value


def _presign_ttl(raw: str) -> int:
    value = int(raw)
    if not 0 < value <= MAX_SECONDS:
        raise ValueError("must be a whole number of seconds from 1 to 604800 (7 days, S3's longest presigned URL)")
    return value


def _text(env: Mapping[str, str], name: str) -> str | None:
    """A text setting; unset, empty and blank are all 'not set' (a stray space must not turn a bucket on)."""
    value = (env.get(name) or "").strip()
    return value or None


def _comfyui_url(raw: str) -> str:
    """ComfyUI's address as start.sh reads it: http(s), a host and an explicit port (start.sh starts ComfyUI on
    that port), nothing after the host but an optional '/'."""
    rule = "must be an http(s) URL with ComfyUI's port, such as http://127.0.0.1:8188"
    try:
        parsed = urlparse(raw.rstrip("/"))
        port = parsed.port
    except ValueError:
        raise ValueError(rule) from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname or port is None \
            or parsed.path or parsed.query or parsed.fragment or parsed.params or not raw.isprintable():
        raise ValueError(rule)
    return raw.rstrip("/")


def _zlib_level(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 9:
        raise ValueError("must be an integer from 0 (no compression) to 9 (smallest, slowest)")
    return value


def _sizes(raw: str) -> tuple[tuple[int, int], ...]:
    sizes = []
    for item in raw.split(","):
        try:
            width, height = (int(v) for v in item.strip().lower().split("x"))
        except ValueError:
            raise ValueError(f"'{item.strip()}' is not WIDTHxHEIGHT (e.g. 832x1536,1024x1024)") from None
        if not (256 <= width <= 2048 and 256 <= height <= 2048 and width % 16 == 0 and height % 16 == 0):
            raise ValueError(f"'{item.strip()}' must have sides from 256 to 2048 and multiples of 16")
        sizes.append((width, height))
    return tuple(sizes)


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
    return level
