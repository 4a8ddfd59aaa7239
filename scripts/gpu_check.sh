#!/usr/bin/env bash
# The GPU check: CUDA tests, the speed benchmark at three widths (eager vs CUDA graph, fp32 vs
# bf16), packed jobs, one epoch of the nine IFT6135 A2 Table 1 runs at full size, and one epoch of
# each published PTB LSTM baseline that needs a GPU (Zaremba et al. 2014's medium and large,
# pytorch/examples' four README rows) projected to its full run, printed as one table (about
# 10 minutes on one H100/H200-class GPU). docs/gpu.md explains each row.
#   scripts/gpu_check.sh                    on a GPU machine, after bash scripts/setup.sh
#   scripts/gpu_check.sh --dry-run          anywhere: the same plumbing at toy sizes on the CPU
#   scripts/gpu_check.sh --parts tests,bench
# Needs PTB: LMEXP_DATA_DIR (default: ../shared/data beside the checkout, else ./data).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
[[ -x "$PYTHON" ]] || command -v "$PYTHON" >/dev/null || PYTHON=python
if [[ -z "${LMEXP_DATA_DIR:-}" && -d ../shared/data/ptb ]]; then
    LMEXP_DATA_DIR=$(cd ../shared/data && pwd)
    export LMEXP_DATA_DIR
fi
exec "$PYTHON" -m benchmarks.gpu_check "$@"
