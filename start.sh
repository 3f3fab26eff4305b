#!/usr/bin/env bash
# Starts the worker: a headless ComfyUI bound to loopback, then the Runpod handler (`python -m handler "$@"`).
# The handler waits for ComfyUI itself (readiness gate with COMFY_READY_TIMEOUT_S and ComfyUI's pid), so jobs are
# taken only once ComfyUI answers. If either process exits, the other is stopped and the container exits
# non-zero, so Runpod replaces the worker. SIGTERM/SIGINT are forwarded to both.
#
# Cold start: the model files are read into the page cache from the first second (handler.prefetch), beside
# ComfyUI's imports, and compiled FLUX blocks load from the image or the volume (comfy_nodes/flux_fast/artifacts.py).
#
# Environment (defaults in brackets): COMFYUI_PATH [/comfyui], COMFYUI_PYTHON [python3], HANDLER_PYTHON [python3],
# COMFYUI_URL [http://127.0.0.1:8188], COMFYUI_LISTEN [127.0.0.1], COMFYUI_OUTPUT_DIR [$COMFYUI_PATH/output],
# COMFYUI_ARGS [] extra ComfyUI flags, COMFYUI_PERF_ARGS [see below], COMFYUI_DYNAMIC_VRAM [auto, see below],
# SKIP_GPU_CHECK [0],
# TCMALLOC_RELEASE_RATE [0, where tcmalloc is preloaded; see below], PREFETCH_MODELS [1], PREFETCH_READ_MIB [16],
# STOP_GRACE_S [20],
# FLUX_FAST_BAKED_ARTIFACTS_DIR [<repo>/compile-artifacts], FLUX_FAST_ARTIFACTS_DIR [/runpod-volume/.cache/flux-fast
# when a volume is mounted, else none], FLUX_FAST_ARTIFACTS_SECRET [unset: the volume folder is not used],
# FLUX_FAST_PRELOAD [empty: no preload; a workflow's path: its models load while ComfyUI starts].
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
COMFYUI_PATH="${COMFYUI_PATH:-/comfyui}"
COMFYUI_PYTHON="${COMFYUI_PYTHON:-python3}"
HANDLER_PYTHON="${HANDLER_PYTHON:-python3}"
export COMFYUI_URL="${COMFYUI_URL:-http://127.0.0.1:8188}"
COMFYUI_LISTEN="${COMFYUI_LISTEN:-127.0.0.1}"
export COMFYUI_OUTPUT_DIR="${COMFYUI_OUTPUT_DIR:-$COMFYUI_PATH/output}"
# The runpod SDK logs every job's whole output (base64 images included) at DEBUG: keep its log at INFO.
export RUNPOD_LOG_LEVEL="${RUNPOD_LOG_LEVEL:-INFO}"
# Flags measured in BENCHMARKS.md; override to compare. Beside ComfyUI's defaults (pinned memory, async offload):
#   --cache-classic         keep the last prompt's node outputs, as before ComfyUI 0.23: the RAM-pressure cache
#                           (the new default) keeps every earlier prompt's outputs until host memory runs low,
#                           which on a worker means callers' images piling up in RAM between jobs.
#   not --fp8_e4m3fn-text-enc  ComfyUI already stores T5 in fp8 without it (4.4 GiB; the dtype comes from the
#                           file's final layer norm, which is fp8), and compute is fp32 either way; the flag would
#                           only round CLIP-L's fp16 weights to fp8, changing the pooled vector and so the image
#                           (tests/integration/test_text_encoder_fp8.py).
COMFYUI_PERF_ARGS="${COMFYUI_PERF_ARGS:---preview-method none --disable-api-nodes --cache-classic}"
# Dynamic VRAM (ComfyUI's default on NVIDIA since 0.16) streams weights from host memory on every call; the fast path
# keeps the DiT resident on the card instead (bf16 copies, compiled blocks). That pays where the card holds the
# 11.1 GiB fp8 DiT, the fast path's 6 GiB margin (text encoders, activations, decode; FLUX_FAST_VRAM_MARGIN_GB) and
# ComfyUI's 0.4 GiB reserve: from RESIDENT_DIT_MIN_GIB of card memory up, start.sh adds --disable-dynamic-vram. On a
# smaller card (16 GB) dynamic VRAM stays on for T5, CLIP and the VAE, and FluxFastPatch makes the fp8 DiT resident
# where it and sampling's 2 GiB fit (policy.resident_decision, the same sum for whatever DiT a workflow loads), so its
# blocks still run compiled: at a 16 GiB cap 6.21 s a request against 4.71 s uncapped (H100, BENCHMARKS.md); a 12 GB
# card leaves the DiT to dynamic VRAM as well. COMFYUI_DYNAMIC_VRAM: auto (default, by the card's memory as
# nvidia-smi reports it; the nvidia/cuda base image asks the container runtime for `utility`, which brings it),
# on (ComfyUI's default), off (always --disable-dynamic-vram).
RESIDENT_DIT_MIN_GIB=18
# Compiled FLUX blocks (comfy_nodes/flux_fast/artifacts.py): the image's own folder is trusted; the network volume,
# where the first worker of a GPU model publishes its build for later ones, is used only with
# FLUX_FAST_ARTIFACTS_SECRET set (a Runpod secret), because what is loaded from there is executed.
volume=""
[[ -d /runpod-volume && -w /runpod-volume ]] && volume=/runpod-volume
export FLUX_FAST_BAKED_ARTIFACTS_DIR="${FLUX_FAST_BAKED_ARTIFACTS_DIR-$here/compile-artifacts}"
export FLUX_FAST_ARTIFACTS_DIR="${FLUX_FAST_ARTIFACTS_DIR-${volume:+$volume/.cache/flux-fast}}"
# FLUX_FAST_PRELOAD (off by default): a workflow whose models load inside ComfyUI while it is still starting
# (comfy_nodes/flux_fast/preload.py). Measured twice on an H100 it made the first image later, not sooner (19.0 s
# against 16.8 s, BENCHMARKS.md "The start-up preload, measured again"): ComfyUI can load a model only ~1 s before it
# listens, and the first job, queued at once, starts the same loads a moment later anyway.

