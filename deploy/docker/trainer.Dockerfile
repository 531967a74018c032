# syntax=docker/dockerfile:1.7
#
# The trainer images: the pipeline's stages (`python -m llmops_trainer.<stage>`, `torchrun ... -m
# llmops_trainer.train`) with llmops-trainer's closure only, from the same uv.lock as the services.
#
#   docker build -f deploy/docker/trainer.Dockerfile --build-arg DEVICE=gpu -t trainer:gpu .
#   docker buildx bake -f deploy/docker/docker-bake.json trainer     # every tag of the ImageTable
#
# DEVICE: gpu or cpu. One image per device serves every job type (the stages take the job type as
# a flag); docker-bake.json tags it once per job type, as ImageTable names it
# ({registry}/trainer-{job}:{tag}-{device}).
#
# * gpu: the locked closure as it is: PyPI's torch for Linux is the CUDA build, and its CUDA
#   user-space libraries (cuda-toolkit, cuDNN, NCCL, ...) are locked wheels, so a python slim
#   base suffices (the host provides only the NVIDIA driver, through the container toolkit);
#   plus the `gpu` extra (bitsandbytes, for QLoRA).
# * cpu: the locked closure without torch's CUDA-only dependencies (pruned from `uv export`), and
#   torch at the locked version from the PyTorch CPU index: several GB smaller, same versions.
#
# No ENTRYPOINT: the pipeline sets the container's command (python or torchrun), so python and
# torchrun come first on PATH, from the virtualenv. Runs as uid 10001 with a writable HOME that
# holds the Hugging Face and torch caches. Sizes and how they were measured: deploy/README.md.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG DEVICE=cpu

# ---------------------------------------------------------------------------------- builder
FROM ${PYTHON_IMAGE} AS builder
ARG DEVICE
ARG UV_VERSION=0.13.9
RUN case "${DEVICE}" in \
      cpu|gpu) ;; \
      *) echo "DEVICE must be cpu or gpu (got '${DEVICE}')" >&2; exit 1 ;; \
    esac
RUN --mount=type=cache,target=/root/.cache/pip python -m pip install "uv==${UV_VERSION}"
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# every workspace member's manifest: uv reads the whole workspace of the lock
COPY pyproject.toml uv.lock ./
COPY shared/pyproject.toml shared/
COPY cli/pyproject.toml cli/
COPY services/gateway/pyproject.toml services/gateway/
COPY services/tracking/pyproject.toml services/tracking/
COPY services/serving/pyproject.toml services/serving/
COPY services/workflow/pyproject.toml services/workflow/
COPY services/registry/pyproject.toml services/registry/
COPY services/versioning/pyproject.toml services/versioning/
COPY services/github-sync/pyproject.toml services/github-sync/
COPY trainer/pyproject.toml trainer/

# ------------------------------------------------------------------------------ gpu virtualenv
FROM builder AS venv-gpu
# 1. third-party dependencies from the lock (a layer cached until the lock changes)
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package llmops-trainer --extra gpu
# 2. llmops-trainer itself, not editable
COPY trainer/ trainer/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package llmops-trainer --extra gpu

# ------------------------------------------------------------------------------ cpu virtualenv
FROM builder AS venv-cpu
# Where torch's CPU build comes from (a mirror of it works too).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# 1. the locked closure without torch and its CUDA-only dependencies (`--prune` drops each with
#    what only it needs: cuda-pathfinder, nvidia-cublas, ...), installed with the lock's hashes;
#    then torch at the locked version from the CPU index (the lock has no hash for that wheel).
#    The pruned names are torch's `sys_platform == 'linux'` dependencies in uv.lock
#    (tests/deploy/test_trainer_images.py keeps them in step with the lock).
RUN --mount=type=cache,target=/root/.cache/uv \
    set -eu; \
    uv export --quiet --frozen --no-dev --package llmops-trainer --no-emit-workspace \
      --no-header --no-annotate --no-hashes --output-file /tmp/locked.txt; \
    torch_pin="$(sed -n 's/^\(torch==[^ ;]*\).*/\1/p' /tmp/locked.txt)"; \
    test -n "${torch_pin}" || { echo "no torch pin in the lock's export" >&2; exit 1; }; \
    uv export --quiet --frozen --no-dev --package llmops-trainer --no-emit-workspace \
      --no-header --no-annotate \
      --no-emit-package torch \
      --prune cuda-bindings --prune cuda-toolkit --prune triton \
      --prune nvidia-cudnn-cu13 --prune nvidia-cusparselt-cu13 \
      --prune nvidia-nccl-cu13 --prune nvidia-nvshmem-cu13 \
      --output-file /tmp/cpu-requirements.txt; \
    if grep -E '^(torch|triton|nvidia-|cuda-)' /tmp/cpu-requirements.txt; then \
      echo "CUDA packages left in the CPU closure: update the --prune list" >&2; exit 1; \
    fi; \
    uv venv /app/.venv; \
    uv pip install --python /app/.venv/bin/python --no-deps --require-hashes \
      -r /tmp/cpu-requirements.txt; \
    uv pip install --python /app/.venv/bin/python --no-deps \
      --index-url "${TORCH_INDEX_URL}" "${torch_pin}"
