#!/usr/bin/env bash
# IFT6135 assignment 2, §4.3 (hyper-parameter exploration: the nine runs of Table 2), with the
# assignment's settings (40 epochs; meant for a GPU), then its report.
#   sweeps/ift6135_a2_table2.sh          the assignment's sizes and budget
#   sweeps/ift6135_a2_table2.sh --cpu    scale=cpu: the same grid at a tenth of the hidden width
#       (half the embedding; Transformer: a quarter), at most one epoch or 2.5 minutes per run;
#       under 30 minutes on a 2-core CPU (9 runs)
# Further arguments go to Hydra (e.g. device=cuda:1 seed=2).
source "$(dirname "$0")/_study.sh"
run_study ift6135_a2-table2 table2_rnn_1,table2_rnn_2,table2_rnn_3,table2_gru_1,table2_gru_2,table2_gru_3,table2_transformer_1,table2_transformer_2,table2_transformer_3 "$@"