log() { echo "start.sh: $*" >&2; }
# Switches read as the handler reads its own (0/false/no/off, 1/true/yes/on, any case).
is_off() { case "${1,,}" in 0|false|no|off) return 0 ;; esac; return 1; }
is_on() { case "${1,,}" in 1|true|yes|on) return 0 ;; esac; return 1; }

children=()
# True while a child runs; an exited child that is not yet reaped (a zombie) does not count.
running() { [[ -r /proc/$1/stat ]] && [[ "$(cut -d')' -f2 "/proc/$1/stat" 2>/dev/null)" != " Z"* ]]; }

# Sends SIGTERM to the given children and reaps them; what still runs after STOP_GRACE_S (20 s) is killed.
terminate() {
  (( $# )) || return 0
  kill -TERM "$@" 2>/dev/null || true
  local pid deadline=$(( SECONDS + ${STOP_GRACE_S:-20} ))
  for pid in "$@"; do
    while running "$pid" && (( SECONDS < deadline )); do sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

stop() {
  log "stopping (signal received)"
  terminate "${children[@]}"
  exit 143
}
# Installed before any child starts, so a signal during the start stops whatever is already running.
trap stop TERM INT

hostport="${COMFYUI_URL#*://}"; hostport="${hostport%%/*}"
port="${hostport##*:}"
[[ "$port" =~ ^[0-9]+$ ]] || port=8188

if [[ ! -f "$COMFYUI_PATH/main.py" ]]; then
  log "no ComfyUI at COMFYUI_PATH=$COMFYUI_PATH (main.py missing)"; exit 1
fi
if [[ ! "${STOP_GRACE_S:-20}" =~ ^[0-9]+$ ]]; then
  log "STOP_GRACE_S must be a whole number of seconds, not '${STOP_GRACE_S}'"; exit 2
fi
case "${COMFYUI_DYNAMIC_VRAM:-auto}" in
  auto|on|off) ;;
  *) log "COMFYUI_DYNAMIC_VRAM must be auto, on or off, not '${COMFYUI_DYNAMIC_VRAM}'"; exit 2 ;;
esac

# Model bytes start moving now, while ComfyUI imports; its own load then reads from memory (handler/prefetch.py).
if ! is_off "${PREFETCH_MODELS:-1}"; then
  # At idle I/O priority where the disk scheduler honours it: ComfyUI's imports come first.
  io_idle=(); command -v ionice >/dev/null && io_idle=(ionice -c 3)
  read_size=(); [[ -n "${PREFETCH_READ_MIB:-}" ]] && read_size=(--read-mib "$PREFETCH_READ_MIB")   # default: prefetch's
  (cd "$here" && exec "${io_idle[@]}" "$HANDLER_PYTHON" -m handler.prefetch --models-dir "$COMFYUI_PATH/models" \
     --models-dir /runpod-volume/models "${read_size[@]}") &
  children+=($!)
fi

read -r -a extra_args <<< "${COMFYUI_ARGS:-}"
read -r -a perf_args <<< "$COMFYUI_PERF_ARGS"

# The card's memory in MiB (the first visible GPU), or nothing where nvidia-smi cannot tell.
card_mib() {
  command -v nvidia-smi >/dev/null || return 0
  local which=() first="${CUDA_VISIBLE_DEVICES:-}"
  first="${first%%,*}"
  [[ -n "$first" ]] && which=(-i "$first")
  nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits "${which[@]}" 2>/dev/null | head -n 1 \
    | tr -dc '0-9' || true
}
case "${COMFYUI_DYNAMIC_VRAM:-auto}" in
  on) ;;
  off) perf_args+=(--disable-dynamic-vram) ;;
  auto)
    if [[ " ${extra_args[*]} " != *" --cpu "* ]]; then
      mib="$(card_mib)"
      if [[ -z "$mib" ]]; then
        log "card memory unknown (nvidia-smi): ComfyUI's dynamic VRAM stays on"
      elif (( mib >= RESIDENT_DIT_MIN_GIB * 1024 )); then
        perf_args+=(--disable-dynamic-vram)
        log "$(( mib / 1024 )) GiB card: DiT resident for the fast path (--disable-dynamic-vram)"
      else
        log "$(( mib / 1024 )) GiB card, under ${RESIDENT_DIT_MIN_GIB} GiB: ComfyUI's dynamic VRAM streams the weights"
      fi
    fi ;;
