"""Real sweeps on the scale-out launchers and the Optuna sweeper, with tiny sizes and budgets.

Each test launches `python -m lmexp.train -m ...` as a subprocess into `tmp_path` and then
reads only the job files (summary.json, metrics.csv, train.log), as the analysis does.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import TINY_OVERRIDES, run_module

pytestmark = pytest.mark.slow

TINY = TINY_OVERRIDES


def _train(args: list[str], data_dir: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return run_module("lmexp.train", ["-m", *args], data_dir, timeout)


def _summaries(sweep: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(sweep.glob("*/summary.json"))}


def _log_span(job: Path) -> tuple[datetime, datetime]:
    """First and last timestamps of a job's train.log (Hydra's format, to the millisecond)."""
    stamps = [
        datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f")
        for line in (job / "train.log").read_text().splitlines()
        if line.startswith("[20")
    ]
    return stamps[0], stamps[-1]


def test_joblib_runs_two_jobs_at_once(tmp_path, data_dir) -> None:
    sweep = tmp_path / "sweep"
    args = ["launcher=joblib", "hydra.launcher.n_jobs=2", "model=rnn,gru", "optim=adam", *TINY]
    proc = _train([*args, f"hydra.sweep.dir={sweep}"], data_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summaries = _summaries(sweep)
    assert sorted(summaries) == ["0-rnn-adam", "1-gru-adam"]
    for name, summary in summaries.items():
        assert summary["status"] == "completed", summary
        assert (sweep / name / "metrics.csv").stat().st_size > 0
        assert f"model={name.split('-')[1]}" in summary["command"]
    (start_a, end_a), (start_b, end_b) = (_log_span(sweep / n) for n in sorted(summaries))
    # one after the other, the second job would start after the first had logged its end
    assert start_a < end_b and start_b < end_a, (start_a, end_a, start_b, end_b)
    # and the report's figures say so under their wall-clock panels
    from analysis.collect import collect
    from analysis.figures import concurrent_jobs

    jobs = collect([sweep]).jobs
    assert set(concurrent_jobs(jobs).values()) == {2}, jobs[["started_at", "ended_at"]]
    for summary in summaries.values():  # the machine's load beside the job's times
        assert summary["cpu_count"] >= 1 and summary["load_1m_end"] >= 0


def test_submitit_local_failed_job_is_failed_though_submitit_says_completed(
    tmp_path, data_dir
) -> None:
    sweep, missing = tmp_path / "sweep", tmp_path / "corrupt-ptb"
    # present, so the start-up check passes; corrupt, so its job fails when it verifies them
    shutil.copytree(data_dir / "ptb", missing)
    with (missing / "ptb.valid.txt").open("ab") as f:
        f.write(b"an extra line\n")
    args = [
        "launcher=submitit_local",
        "hydra.sweeper.max_batch_size=2",
        "model=rnn",
        "optim=adam",
        f"data.root={data_dir / 'ptb'},{missing}",
        "data.download=false",
        *TINY,
    ]
    proc = _train([*args, f"hydra.sweep.dir={sweep}"], data_dir)
    # Every job returns (+inf for the failed one); the SweepSummary callback then lists the
    # failure and makes the command exit 2, the exit of input refused, as the failure was a
    # corrupt corpus (hydra.callbacks.sweep_summary.fail_on_error).
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "1-rnn-adam-root=corrupt-ptb: failed (DataError" in proc.stderr + proc.stdout
    summaries = _summaries(sweep)
    assert summaries["0-rnn-adam-root=ptb"]["status"] == "completed", summaries[
        "0-rnn-adam-root=ptb"
    ]
    failed = summaries["1-rnn-adam-root=corrupt-ptb"]
    assert failed["status"] == "failed" and failed["error_type"] == "DataError", failed
    assert "failed its checksum" in failed["error"] and failed["usage_error"] is True
    assert not (sweep / "1-rnn-adam" / "metrics.csv").exists()
    # submitit's own record of the same job: success (it never sees the job's status)
    logs = [p.read_text() for p in sweep.glob(".submitit/*/*_log.out")]
    assert len(logs) == 2
    failed_log = next(text for text in logs if str(missing) in text)
    assert "Job completed successfully" in failed_log


def _optuna_args(storage: str, trials: int) -> list[str]:
    # GRU search with the architecture pinned tiny; lr is the only searched value, and with
    # sampler seed 1111 TPE's random start proposes 1e4 then 1e-3 (Adam at 1e4 diverges).
    return [
        "sweep=optuna",
        "model=gru",
        *TINY,
        "model.num_layers=1",
        "model.dropout=0.0",
        "data.seq_len=35",
        "data.batch_size=20",
        "optim.lr=choice(0.001,10000.0)",
        f"hydra.sweeper.n_trials={trials}",
        "hydra.sweeper.n_jobs=1",
        "hydra.sweeper.sampler.seed=1111",
        f"hydra.sweeper.storage={storage}",
        "hydra.sweeper.study_name=tiny",
    ]


def _search(args: list[str], cwd: Path, data_dir: Path) -> subprocess.Popen:
    """`lmexp-train -m args` from another folder: the sweeper found by lmexp, not by the
    checkout on sys.path (an editable install hides it from Hydra's own plugin scan)."""
    env = {**os.environ, "LMEXP_DATA_DIR": str(data_dir)}
    script = Path(sys.executable).parent / "lmexp-train"
    return subprocess.Popen([script, "-m", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


def test_optuna_study_survives_divergence_an_interruption_and_resumes(tmp_path, data_dir) -> None:
    import optuna
    from optuna.trial import TrialState

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    first = tmp_path / "first"
    proc = _search([*_optuna_args(storage, 2), f"hydra.sweep.dir={first}"], tmp_path, data_dir)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    statuses = {name: s["status"] for name, s in _summaries(first).items()}
    # named by the sampled value (TPE's random start: 1e4, then 1e-3)
    assert statuses == {"0-gru-adam-lr=10000.0": "diverged", "1-gru-adam-lr=0.001": "completed"}
    assert (first / "optimization_results.yaml").exists() and (first / "multirun.yaml").exists()

    trials = optuna.load_study(study_name="tiny", storage=storage).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    for trial in trials:  # each trial names its job, and the job's record agrees
        job = Path(trial.user_attrs["lmexp_job_dir"])
        summary = json.loads((job / "summary.json").read_text())
        assert trial.user_attrs["lmexp_status"] == summary["status"]
        if summary["status"] == "diverged":
            assert trial.value == float("inf") and trial.params["optim.lr"] == 10000.0
        else:
            assert trial.value == pytest.approx(summary["best_val_ppl"])

    # Ctrl-C during the next search's first trial: that trial is failed, not scored, and queued
    second = tmp_path / "second"
    long = ["trainer.max_steps=100000", "trainer.checkpoint_every=3"]
    args = [*_optuna_args(storage, 2), *long, f"hydra.sweep.dir={second}"]
    proc = _search(args, tmp_path, data_dir)
    deadline = time.monotonic() + 120
    while not any(second.glob("0-gru-adam-lr=*/checkpoints/last.pt")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-3000:]
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "Traceback" not in err, err[-3000:]
    interrupted = optuna.load_study(study_name="tiny", storage=storage).trials[2]
    assert interrupted.state == TrialState.FAIL and interrupted.user_attrs["lmexp_interrupted"]

    # The same command again continues the study: the interrupted trial's values first, then
    # a new proposal (the seed is offset by the trials the study has: no repeated start)
    third = tmp_path / "third"
    proc = _search([*_optuna_args(storage, 2), f"hydra.sweep.dir={third}"], tmp_path, data_dir)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    assert "Using an existing study" in out + err
    trials = optuna.load_study(study_name="tiny", storage=storage).trials
    assert [t.number for t in trials] == list(range(5))
    retried = trials[3]
    assert retried.user_attrs["lmexp_retry_of"] == 2 and retried.params == interrupted.params
    assert retried.state == trials[4].state == TrialState.COMPLETE
    names = sorted(p.parent.name for p in third.glob("*/summary.json"))
    assert [name.partition("-lr=")[0] for name in names] == ["0-gru-adam", "1-gru-adam"]
    assert names[0] == f"0-gru-adam-lr={interrupted.params['optim.lr']}"  # the retried trial


def test_a_search_relaunched_into_its_own_sweep_dir_numbers_its_jobs_on(tmp_path, data_dir):
    """A fixed hydra.sweep.dir (documented as allowed): the second command's trial is job 1,
    not a second job 0 refused for the finished one's directory."""
    import optuna
    from optuna.trial import TrialState

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    fixed = tmp_path / "fixed"
    for _ in range(2):
        proc = _search([*_optuna_args(storage, 1), f"hydra.sweep.dir={fixed}"], tmp_path, data_dir)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
    names = sorted(_summaries(fixed))  # each named by its sampled lr too
    assert [name.partition("-lr=")[0] for name in names] == ["0-gru-adam", "1-gru-adam"]
    trials = optuna.load_study(study_name="tiny", storage=storage).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    assert [Path(t.user_attrs["lmexp_job_dir"]).name for t in trials] == names
