# syntax=docker/dockerfile:1.7
#
# Runpod Serverless worker: FLUX.1-dev text-to-image through a headless ComfyUI.
#
#   Baked models (needs a Hugging Face token whose account accepted the FLUX.1-dev license):
#     DOCKER_BUILDKIT=1 docker build --secret id=hf_token,env=HF_TOKEN -t flux-worker .
#   Network-volume image (models under /runpod-volume/models, see extra_model_paths.yaml):
#     docker build --build-arg BAKE_MODELS=false -t flux-worker:volume .
#
# The token only ever exists as a BuildKit secret mounted for the RUN steps that download the
# models: it is never a build arg or an environment variable, so it is in no layer, no image
# metadata and no build log (the downloader never logs it).

# Ubuntu 24.04 (Python 3.12 from the OS) with NVIDIA's container setup. Digest of the multi-arch index for this
# tag; bump tag and digest together. PyTorch brings its own CUDA 13.0 libraries (the nvidia-* wheels), so the
# CUDA 12.8 libraries of this base are not what torch runs on; the host needs driver >= 580 for torch's cu130.
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04@sha256:ac55d124da4882b497f732d8dfd9a702d5447a5f29d08d56da6f64f0a1eb34bc
FROM ${CUDA_IMAGE}

# ComfyUI release the worker is tested against (tests/ and .github/workflows/tests.yml use the same), pinned by tag
# and checked by commit: a tag that moved fails the build. Moving to another release: README, "Upgrading ComfyUI".
ARG COMFYUI_VERSION=v0.33.0
ARG COMFYUI_COMMIT=2f35f4a08176d993cded35dac3332be4f7287f41
ARG COMFYUI_REPO=https://github.com/Comfy-Org/ComfyUI.git
# PyTorch: the release every GPU benchmark ran (bench/results.json and bench/profiles/*.json `_env`: torch 2.11.0,
# Triton 3.6.0), in the same CUDA 13.0 build (+cu130). ComfyUI >= 0.2x needs a cu130 build for its comfy-kitchen
# CUDA kernels (FLUX's RoPE runs through them; on a cu12x torch ComfyUI disables them and warns), and the bench
# measured cu130, so the image runs what was measured. A cu130 build needs NVIDIA driver >= 580 on the host
# (Runpod: allow CUDA 13.0 and newer in the endpoint's CUDA version filter). tests/test_packaging.py fails when
# these pins and the benchmark's torch drift apart.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu130
ARG TORCH_VERSION=2.11.0+cu130
ARG TORCHVISION_VERSION=0.26.0+cu130
ARG TORCHAUDIO_VERSION=2.11.0+cu130
# The Triton torch 2.11.0 requires (the wheel pins it exactly; pinned here too so a drift is visible).
ARG TRITON_VERSION=3.6.0
# false: no models in the image (they come from a network volume, see extra_model_paths.yaml).
ARG BAKE_MODELS=true

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    COMFYUI_PATH=/comfyui

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# OS packages: Python 3.12 (the OS's) with its headers and gcc (Triton compiles small launcher
# stubs at run time for torch.compile), git for the ComfyUI checkout, tcmalloc (start.sh preloads
# it to keep resident memory flat across jobs), and the libraries OpenCV/av wheels expect.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      python3 python3-venv python3-dev gcc libc6-dev \
      git ca-certificates \
      libtcmalloc-minimal4t64 \
      libgl1 libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/* \
 && test -e /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 \
 && python3 -m venv /opt/venv \
 && python -m pip install --upgrade pip==25.2

# PyTorch first: the largest layer, and the one that changes least.
RUN pip install --index-url "${TORCH_INDEX_URL}" \
      "torch==${TORCH_VERSION}" "torchvision==${TORCHVISION_VERSION}" "torchaudio==${TORCHAUDIO_VERSION}" \
      "triton==${TRITON_VERSION}"

# ComfyUI from its upstream release at the pinned tag (never vendored into this repo). Its own
# requirements.txt is unpinned, so requirements-comfyui.txt constrains every package to the version
# the tests ran with; torch stays the CUDA build installed above.
COPY requirements-comfyui.txt /tmp/requirements-comfyui.txt
RUN git clone --depth 1 --branch "${COMFYUI_VERSION}" "${COMFYUI_REPO}" /comfyui \
 && test "$(git -C /comfyui rev-parse HEAD)" = "${COMFYUI_COMMIT}" \
 && rm -rf /comfyui/.git \
 && grep -q "__version__ = \"${COMFYUI_VERSION#v}\"" /comfyui/comfyui_version.py \
 && printf 'torch==%s\ntorchvision==%s\ntorchaudio==%s\ntriton==%s\n' \
      "${TORCH_VERSION}" "${TORCHVISION_VERSION}" "${TORCHAUDIO_VERSION}" "${TRITON_VERSION}" > /tmp/torch-pins.txt \
 && pip install --extra-index-url "${TORCH_INDEX_URL}" \
      -r /comfyui/requirements.txt -c /tmp/requirements-comfyui.txt -c /tmp/torch-pins.txt

# The worker's own runtime dependencies (pinned).
COPY requirements.txt /tmp/requirements.txt
RUN pip install -r /tmp/requirements.txt -c /tmp/torch-pins.txt

# Models, before the worker's code so that a code change does not re-download ~17 GB. Only the
# downloader (stdlib + huggingface_hub) and the manifest are copied for these steps. One layer per
# model folder: a change to one file re-downloads only its folder, and no layer holds them all.
COPY models.txt handler/model_files.py /opt/model-setup/
RUN --mount=type=secret,id=hf_token,required=false \
    if [ "${BAKE_MODELS}" = "true" ]; then \
      HF_HOME=/tmp/hf HF_HUB_DISABLE_PROGRESS_BARS=1 python /opt/model-setup/model_files.py \
        --manifest /opt/model-setup/models.txt --models-dir /comfyui/models \
        --token-file /run/secrets/hf_token --only vae \
      && rm -rf /tmp/hf; \
    fi
RUN --mount=type=secret,id=hf_token,required=false \
    if [ "${BAKE_MODELS}" = "true" ]; then \
      HF_HOME=/tmp/hf HF_HUB_DISABLE_PROGRESS_BARS=1 python /opt/model-setup/model_files.py \
        --manifest /opt/model-setup/models.txt --models-dir /comfyui/models \
        --token-file /run/secrets/hf_token --only text_encoders \
      && rm -rf /tmp/hf; \
    fi
RUN --mount=type=secret,id=hf_token,required=false \
    if [ "${BAKE_MODELS}" = "true" ]; then \
      HF_HOME=/tmp/hf HF_HUB_DISABLE_PROGRESS_BARS=1 python /opt/model-setup/model_files.py \
        --manifest /opt/model-setup/models.txt --models-dir /comfyui/models \
        --token-file /run/secrets/hf_token --only diffusion_models \
      && rm -rf /tmp/hf; \
    else \
      echo "BAKE_MODELS=${BAKE_MODELS}: no models baked; ComfyUI will look under /runpod-volume/models"; \
    fi

# Custom node packs (custom_nodes.txt, README "Custom node packs"): each pack at its pinned commit or version into
# /comfyui/custom_nodes, its requirements into this venv under the pins above (torch*, requirements-comfyui.txt,
# requirements.txt: a pack that wants another version fails the build, named), its install.py only where
# NODE_PACKS_ALLOW_INSTALL_SCRIPTS names it; then ComfyUI's start-up runs once on the CPU and the build fails naming
# every pack whose nodes did not load. The record it writes is what the worker lists and names missing packs from.
# After the models, so that changing a pack does not download them again; with the default (empty) list only the
# list is read and an empty record written.
ARG NODE_PACKS_ALLOW_INSTALL_SCRIPTS=
COPY custom_nodes.txt tools/install_node_packs.py tools/node_pack_probe.py /opt/node-packs/
RUN NODE_PACKS_ALLOW_INSTALL_SCRIPTS="${NODE_PACKS_ALLOW_INSTALL_SCRIPTS}" python /opt/node-packs/install_node_packs.py \
      --list /opt/node-packs/custom_nodes.txt --comfyui /comfyui \
      --constraints /tmp/torch-pins.txt --constraints /tmp/requirements-comfyui.txt --constraints /tmp/requirements.txt \
      --record /comfyui/custom_nodes/node_packs.json

# The worker: handler, workflows, our ComfyUI nodes (loaded as custom nodes through
# extra_model_paths.yaml, which start.sh always passes), start.sh.
WORKDIR /worker
COPY handler/ /worker/handler/
COPY workflows/ /worker/workflows/
COPY comfy_nodes/ /worker/comfy_nodes/
COPY models.txt extra_model_paths.yaml start.sh /worker/
# The deployer's one-off build of the compiled blocks (python -m tools.bake_compiled_blocks; compile-artifacts/README.md).
COPY tools/__init__.py tools/bake_compiled_blocks.py tools/soak.py /worker/tools/
# Compiled FLUX blocks for the GPUs the image was baked on, if any (compile-artifacts/README.md); others build theirs.
COPY compile-artifacts/ /worker/compile-artifacts/

# UI-format workflows go where the ComfyUI GUI lists saved workflows (Workflows sidebar).
# /start.sh is a wrapper, not a symlink: start.sh finds its repo files next to itself.
# Bytecode for ComfyUI's and the worker's sources is compiled here, once: a serverless worker starts
# from a fresh container every cold start, so otherwise every cold start compiles ~400 modules first
# (ComfyUI's start went from 6.1-6.6 s to 5.7 s with it, on a 2-core CPU box; pip compiles site-packages already).
RUN python -m compileall -q -j 0 /comfyui /worker \
 && mkdir -p /comfyui/user/default/workflows \
 && for f in /worker/workflows/*.ui.json; do \
      [ -e "$f" ] || continue; \
      cp "$f" "/comfyui/user/default/workflows/$(basename "$f" .ui.json).json"; \
    done \
 && chmod +x /worker/start.sh \
 && printf '#!/bin/sh\nexec /worker/start.sh "$@"\n' > /start.sh \
 && chmod +x /start.sh

ENV WORKFLOWS_DIR=/worker/workflows \
    WARMUP_STEPS=1 \
    TORCHINDUCTOR_FX_GRAPH_CACHE=1

CMD ["/start.sh"]
