"""The record of a job stays true through relaunches, signals and concurrent writers (real runs).

Each test launches real `python -m lmexp.train` processes into one job directory, and checks
the record byte for byte: `.hydra/`, `summary.json`, `metrics.csv`.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lmexp.callbacks import sweep_statuses
from tests.conftest import REPO, run_module, small_run_args
from tests.integration.test_resume import TINY, _cmd, _env

pytestmark = [pytest.mark.slow, pytest.mark.faults]

RECORD = (".hydra/config.yaml", ".hydra/overrides.yaml", ".hydra/hydra.yaml", "summary.json")


def _record(run_dir: Path) -> dict[str, bytes]:
    files = [*RECORD, "metrics.csv"]
    return {name: (run_dir / name).read_bytes() for name in files if (run_dir / name).exists()}


def _train(args: list[str], data_dir: Path) -> subprocess.CompletedProcess:
    return run_module("lmexp.train", args, data_dir)


@pytest.fixture(scope="session")
def tiny(small_corpus) -> list[str]:
    """test_resume's tiny GRU on the small corpus: the record, not the model, is under test."""
    return [*TINY, "data=text", f"data.root={small_corpus}", "trainer.eval_every=0.075"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, data_dir_module, tiny) -> Path:
    """A finished 4-step GRU/Adam run; tests relaunch copies of it."""
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    done = _train([*tiny, "trainer.max_steps=4", f"hydra.run.dir={run_dir}"], data_dir_module)
    assert done.returncode == 0, done.stderr[-2000:]
    return run_dir


@pytest.fixture(scope="module")
def data_dir_module():
    from tests.conftest import require_data_dir

    return require_data_dir()


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(run_dir, tmp_path / "run"))


def test_a_refused_relaunch_leaves_the_record_byte_identical(tmp_path, data_dir, finished) -> None:
    run_dir = _copy(finished, tmp_path)
    before = _record(run_dir)
    other = ["model=transformer", "optim=sgd", "optim.lr=7", "model.hidden_size=16"]
    again = _train([*other, "trainer.max_steps=4", f"hydra.run.dir={run_dir}"], data_dir)
    assert again.returncode != 0 and "already holds a run" in again.stderr
    assert _record(run_dir) == before  # Hydra rewrote .hydra/; lmexp put the first launch's back


def test_resume_with_other_settings_is_refused_listing_them(
    tmp_path, data_dir, finished, tiny
) -> None:
    run_dir = _copy(finished, tmp_path)
    before = _record(run_dir)
    again = _train(
        [*tiny, "trainer.max_steps=4", "optim.lr=0.5", f"hydra.run.dir={run_dir}", "resume=true"],
        data_dir,
    )
    assert again.returncode != 0
    assert "optim.lr: 0.001 -> 0.5" in again.stderr and "elsewhere" in again.stderr
    assert _record(run_dir) == before
    # the same settings skip it, leaving it as it was, less what a killed write left
    leftover = run_dir / "checkpoints" / ".last.pt.k1ll3d.tmp"
    leftover.write_bytes(b"half a checkpoint")
    same = _train(
        [*tiny, "trainer.max_steps=4", f"hydra.run.dir={run_dir}", "resume=true"], data_dir
    )
    assert same.returncode == 0 and _record(run_dir) == before
    assert not leftover.exists()


def _every_file(run_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}


def test_a_skipped_job_leaves_every_file_byte_identical(tmp_path, data_dir, finished, tiny) -> None:
    """resume=true on a finished job: its train.log too (the skip is said on the console)."""
    run_dir = _copy(finished, tmp_path)
    before = _every_file(run_dir)
    same = _train(
        [*tiny, "trainer.max_steps=4", f"hydra.run.dir={run_dir}", "resume=true"], data_dir
    )
    assert same.returncode == 0 and "already completed, skipped" in same.stdout
    assert _every_file(run_dir) == before


