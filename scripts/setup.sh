#!/usr/bin/env bash
# Create .venv (if missing) and install lmexp with the tested dependency versions.
# torch goes first: once a torch that satisfies the project's range is installed, pip pulls no
# other build. Set LMEXP_TORCH to choose it (e.g. a CUDA build); the default is torch==2.13.0.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    "${PYTHON:-python3}" -m venv .venv
fi
. .venv/bin/activate
if ! python -c "import torch" 2>/dev/null; then
    pip install "${LMEXP_TORCH:-torch==2.13.0}"
fi
pip install --quiet -c constraints.txt -e ".[dev,launchers,optuna]"
