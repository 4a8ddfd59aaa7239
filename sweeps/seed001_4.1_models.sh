#!/usr/bin/env bash
# Seed 001 §4.1 (model comparison: one run per architecture), with the seed's settings (40 epochs; meant for a GPU), then its report.
#   sweeps/seed001_4.1_models.sh            the seed's sizes and budget
#   sweeps/seed001_4.1_models.sh --cpu      the CPU-scaled twin (conf/experiment/cpu/): same grid, small widths, one
#                        epoch per run; about 30 minutes on a 2-core CPU
# Further arguments go to Hydra (e.g. device=cuda:1 seed=2).
source "$(dirname "$0")/_study.sh"
run_study seed001-4.1 seed001_rnn_adam,seed001_gru_sgd_schedule,seed001_transformer_sgd_schedule "$@"
