#!/usr/bin/env bash
# IFT6135 assignment 2 §5 for the jobs of finished sweeps: per-time-step loss, gradient flow,
# samples, the character-level LM report's evaluation JSON, then the report with its "Inside the
# models" section.
#   sweeps/ift6135_a2_internals.sh outputs/multirun/ift6135_a2-models-cpu_<time> [more sweep dirs]
# For each job: <job>/evaluation/test_best.json, <job>/internals/*.csv and
# <job>/samples/t1_len{L,2L}.txt (10 + 10 samples); the report, with the two comparison plots
# in its figures/, goes to <first sweep>/report/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python}
if [[ $# -lt 1 ]]; then
    echo "usage: $0 <sweep dir>..." >&2
    exit 2
fi
jobs=()
for sweep in "$@"; do
    for job in "$sweep"/*/; do
        [[ -f "$job/checkpoints/best.pt" ]] && jobs+=("${job%/}")
    done
done
if [[ ${#jobs[@]} -eq 0 ]]; then
    echo "no job with checkpoints/best.pt under: $*" >&2
    exit 2
fi
rc=0
for job in "${jobs[@]}"; do
    echo "== $job"
    "$PYTHON" -m lmexp.inspect.evaluate "$job" || rc=$?
    "$PYTHON" -m lmexp.inspect.generate "$job" --num 10 > /dev/null
done
"$PYTHON" -m lmexp.inspect.internals "${jobs[@]}"
"$PYTHON" -m analysis.report "$@" --out "$1/report"
exit "$rc"
