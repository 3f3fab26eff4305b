#!/usr/bin/env bash
# The cold-start bench (bench/coldstart.py) on a bare GPU machine with PyTorch and no network (the lent device
# machines), after `bash bench/device_setup.sh --fetch` here (.whl/, .devpkg/ and .lib/ are carried).
#   bash bench/device_coldstart.sh VARIANTS    there: install, run
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/coldstart-out}
mkdir -p "$OUT"
source bench/device_setup.sh
python3 -c "import torch, triton, runpod; from runpod.serverless.modules import rp_fastapi"
python3 -m bench.coldstart --comfyui .comfyui --out "$OUT" --work /tmp/cold --prime --warmup-steps 1 \
  --tcmalloc "$PWD/.lib/libtcmalloc_minimal.so.4" --variants "${1:-baseline,shipped-nocache,shipped-artifacts,shipped-colddisk,baseline-colddisk}" \
  "${@:2}" 2>&1 | tee "$OUT/run.log" | grep -v "standins\|^ *$"
# Where ComfyUI's own start goes (imports by module), for the "ComfyUI listening" phase (IMPORT_PROFILE=0: skip).
if [[ "${IMPORT_PROFILE:-1}" != "0" ]]; then
  python3 -m bench.import_profile --comfyui .comfyui --out "$OUT/import-profile.json" > /dev/null 2>&1 \
    && python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print('import profile:', d['wall_s'], 's;', d['top_level_by_cumulative_s'][:6], d['packages_by_self_s'][:8])" "$OUT/import-profile.json"
fi
