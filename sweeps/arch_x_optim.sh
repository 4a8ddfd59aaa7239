#!/usr/bin/env bash
# The used-by sweep: RNN, GRU and Transformer x plain SGD and Adam on Penn Treebank, with the
# default sizes and budget (6 jobs, about 25 minutes on a 2-core CPU; see README).
# Extra arguments go to Hydra, e.g. `sweeps/arch_x_optim.sh trainer.max_epochs=3 seed=1,2,3`.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python -m lmexp.train -m model=rnn,gru,transformer optim=sgd,adam "$@"
