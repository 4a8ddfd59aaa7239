#!/usr/bin/env bash
# The GPU check on a machine with a CUDA PyTorch and no network, from what scripts/gpu_bundle.sh
# packed into .gpu/ (docs/gpu.md#on-a-lent-gpu-machine). Installs the bundled wheels into a
# scratch folder (the machine's own Python and torch stay as they are), then runs
# scripts/gpu_check.sh within a budget, and copies its table, CSVs and the GPU's description
# to <dest> (default $OUT, else ./gpu-check-result): eight files at most.
#   scripts/gpu_device_check.sh [gpu_check.sh arguments...]    e.g. --parts tests,packed
# GPU_CHECK_BUDGET_S (default 480) caps the whole check; the table so far is kept either way.
set -uo pipefail
cd "$(dirname "$0")/.."
[[ -d .gpu/whl && -d .gpu/data/ptb ]] || {
    echo "gpu_device_check: no .gpu/ bundle here; run scripts/gpu_bundle.sh first" >&2; exit 2; }
DEST=${OUT:-gpu-check-result}
SITE=${GPU_SITE:-/tmp/lmexp-gpu-site}
CHECK=$(mktemp -d /tmp/lmexp-gpu-check-XXXX)
mkdir -p "$DEST"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" .gpu/whl/*.whl || exit 2
export PYTHONPATH="$SITE:$PWD" LMEXP_DATA_DIR="$PWD/.gpu/data" PYTHON=python3 PYTHONUNBUFFERED=1
nvidia-smi >"$DEST/nvidia-smi.txt" 2>&1
python3 -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name())" \
    >>"$DEST/nvidia-smi.txt" 2>&1
scripts/gpu_check.sh --out "$CHECK" --budget-s "${GPU_CHECK_BUDGET_S:-480}" "$@" \
    2>&1 | tee "$DEST/gpu_check.log"
status=${PIPESTATUS[0]}
cp "$CHECK/gpu_check.md" "$DEST/" 2>/dev/null
# the packed rows' and the speed benchmark's own CSVs (the rest stays in $CHECK)
for f in "$CHECK"/packed_step.csv "$CHECK"/packed_step_graph.csv "$CHECK"/packed_sweeps.csv \
    "$CHECK"/bench.csv "$CHECK"/pack.csv; do
    [[ -f "$f" ]] && cp "$f" "$DEST/"
done
exit "$status"
