#!/usr/bin/env bash
# The cold-start bench (bench/coldstart.py) on a bare GPU machine with PyTorch and no network (the lent device
# machines). Two halves:
#   bash bench/device_coldstart.sh --fetch     here, with network: wheels into .whl/, a ComfyUI v0.3.64 tree into
#                                              .comfyui/ (from COMFYUI_SRC), Debian's tcmalloc into .lib/
#   bash bench/device_coldstart.sh VARIANTS    there: install the wheels, stand in for PyAV if missing, run
# .whl/, .comfyui/ and .lib/ are git-ignored and travel as carried paths (64 MiB in all: the ComfyUI tree is trimmed).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "--fetch" ]]; then
  mkdir -p .whl .lib
  plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
        --platform manylinux_2_34_x86_64 --platform manylinux_2_35_x86_64 --platform manylinux_2_24_x86_64)
  grep -v '^#' bench/device-wheels.txt | xargs python3 -m pip download -q --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp "${plat[@]}" -d .whl
  if [[ -n "${COMFYUI_SRC:-}" ]]; then
    rm -rf .comfyui && cp -r "$COMFYUI_SRC" .comfyui
    rm -rf .comfyui/tests .comfyui/tests-unit .comfyui/comfy/text_encoders/{qwen25,ace_lyrics,hydit_clip}_tokenizer
  fi
  (cd /tmp && apt-get download -qq libtcmalloc-minimal4 && dpkg -x libtcmalloc-minimal4_*.deb /tmp/tc)
  cp /tmp/tc/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 .lib/
  du -sh .whl .lib ${COMFYUI_SRC:+.comfyui}
  exit 0
fi
OUT=${OUT:-/tmp/coldstart-out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
python3 -c "import av" 2>/dev/null || export PYTHONPATH=/tmp/site:$PWD/bench/shims
python3 -c "import torch, triton, runpod; from runpod.serverless.modules import rp_fastapi"
python3 -m bench.coldstart --comfyui .comfyui --out "$OUT" --work /tmp/cold --prime --warmup-steps 1 \
  --tcmalloc "$PWD/.lib/libtcmalloc_minimal.so.4" --variants "${1:-baseline,shipped-nocache,shipped-artifacts,shipped-colddisk,baseline-colddisk}" \
  "${@:2}" 2>&1 | tee "$OUT/run.log" | grep -v "standins\|^ *$"
# Where ComfyUI's own start goes (imports by module), for the "ComfyUI listening" phase.
python3 -m bench.import_profile --comfyui .comfyui --out "$OUT/import-profile.json" > /dev/null 2>&1 \
  && python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print('import profile:', d['wall_s'], 's;', d['top_level_by_cumulative_s'][:6], d['packages_by_self_s'][:8])" "$OUT/import-profile.json"
