#!/usr/bin/env bash
# CMU 10-601 HW7 §5: the empirical studies of the RNN + self-attention LM
# (experiment=cmu10601_hw7/rnn_attn: embed = hidden = 128, d_k = d_v = 128, batch 128, 50,000
# sequences, validation every 10 %), on PTB sentences as BPE pieces. Each study is one multirun
# over one setting, then its report:
#   sweeps/cmu10601_hw7_studies.sh width       # §5.1 embed = hidden in {64, 128, 256, 512}
#   sweeps/cmu10601_hw7_studies.sh batch       # §5.2 batch size in {32, 64, 128, 256} + time table
#   sweeps/cmu10601_hw7_studies.sh sequences   # §5.3 num_sequences in {10k, 20k, 50k, 100k}
#   sweeps/cmu10601_hw7_studies.sh samples     # §5.4 embed = hidden = 512, d_k = d_v = 256, batch
#                                           #      128, 250,000 sequences; samples at τ = 0, 0.3, 0.8
#   sweeps/cmu10601_hw7_studies.sh all         # the four, one after the other
# --cpu (after the study) is the variant for a 2-core CPU: §5.1-5.3 run at the homework's own
# settings there (each within 30 minutes, see README), §5.4 trains on 100,000 sequences instead
# of 250,000. Further arguments are Hydra overrides for every job, e.g. device=cuda.
# Sweeps go to outputs/multirun/cmu10601_hw7-<study>[-cpu]_<time>/, reports to <that dir>/report/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python}
PROMPT=${PROMPT:-"the company said"}   # the homework's "Once upon a time there was a", for PTB

usage() {
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

study=${1:-}
[[ -n "$study" ]] || usage
shift
cpu=""
if [[ "${1:-}" == "--cpu" ]]; then
    cpu="-cpu"
    shift
fi

sweep() {  # sweep NAME SETTING: one multirun over SETTING, then the report
    local dir rc=0
    dir="outputs/multirun/cmu10601_hw7-$1${cpu}_$(date +%Y-%m-%d_%H-%M-%S-%N)"
    "$PYTHON" -m lmexp.train -m experiment=cmu10601_hw7/rnn_attn "$2" "hydra.sweep.dir=$dir" "${overrides[@]}" \
        || rc=$?
    "$PYTHON" -m analysis.report "$dir" --out "$dir/report"
    return "$rc"
}

samples() {  # §5.4: one larger run, three samples at each temperature, the report
    local dir rc=0 sequences=250000
    [[ -n "$cpu" ]] && sequences=100000
    dir="outputs/multirun/cmu10601_hw7-samples${cpu}_$(date +%Y-%m-%d_%H-%M-%S-%N)"
    "$PYTHON" -m lmexp.train experiment=cmu10601_hw7/rnn_attn model.emb_size=512 model.d_k=256 model.d_v=256 \
        "trainer.max_sequences=$sequences" "hydra.run.dir=$dir/0-rnn_attn-adam" "${overrides[@]}" \
        || rc=$?
    for temperature in 0 0.3 0.8; do
        "$PYTHON" -m lmexp.inspect.generate "$dir/0-rnn_attn-adam" --prompt "$PROMPT" \
            --temperature "$temperature" --num 3 --lengths 60 || rc=$?
    done
    "$PYTHON" -m analysis.report "$dir" --out "$dir/report"
    return "$rc"
}

overrides=("$@")
rc=0
case "$study" in
    width) sweep width model.emb_size=64,128,256,512 || rc=$? ;;
    batch) sweep batch data.batch_size=32,64,128,256 || rc=$? ;;
    sequences) sweep sequences trainer.max_sequences=10000,20000,50000,100000 || rc=$? ;;
    samples) samples || rc=$? ;;
    all)
        sweep width model.emb_size=64,128,256,512 || rc=$?
        sweep batch data.batch_size=32,64,128,256 || rc=$?
        sweep sequences trainer.max_sequences=10000,20000,50000,100000 || rc=$?
        samples || rc=$?
        ;;
    *) usage ;;
esac
exit "$rc"
