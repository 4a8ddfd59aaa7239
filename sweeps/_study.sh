# Sourced by the sweeps/*.sh scripts: run one study as a Hydra multirun, then build its report.
# run_study NAME EXPERIMENTS [--cpu] [hydra overrides...]
#   EXPERIMENTS  comma-separated conf/experiment/ names; --cpu uses their conf/experiment/cpu/ twins
# The sweep goes to outputs/multirun/NAME[-cpu]_<time>/ and its report to <that dir>/report/. The
# report is built even when some jobs failed; the script then exits non-zero.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python}

run_study() {
    local name=$1 experiments=$2 prefix=""
    shift 2
    if [[ "${1:-}" == "--cpu" ]]; then
        prefix="cpu/"
        name="$name-cpu"
        shift
    fi
    local list sweep_dir rc=0
    list=$(tr ',' '\n' <<<"$experiments" | sed "s#^#${prefix}#" | paste -sd, -)
    sweep_dir="outputs/multirun/${name}_$(date +%Y-%m-%d_%H-%M-%S-%N)"
    "$PYTHON" -m lmexp.train -m "experiment=$list" "hydra.sweep.dir=$sweep_dir" "$@" || rc=$?
    "$PYTHON" -m analysis.report "$sweep_dir" --out "$sweep_dir/report"
    return "$rc"
}
