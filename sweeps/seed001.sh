#!/usr/bin/env bash
# The nine runs of seed 001 (sections 4.1-4.2, "Train and validation performance by
# architecture"): 40 epochs each at the seed's sizes (hidden 1500 for RNN/GRU). Meant for a GPU;
# on a CPU each job takes days. Extra arguments go to Hydra (e.g. device=cuda:1).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=(
  seed001_rnn_adam seed001_rnn_sgd seed001_rnn_sgd_schedule
  seed001_gru_adam seed001_gru_sgd seed001_gru_sgd_schedule
  seed001_transformer_adam seed001_transformer_sgd seed001_transformer_sgd_schedule
)
exec python -m lmexp.train -m "experiment=$(IFS=,; echo "${runs[*]}")" "$@"
