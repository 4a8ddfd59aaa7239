#!/usr/bin/env bash
# Zaremba et al. (2014), Table 1: one of its Penn Treebank LSTMs over 3 seeds, one after
# another, then the report: test perplexity (the test set as one sequence, as TensorFlow's
# tutorial scores it) as the mean and 95 % interval of the seeds, time to the best evaluation,
# tokens/s, and validation perplexity against wall-clock time (figures/cells-val-ppl.png).
#   sweeps/zaremba2014.sh [small|medium|large] [hydra overrides, e.g. seeds=5 precision=bf16]
# small fits a 2-core CPU (about 20 minutes a seed); medium and large are GPU runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python}
size=${1:-small}
shift || true
dir="outputs/multirun/zaremba2014-${size}_$(date +%Y-%m-%d_%H-%M-%S-%N)"
rc=0
"$PYTHON" -m lmexp.train -m "experiment=zaremba2014/$size" seeds=3 "hydra.sweep.dir=$dir" "$@" || rc=$?
"$PYTHON" -m analysis.report "$dir" --out "$dir/report" --metric test_ppl_whole \
    --title "Zaremba et al. (2014), $size LSTM" -q
cat "$dir/report/cells.md"
echo "report: $dir/report/report.html"
exit "$rc"
