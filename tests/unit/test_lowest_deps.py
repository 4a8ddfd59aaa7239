"""scripts/lowest_deps.py: the constraints that install the oldest versions pyproject allows."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "lowest_deps.py"


def _module():
    spec = importlib.util.spec_from_file_location("lowest_deps", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lower_bounds_are_read_from_ranges_and_torch_is_left_out() -> None:
    bounds = _module().lower_bounds(
        ["hydra-core>=1.3,<1.4", "torch>=2.1", "tqdm", "uvicorn[standard]>=0.20", "x<2"]
    )
    assert bounds == {"hydra-core": "1.3", "uvicorn": "0.20"}


def test_the_printed_constraints_pin_a_minor_release_at_its_last_patch() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "optuna"], capture_output=True, text=True, check=True
    )
    lines = done.stdout.splitlines()
    assert "pandas==2.1.*" in lines and "optuna==4.0.*" in lines and "pytest==8.*" not in lines
    assert not any(line.startswith("torch") for line in lines)
    bad = subprocess.run([sys.executable, str(SCRIPT), "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown extra(s) ['nope']" in bad.stderr
