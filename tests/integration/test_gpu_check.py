"""The GPU check's plumbing, end to end on the CPU: every part runs and lands in the table.

One test per part (`--parts`), so the parts spread over the suite's workers; `main` runs the
parts of a whole check one after another through the same code.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

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


def _check(tmp_path, data_dir, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        ["bash", "scripts/gpu_check.sh", "--dry-run", "--out", str(tmp_path), *args],
        cwd=REPO,
        env={**os.environ, "LMEXP_DATA_DIR": str(data_dir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _processes_naming(text: str) -> list[str]:
    """Command lines of this machine's processes that mention `text`."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            line = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in line:
            found.append(line)
    return found


def test_a_check_told_to_stop_keeps_the_parts_it_ran_and_leaves_no_job_behind(
    tmp_path, data_dir
) -> None:
    """A lent GPU's command can be cut off: the table of every finished part is on disk after
    that part, and SIGTERM ends the benchmark in flight with the jobs it started."""
    proc = _check(tmp_path, data_dir, "--parts", "tests,packed")
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # the tests part, then a packed benchmark under way
            if "benchmarks.packed" in line:
                break
        time.sleep(3)
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    table = (tmp_path / "gpu_check.md").read_text()
    assert "pytest -m cuda (collected only)" in table and "| packed |" not in table
    time.sleep(0.5)
    assert _processes_naming(str(tmp_path)) == []


def test_parts_past_the_budget_are_skipped_and_the_check_fails(tmp_path, data_dir) -> None:
    proc = _check(tmp_path, data_dir, "--parts", "tests,packed", "--budget-s", "0")
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1, output[-3000:]
    table = (tmp_path / "gpu_check.md").read_text()
    for part in ("tests", "packed"):
        assert f"| {part} | not run | --budget-s 0 spent |  | SKIP |" in table
