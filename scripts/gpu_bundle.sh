#!/usr/bin/env bash
# Pack what the GPU check needs on a machine that has a CUDA PyTorch but no network and none of
# lmexp's other dependencies (a lent GPU machine: docs/gpu.md#on-a-lent-gpu-machine), into .gpu/
# (git-ignored, a few MB):
#   .gpu/whl/   wheels of lmexp's dependencies that such an image lacks, at constraints.txt's
#               versions, for its Python (GPU_PYTHON_VERSION, default 3.12)
#   .gpu/data/  the PTB corpus, from $LMEXP_DATA_DIR (default ../shared/data)
# Then carry .gpu there and run scripts/gpu_device_check.sh. Needs pip's index (PyPI) here.
set -euo pipefail
cd "$(dirname "$0")/.."
PY_VERSION=${GPU_PYTHON_VERSION:-3.12}
PYTHON=${PYTHON:-.venv/bin/python}
[[ -x "$PYTHON" ]] || PYTHON=python3
DATA=${LMEXP_DATA_DIR:-../shared/data}
# Hydra and its launchers, Optuna (lmexp's search sweeper) and what they import; the image has
# torch, numpy, pandas, scipy, matplotlib, tokenizers, tqdm, tabulate, filelock, pytest, joblib
# and cloudpickle already.
PACKAGES=(hydra-core omegaconf hydra-joblib-launcher hydra-submitit-launcher submitit optuna
    alembic SQLAlchemy Mako MarkupSafe colorlog typing_extensions)
pins=()
for name in "${PACKAGES[@]}"; do
    pin=$(grep -i -E "^${name}==" constraints.txt || true)
    [[ -n "$pin" ]] || { echo "gpu_bundle: $name has no pin in constraints.txt" >&2; exit 2; }
    pins+=("$pin")
done
rm -rf .gpu/whl && mkdir -p .gpu/whl .gpu/data
platforms=()
for n in 17 27 28; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version "$PY_VERSION" \
    --implementation cp "${platforms[@]}" --platform manylinux2014_x86_64 -d .gpu/whl "${pins[@]}"
# Hydra's parser runtime is published as a source package only: build its (pure Python) wheel
antlr=$(grep -i -E "^antlr4-python3-runtime==" constraints.txt)
"$PYTHON" -m pip wheel --quiet --no-deps -w .gpu/whl "$antlr"
rm -rf .gpu/data/ptb && cp -r "$DATA/ptb" .gpu/data/ptb
du -sh .gpu/whl .gpu/data
