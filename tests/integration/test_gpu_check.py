"""The GPU check's plumbing, end to end on the CPU: every part runs and lands in the table.

One test per part (`--parts`), so the parts spread over the suite's workers; `main` runs the
parts of a whole check one after another through the same code.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from benchmarks.gpu_check import PARTS
from tests.conftest import REPO

pytestmark = pytest.mark.slow

# What each part's rows must name (the whole list of rows is in docs/gpu.md).
EXPECTED = {
    "tests": [],
    "bench": ["gru 200 scratch", "gru 200 fused"],
    "pack": ["gru 200 scratch, 2 job(s) at once", "best K = "],
    "packed": [
        "2 jobs as one model vs one after another (eager)",
        "2 jobs in one command, launcher=packed",
        "2 jobs packed vs one",
    ],
    "table1": ["table1_rnn_sgd", "table1_transformer_adam", "projected 40-epoch study"],
    "baselines": [
        "zaremba2014/medium",
        "pytorch_examples/lstm1500_tied",
        "39 epochs projected",
        "55 epochs projected",
        "40 epochs projected",
    ],
}


def test_every_part_is_checked_here() -> None:
    assert set(EXPECTED) == set(PARTS)


def test_a_folder_that_holds_an_earlier_check_is_refused_in_one_line(tmp_path, capsys) -> None:
    from benchmarks.gpu_check import main

    (tmp_path / "gpu_check.md").write_text("| part |\n")
    with pytest.raises(SystemExit) as stop:
        main(["--dry-run", "--out", str(tmp_path)])
    assert stop.value.code == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"--out {tmp_path} is not empty" in line and "give a new folder" in line


@pytest.mark.parametrize("part", PARTS)
def test_gpu_check_dry_run_prints_the_table_of_each_part(part, tmp_path, data_dir) -> None:
    env = {**os.environ, "LMEXP_DATA_DIR": str(data_dir)}
    result = subprocess.run(
        ["bash", "scripts/gpu_check.sh", "--dry-run", "--parts", part, "--out", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    table = (tmp_path / "gpu_check.md").read_text()
    assert table in result.stdout  # printed, and kept beside the CSVs and sweeps
    rows = [line.split(" | ") for line in table.splitlines()[2:]]
    assert {row[0].strip("| ") for row in rows} == {"machine", part, "total"}
    assert not any("FAIL" in row[-1] for row in rows)
    for name in EXPECTED[part]:
        assert name in table, name
    if part == "table1":
        assert len(list((tmp_path / "table1_graph").glob("*/summary.json"))) == 2
