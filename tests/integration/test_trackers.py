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
    events = EventAccumulator(str(job))  # the job directory is the TensorBoard run
    events.Reload()
    return events


def _hparam_names(events: EventAccumulator) -> list[str]:
    """The HParams columns in the order the experiment summary gives TensorBoard."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = events.PluginTagToContent("hparams")["_hparams_/experiment"]
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content).experiment
    return [info.name for info in experiment.hparam_infos]


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

    # TensorBoard on the sweep: one run per job, named as the job (no "/tensorboard" suffix)
    from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer

    multiplexer = EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(sweep))
    multiplexer.Reload()
    assert sorted(multiplexer.Runs()) == ["0-gru-adam", "1-rnn-adam"]

    client = mlflow_tracking.MlflowClient(tracking_uri=store)
    (experiment,) = client.search_experiments()[:1]  # named after the sweep's command
    assert experiment.name.startswith("lmexp-train -m ") and "model=gru,rnn" in experiment.name
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
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
        assert events.Scalars("summary/test_ppl")[-1].value == pytest.approx(summary["test_ppl"])
        assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= set(
            events.PluginTagToContent("hparams")
        )
        # what varies across the sweep (and names the job), not the constant data.* keys
        assert _hparam_names(events) == ["model.name", "optim.name", "status"]
        # the curves against the epoch too, in hundredths of an epoch
        epochs = [round(float(r["epoch"]) * 100) for r in rows]
        assert [s.step for s in events.Scalars("by_epoch/val_ppl")] == epochs

        # MLflow: one finished run per job, its params, its metric history and its files
        run = runs[job.name]
        assert run.info.run_id == summary["mlflow_run_id"]
        assert run.info.status == "FINISHED"
        assert run.data.tags["lmexp.status"] == "completed"
        assert run.data.params["model.name"] == job.name.split("-")[1]
        assert run.data.params["trainer.max_steps"] == "40"
        assert run.data.metrics["test_ppl"] == pytest.approx(summary["test_ppl"])
        assert run.data.tags["lmexp.sweep"] == "sweep"
        # one name, one definition: the curve's history has no extra final point
        wall = client.get_metric_history(run.info.run_id, "wall_time_s")
        assert sorted(m.step for m in wall) == [step for step, _ in curve]
        history = client.get_metric_history(run.info.run_id, "val_ppl")
        assert sorted((m.step, m.value) for m in history) == [
            (step, pytest.approx(v, rel=1e-9)) for step, v in curve
        ]
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"metrics.csv", "summary.json", ".hydra"} <= artifacts
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


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_documented_mlflow_ui_command_serves_the_sweeps_runs(small_corpus, tmp_path):
    """docs/trackers.md's `mlflow ui --backend-store-uri sqlite:///outputs/mlflow.db`, run in
    the folder a sweep with the default store trained in: its REST API lists the jobs."""
    import json as json_module
    import os
    import shutil
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    sweep = tmp_path / "outputs" / "multirun" / "s"
    args = ["-m", *small_run_args(small_corpus), "seed=1,2", "trainer.max_steps=24"]
    args += ["logger=mlflow", f"hydra.sweep.dir={sweep}"]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    done = subprocess.run(
        [sys.executable, "-m", "lmexp.train", *args],
        cwd=tmp_path,
        env={**env, "LMEXP_DATA_DIR": str(require_data_dir())},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "outputs" / "mlflow.db").is_file()
    mlflow = shutil.which("mlflow", path=str(Path(sys.executable).parent))
    assert mlflow, "the trackers extra installs the full mlflow, with its server"
    port = _free_port()
    ui = subprocess.Popen(
        [mlflow, "ui", "--backend-store-uri", "sqlite:///outputs/mlflow.db"]
        + ["--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its workers with it: the whole group is stopped below
    )
    base = f"http://127.0.0.1:{port}"

    def post(path: str, body: dict) -> dict:
        request = urllib.request.Request(
            base + path,
            data=json_module.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json_module.loads(response.read())

    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(base + "/health", timeout=5):
                    break
            except OSError:
                assert ui.poll() is None, "mlflow ui exited"
                assert time.monotonic() < deadline, "mlflow ui did not answer in 120 s"
                time.sleep(0.5)
        experiments = post("/api/2.0/mlflow/experiments/search", {"max_results": 100})
        (experiment,) = [
            e for e in experiments["experiments"] if e["name"].startswith("lmexp-train -m")
        ]
        tags = {t["key"]: t["value"] for t in experiment.get("tags", [])}
        assert tags["mlflow.experimentKind"] == "custom_model_development"
        runs = post(
            "/api/2.0/mlflow/runs/search", {"experiment_ids": [experiment["experiment_id"]]}
        )["runs"]
        names = sorted(r["info"]["run_name"] for r in runs)
        assert names == ["0-gru-adam-seed=1", "1-gru-adam-seed=2"]
        assert all(r["info"]["status"] == "FINISHED" for r in runs)
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        try:
            ui.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(ui.pid, signal.SIGKILL)
            ui.wait(timeout=30)
