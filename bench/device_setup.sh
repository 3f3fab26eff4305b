#!/usr/bin/env bash
# What both GPU benches need on a bare device machine (PyTorch there, no network), and how it gets there.
#   bash bench/device_setup.sh --fetch   here, with network: wheels into .whl/ (bench/device-wheels.txt), ComfyUI
#                                        (COMFYUI_SRC, a checkout of the pinned release) and comfy-kitchen into
#                                        .devpkg/ as xz tarballs, Debian's tcmalloc into .lib/
#   source bench/device_setup.sh         there: unpack and install into /tmp/site, export PYTHONPATH
# Why tarballs: what travels is capped at 64 MiB. comfy-kitchen's wheel is 58 MB (CUDA and ROCm kernels); without
# the ROCm half and with xz it is 21 MB, and the ComfyUI tree (24 MB) packs to ~5 MB. .whl/, .devpkg/ and .lib/
# are git-ignored and carried.
if [[ "${1:-}" == "--fetch" ]]; then
  set -euo pipefail
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  mkdir -p .whl .lib .devpkg
  plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
        --platform manylinux_2_34_x86_64 --platform manylinux_2_35_x86_64 --platform manylinux_2_24_x86_64
        --platform manylinux_2_27_x86_64)
  pyver=(--python-version 3.12 --implementation cp)
  grep -v '^#' bench/device-wheels.txt | xargs python3 -m pip download -q --no-deps --only-binary=:all: "${pyver[@]}" "${plat[@]}" -d .whl
  kitchen=$(grep -E '^comfy-kitchen==' requirements-comfyui.txt)
  tmp=$(mktemp -d)
  python3 -m pip download -q --no-deps --only-binary=:all: "${pyver[@]}" "${plat[@]}" -d "$tmp" "$kitchen"
  (cd "$tmp" && unzip -q ./*.whl && rm -rf comfy_kitchen/backends/hip ./*.whl && tar cf - . | xz -T0 -9 > "$OLDPWD/.devpkg/comfy_kitchen.tar.xz")
  rm -rf "$tmp"
  if [[ -n "${COMFYUI_SRC:-}" ]]; then
    tar cf - -C "$COMFYUI_SRC" --exclude=.git --exclude=tests --exclude=tests-unit --exclude=__pycache__ . \
      | xz -T0 -9 > .devpkg/comfyui.tar.xz
  fi
  # Optional: an older release for side-by-side micro-benchmarks (bench.dit_profile --comfyui .comfyui-old), e.g.
  # v0.3.64 when asking where v0.33.0's compiled sampling lost 0.03 s/step.
  if [[ -n "${COMFYUI_OLD_SRC:-}" ]]; then
    tar cf - -C "$COMFYUI_OLD_SRC" --exclude=.git --exclude=tests --exclude=tests-unit --exclude=__pycache__ . \
      | xz -T0 -9 > .devpkg/comfyui-old.tar.xz
  fi
  (cd /tmp && apt-get download -qq libtcmalloc-minimal4 && dpkg -x libtcmalloc-minimal4_*.deb /tmp/tc)
  cp /tmp/tc/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 .lib/
  du -sh .whl .lib .devpkg
  exit 0
fi
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || return 1
tar xJf .devpkg/comfy_kitchen.tar.xz -C /tmp/site || return 1
if [[ ! -f .comfyui/main.py ]]; then mkdir -p .comfyui && tar xJf .devpkg/comfyui.tar.xz -C .comfyui || return 1; fi
if [[ -f .devpkg/comfyui-old.tar.xz && ! -f .comfyui-old/main.py ]]; then
  mkdir -p .comfyui-old && tar xJf .devpkg/comfyui-old.tar.xz -C .comfyui-old || return 1
fi
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
python3 -c "import av" 2>/dev/null || export PYTHONPATH=/tmp/site:$PWD/bench/shims   # PyAV stand-in (bench/shims)
