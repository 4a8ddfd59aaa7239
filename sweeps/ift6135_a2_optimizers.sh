#!/usr/bin/env bash
# IFT6135 assignment 2, §4.2 (optimizers: the other six architecture x optimizer runs), with the
# assignment's settings (40 epochs; meant for a GPU), then its report.
#   sweeps/ift6135_a2_optimizers.sh          the assignment's sizes and budget
#   sweeps/ift6135_a2_optimizers.sh --cpu    scale=cpu: the same grid at a tenth of the hidden width
#       (half the embedding; Transformer: a quarter), at most one epoch or 2.5 minutes per run;
#       under 20 minutes on a 2-core CPU (6 runs)
# Further arguments go to Hydra (e.g. device=cuda:1 seed=2).
source "$(dirname "$0")/_study.sh"
run_study ift6135_a2-optimizers table1_rnn_sgd,table1_rnn_sgd_schedule,table1_gru_adam,table1_gru_sgd,table1_transformer_adam,table1_transformer_sgd "$@"
