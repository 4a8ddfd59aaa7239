#!/usr/bin/env bash
# Install lmexp with the OLDEST versions pyproject.toml allows (each `>=` bound pinned exactly,
# scripts/lowest_deps.py) into .venv-lowest, then run the unit tests there. A failure means a
# lower bound is too low: raise it in pyproject.toml. torch is kept at LMEXP_TORCH (default
# torch==2.13.0): its own lower bound would download a multi-GB build.
#   bash scripts/check_lower_bounds.sh      the runtime dependencies and every extra (the unit
#                                           tests use the launchers, Optuna and the trackers)
# Needs the package registry (downloads the old releases) and PTB for the data tests
# (LMEXP_DATA_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-lowest
rm -rf "$VENV"
"${PYTHON:-python3}" -m venv "$VENV"
read -r -a torch_spec <<<"${LMEXP_TORCH:-torch==2.13.0}"
"$VENV/bin/pip" install --quiet "${torch_spec[@]}"
extras=(dev launchers optuna trackers)
"$VENV/bin/python" scripts/lowest_deps.py "${extras[@]}" > "$VENV/lowest.txt"
echo "lowest versions allowed:"; sed 's/^/  /' "$VENV/lowest.txt"
"$VENV/bin/pip" install --quiet -c "$VENV/lowest.txt" -e ".[$(IFS=,; echo "${extras[*]}")]"
"$VENV/bin/pip" check
"$VENV/bin/python" -m pytest -m "not slow" -n 2 -q -p no:cacheprovider
# an editable install wrote lmexp.egg-info against these versions: put the main venv's back
[[ -x .venv/bin/pip ]] && .venv/bin/pip install --quiet --no-deps -e . || true
