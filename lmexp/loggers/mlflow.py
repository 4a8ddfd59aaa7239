"""logger=mlflow: one MLflow run per job, in an experiment named after the sweep's command.

Params are the validated config (dotted keys), metrics the `metrics.csv` columns by optimizer
step, then the summary's final numbers that are not curves already (`test_ppl`, ...: one name,
one definition); at the end the job directory goes up as the run's artifacts and the run ends
FINISHED, FAILED or KILLED as the job did. The run id is kept in `summary.json`, so a resumed
job goes on logging into the same MLflow run. The experiment is tagged as model development,
so MLflow 3's UI opens on its runs, not on its GenAI pages.
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Any

from lmexp.loggers import require_package
from lmexp.loggers.final import final_metrics
from lmexp.loggers.schema import MlflowConfig
from lmexp.run.record import flatten
from lmexp.run.rundir import RunDir
from lmexp.run.sweepdir import SweepDir
from lmexp.training.trainer import METRICS

log = logging.getLogger(__name__)

DEFAULT_STORE = Path("outputs") / "mlflow.db"  # beside outputs/runs and outputs/multirun
# metrics.csv columns sent at every evaluation: those the trainer's table gives a tracker name
# (not the step, MLflow's own axis, counters or per-phase timings)
ROW_METRICS = tuple(metric.name for metric in METRICS if metric.tag)
# how a job ended -> how its MLflow run ends
RUN_STATUS = {"completed": "FINISHED", "diverged": "FINISHED", "failed": "FAILED"}
MAX_PARAM_CHARS = 6000  # MLflow's limit on a param's value
MAX_NAME_CHARS = 200  # an experiment named after a long command keeps its start
# MLflow 3's UI shows an experiment of this kind as runs (its other kind: GenAI traces)
KIND_TAG, KIND = "mlflow.experimentKind", "custom_model_development"


def tracking_uri(cfg: MlflowConfig) -> str:
    """The configured store, else $MLFLOW_TRACKING_URI, else sqlite at outputs/mlflow.db."""
    if cfg.tracking_uri:
        return cfg.tracking_uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    DEFAULT_STORE.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{DEFAULT_STORE.resolve()}"


def experiment_name(cfg: MlflowConfig, run: RunDir) -> str:
    """The configured name, else the sweep's command, its swept overrides first
    (`lmexp-train -m model=rnn,gru optim=sgd,adam ...`: relaunches and repeats of one command
    share it), else "lmexp" (a single run)."""
    if cfg.experiment:
        return cfg.experiment
    sweep = SweepDir.of_job(run)
    if sweep is None:
        return "lmexp"
    overrides = sweep.task_overrides()
    if overrides is None:
        return sweep.root.name
    return " ".join(["lmexp-train -m", *_swept_first(overrides)])[:MAX_NAME_CHARS]


def _swept_first(overrides: list[str]) -> list[str]:
    """The command's overrides, those that sweep (`model=rnn,gru`) first: a long command's
    name, cut at MAX_NAME_CHARS, still says what its sweep compares."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except OverrideParseException:
        return overrides
    swept = [o for o, p in zip(overrides, parsed, strict=True) if p.is_sweep_override()]
    return swept + [o for o in overrides if o not in swept]


def _artifact_root(uri: str) -> str | None:
    """For a local sqlite store, artifacts beside the database, not in the current folder."""
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").as_uri()
    return None