def test_resume_force_trains_a_finished_run_on_to_new_budgets(
    tmp_path, data_dir, finished, tiny
) -> None:
    run_dir = _copy(finished, tmp_path)
    hydra_before = {k: v for k, v in _record(run_dir).items() if k.startswith(".hydra")}
    longer = [*tiny, "trainer.max_steps=8", f"hydra.run.dir={run_dir}"]
    refused = _train([*longer, "resume=true"], data_dir)
    assert refused.returncode != 0 and "resume=force" in refused.stderr
    forced = _train([*longer, "resume=force"], data_dir)
    assert forced.returncode == 0, forced.stderr[-2000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 8
    assert summary["budget_changes"] == [{"trainer.max_steps": [4, 8]}]
    with (run_dir / "metrics.csv").open() as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == sorted(set(steps)) and steps[-1] == 8
    hydra_after = {k: v for k, v in _record(run_dir).items() if k.startswith(".hydra")}
    assert hydra_after == hydra_before  # the record is the first launch; the summary says more


def _start(args: list[str], data_dir: Path) -> subprocess.Popen:
    """`python -m lmexp.train args`, running, in its own process group as a shell's job control
    starts it (tests/conftest.py gives every child one), so a test can signal the group like a
    terminal's Ctrl-C."""
    return subprocess.Popen(
        _cmd(args),
        cwd=REPO,
        env=_env(data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


LONG = ["trainer.max_steps=100000", "trainer.checkpoint_every=3"]  # after tiny


@pytest.mark.parametrize(
    ("sig", "code", "status"),
    [
        (signal.SIGTERM, 143, "interrupted"),
        (signal.SIGINT, 130, "interrupted"),
        (signal.SIGHUP, 129, "interrupted"),  # the terminal closed
        (signal.SIGUSR1, 138, "preempted"),  # no cluster listening: saved, then stopped
    ],
)
def test_a_signal_ends_the_job_naming_it(tmp_path, data_dir, sig, code, status, tiny) -> None:
    run_dir = tmp_path / "run"
    proc = _start([*tiny, *LONG, f"hydra.run.dir={run_dir}"], data_dir)
    _wait_for(run_dir / "checkpoints" / "last.pt", proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err.decode()[-2000:]
    assert f"stopped by {sig.name}" in err.decode() and "Traceback" not in err.decode()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == status and summary["signal"] == sig.name
    assert not list(run_dir.rglob(".*.tmp"))  # no half-written checkpoint left behind


def test_a_second_sigterm_while_the_job_stops_is_ignored(tmp_path, data_dir, tiny) -> None:
    """A supervisor's second SIGTERM 50 ms later must not kill the process halfway through
    recording and reporting the first (the default action would: exit -15, no summary)."""
    run_dir = tmp_path / "run"
    proc = _start([*tiny, *LONG, f"hydra.run.dir={run_dir}"], data_dir)
    _wait_for(run_dir / "checkpoints" / "last.pt", proc)
    proc.send_signal(signal.SIGTERM)
    for _ in range(20):  # 50 ms apart, for a second: whatever the process is doing then
        time.sleep(0.05)
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err.decode()[-2000:]
    assert "stopped by SIGTERM" in err.decode() and "Traceback" not in err.decode()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["signal"] == "SIGTERM"


@pytest.mark.parametrize("how", ["python -m", "console script"])
def test_ctrl_c_while_the_command_starts_is_one_line(tmp_path, data_dir, tiny, how) -> None:
    """Importing torch and Hydra takes over a second; a Ctrl-C then printed a traceback."""
    script = Path(sys.executable).parent / "lmexp-train"
    head = [str(script)] if how == "console script" else [sys.executable, "-m", "lmexp.train"]
    proc = subprocess.Popen(
        [*head, *tiny, f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=REPO,
        env=_env(data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    time.sleep(0.3)  # the imports take longer than this on any machine that runs the suite
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err.decode()[-2000:]
    assert "stopped by SIGINT" in err.decode() and "Traceback" not in err.decode()


def test_a_sigkilled_job_reads_as_killed_and_a_concurrent_resume_is_refused(
    tmp_path, data_dir, tiny
) -> None:
    sweep = tmp_path / "sweep"
    args = ["-m", *tiny, *LONG, f"hydra.sweep.dir={sweep}"]
    proc = _start(args, data_dir)
    job = sweep / "0-gru-adam"
    _wait_for(job / "checkpoints" / "last.pt", proc)
    # while it runs, a second process resuming the same job is refused, naming the first
    second = _train([*args, "resume=true"], data_dir)
    assert second.returncode != 0 and "is being written by pid" in second.stderr
    assert sweep_statuses(sweep)["0-gru-adam"]["status"] == "running"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert json.loads((job / "summary.json").read_text())["status"] == "running"  # as left
    assert sweep_statuses(sweep)["0-gru-adam"]["status"] == "killed"  # but its process is gone
    with (job / "metrics.csv").open() as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == sorted(set(steps))  # one writer: no row written twice


def test_a_launcher_setting_that_cannot_work_stops_the_sweep_before_any_job(
    tmp_path, data_dir
) -> None:
    sweep = tmp_path / "sweep"
    result = _train(
        ["-m", *TINY, "launcher=joblib", "hydra.launcher.n_jobs=0", f"hydra.sweep.dir={sweep}"],
        data_dir,
    )
    assert result.returncode == 2
    assert "hydra.launcher.n_jobs=0 must be a positive integer" in result.stdout + result.stderr
    assert not list(sweep.glob("*/summary.json"))  # no job ran


def test_a_preempted_job_saves_its_step_is_requeued_and_ends_as_if_never_stopped(
    tmp_path, data_dir, small_corpus, small_reference
) -> None:
    """SIGUSR2, what submitit has SLURM send before a time limit or a preemption."""
    # no periodic checkpoint: the only one between evaluations is the preemption's
    budget = [*small_run_args(small_corpus), "trainer.checkpoint_every=null"]
    sweep = tmp_path / "sweep"
    args = ["-m", "launcher=submitit_local", *budget, f"hydra.sweep.dir={sweep}"]
    proc = _start(args, data_dir)
    job = sweep / "0-gru-adam"
    _wait_for(job / "metrics.csv", proc)
    while not (job / "metrics.csv").read_text().count("\n") > 1:  # a row: it is training
        assert proc.poll() is None
        time.sleep(0.05)
    first_pid = json.loads((job / "summary.json").read_text())["pid"]
    os.kill(first_pid, signal.SIGUSR2)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-3000:]
    log = (job / "train.log").read_text()
    saved = re.search(r"SIGUSR2: saving checkpoints/last.pt at step (\d+) and stopping", log)
    assert saved, log[-3000:]
    assert f", step {saved.group(1)}\n" in log  # the requeued job went on from that very step
    summary = json.loads((job / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["pid"] != first_pid
    assert summary["preemptions"] == 1 and summary["resumed"] == 1
    alone = json.loads((small_reference / "summary.json").read_text())
    assert (summary["best_val_ppl"], summary["test_ppl"]) == (
        alone["best_val_ppl"],
        alone["test_ppl"],
    )
    with (job / "metrics.csv").open() as f, (small_reference / "metrics.csv").open() as g:
        rows, want = list(csv.DictReader(f)), list(csv.DictReader(g))
    assert [(r["step"], r["val_ppl"]) for r in rows] == [(r["step"], r["val_ppl"]) for r in want]


@pytest.mark.parametrize(
    ("sig", "to_group"),
    [
        (signal.SIGINT, True),  # Ctrl-C: the terminal signals the whole foreground group
        (signal.SIGTERM, False),  # kill, docker stop: the launching process alone
    ],
)
def test_a_signal_stops_a_joblib_sweep_with_every_job_recorded(
    tmp_path, data_dir, sig, to_group, tiny
) -> None:
    sweep = tmp_path / "sweep"
    args = [
        "-m",
        "launcher=joblib",
        "hydra.launcher.n_jobs=2",
        *tiny,
        *LONG,
        "optim=adam,sgd",  # after tiny, whose optim=adam would win
        f"hydra.sweep.dir={sweep}",
    ]
    proc = _start(args, data_dir)
    try:
        for job in ("0-gru-adam", "1-gru-sgd"):
            _wait_for(sweep / job / "checkpoints" / "last.pt", proc)
    except AssertionError:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    workers = [
        json.loads((sweep / j / "summary.json").read_text())["pid"]
        for j in ("0-gru-adam", "1-gru-sgd")
    ]
    if to_group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig.value, err.decode()[-2000:]
    text = err.decode()
    assert f"stopped by {sig.name}" in text and "2 interrupted" in text and "Traceback" not in text
    # the same end as a finished sweep: the results table, printed and beside multirun.yaml
    assert re.search(r"\| 0-gru-adam +\| interrupted +\|", text), text[-2000:]
    assert "| 1-gru-sgd " in (sweep / "results.md").read_text()
    for job in ("0-gru-adam", "1-gru-sgd"):
        summary = json.loads((sweep / job / "summary.json").read_text())
        assert (summary["status"], summary["signal"]) == ("interrupted", sig.name)
    for pid in workers:  # no worker trains on as an orphan
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
