#!/usr/bin/env bash
# Seed 001 §4.2 (optimizers: the other six architecture x optimizer runs), with the seed's settings (40 epochs; meant for a GPU), then its report.
#   sweeps/seed001_4.2_optimizers.sh            the seed's sizes and budget
#   sweeps/seed001_4.2_optimizers.sh --cpu      the CPU-scaled twin (conf/experiment/cpu/): same grid, small widths, one
#                        epoch per run; about 30 minutes on a 2-core CPU
# Further arguments go to Hydra (e.g. device=cuda:1 seed=2).
source "$(dirname "$0")/_study.sh"
run_study seed001-4.2 seed001_rnn_sgd,seed001_rnn_sgd_schedule,seed001_gru_adam,seed001_gru_sgd,seed001_transformer_adam,seed001_transformer_sgd "$@"
