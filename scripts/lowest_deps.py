"""Print pip constraints that pin every `>=` lower bound of pyproject.toml to that release.

A bound written as a minor release (`numpy>=1.24`) pins that minor release at its latest
patch (`numpy==1.24.*`): patches fix bugs and other packages exclude broken ones (seaborn 0.13
refuses numpy 1.24.0). A bound with a patch number (`>=1.24.2`) is pinned exactly.

`scripts/check_lower_bounds.sh` installs lmexp with them into a fresh virtualenv and runs the
unit tests, so a bound that is too low (an API lmexp uses that the oldest allowed release
lacks) fails there rather than for a user. torch is left out: its lower bound would pull a
multi-GB build; the check keeps the torch it is given (2.13.0 by default).

    python scripts/lowest_deps.py [EXTRA ...]    # the runtime dependencies and these extras
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
SKIP = {"torch"}
_LOWER = re.compile(r"^\s*([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*([^;]*)")


def lower_bounds(requirements: list[str]) -> dict[str, str]:
    """name -> its `>=` version, for each requirement that has one (`hydra-core>=1.3,<1.4`
    -> 1.3); requirements without a lower bound, and lmexp's own extras, are left out."""
    pins = {}
    for requirement in requirements:
        match = _LOWER.match(requirement)
        if not match or match.group(1).lower() in SKIP | {"lmexp"}:
            continue
        for clause in match.group(2).split(","):
            clause = clause.strip()
            if clause.startswith(">="):
                pins[match.group(1)] = clause[2:].strip()
    return pins


def main(extras: list[str]) -> int:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    optional = project.get("optional-dependencies", {})
    unknown = sorted(set(extras) - set(optional))
    if unknown:
        print(f"unknown extra(s) {unknown}; pyproject.toml has {sorted(optional)}", file=sys.stderr)
        return 2
    requirements = list(project["dependencies"])
    for extra in extras or ["dev"]:
        requirements += optional[extra]
    for name, version in sorted(lower_bounds(requirements).items()):
        print(f"{name}=={version}.*" if version.count(".") < 2 else f"{name}=={version}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
