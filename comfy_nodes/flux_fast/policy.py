"""What the FLUX fast path should do, decided without torch or ComfyUI.

Why a separate module: the decisions (which compute mode, whether to compile, whether the bf16 weight copy fits
in VRAM) are the part of the node most likely to be wrong for a card nobody benchmarked, so they are plain
functions of plain values that unit tests can exercise on a machine without a GPU, torch or ComfyUI.

Environment variables (read when the node runs, so the handler or start.sh can set them per worker):

* ``FLUX_FAST_COMPUTE``: ``bf16`` (default; output-preserving), ``fp8_rowwise`` (opt-in; fp8 matmuls with
  per-row activation scales, changes the image slightly) or ``off`` (graph passes the model through). Used when
  the node's ``compute`` input is ``default``; an explicit node value (e.g. set per request) wins.
* ``FLUX_FAST_COMPILE``: ``1`` (default) or ``0``: run FLUX's transformer blocks from ahead-of-time compiled
  artifacts (built in a separate process, never in the serving one; compiled_blocks.py).
* ``FLUX_FAST_COMPILE_MODE``: inductor mode of the ahead-of-time build: ``default`` (default),
  or ``max-autotune-no-cudagraphs`` (GEMM autotuning and epilogue fusion; the build takes minutes).
* ``FLUX_FAST_ON_CPU``: ``0`` (default) or ``1``: apply the fast path (and its compiled blocks) on the CPU too. Nothing
  is gained there; the CPU test suite uses it to run the production workflow through compiled blocks.
* ``FLUX_FAST_UPCAST``: ``auto`` (default), ``never`` or ``always``: keep the fp8 DiT weights upcast to the
  compute dtype on the GPU (one cast at load instead of one per Linear per step).
* ``FLUX_FAST_DECODE``: ``auto`` (default) or ``tiled``, for the FluxFastDecode node when its ``mode`` input is
  ``default``. ``auto`` decodes the whole latent in one pass when the card has the memory ComfyUI estimates
  for it (the decode ComfyUI's plain VAEDecode does, 0.12 s instead of 0.55 s at 832x1536 on an H100), else
  tiled; ``tiled`` always decodes as ComfyUI's VAEDecodeTiled does (three tiled passes, averaged).
* ``FLUX_FAST_VRAM_MARGIN_GB``: VRAM that must stay free beside the DiT's weights on the card, for the text encoder,
  the VAE decode and the sampling activations: after the upcast under ``auto`` (default 6), and beside a DiT that
  ComfyUI loaded with dynamic VRAM and the node makes resident (default 2, ``RESIDENT_ROOM_GB``: there the text
  encoders and the VAE stream, so only sampling needs the room). Set, it is the margin for both.
* ``FLUX_FAST_LOAD_TO_CARD``: ``auto`` (default) or ``off``: the FluxFastUNETLoader node builds the diffusion model on
  the card where it will run and ComfyUI keeps models resident (not dynamic VRAM) and the card has room for it now,
  as ComfyUI's own checkpoint loader does, instead of in host memory with a move at the first sampling run
  (``load_to_card_decision``); ``off`` always loads as ComfyUI's UNETLoader does.
* ``FLUX_FAST_BAKED_ARTIFACTS_DIR``: compiled blocks shipped in the image (trusted, read only; start.sh:
  ``<repo>/compile-artifacts``). artifacts.py says who may write what the worker executes.
* ``FLUX_FAST_ARTIFACTS_DIR``: the shared folder (start.sh: the network volume when one is mounted) where the first
  worker of a GPU model publishes its build for later ones; read and written only with the secret below.
* ``FLUX_FAST_ARTIFACTS_SECRET``: the key that signs and checks artifacts in the shared folder (HMAC-SHA256).
* ``FLUX_FAST_GC_FREEZE``: ``1`` (default) or ``0``: when ComfyUI's server imports these nodes, move every object it
  has created so far (its modules, torch's, ~540,000 objects) out of reach of the garbage collector (gc_freeze.py).
  Read once, at import.
* ``FLUX_FAST_PRELOAD``: an API-format workflow whose FluxFast loader nodes (and the FluxFastPatch they feed) load
  while ComfyUI still starts (preload.py); empty or unset (the default): no preload (measured slower so far).
  Read once, by the package's prestartup_script.py. The decode ``auto`` above also decodes whole where ComfyUI can
  make room by evicting at most 3 GiB of other weights (``DECODE_EVICT_MAX_BYTES``).

``check_env`` checks all of them at once, so the handler can refuse to start on a bad value instead of failing
every job (the node itself only reads them when it runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from .preload import ENV_PRELOAD

COMPUTE_CHOICES = ("default", "bf16", "fp8_rowwise", "off")
UPCAST_CHOICES = ("auto", "never", "always")
DEFAULT_COMPUTE = "bf16"
DEFAULT_MARGIN_GB = 6.0
# The room a resident DiT leaves under dynamic VRAM: ComfyUI's own estimate for one FLUX step at 832x1536 (1.2 GiB:
# latent area x bf16 x 0.01 x Flux.memory_usage_factor 3.1, in MiB) plus its minimum inference memory (0.8 GiB).
# T5, CLIP and the VAE stream from pinned host memory, and ComfyUI evicts part of the DiT for them and loads it back,
# which the compiled blocks follow (their weights are bound per call). Measured at a hard 16 GiB cap on an H100:
# 6.21 s a request, compiled, against 4.71 s uncapped and 7.63 s with the DiT left to dynamic VRAM (eager); a 12 GB
# card (11.6 GiB after ComfyUI's reserve) stays with dynamic VRAM.
RESIDENT_ROOM_GB = 2.0
GIB = 1024 ** 3

ENV_COMPUTE = "FLUX_FAST_COMPUTE"
ENV_COMPILE = "FLUX_FAST_COMPILE"
ENV_UPCAST = "FLUX_FAST_UPCAST"
ENV_COMPILE_MODE = "FLUX_FAST_COMPILE_MODE"
ENV_ON_CPU = "FLUX_FAST_ON_CPU"
COMPILE_MODES = ("default", "max-autotune-no-cudagraphs")
ENV_MARGIN = "FLUX_FAST_VRAM_MARGIN_GB"
ENV_DECODE = "FLUX_FAST_DECODE"
DECODE_CHOICES = ("default", "auto", "tiled")
ENV_ARTIFACTS = "FLUX_FAST_ARTIFACTS_DIR"
ENV_BAKED_ARTIFACTS = "FLUX_FAST_BAKED_ARTIFACTS_DIR"
ENV_ARTIFACTS_SECRET = "FLUX_FAST_ARTIFACTS_SECRET"
ENV_GC_FREEZE = "FLUX_FAST_GC_FREEZE"
ENV_LOAD_TO_CARD = "FLUX_FAST_LOAD_TO_CARD"
LOAD_TO_CARD_CHOICES = ("auto", "off")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class PolicyError(ValueError):
    """A node input or environment variable holds a value the fast path does not know."""


@dataclass(frozen=True)
class Plan:
    compute: str          # "bf16", "fp8_rowwise" or "off"
    compile: bool
    upcast: str           # "auto", "never" or "always"
    margin_bytes: int
    compile_mode: str = "default"
    on_cpu: bool = False
    # beside a DiT made resident under dynamic VRAM (resident_decision)
    resident_room_bytes: int = int(RESIDENT_ROOM_GB * GIB)

    def describe(self) -> str:
        mode = f" mode={self.compile_mode}" if self.compile else ""
        return (f"compute={self.compute} compile={self.compile}{mode} upcast={self.upcast} "
                f"margin={self.margin_bytes / GIB:.1f}GiB resident_room={self.resident_room_bytes / GIB:.1f}GiB")


def _node_or_env(label: str, node_value: str, choices: tuple[str, ...], env: Mapping[str, str], env_name: str,
                 default: str) -> str:
    """A node choice wins unless it is 'default'; then the environment variable; then `default`."""
    if node_value not in choices:
        raise PolicyError(f"{label} '{node_value}' is not one of {', '.join(choices)}")
    if node_value != "default":
        return node_value
    value = env.get(env_name, "").strip().lower() or default
    allowed = [c for c in choices if c != "default"]
    if value not in allowed:
        raise PolicyError(f"{env_name}='{value}' is not one of {', '.join(allowed)}")
    return value


def resolve_compute(node_value: str, env: Mapping[str, str]) -> str:
    """The node input wins unless it is 'default'; then FLUX_FAST_COMPUTE; then bf16."""
    return _node_or_env("compute", node_value, COMPUTE_CHOICES, env, ENV_COMPUTE, DEFAULT_COMPUTE)


def resolve_compile(node_value: bool, env: Mapping[str, str]) -> bool:
    """Compile only if both the node input and FLUX_FAST_COMPILE (default on) allow it."""
    raw = env.get(ENV_COMPILE, "").strip().lower()
    if raw and raw not in _TRUE | _FALSE:
        raise PolicyError(f"{ENV_COMPILE}='{raw}' is not 0 or 1")
    return bool(node_value) and raw not in _FALSE


def resolve_on_cpu(env: Mapping[str, str]) -> bool:
    raw = env.get(ENV_ON_CPU, "").strip().lower()
    if raw and raw not in _TRUE | _FALSE:
        raise PolicyError(f"{ENV_ON_CPU}='{raw}' is not 0 or 1")
    return raw in _TRUE


def resolve_gc_freeze(env: Mapping[str, str]) -> bool:
    raw = env.get(ENV_GC_FREEZE, "").strip().lower()
    if raw and raw not in _TRUE | _FALSE:
        raise PolicyError(f"{ENV_GC_FREEZE}='{raw}' is not 0 or 1")
    return raw not in _FALSE


def resolve_load_to_card(env: Mapping[str, str]) -> bool:
    value = env.get(ENV_LOAD_TO_CARD, "").strip().lower() or "auto"
    if value not in LOAD_TO_CARD_CHOICES:
        raise PolicyError(f"{ENV_LOAD_TO_CARD}='{value}' is not one of {', '.join(LOAD_TO_CARD_CHOICES)}")
    return value == "auto"


def resolve_compile_mode(env: Mapping[str, str]) -> str:
    value = env.get(ENV_COMPILE_MODE, "").strip().lower() or "default"
    if value not in COMPILE_MODES:
        raise PolicyError(f"{ENV_COMPILE_MODE}='{value}' is not one of {', '.join(COMPILE_MODES)}")
    return value


def resolve_upcast(node_value: str, env: Mapping[str, str]) -> str:
    if node_value not in UPCAST_CHOICES:
        raise PolicyError(f"upcast_weights '{node_value}' is not one of {', '.join(UPCAST_CHOICES)}")
    raw = env.get(ENV_UPCAST, "").strip().lower()
    if raw:
        if raw not in UPCAST_CHOICES:
            raise PolicyError(f"{ENV_UPCAST}='{raw}' is not one of {', '.join(UPCAST_CHOICES)}")
        if node_value == "auto":
            return raw
    return node_value


def resolve_margin(env: Mapping[str, str], default_gb: float = DEFAULT_MARGIN_GB) -> int:
    """FLUX_FAST_VRAM_MARGIN_GB in bytes; `default_gb` where it is unset (the upcast's 6 GiB, or RESIDENT_ROOM_GB
    beside a DiT made resident under dynamic VRAM)."""
    raw = env.get(ENV_MARGIN, "").strip()
    if not raw:
        return int(default_gb * GIB)
    try:
        value = float(raw)
    except ValueError:
        raise PolicyError(f"{ENV_MARGIN}='{raw}' is not a number of GiB") from None
    if not 0 <= value <= 1024:
        raise PolicyError(f"{ENV_MARGIN}='{raw}' must be a number of GiB from 0 to 1024")
    return int(value * GIB)


def make_plan(compute: str, compile_model: bool, upcast: str, env: Mapping[str, str]) -> Plan:
    return Plan(resolve_compute(compute, env), resolve_compile(compile_model, env), resolve_upcast(upcast, env),
                resolve_margin(env), resolve_compile_mode(env), resolve_on_cpu(env),
                resolve_margin(env, RESIDENT_ROOM_GB))


def upcast_decision(policy: str, free_bytes: int, extra_bytes: int, margin_bytes: int) -> tuple[bool, str]:
    """Whether to keep a compute-dtype copy of the weights, and a sentence for the log saying why.

    free_bytes is what ComfyUI itself would call free (device free + torch cache - --reserve-vram), measured
    after the fp8 weights are on the GPU; extra_bytes is what the upcast adds (one byte per fp8 parameter for
    bf16). A card that keeps less than margin_bytes after the upcast keeps the fp8 weights and ComfyUI's
    per-step cast: slower per step, but it leaves room for the text encoder and VAE decode, which on a
    24 GB card is worth far more than the cast (it avoids model swaps).
    """
    if extra_bytes <= 0:
        return False, "no fp8 weights to upcast"
    if policy == "never":
        return False, "upcast disabled (never)"
    if policy == "always":
        return True, "upcast forced (always)"
    left = free_bytes - extra_bytes
    if left >= margin_bytes:
        return True, (f"{free_bytes / GIB:.1f} GiB free, upcast needs {extra_bytes / GIB:.1f} GiB, "
                      f"{left / GIB:.1f} GiB left >= margin {margin_bytes / GIB:.1f} GiB")
    return False, (f"{free_bytes / GIB:.1f} GiB free, upcast needs {extra_bytes / GIB:.1f} GiB, would leave "
                   f"{left / GIB:.1f} GiB < margin {margin_bytes / GIB:.1f} GiB: keeping fp8 weights")


def resident_decision(card_bytes: int, model_bytes: int, room_bytes: int) -> tuple[bool, str]:
    """Whether a DiT that ComfyUI loaded with dynamic VRAM should be made resident for the fast path, and why.

    Why: the fast path (bf16 copies, compiled blocks) needs the DiT's weights on the card between calls; with dynamic
    VRAM (ComfyUI's default on NVIDIA; start.sh keeps it on cards under 18 GiB) they stream from host memory
    instead, and every step runs eager. Made resident where the card (card_bytes: the total minus --reserve-vram)
    holds the DiT and room_bytes beside it for sampling (Plan.resident_room_bytes); the text encoders and the VAE
    keep streaming, and ComfyUI evicts part of the DiT for them and loads it back, which the compiled blocks follow.
    At a hard 16 GiB cap (H100) that state took 6.21 s a request against 7.63 s with dynamic VRAM alone (uncapped
    4.71 s). Where even the DiT and the room do not fit (12 GB cards), it is left to dynamic VRAM: a DiT that never
    fits would be reloaded in part at every step.
    """
    need = model_bytes + room_bytes
    if card_bytes >= need:
        return True, (f"{card_bytes / GIB:.1f} GiB card holds the {model_bytes / GIB:.1f} GiB DiT and "
                      f"{room_bytes / GIB:.1f} GiB for sampling beside it: resident copy for the fast path, the "
                      "text encoders and the VAE left to dynamic VRAM")
    return False, (f"{card_bytes / GIB:.1f} GiB card cannot hold the {model_bytes / GIB:.1f} GiB DiT and "
                   f"{room_bytes / GIB:.1f} GiB for sampling beside it: left to ComfyUI's dynamic VRAM, which "
                   "streams the weights")


def load_to_card_decision(enabled: bool, on_gpu: bool, dynamic: bool, free_bytes: int, model_bytes: int,
                          room_bytes: int) -> tuple[bool, str]:
    """Whether a diffusion model should be built on the card rather than in host memory, and why.

    Why: ComfyUI's UNETLoader builds the model in host memory and copies the file's tensors into it; the first
    sampling run then moves it to the card (an fp8 FLUX DiT on an H100: 0.86 s and 1.92 s of a cold worker's first
    image). Where ComfyUI keeps models resident, it ends on the card anyway, so it is built there and the file's
    tensors are copied once, straight from the page cache, as ComfyUI's checkpoint loader does when the card has
    the room (`unet_inital_load_device`). Not under dynamic VRAM: ComfyUI then hands the file's own tensors to the
    model and streams them, and a model built on the card would only be replaced. free_bytes is what ComfyUI calls
    free now (less --reserve-vram); model_bytes the file's size (an upper bound on the weights); room_bytes what must
    stay free beside it for sampling (Plan.resident_room_bytes). Where it does not fit now, ComfyUI's own order
    decides at sampling time what to evict, as without this.
    """
    if not enabled:
        return False, f"{ENV_LOAD_TO_CARD}=off"
    if not on_gpu:
        return False, "no GPU"
    if dynamic:
        return False, "dynamic VRAM streams the file's own tensors"
    if free_bytes >= model_bytes + room_bytes:
        return True, (f"{free_bytes / GIB:.1f} GiB free on the card holds the {model_bytes / GIB:.1f} GiB model and "
                      f"{room_bytes / GIB:.1f} GiB beside it: built on the card")
    return False, (f"{free_bytes / GIB:.1f} GiB free on the card cannot hold the {model_bytes / GIB:.1f} GiB model and "
                   f"{room_bytes / GIB:.1f} GiB beside it now: built in host memory, as ComfyUI does")


def resolve_decode(node_value: str, env: Mapping[str, str]) -> str:
    """The node's decode mode unless it is 'default'; then FLUX_FAST_DECODE; then auto."""
    return _node_or_env("decode mode", node_value, DECODE_CHOICES, env, ENV_DECODE, "auto")


# What a whole decode may make ComfyUI evict from the card. Evicted weights come back at the next request from the
# pinned copies ComfyUI keeps of a partially loaded model (>10 GB/s on an H100 host: 0.3 s for 3 GiB), which costs
# less than the tiled decode's three passes (0.55-0.7 s more than one pass for 832x1536, BENCHMARKS.md). On a 16 GB
# card the DiT is partly evicted every request anyway, for T5, so the decode's share mostly overlaps that.
DECODE_EVICT_MAX_BYTES = 3 * GIB


def decode_whole(mode: str, free_bytes: int, need_bytes: int, reserved_bytes: int) -> tuple[bool, str]:
    """Whether to decode the whole latent in one pass, and a sentence for the log saying why.

    free_bytes is ComfyUI's free VRAM after it made room for one tile, as VAEDecodeTiled does (ComfyUI >= 0.3.7x);
    need_bytes is ComfyUI's own estimate for the whole decode; reserved_bytes is --reserve-vram. One pass where it
    fits, or where ComfyUI makes it fit by evicting at most DECODE_EVICT_MAX_BYTES of other weights (VAE.decode asks
    ComfyUI for the whole estimate, as VAEDecode does); tiled where more would have to go.
    """
    if mode == "tiled":
        return False, "tiled decode asked for"
    left = free_bytes - reserved_bytes - need_bytes
    if left >= 0:
        return True, f"whole decode: needs {need_bytes / GIB:.1f} GiB, {free_bytes / GIB:.1f} GiB free"
    if -left <= DECODE_EVICT_MAX_BYTES:
        return True, (f"whole decode: needs {need_bytes / GIB:.1f} GiB, {(free_bytes - reserved_bytes) / GIB:.1f} GiB "
                      f"free; ComfyUI evicts {-left / GIB:.1f} GiB of other weights for it (at most "
                      f"{DECODE_EVICT_MAX_BYTES / GIB:.0f} GiB: cheaper to reload than tiling)")
    return False, (f"tiled decode: the whole decode needs {need_bytes / GIB:.1f} GiB, only "
                   f"{(free_bytes - reserved_bytes) / GIB:.1f} GiB free, and making room would evict "
                   f"{-left / GIB:.1f} GiB (more than {DECODE_EVICT_MAX_BYTES / GIB:.0f} GiB)")


def rows_padding(rows: int, multiple: int = 16) -> int:
    """Rows to add so an fp8 matmul's M dimension is a multiple of `multiple` (cuBLASLt's fp8 rule)."""
    return (-rows) % multiple


def fp8_eligible(in_features: int, out_features: int) -> bool:
    """fp8 matmuls need K and N divisible by 16; every FLUX Linear is, but a LoRA'd or odd model may not be."""
    return in_features % 16 == 0 and out_features % 16 == 0 and in_features > 0 and out_features > 0


TRACED_SDPA_CHOICES = ("comfy", "cudnn_first")


def traced_sdpa(capability: str, attention: str) -> str:
    """Which attention kernel the compiled blocks are traced with, by the GPU's compute capability ("9.0") and the
    attention function ComfyUI picked from its flags (only its PyTorch attention has a kernel to choose; sage,
    xformers and the others are left as they are).

    ComfyUI picks the kernel at each call: up to v0.3.64 it preferred cuDNN's, since late 2025 it prefers
    FlashAttention on Linux ("slightly faster" on the consumer cards it was tried on). On an H100, cuDNN's sm90
    kernel is what v0.3.64's compiled blocks ran (0.57 ms a call, 33 ms of a 0.158 s step: bench/profiles/
    dit-profile-h100-b.json), and v0.33.0's compiled step, traced with FlashAttention, took 0.185 s; traced cuDNN
    first it takes 0.160 s (H100, BENCHMARKS.md). So Hopper cards trace cuDNN first; everything else keeps
    ComfyUI's own choice. The build checks the package against
    ComfyUI's eager block either way, and falls back to ComfyUI's choice if the cuDNN-first block fails to build."""
    return "cudnn_first" if capability.split(".")[0] == "9" and attention == "attention_pytorch" else "comfy"


def check_env(env: Mapping[str, str]) -> list[str]:
    """Every FLUX_FAST_* problem in `env`, one sentence each naming the variable, the value and the rule."""
    problems = []
    for check in (lambda: make_plan("default", True, "auto", env), lambda: resolve_on_cpu(env),
                  lambda: resolve_decode("default", env), lambda: resolve_gc_freeze(env),
                  lambda: resolve_load_to_card(env)):
        try:
            check()
        except PolicyError as err:
            if str(err) not in problems:
                problems.append(str(err))
    for name in (ENV_ARTIFACTS, ENV_BAKED_ARTIFACTS):
        raw = env.get(name, "").strip()
        if raw and not raw.startswith("/"):
            problems.append(f"{name}='{raw}' must be an absolute folder path")
    raw = env.get(ENV_PRELOAD, "").strip()
    if raw and not (raw.startswith("/") and raw.endswith(".json") and Path(raw).is_file()):
        problems.append(f"{ENV_PRELOAD}='{raw}' must be the absolute path of an existing API-format workflow "
                        "(.json), or empty for no preload")
    return problems


def artifact_key(fields: Mapping[str, str]) -> str:
    """The file name of compiled artifacts for one build: readable where it helps, hashed where it must be exact.

    `fields` names everything the kernels depend on (torch and its git version, Triton, CUDA, GPU name and
    capability, Python, ComfyUI, compile mode, compute path, this package's source hash). Any change gives another
    key, so a worker never loads another GPU's or torch's kernels.
    """
    import hashlib
    import re

    digest = hashlib.sha256("\n".join(f"{k}={fields[k]}" for k in sorted(fields)).encode()).hexdigest()[:16]
    gpu = re.sub(r"[^A-Za-z0-9]+", "-", str(fields.get("gpu", "gpu"))).strip("-").lower()[:40] or "gpu"
    torch_version = re.sub(r"[^A-Za-z0-9.]+", "-", str(fields.get("torch", "torch")))[:24]
    return f"{gpu}-torch{torch_version}-{fields.get('compute', 'x')}-{digest}"
