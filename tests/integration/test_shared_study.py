"""Several search processes on one Optuna study at once, as on several login nodes or as the
tasks of an array: four `lmexp-train -m sweep=optuna` workers share a study (a journal file,
then a real PostgreSQL server) and one sweep directory, with a budget of 40 trials for the
study. One worker is SIGKILLed in the middle of a trial and started again.

What must hold: 40 complete trials, none lost (the killed trial is failed and its values run
again, once) and none duplicated (every job number and job directory distinct, every complete
trial's directory holding its own finished job).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import TINY_TEXT_GRU
from tests.postgres import postgres_server

pytestmark = pytest.mark.slow

BUDGET, WORKERS = 40, 4


def _worker(storage: str, sweep: Path, corpus: Path, cwd: Path, *extra: str) -> subprocess.Popen:
    args = [
        "-m",
        "sweep=optuna",
        *TINY_TEXT_GRU,
        f"data.root={corpus}",
        "trainer.max_steps=4",
        "model.num_layers=1",
        "model.dropout=0.0",
        "data.seq_len=35",
        "data.batch_size=20",
        "optim.lr=tag(log, interval(1e-4, 1e-2))",  # the one searched value
        f"hydra.sweeper.storage={storage}",
        "hydra.sweeper.study_name=shared",
        f"hydra.sweeper.n_trials={BUDGET}",
        f"hydra.sweeper.max_trials={BUDGET}",  # the study's budget, shared by the workers
        "hydra.sweeper.n_jobs=1",
        f"hydra.sweep.dir={sweep}",  # one sweep directory for all of them
        *extra,
    ]
    script = Path(sys.executable).parent / "lmexp-train"
    return subprocess.Popen([script, *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip


def _study(storage: str):
    import optuna

    from lmexp.search.storage import open_storage

    return optuna.load_study(study_name="shared", storage=open_storage(storage))


def _running_trial_of(storage: str, pid: int, deadline: float):
    from optuna.trial import TrialState

    while time.monotonic() < deadline:
        try:
            for trial in _study(storage).get_trials(states=(TrialState.RUNNING,)):
                if trial.user_attrs.get("lmexp_pid") == pid:
                    return trial
        except KeyError:  # the study is not created yet
            pass
        time.sleep(0.2)
    raise AssertionError(f"worker {pid} never started a trial")


def _share_one_study(storage: str, tmp_path: Path, corpus: Path) -> None:
    from optuna.trial import TrialState

    sweep = tmp_path / "sweep"
    # the worker to be killed runs trials of 100,000 steps: it is surely mid-trial when killed
    doomed = _worker(
        storage, sweep, corpus, tmp_path, "trainer.max_steps=100000", "trainer.max_epochs=null"
    )
    killed = _running_trial_of(storage, doomed.pid, time.monotonic() + 120)
    others = [_worker(storage, sweep, corpus, tmp_path) for _ in range(WORKERS - 1)]
    deadline = time.monotonic() + 120
    while len(_study(storage).get_trials(states=(TrialState.COMPLETE,))) < 3:
        assert time.monotonic() < deadline and all(p.poll() is None for p in others)
        time.sleep(0.2)
    os.killpg(doomed.pid, signal.SIGKILL)  # mid-trial: its trial stays RUNNING in the study
    doomed.wait(timeout=30)
    # the same command again (the ordinary trial length), while the others still run
    others.append(_worker(storage, sweep, corpus, tmp_path))
    for proc in others:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out[-3000:]

    trials = _study(storage).trials
    states = Counter(t.state for t in trials)
    assert states[TrialState.COMPLETE] == BUDGET, states
    assert not states[TrialState.RUNNING] and not states[TrialState.WAITING], states
    # none lost: the killed trial failed and its values ran again, exactly once
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert trials[killed.number].state == TrialState.FAIL
    retries = [t for t in trials if t.user_attrs.get("lmexp_retry_of") == killed.number]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == killed.params
    # any other failure is a trial asked in the same moment as the last place: it never ran
    for trial in failed:
        if trial.number != killed.number:
            assert trial.user_attrs["lmexp_over_budget"] and "lmexp_job_dir" not in trial.user_attrs
    # several workers did the work at once
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len({t.user_attrs["lmexp_pid"] for t in complete}) >= 3
    # none duplicated: a directory and a job number of its own for every complete trial
    dirs = [Path(t.user_attrs["lmexp_job_dir"]) for t in complete]
    assert len(set(dirs)) == BUDGET and all(d.parent == sweep for d in dirs)
    for trial, job in zip(complete, dirs, strict=True):
        summary = json.loads((job / "summary.json").read_text())
        assert summary["status"] == "completed"
        assert summary["best_val_ppl"] == pytest.approx(trial.value)
    jobs = [p.parent.parent for p in sweep.glob("*/.hydra/config.yaml")]
    assert len(jobs) == BUDGET + 1  # and the killed trial's unfinished one
    numbers = [int(job.name.split("-", 1)[0]) for job in jobs]
    assert len(set(numbers)) == len(numbers)


def test_four_searches_share_a_study_in_a_journal_file(tmp_path, small_corpus) -> None:
    _share_one_study(f"journal://{tmp_path}/study.journal", tmp_path, small_corpus)


def test_four_searches_share_a_study_on_a_postgresql_server(tmp_path, small_corpus) -> None:
    with postgres_server() as url:
        _share_one_study(url, tmp_path, small_corpus)
