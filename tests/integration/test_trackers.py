"""logger=tensorboard and logger=mlflow for real: runs write them, their own readers read back."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.conftest import require_data_dir, run_module, small_run_args

pytestmark = pytest.mark.slow

EventAccumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator"
).EventAccumulator
mlflow_tracking = pytest.importorskip("mlflow.tracking")


def _csv(job: Path) -> list[dict[str, str]]:
    with (job / "metrics.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _tensorboard(job: Path) -> EventAccumulator:
    events = EventAccumulator(str(job / "tensorboard"))
    events.Reload()
    return events


def _val_curve(rows: list[dict[str, str]]) -> list[tuple[int, float]]:
    return [(int(r["step"]), float(r["val_ppl"])) for r in rows]


def test_a_sweep_logs_every_job_to_tensorboard_and_mlflow(small_corpus, tmp_path):
    sweep, store = tmp_path / "sweep", f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = [
        "-m",
        *small_run_args(small_corpus),
        "model=gru,rnn",
        "trainer.max_steps=40",
        "logger=[csv,tensorboard,mlflow]",
        f"logger.mlflow.tracking_uri={store}",
        f"hydra.sweep.dir={sweep}",
    ]
    done = run_module("lmexp.train", args, require_data_dir())
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = sorted(p for p in sweep.iterdir() if (p / "metrics.csv").is_file())
    assert [j.name for j in jobs] == ["0-gru-adam", "1-rnn-adam"]

    client = mlflow_tracking.MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("sweep")  # the sweep directory's name
    assert experiment is not None
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert sorted(runs) == ["0-gru-adam", "1-rnn-adam"]
    for job in jobs:
        rows, summary = _csv(job), json.loads((job / "summary.json").read_text())
        curve = _val_curve(rows)
        assert len(curve) == 2

        # TensorBoard: the same curve by optimizer step, and one HParams session with the result
        events = _tensorboard(job)
        assert [(s.step, pytest.approx(s.value, rel=1e-6)) for s in events.Scalars("ppl/val")] == [
            (step, pytest.approx(v, rel=1e-6)) for step, v in curve
        ]
        assert events.Scalars("final/test_ppl")[-1].value == pytest.approx(summary["test_ppl"])
        assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= set(
            events.PluginTagToContent("hparams")
        )

        # MLflow: one finished run per job, its params, its metric history and its files
        run = runs[job.name]
        assert run.info.run_id == summary["mlflow_run_id"]
        assert run.info.status == "FINISHED"
        assert run.data.tags["lmexp.status"] == "completed"
        assert run.data.params["model.name"] == job.name.split("-")[1]
        assert run.data.params["trainer.max_steps"] == "40"
        assert run.data.metrics["test_ppl"] == pytest.approx(summary["test_ppl"])
        history = client.get_metric_history(run.info.run_id, "val_ppl")
        assert sorted((m.step, m.value) for m in history) == [
            (step, pytest.approx(v, rel=1e-9)) for step, v in curve
        ]
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"metrics.csv", "summary.json", ".hydra", "tensorboard"} <= artifacts
        assert "checkpoints" not in artifacts  # large: only with logger.mlflow.checkpoints=true


def test_a_resumed_run_goes_on_in_the_same_tracker_runs(small_corpus, tmp_path):
    run_dir, store = tmp_path / "run", f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = [
        *small_run_args(small_corpus),
        "logger=[tensorboard,mlflow]",
        f"logger.mlflow.tracking_uri={store}",
        f"hydra.run.dir={run_dir}",
    ]
    first = run_module("lmexp.train", [*args, "trainer.max_steps=40"], require_data_dir())
    assert first.returncode == 0, first.stderr[-3000:]
    run_id = json.loads((run_dir / "summary.json").read_text())["mlflow_run_id"]
    # on to 80 steps; the tracker choice may change on a relaunch (it never changes results)
    more = [*args, "trainer.max_steps=80", "resume=force", "logger.tensorboard.hparams=false"]
    second = run_module("lmexp.train", more, require_data_dir())
    assert second.returncode == 0, second.stderr[-3000:]

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["mlflow_run_id"] == run_id
    curve = _val_curve(_csv(run_dir))
    steps = [step for step, _ in curve]
    assert steps[:2] == [24, 40] and steps[-1] == 80 and len(steps) == 5
    client = mlflow_tracking.MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("lmexp")  # a single run's experiment
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_id == run_id and run.info.status == "FINISHED"
    history = sorted((m.step, m.value) for m in client.get_metric_history(run_id, "val_ppl"))
    assert history == [(step, pytest.approx(v, rel=1e-9)) for step, v in curve]
    events = _tensorboard(run_dir)
    assert [s.step for s in events.Scalars("ppl/val")] == steps
