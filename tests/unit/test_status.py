"""`lmexp-status`: each job's status, progress, best so far and time left, from its files."""

from __future__ import annotations

import os

import pytest

from lmexp.run.record import Launch, save_record
from lmexp.run.rundir import RunDir
from lmexp.status import main, sweep_lines
from tests.fixtures_analysis import BASE_CONFIG, curve, job, write_job


def _running(sweep, name: str, num: int, vals: list[float], epochs: float):
    """A job this process 'runs' (its pid is alive), `max_epochs=epochs`, `vals` so far."""
    rows = curve(vals)  # evaluation k at epoch k/4, 10 s apart
    path = write_job(
        sweep, name, rows=rows, summary={"status": "running", "pid": os.getpid(),
                                         "pid_started": None, "host": os.uname().nodename},
    )  # fmt: skip
    config = {**BASE_CONFIG, "trainer": {**BASE_CONFIG["trainer"], "max_epochs": epochs}}
    save_record(RunDir(path), config, Launch("python -m lmexp.train", (), num))
    return path


@pytest.fixture()
def sweep(tmp_path):
    root = tmp_path / "sweep"
    (root).mkdir()
    (root / "multirun.yaml").write_text("hydra: {}\n")
    for num, vals in ((0, [400.0, 300.0]), (2, [380.0, 250.0, 240.0])):
        path = job(root, num, "gru", "sgd", vals)
        save_record(RunDir(path), BASE_CONFIG, Launch("python -m lmexp.train", (), num))
    _running(root, "1-gru-sgd-lr=5", 1, [500.0, 350.0], epochs=2.0)
    return root


def test_each_job_in_launch_order_with_progress_and_time_left(sweep):
    lines = sweep_lines(sweep)
    assert lines[0] == f"sweep {sweep}: 2 completed, 1 running"
    body = [line for line in lines if line.startswith("| ") and "job" not in line]
    assert [line.split("|")[1].strip() for line in body] == [
        "0-gru-sgd",
        "1-gru-sgd-lr=5",
        "2-gru-sgd",
    ]
    running = body[1].split("|")
    # two evaluations of a 2-epoch budget: epoch 0.5, a quarter done, in 20 s: 60 s left
    assert running[2].strip() == "running" and running[3].strip() == "25%"
    assert running[4].strip() == "350.00" and running[7].strip() == "1m 00s"
    assert body[0].split("|")[3].strip() == "100%"


def test_sorted_by_a_metric_best_first_with_the_best_named(sweep):
    lines = sweep_lines(sweep, sort="best_val_ppl", top=2)
    body = [line for line in lines if line.startswith("| ") and "job" not in line]
    assert [line.split("|")[1].strip() for line in body] == ["2-gru-sgd", "0-gru-sgd"]
    assert lines[-1] == "best by best_val_ppl: 2-gru-sgd (240.00)"


def test_a_folder_that_is_no_sweep_is_one_line(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lmexp-status: error: ")


def test_it_imports_neither_torch_nor_hydra(sweep):
    """So it answers at once, from any terminal, while the sweep trains."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from lmexp.status import main\n"
        f"main([{str(sweep)!r}])\n"
        "print('torch' in sys.modules, 'hydra' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.splitlines()[-1] == "False False", done.stdout + done.stderr
