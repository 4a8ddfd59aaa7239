"""Experiment trackers a job reports to besides its own files (the `logger` config group).

The job's record (`metrics.csv`, `summary.json`) is written whatever is chosen here; trackers
get the same evaluation rows and, at the end, the final summary. A tracker that cannot start
fails the job before training (a wrong URI, a missing package); one that fails mid-run is
dropped with one warning, since the record on disk already holds everything it would have had.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from lmexp.loggers.schema import LoggerConfig
from lmexp.run.rundir import RunDir

log = logging.getLogger(__name__)

# What `pip install` adds each tracker (the `trackers` extra installs both).
PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow"}


class Tracker(Protocol):
    """What a job tells a tracker: every evaluation row, then the final summary once."""

    def log_eval(self, row: dict[str, Any]) -> None: ...

    def finish(self, summary: dict[str, Any]) -> None: ...


class MissingTrackerPackage(ImportError):
    """`logger=<name>` was chosen but its package is not installed."""


def require_package(name: str, module: str) -> Any:
    """Import a tracker's package, or say in one line how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingTrackerPackage(
            f"logger={name} needs the {PACKAGES[name]} package: pip install 'lmexp[trackers]' "
            f"(or {PACKAGES[name]})"
        ) from exc


class Trackers:
    """The trackers of one job, called as one; a failing tracker is dropped, never the job."""

    def __init__(self, trackers: dict[str, Tracker] | None = None) -> None:
        self.trackers = dict(trackers or {})

    def _each(self, call: Callable[[Tracker], None]) -> None:
        for name, tracker in list(self.trackers.items()):
            try:
                call(tracker)
            except Exception as exc:  # the record on disk has it all; the job goes on
                log.warning("logger=%s failed and is stopped for this job: %s", name, exc)
                del self.trackers[name]

    def log_eval(self, row: dict[str, Any]) -> None:
        self._each(lambda t: t.log_eval(row))

    def finish(self, summary: dict[str, Any]) -> None:
        self._each(lambda t: t.finish(summary))
        self.trackers.clear()  # once: a job ends one way

    def start(
        self,
        cfg: LoggerConfig,
        run: RunDir,
        config: dict[str, Any],
        summary: dict[str, Any],
        start_step: int,
        remember: Callable[..., None],
    ) -> None:
        """Start the chosen trackers for the job in `run`, which resumes at `start_step`.

        `config` is the validated config as a dict (the hyper-parameters), `summary` the
        fields so far (a resumed job's earlier MLflow run id), `remember(**fields)` stores
        fields in the summary for the next session. Raises if a tracker cannot start.
        """
        if cfg.tensorboard is not None:
            from lmexp.loggers.tensorboard import TensorBoardTracker

            tensorboard = TensorBoardTracker(cfg.tensorboard, run, config, start_step)
            self.trackers["tensorboard"] = tensorboard
        if cfg.mlflow is not None:
            from lmexp.loggers.mlflow import MlflowTracker

            self.trackers["mlflow"] = MlflowTracker(cfg.mlflow, run, config, summary, remember)
        if self.trackers:
            log.info("logging to %s besides %s", ", ".join(self.trackers), run.metrics.name)