esac

# tcmalloc (where installed: the Docker image) keeps resident memory flat across many jobs and, with a release
# rate of 0, keeps freed memory for reuse: when ComfyUI swaps a model out of a small GPU (T5 and the DiT trade
# places on a 16 GB card every prompt), the copy to the host lands in pages already mapped instead of fresh
# ones, which glibc would page-fault at ~1.5 GiB/s (measured on an H100 host: 14 GiB/s reused; BENCHMARKS.md).
# It is also what lets a GPU worker load its compiled blocks: under glibc's malloc, loading a package killed the
# process (torch 2.11, H100), so FluxFastPatch loads them only where tcmalloc is mapped (compiled_blocks.py).
if [[ -z "${LD_PRELOAD:-}" ]]; then
  tcmalloc="$(ls /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 2>/dev/null || true)"
  if [[ -n "$tcmalloc" ]]; then
    export LD_PRELOAD="$tcmalloc"
    export TCMALLOC_RELEASE_RATE="${TCMALLOC_RELEASE_RATE:-0}"
  fi
fi

mkdir -p "$COMFYUI_OUTPUT_DIR"
# --database-url: ComfyUI (>= 0.2x) opens an SQLite database at every start, only for its asset index (off here);
# in memory it writes nothing into the image and takes no file lock.
comfy_cmd=("$COMFYUI_PYTHON" main.py --listen "$COMFYUI_LISTEN" --port "$port" --disable-auto-launch
  --log-stdout --output-directory "$COMFYUI_OUTPUT_DIR" --database-url "sqlite:///:memory:"
  --extra-model-paths-config "$here/extra_model_paths.yaml" "${perf_args[@]}" "${extra_args[@]}")

# GPU pre-flight: a worker on a broken GPU should fail in seconds with a clear reason, not on its first job. It
# runs beside ComfyUI's start rather than before it: importing torch takes seconds, and every cold start would
# pay them twice.
preflight_pid=""
if ! is_on "${SKIP_GPU_CHECK:-0}" && [[ " ${extra_args[*]} " != *" --cpu "* ]]; then
  "$COMFYUI_PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' &
  preflight_pid=$!
  children+=("$preflight_pid")
fi

log "starting ComfyUI on $COMFYUI_LISTEN:$port"
(cd "$COMFYUI_PATH" && exec "${comfy_cmd[@]}") &
comfy_pid=$!
children+=("$comfy_pid")
export COMFYUI_PID="$comfy_pid"

log "starting handler: python -m handler $*"
(cd "$here" && exec "$HANDLER_PYTHON" -m handler "$@") &
handler_pid=$!
children+=("$handler_pid")

set +e
if [[ -n "$preflight_pid" ]]; then
  wait "$preflight_pid"
  preflight=$?
  preflight_pid=""
  if (( preflight != 0 )); then
    log "GPU pre-flight failed: torch sees no CUDA device (driver/CUDA mismatch or no GPU). Exiting."
    terminate "${children[@]}"
    exit 1
  fi
fi
wait -n "$comfy_pid" "$handler_pid"
status=$?
set -e
if ! kill -0 "$comfy_pid" 2>/dev/null; then
  log "ComfyUI exited (status $status); stopping the handler"
  terminate "${children[@]}"
  exit $(( status == 0 ? 1 : status ))
fi
log "handler exited (status $status); stopping ComfyUI"
terminate "${children[@]}"
exit "$status"
