"""logger=tensorboard: scalars per evaluation and, at the end, an HParams session per job.

Each job writes `<job>/tensorboard/`, so `tensorboard --logdir <sweep dir>` shows every job as
a run, and the HParams tab sorts them by the final metrics. A resumed job hides the events its
killed session wrote after the checkpoint it resumes from (`purge_step`), as `metrics.csv`
drops those rows.
"""

from __future__ import annotations

import math
from typing import Any

from lmexp.loggers import require_package
from lmexp.loggers.final import final_metrics
from lmexp.loggers.schema import TensorBoardConfig
from lmexp.run import keys
from lmexp.run.record import flatten
from lmexp.run.rundir import RunDir
from lmexp.training.trainer import METRICS

# metrics.csv column -> TensorBoard tag (the trainer's table); grouped by the part before "/"
SCALARS = {metric.name: metric.tag for metric in METRICS if metric.tag}


def hyperparameters(config: dict[str, Any]) -> dict[str, Any]:
    """The config's keys that change what a job computes: not where or how fast it runs, nor
    where its data lives (run/keys.py)."""
    return {
        key: value
        for key, value in flatten(config).items()
        if keys.role(key) not in (keys.EXECUTION, keys.PLUMBING)
    }


def hparam_value(value: Any) -> bool | int | float | str:
    """What the HParams plugin accepts: a number, a bool or a string (lists and None as text)."""
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


class TensorBoardTracker:
    """Writes one job's event files through torch's SummaryWriter."""

    def __init__(
        self, cfg: TensorBoardConfig, run: RunDir, config: dict[str, Any], start_step: int
    ) -> None:
        require_package("tensorboard", "tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        self.cfg, self.config = cfg, config
        self.log_dir = run.root / cfg.dir
        purge = start_step + 1 if start_step > 0 else None  # steps after the resumed checkpoint
        self.writer = SummaryWriter(str(self.log_dir), purge_step=purge)

    def log_eval(self, row: dict[str, Any]) -> None:
        step = int(row["step"])
        for column, tag in SCALARS.items():
            if row.get(column) is not None:
                self.writer.add_scalar(tag, float(row[column]), step)
        self.writer.flush()  # a killed job keeps what it logged, as metrics.csv does

    def finish(self, summary: dict[str, Any]) -> None:
        try:
            if self.cfg.hparams:
                self._hparams(summary)
        finally:
            self.writer.close()

    def _hparams(self, summary: dict[str, Any]) -> None:
        from torch.utils.tensorboard.summary import hparams

        metrics = {f"final/{k}": v for k, v in final_metrics(summary).items()}
        params = {k: hparam_value(v) for k, v in hyperparameters(self.config).items()}
        params["status"] = str(summary.get("status"))
        # Written into this job's own directory (SummaryWriter.add_hparams would make a new
        # sub-run per call), so each job is one row of the HParams table.
        writer = self.writer._get_file_writer()
        for part in hparams(params, metrics):
            writer.add_summary(part)
        step = int(summary.get("steps") or 0)
        for tag, value in metrics.items():
            if math.isfinite(value):
                self.writer.add_scalar(tag, value, step)
