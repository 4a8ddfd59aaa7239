"""The GPU check's plumbing, end to end on the CPU: every part runs and lands in the table."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_gpu_check_dry_run_prints_one_table_of_every_part(tmp_path, data_dir) -> None:
    env = {**os.environ, "LMEXP_DATA_DIR": str(data_dir)}
    result = subprocess.run(
        ["bash", "scripts/gpu_check.sh", "--dry-run", "--out", str(tmp_path)],
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
    parts = {row[0].strip("| ") for row in rows}
    assert parts == {"machine", "tests", "bench", "pack", "packed", "table1", "baselines", "total"}
    assert not any("FAIL" in row[-1] for row in rows)
    assert "gru 200 scratch" in table and "gru 200 fused" in table
    assert "2 jobs as one model vs one after another (eager)" in table
    assert "2 jobs in one command, launcher=packed" in table and "2 jobs packed vs one" in table
    assert "table1_rnn_sgd" in table and "table1_transformer_adam" in table
    assert "projected 40-epoch study" in table
    assert "zaremba2014/medium" in table and "pytorch_examples/lstm1500_tied" in table
    assert "39 epochs projected" in table and "55 epochs projected" in table
    assert "40 epochs projected" in table
    assert len(list((tmp_path / "table1_graph").glob("*/summary.json"))) == 2
