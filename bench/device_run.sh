#!/usr/bin/env bash
# Run the benchmark on a bare GPU machine that has PyTorch but no network (the lent device machines here).
# Expects what `bash bench/device_setup.sh --fetch` leaves in the repo root (.whl/, .devpkg/ with the pinned ComfyUI
# and comfy-kitchen, .lib/libtcmalloc_minimal.so.4, what the image's start.sh preloads), carried along.
# Usage: bench/device_run.sh SCENARIOS BUDGET_S [extra args]
set -uo pipefail
OUT=${OUT:-/tmp/bench-out}
mkdir -p "$OUT"
source bench/device_setup.sh || exit 1
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version,clocks.sm,power.draw --format=csv
python3 -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0), 'transformers', transformers.__version__)"
scen=$1; budget=$2; shift 2
tc=(); [[ -f .lib/libtcmalloc_minimal.so.4 ]] && tc=(--tcmalloc .lib/libtcmalloc_minimal.so.4)
python3 -m bench --comfyui .comfyui --models /tmp/models --out "$OUT" --work /tmp/flux-bench \
  --scenarios "$scen" --budget-s "$budget" "${tc[@]}" "$@" 2>&1 | tee "$OUT/bench.log" | grep -v "^\s*$" | grep -E "===|ERROR|Error|error|Traceback|flux_fast|skipping" | cut -c1-400
( cd /tmp/flux-bench && tar czf "$OUT/artifacts.tgz" --exclude=output --exclude=inductor-cache --exclude=empty-frontend \
    --exclude=pycache --exclude="*.npz" . ) 2>/dev/null
mkdir -p "$OUT/logs" && for f in /tmp/flux-bench/*/comfyui.log; do
  [[ -f "$f" ]] && cp "$f" "$OUT/logs/$(basename "$(dirname "$f")").log"; done
cat "$OUT/BENCHMARKS.md" 2>/dev/null | sed -n '/## Figures/,/## Scenarios/p'