# 2. llmops-trainer itself, not editable; then every installed requirement must be satisfied
COPY trainer/ trainer/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install --python /app/.venv/bin/python --no-deps ./trainer \
 && uv pip check --python /app/.venv/bin/python

# ----------------------------------------------------------------------- the device's virtualenv
FROM venv-${DEVICE} AS venv
ARG DEVICE
# What the pipeline runs must be there: python and torchrun in the virtualenv, every stage
# module, the run-resolving wrapper's mlflow, and a torch built for the device (a CUDA build
# imports without a GPU; a CPU build has no CUDA version).
RUN test -x /app/.venv/bin/python \
 && test -x /app/.venv/bin/torchrun \
 && /app/.venv/bin/python -c "import importlib.util, sys; \
stages = ['llmops_trainer.prepare_data', 'llmops_trainer.train', 'llmops_trainer.evaluate', 'llmops_trainer.register']; \
missing = [m for m in stages if importlib.util.find_spec(m) is None]; \
sys.exit(f'missing stage modules: {missing}' if missing else 0)" \
 && /app/.venv/bin/python -c "import sys, mlflow, torch; \
cuda = torch.version.cuda; \
sys.exit(0 if bool(cuda) == ('${DEVICE}' == 'gpu') else f'${DEVICE} image has torch {torch.__version__} (CUDA {cuda})')"

# ---------------------------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE} AS runtime
ARG DEVICE
# HOME is owned by the user and group-writable by gid 0, so platforms that run images under an
# arbitrary uid (in group 0) can write the caches too.
RUN groupadd --gid 10001 trainer \
 && useradd --uid 10001 --gid 10001 --home-dir /home/trainer --create-home \
      --shell /usr/sbin/nologin trainer \
 && mkdir -p /home/trainer/.cache/huggingface /home/trainer/.cache/torch \
 && chown -R 10001:0 /home/trainer \
 && chmod -R g=u /home/trainer

COPY --from=venv /app/.venv /app/.venv

LABEL org.opencontainers.image.title="llmops-trainer" \
      org.opencontainers.image.description="LLM-Ops reference trainer (${DEVICE})" \
      io.llm-ops.trainer.device="${DEVICE}"

ENV PATH=/app/.venv/bin:$PATH \
    VIRTUAL_ENV=/app/.venv \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LLMOPS_TRAINER_DEVICE=${DEVICE} \
    HOME=/home/trainer \
    XDG_CACHE_HOME=/home/trainer/.cache \
    HF_HOME=/home/trainer/.cache/huggingface \
    TORCH_HOME=/home/trainer/.cache/torch \
    TRITON_CACHE_DIR=/home/trainer/.cache/triton \
    HF_HUB_DISABLE_TELEMETRY=1 \
    GIT_PYTHON_REFRESH=quiet

USER 10001:10001
WORKDIR /home/trainer

# ------------------------------------------------------------------ per-device final images
FROM runtime AS trainer-cpu

FROM runtime AS trainer-gpu
# CUDA needs the driver's compute libraries mounted by the NVIDIA container toolkit (older
# toolkits mount only `utility` when this is unset). Which GPUs: the device plugin's business.
ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility

FROM trainer-${DEVICE} AS trainer
