# Sourced by the sweeps/*.sh scripts: run one study as a Hydra multirun, then build its report.
# run_study NAME PRESETS [--cpu] [hydra overrides...]
#   PRESETS  comma-separated conf/experiment/ift6135_a2/ names; --cpu adds scale=cpu
# The sweep goes to outputs/multirun/NAME[-cpu]_<time>/ and its report to <that dir>/report/. The
# report is built even when some jobs failed; the script then exits non-zero.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python}

run_study() {
    local name=$1 presets=$2 scale=()
    shift 2
    if [[ "${1:-}" == "--cpu" ]]; then
        scale=(scale=cpu)
        name="$name-cpu"
        shift
    fi
    local list sweep_dir rc=0
    list=$(tr ',' '\n' <<<"$presets" | sed "s#^#ift6135_a2/#" | paste -sd, -)
    sweep_dir="outputs/multirun/${name}_$(date +%Y-%m-%d_%H-%M-%S-%N)"
    "$PYTHON" -m lmexp.train -m "experiment=$list" "${scale[@]}" "hydra.sweep.dir=$sweep_dir" "$@" || rc=$?
    "$PYTHON" -m analysis.report "$sweep_dir" --out "$sweep_dir/report"
    return "$rc"
}