class MlflowTracker:
    """Logs one job through MlflowClient (no global active run: jobs may share a process)."""

    def __init__(
        self,
        cfg: MlflowConfig,
        run: RunDir,
        config: dict[str, Any],
        summary: dict[str, Any],
        remember: Any,
    ) -> None:
        require_package("mlflow", "mlflow")
        from mlflow.tracking import MlflowClient

        self.cfg, self.run = cfg, run
        self.uri = tracking_uri(cfg)
        self.client = MlflowClient(tracking_uri=self.uri)
        experiment_id = self._experiment(experiment_name(cfg, run))
        self.run_id = self._run(experiment_id, summary.get("mlflow_run_id"))
        log.info(
            "MLflow: %s; browse: mlflow ui --backend-store-uri %s, then "
            "http://127.0.0.1:5000/#/experiments/%s?workflowType=machine_learning",
            run.root.name,
            self.uri,
            experiment_id,
        )
        remember(mlflow_run_id=self.run_id, mlflow_tracking_uri=self.uri)
        self._params(config)

    def _experiment(self, name: str) -> str:
        from mlflow.exceptions import MlflowException

        found = self.client.get_experiment_by_name(name)
        if found is None:
            try:
                return self.client.create_experiment(
                    name, artifact_location=_artifact_root(self.uri), tags={KIND_TAG: KIND}
                )
            except MlflowException:  # another job of the sweep created it first
                found = self.client.get_experiment_by_name(name)
                if found is None:
                    raise
        if KIND_TAG not in found.tags:  # made by an older lmexp, or by hand
            self.client.set_experiment_tag(found.experiment_id, KIND_TAG, KIND)
        return found.experiment_id

    def _run(self, experiment_id: str, earlier: str | None) -> str:
        """The resumed job's run if the store has it, else a new run named like the job."""
        from mlflow.exceptions import MlflowException

        if earlier:
            try:
                self.client.update_run(earlier, status="RUNNING")
                return earlier
            except MlflowException:
                pass  # another store, or the run was deleted: start a new one
        tags = {"lmexp.run_dir": str(self.run.root.resolve())}
        sweep = SweepDir.of_job(self.run)
        if sweep is not None:  # an experiment holds every sweep of its command
            tags["lmexp.sweep"] = sweep.root.name
        created = self.client.create_run(experiment_id, run_name=self.run.root.name, tags=tags)
        return created.info.run_id

    def _params(self, config: dict[str, Any]) -> None:
        """The config's values; a resumed run keeps its (MLflow refuses to change a param)."""
        from mlflow.entities import Param

        logged = self.client.get_run(self.run_id).data.params
        params = [
            Param(key, str(value)[:MAX_PARAM_CHARS])
            for key, value in flatten(config).items()
            if key not in logged
        ]
        for start in range(0, len(params), 100):  # MLflow takes 100 params a request
            self.client.log_batch(self.run_id, params=params[start : start + 100])

    def _metrics(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        metrics = [
            Metric(key, float(value), stamp, step)
            for key, value in values.items()
            if value is not None and not math.isnan(float(value))
        ]
        self.client.log_batch(self.run_id, metrics=metrics)

    def log_eval(self, row: dict[str, Any]) -> None:
        self._metrics({k: row[k] for k in ROW_METRICS if k in row}, int(row["step"]))

    def finish(self, summary: dict[str, Any]) -> None:
        status = str(summary.get("status"))
        try:
            # a final number that is also a curve (best_val_ppl, wall_time_s) stays the curve's
            final = {k: v for k, v in final_metrics(summary).items() if k not in ROW_METRICS}
            self._metrics(final, int(summary.get("steps") or 0))
            self.client.set_tag(self.run_id, "lmexp.status", status)
            if self.cfg.artifacts:
                self._artifacts()
        finally:
            self.client.set_terminated(self.run_id, status=RUN_STATUS.get(status, "KILLED"))

    def _artifacts(self) -> None:
        """The job directory's files; checkpoints only if asked, never the lock and record."""
        for entry in sorted(self.run.root.iterdir()):
            if entry == self.run.record or (
                entry == self.run.checkpoints and not self.cfg.checkpoints
            ):
                continue
            if entry.is_dir():
                self.client.log_artifacts(self.run_id, str(entry), artifact_path=entry.name)
            elif entry.is_file():
                self.client.log_artifact(self.run_id, str(entry))
