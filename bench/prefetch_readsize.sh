#!/usr/bin/env bash
# ComfyUI's start on a cold page cache with the boot-time model prefetch (handler.prefetch) beside it, by read size.
# Why: on a cold disk ComfyUI's own imports (torch's libraries, page by page) queue behind the prefetch's reads; a
# smaller read leaves fewer bytes ahead of them. Each start drops the page cache (root), starts the prefetch and
# ComfyUI (start.sh's flags, --cpu --quick-test-for-ci: to the exit after its PromptServer is built) at the same
# instant, and prints one JSON line: ComfyUI's start and the prefetch's own rate. Sizes are interleaved per round.
#   sudo bash bench/prefetch_readsize.sh COMFYUI_PATH MODELS_DIR ROUNDS SIZE...   (SIZE: MiB per read, or none)
# Environment: COMFYUI_PYTHON [python3] (ComfyUI's interpreter), HANDLER_PYTHON [python3].
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
comfyui=$1 models=$2 rounds=$3; shift 3
[[ -w /proc/sys/vm/drop_caches ]] || { echo "needs root (writes /proc/sys/vm/drop_caches)" >&2; exit 2; }
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
read -r -a perf_args <<< "--preview-method none --disable-api-nodes --cache-classic"
for round in $(seq 1 "$rounds"); do
  for size in "$@"; do
    sync; echo 3 > /proc/sys/vm/drop_caches; sleep 1
    started=$(date +%s.%N)
    prefetch=()
    if [[ $size != none ]]; then
      "${HANDLER_PYTHON:-python3}" -m handler.prefetch --models-dir "$models" --read-mib "$size" > "$log/prefetch" 2>&1 &
      prefetch=($!)
    fi
    (cd "$comfyui" && "${COMFYUI_PYTHON:-python3}" main.py --cpu --quick-test-for-ci "${perf_args[@]}" \
       --extra-model-paths-config "$repo/extra_model_paths.yaml" --port 18999 > "$log/comfyui" 2>&1) \
      || { echo "ComfyUI failed to start; its log: $log/comfyui" >&2; trap - EXIT; exit 1; }
    ended=$(date +%s.%N)
    (( ${#prefetch[@]} )) && wait "${prefetch[0]}"
    rate=$(grep -o "[0-9.]* GiB/s" "$log/prefetch" 2>/dev/null | head -n 1 || true)
    printf '{"read_mib": "%s", "round": %d, "comfyui_start_s": %.2f, "prefetch": "%s"}\n' \
      "$size" "$round" "$(awk "BEGIN { print $ended - $started }")" "$rate"
  done
done
