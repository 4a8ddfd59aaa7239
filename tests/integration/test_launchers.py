"""Real sweeps on the scale-out launchers and the Optuna sweeper, with tiny sizes and budgets.

Each test launches `python -m lmexp.train -m ...` as a subprocess into `tmp_path` and then
reads only the job files (summary.json, metrics.csv, train.log), as the analysis does.
"""

from __future__ import annotations

import json
import subprocess
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


def test_submitit_local_failed_job_is_failed_though_submitit_says_completed(
    tmp_path, data_dir
) -> None:
    sweep, missing = tmp_path / "sweep", tmp_path / "no-ptb-here"
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
    # failure and makes the command exit 1 (hydra.callbacks.sweep_summary.fail_on_error).
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "1-rnn-adam: failed (DataError" in proc.stderr + proc.stdout
    summaries = _summaries(sweep)
    assert summaries["0-rnn-adam"]["status"] == "completed", summaries["0-rnn-adam"]
    failed = summaries["1-rnn-adam"]
    assert failed["status"] == "failed" and failed["error_type"] == "DataError", failed
    assert str(missing) in failed["error"] and "DataError" in failed["traceback"]
    assert not (sweep / "1-rnn-adam" / "metrics.csv").exists()
    # submitit's own record of the same job: success (it never sees the job's status)
    logs = [p.read_text() for p in sweep.glob(".submitit/*/*_log.out")]
    assert len(logs) == 2
    failed_log = next(text for text in logs if str(missing) in text)
    assert "Job completed successfully" in failed_log


def _optuna_args(storage: str) -> list[str]:
    # GRU search with the architecture pinned tiny; lr is the only searched value, and with
    # sampler seed 1111 TPE's random start proposes 1e4, 1e-3, 1e4, 1e4 (Adam at 1e4 diverges).
    return [
        "sweep=optuna",
        "model=gru",
        *TINY,
        "model.num_layers=1",
        "model.dropout=0.0",
        "data.seq_len=35",
        "data.batch_size=20",
        "optim.lr=choice(0.001,10000.0)",
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.n_jobs=1",
        "hydra.sweeper.sampler.seed=1111",
        f"hydra.sweeper.storage={storage}",
        "hydra.sweeper.study_name=tiny",
    ]


# optuna 2.10 on SQLAlchemy 1.4 warns that its models are not SQLAlchemy-2 ready (hence the pin)
@pytest.mark.filterwarnings("ignore:Deprecated API features detected")
def test_optuna_study_survives_divergence_and_resumes_from_sqlite(tmp_path, data_dir) -> None:
    import optuna

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    first = tmp_path / "first"
    proc = _train([*_optuna_args(storage), f"hydra.sweep.dir={first}"], data_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    statuses = {name: s["status"] for name, s in _summaries(first).items()}
    assert len(statuses) == 4 and "diverged" in statuses.values(), statuses
    assert "completed" in statuses.values(), statuses
    assert (first / "optimization_results.yaml").exists()

    study = optuna.load_study(study_name="tiny", storage=storage)
    trials = sorted(study.trials, key=lambda t: t.number)
    assert len(trials) == 4
    summaries = [_summaries(first)[f"{t.number}-gru-adam"] for t in trials]
    for trial, summary in zip(trials, summaries, strict=True):
        assert trial.state == optuna.trial.TrialState.COMPLETE
        if summary["status"] == "diverged":
            assert trial.value == float("inf") == float(summary["best_val_ppl"])
            assert trial.params["optim.lr"] == 10000.0
        else:
            assert trial.value == pytest.approx(summary["best_val_ppl"])
    # summary.json writes inf as the string "inf" (JSON has none); float() reads it back
    assert study.best_value == min(float(s["best_val_ppl"]) for s in summaries)

    # The same command again (into a new sweep dir, as the default timestamped one would be)
    # continues the study: 4 more trials, numbered on from 4.
    second = tmp_path / "second"
    proc = _train([*_optuna_args(storage), f"hydra.sweep.dir={second}"], data_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Using an existing study" in proc.stderr + proc.stdout
    trials = sorted(
        optuna.load_study(study_name="tiny", storage=storage).trials, key=lambda t: t.number
    )
    assert [t.number for t in trials] == list(range(8))
    # With the same sampler seed and fewer than 10 trials (TPE's random start), the proposals
    # repeat: the docs tell users to pass a new hydra.sweeper.sampler.seed when resuming early.
    assert [t.params for t in trials[4:]] == [t.params for t in trials[:4]]
