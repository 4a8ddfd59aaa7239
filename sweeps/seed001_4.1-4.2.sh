#!/usr/bin/env bash
# Seed 001 §4.1 + §4.2 together: the nine runs of Table 1 (every architecture x optimizer), with the seed's settings (40 epochs; meant for a GPU), then its report.
#   sweeps/seed001_4.1-4.2.sh            the seed's sizes and budget
#   sweeps/seed001_4.1-4.2.sh --cpu      the CPU-scaled twin (conf/experiment/cpu/): same grid, small widths, one
#                        epoch per run; about 30 minutes on a 2-core CPU
# Further arguments go to Hydra (e.g. device=cuda:1 seed=2).
source "$(dirname "$0")/_study.sh"
run_study seed001-4.1-4.2 seed001_rnn_adam,seed001_rnn_sgd,seed001_rnn_sgd_schedule,seed001_gru_adam,seed001_gru_sgd,seed001_gru_sgd_schedule,seed001_transformer_adam,seed001_transformer_sgd,seed001_transformer_sgd_schedule "$@"
