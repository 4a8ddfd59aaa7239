"""`prune=asha|median`: hopeless jobs of real sweeps stop early, free their slot, stay stopped.

The grids pair two jobs whose curves are identical (they differ only in checkpoint_every, a
setting of how the job runs) with absurd learning rates: the two good jobs tie at every rung,
so asynchronous successive halving keeps both, and stops the absurd ones at their first rung.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import REPO, TINY_TEXT_GRU, run_module

pytestmark = pytest.mark.slow

GRID = [
    "-m",
    *TINY_TEXT_GRU,
    "optim=sgd",
    "trainer.max_epochs=null",
    "trainer.eval_every=0.1",  # an evaluation every ~9 steps: rung 0 at the first, 1 at the 3rd
    "prune=asha",
    "prune.min_resource=1",  # rung 0 at the first evaluation
    "seed=5",  # the shuffled order of a pruned grid puts the good jobs (0 and 1) first
]


def _statuses(sweep: Path) -> dict[str, dict]:
    return {
        p.name: json.loads((p / "summary.json").read_text())
        for p in sorted(sweep.iterdir(), key=lambda p: p.name)
        if (p / "summary.json").is_file()
    }


def _decisions(sweep: Path) -> dict[str, list[tuple[int, str]]]:
    out = {}
    for job in sorted(sweep.iterdir()):
        path = job / ".lmexp" / "pruning.json"
        if path.is_file():
            out[job.name] = [(d["evaluation"], d["decision"]) for d in json.loads(path.read_text())]
    return out


def test_absurd_learning_rates_are_pruned_at_their_first_rung(
    tmp_path, data_dir, small_corpus
) -> None:
    sweep = tmp_path / "sweep"
    args = [*GRID, f"data.root={small_corpus}", "optim.lr=5,0.00001,0.000001"]
    args += ["trainer.max_steps=60", "trainer.checkpoint_every=10,20", f"hydra.sweep.dir={sweep}"]
    done = run_module("lmexp.train", args, data_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = _statuses(sweep)
    assert [job["status"] for job in jobs.values()] == ["completed"] * 2 + ["pruned"] * 4, jobs
    for name, job in jobs.items():
        if job["status"] == "pruned":
            decision = job["pruned"]
            assert (decision["rule"], decision["rung"], decision["evaluation"]) == ("asha", 0, 1)
            assert decision["value"] > decision["threshold"] and job["test_ppl"] is None
            rows = (sweep / name / "metrics.csv").read_text().strip().splitlines()
            assert len(rows) == 2  # its curve stops at its one evaluation, kept
            assert (sweep / name / "checkpoints" / "best.pt").is_file()
    # the report names the comparison that stopped each pruned job
    from analysis.collect import collect

    pruned = collect([sweep]).jobs.query("status == 'pruned'")
    assert all(text.startswith("asha at rung 0 (evaluation 1)") for text in pruned["pruned"])


def _at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


# Two slots start two jobs at once, and asynchronous successive halving promotes the first job
# to reach a rung, whatever its value. So the slot tests start two good jobs first, tied (the
# same curve): a short one (60 steps) that ends soon and leaves its record, and a long one (400).
# Every absurd job starts after that record exists and is judged against it, however loaded
# the machine is; and all of them run while the long good job still trains.
SHORT_AND_LONG = ["optim.lr=5,0.00001", "trainer.max_steps=60,400"]  # jobs 0, 1: good; 2, 3


def _slots_reused(jobs: list[dict]) -> None:
    """Statuses in job order, and the absurd jobs ran in freed slots before the long one ended."""
    assert [job["status"] for job in jobs] == ["completed", "completed", "pruned", "pruned"], jobs
    long_end = _at(jobs[1]["ended_at"])
    assert all(_at(job["started_at"]) < long_end for job in jobs[2:]), jobs
    assert all(job["pruned"]["evaluation"] == 1 for job in jobs[2:]), jobs


def test_under_joblib_a_pruned_job_frees_its_slot_for_the_next(
    tmp_path, data_dir, small_corpus
) -> None:
    """Two workers: the long good job trains while the absurd ones are stopped beside it, each
    started in the slot the previous one freed."""
    sweep = tmp_path / "sweep"
    args = [*GRID, f"data.root={small_corpus}", *SHORT_AND_LONG]  # seed 5: order 0, 1, 3, 2
    args += ["launcher=joblib", "hydra.launcher.n_jobs=2"]
    done = run_module("lmexp.train", [*args, f"hydra.sweep.dir={sweep}"], data_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = list(_statuses(sweep).values())
    _slots_reused(jobs)
    # job 3 ran first of the two, in the slot the short good job freed; job 2 in job 3's
    assert _at(jobs[0]["ended_at"]) <= _at(jobs[3]["started_at"]) + 1  # seconds resolution
    assert _at(jobs[3]["ended_at"]) <= _at(jobs[2]["started_at"]) + 1


def _search(corpus: Path) -> list[str]:
    """An Optuna search with ASHA over a tiny GRU whose learning rate alone is drawn (5.0 or
    an absurd 1e-5; the space's other keys pinned)."""
    return [
        "-m",
        "sweep=optuna",
        *TINY_TEXT_GRU,
        f"data.root={corpus}",
        "optim=sgd",
        "trainer.max_epochs=null",
        "trainer.eval_every=0.1",
        "prune=asha",
        "model.num_layers=1",
        "model.dropout=0.0",
        "data.seq_len=35",
        "data.batch_size=20",
        "optim.lr=choice(5.0,0.00001)",
    ]


def test_an_optuna_search_prunes_trials_as_optuna_knows_them(
    tmp_path, data_dir, small_corpus
) -> None:
    import optuna
    from optuna.trial import TrialState

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    sweep = tmp_path / "search"
    args = [
        *_search(small_corpus),
        "trainer.max_steps=60",
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.sampler.seed=11",  # proposes 5.0 first, then 1e-5 three times
        f"hydra.sweeper.storage={storage}",
        "hydra.sweeper.study_name=pruned",
        f"hydra.sweep.dir={sweep}",
    ]
    done = run_module("lmexp.train", args, data_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    study = optuna.load_study(study_name="pruned", storage=storage)
    states = [t.state for t in study.trials]
    statuses = [job["status"] for job in _statuses(sweep).values()]
    assert len(states) == len(statuses) == 4
    for state, status, trial in zip(states, statuses, study.trials, strict=True):
        assert (state == TrialState.PRUNED) == (status == "pruned"), (states, statuses)
        if status == "pruned":
            assert trial.params["optim.lr"] == 0.00001
    assert states == [TrialState.COMPLETE] + [TrialState.PRUNED] * 3, states


def test_a_killed_sweep_resumed_takes_the_same_decisions(tmp_path, data_dir, small_corpus) -> None:
    """SIGKILL the whole sweep once its second job has judged itself at a rung, relaunch with
    resume=true: the finished job is skipped untouched, the killed one replays its decisions,
    and every status and decision is the one of the sweep never killed."""
    args = [*GRID, f"data.root={small_corpus}", "trainer.max_steps=150"]
    args += ["optim.lr=5,0.00001", "trainer.checkpoint_every=10,20"]
    reference = tmp_path / "reference"
    done = run_module("lmexp.train", [*args, f"hydra.sweep.dir={reference}"], data_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    killed = tmp_path / "killed"
    env = {**os.environ, "LMEXP_DATA_DIR": str(data_dir)}
    cmd = [sys.executable, "-m", "lmexp.train", *args, f"hydra.sweep.dir={killed}"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, **quiet)
    second = "1-gru-sgd-lr=5,checkpoint_every=20"  # named by what varies
    judged = killed / second / ".lmexp" / "pruning.json"
    saved = killed / second / "checkpoints" / "last.pt"  # written just after the judging
    deadline = time.monotonic() + 120
    while not (judged.is_file() and saved.is_file()):
        assert proc.poll() is None and time.monotonic() < deadline, "the sweep ended first"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    first = killed / "0-gru-sgd-lr=5,checkpoint_every=10"
    before = {p: p.read_bytes() for p in first.rglob("*") if p.is_file()}
    again = run_module("lmexp.train", [*args, f"hydra.sweep.dir={killed}", "resume=true"], data_dir)
    assert again.returncode == 0, again.stderr[-3000:]
    want, got = _statuses(reference), _statuses(killed)
    assert {n: j["status"] for n, j in got.items()} == {n: j["status"] for n, j in want.items()}
    assert [j["status"] for j in got.values()] == ["completed", "completed", "pruned", "pruned"]
    assert got[second]["resumed"] == 1
    assert _decisions(killed) == _decisions(reference)
    assert {p: p.read_bytes() for p in first.rglob("*") if p.is_file()} == before


def test_an_optuna_search_under_joblib_starts_a_trial_where_a_pruned_one_ended(
    tmp_path, data_dir, small_corpus
) -> None:
    """Two trials in flight (hydra.sweeper.n_jobs=2, two joblib workers): no batch barrier, so
    a trial starts as soon as a pruned one frees its slot, while the long good one trains."""
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    sweep = tmp_path / "search"
    args = [
        *_search(small_corpus),
        "prune.min_resource=1",
        "trainer.max_steps=choice(60,400)",  # drawn after the learning rate
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.sampler.seed=89",  # (5, 60), (5, 400), then (1e-5, 60), (1e-5, 400)
        "launcher=joblib",
        "hydra.launcher.n_jobs=2",
        f"hydra.sweeper.storage={storage}",
        "hydra.sweeper.study_name=async",
        f"hydra.sweep.dir={sweep}",
    ]
    done = run_module("lmexp.train", args, data_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = list(_statuses(sweep).values())
    _slots_reused(jobs)


def test_under_submitit_each_job_is_its_own_process_and_pruned_ones_end_early(
    tmp_path, data_dir, small_corpus
) -> None:
    sweep = tmp_path / "sweep"
    # a submitit job is a new process (imports, data) that starts seconds after its slot frees:
    # the long good job trains long enough (800 steps, ~18 s alone) to see both absurd ones run
    args = [*GRID, f"data.root={small_corpus}", "optim.lr=5,0.00001", "trainer.max_steps=60,800"]
    args += ["launcher=submitit_local", "hydra.sweeper.max_batch_size=2"]
    done = run_module("lmexp.train", [*args, f"hydra.sweep.dir={sweep}"], data_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = list(_statuses(sweep).values())
    _slots_reused(jobs)
    assert len({job["pid"] for job in jobs}) == 4  # submitit: a process per job
