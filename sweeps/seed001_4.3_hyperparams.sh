#!/usr/bin/env bash
# Seed 001 §4.3 (hyper-parameter exploration: Table 2, three settings per architecture), with the seed's settings (40 epochs; meant for a GPU), then its report.
#   sweeps/seed001_4.3_hyperparams.sh            the seed's sizes and budget
#   sweeps/seed001_4.3_hyperparams.sh --cpu      the CPU-scaled twin (conf/experiment/cpu/): same grid, small widths, one
#                        epoch per run; about 30 minutes on a 2-core CPU
# Further arguments go to Hydra (e.g. device=cuda:1 seed=2).
source "$(dirname "$0")/_study.sh"
run_study seed001-4.3 seed001_hp_rnn_1,seed001_hp_rnn_2,seed001_hp_rnn_3,seed001_hp_gru_1,seed001_hp_gru_2,seed001_hp_gru_3,seed001_hp_transformer_1,seed001_hp_transformer_2,seed001_hp_transformer_3 "$@"
