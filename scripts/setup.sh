#!/usr/bin/env bash
# Create .venv (if missing) and install lmexp with the tested dependency versions.
# torch goes first: once a torch that satisfies the project's range is installed, pip pulls no
# other build. Set LMEXP_TORCH to choose it: pip arguments, split on spaces, e.g. a CUDA build
#   LMEXP_TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
# (docs/gpu.md); the default is torch==2.13.0. A torch already in .venv is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    "${PYTHON:-python3}" -m venv .venv
fi
. .venv/bin/activate
if ! python -c "import torch" 2>/dev/null; then
    read -r -a torch_spec <<<"${LMEXP_TORCH:-torch==2.13.0}"
    pip install "${torch_spec[@]}"
fi
pip install --quiet -c constraints.txt -e ".[dev,launchers,optuna,postgres,trackers]"
