#!/usr/bin/env bash
# The used-by sweep: RNN, GRU and Transformer x plain SGD and Adam on Penn Treebank with the
# default sizes and budget (6 jobs, about 25 minutes on a 2-core CPU; see README), then its report.
# Extra arguments go to Hydra, e.g. `sweeps/arch_x_optim.sh trainer.max_epochs=3 seed=1,2,3`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
sweep_dir="outputs/multirun/arch_x_optim_$(date +%Y-%m-%d_%H-%M-%S-%N)"
rc=0
"$PYTHON" -m lmexp.train -m model=rnn,gru,transformer optim=sgd,adam "hydra.sweep.dir=$sweep_dir" "$@" || rc=$?
"$PYTHON" -m analysis.report "$sweep_dir" --out "$sweep_dir/report"
exit "$rc"
