#!/usr/bin/env bash
# The character-level LM report: character-level language models on text8 (an LSTM for 5
# minutes, a Transformer for 3) on a 2-core CPU (the report allows 10 and asks for dev
# perplexity <= 7), then its evaluation JSON of each on the 500-character dev slice and the
# report.
#   sweeps/charlm_text8.sh [hydra overrides for both runs, e.g. trainer.max_minutes=10]
# Checkpoints are chosen on the validation split carved from the end of the training text; the dev
# slice is reported separately (test_ppl, evaluation/test_best.json).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python}
dir="outputs/multirun/charlm-text8_$(date +%Y-%m-%d_%H-%M-%S-%N)"
common=(data=text8 optim=adam trainer.max_epochs=null trainer.eval_every=1.0)
rc=0
"$PYTHON" -m lmexp.train "${common[@]}" trainer.max_minutes=5 model=lstm model.emb_size=64 \
    model.hidden_size=512 model.dropout=0.25 model.impl=fused optim.lr=0.002 \
    "hydra.run.dir=$dir/0-lstm-adam" "$@" || rc=$?
"$PYTHON" -m lmexp.train "${common[@]}" trainer.max_minutes=3 model=transformer \
    model.hidden_size=256 model.num_heads=4 \
    model.ff_size=1024 model.num_layers=4 model.attn_impl=sdpa optim.lr=0.001 \
    "hydra.run.dir=$dir/1-transformer-adam" "$@" || rc=$?
for job in "$dir"/*/; do
    "$PYTHON" -m lmexp.inspect.evaluate "${job%/}" || rc=$?
done
"$PYTHON" -m analysis.report "$dir" --out "$dir/report"
exit "$rc"
