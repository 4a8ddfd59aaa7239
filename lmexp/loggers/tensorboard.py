"""logger=tensorboard: scalars per evaluation and, at the end, an HParams session per job.

Each job writes its event files into its own directory, so `tensorboard --logdir <sweep dir>`
shows every job as a run named like the job (`3-gru-adam-lr=0.01`), and the HParams tab sorts
them by the final metrics. In a sweep, the HParams columns are the keys it varies (the job's
`hydra.job.override_dirname`: lmexp/run/jobname.py), the architecture and optimizer names and
the status: TensorBoard lists them alphabetically and checks the first few, so the constant
keys (`data.*`) would push what differs out of view (`hparams_keys=all` logs every key).
Final values go under `summary/` (after the curves in Time Series: TensorBoard reads HParams
metrics from scalars, so they cannot be left out). TensorBoard's x axis is the step; the
`by_epoch/` curves use hundredths of an epoch as their step. A resumed job hides the events
its killed session wrote after the checkpoint it resumes from (`purge_step`), as `metrics.csv`
drops those rows.
"""

from __future__ import annotations

import math
from typing import Any

from lmexp.loggers import require_package
from lmexp.loggers.final import final_metrics
from lmexp.loggers.schema import TensorBoardConfig
from lmexp.run import keys
from lmexp.run.jobname import ITEM_SEP
from lmexp.run.record import flatten
from lmexp.run.rundir import RunDir
from lmexp.training.trainer import METRICS

# metrics.csv column -> TensorBoard tag (the trainer's table); grouped by the part before "/"
SCALARS = {metric.name: metric.tag for metric in METRICS if metric.tag}
# the curves again against the epoch (TensorBoard has no other x axis than a step)
BY_EPOCH = {"val_ppl": "by_epoch/val_ppl", "train_ppl": "by_epoch/train_ppl"}
EPOCH_STEPS = 100  # a by_epoch step is a hundredth of an epoch
FINAL_PREFIX = "summary/"  # sorts after every curve group in Time Series
GROUPS = ("data", "model", "optim", "schedule", "trainer", "logger", "prune")  # key=option


def varying_keys(run: RunDir) -> list[str]:
    """The config keys the job's sweep varies, from Hydra's override_dirname in the job's
    `.hydra/hydra.yaml` ([] for a single run): a group's (`model=gru`) is its `.name`."""
    import yaml

    try:
        hydra = yaml.safe_load(run.hydra_settings.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return []
    job = (hydra.get("hydra") or {}).get("job") or {}
    if (hydra.get("hydra") or {}).get("mode") not in ("MULTIRUN", "RunMode.MULTIRUN"):
        return []
    found = []
    for item in str(job.get("override_dirname") or "").split(ITEM_SEP):
        key = item.partition("=")[0].lstrip("+~")
        if key:
            found.append(f"{key}.name" if key in GROUPS else key)
    return found


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

        self.cfg, self.config, self.run = cfg, config, run
        self.log_dir = run.root / cfg.dir
        purge = start_step + 1 if start_step > 0 else None  # steps after the resumed checkpoint
        self.writer = SummaryWriter(str(self.log_dir), purge_step=purge)

    def log_eval(self, row: dict[str, Any]) -> None:
        step = int(row["step"])
        for column, tag in SCALARS.items():
            if row.get(column) is not None:
                self.writer.add_scalar(tag, float(row[column]), step)
        if row.get("epoch") is not None:
            at = round(float(row["epoch"]) * EPOCH_STEPS)
            for column, tag in BY_EPOCH.items():
                if row.get(column) is not None:
                    self.writer.add_scalar(tag, float(row[column]), at)
        self.writer.flush()  # a killed job keeps what it logged, as metrics.csv does

    def finish(self, summary: dict[str, Any]) -> None:
        try:
            if self.cfg.hparams:
                self._hparams(summary)
        finally:
            self.writer.close()

    def _hparams(self, summary: dict[str, Any]) -> None:
        from torch.utils.tensorboard.summary import hparams

        metrics = {f"{FINAL_PREFIX}{k}": v for k, v in final_metrics(summary).items()}
        every = {k: hparam_value(v) for k, v in hyperparameters(self.config).items()}
        # what varies, then what names the job; every key for a single run or with
        # hparams_keys=all (TensorBoard orders them alphabetically and checks the first few)
        varying = [k for k in varying_keys(self.run) if k in every]
        first = varying + [
            k for k in ("model.name", "optim.name") if k in every and k not in varying
        ]
        params = {k: every[k] for k in first}
        params["status"] = str(summary.get("status"))
        if self.cfg.hparams_keys == "all" or not varying:
            params.update({k: v for k, v in every.items() if k not in params})
        # Written into this job's own directory (SummaryWriter.add_hparams would make a new
        # sub-run per call), so each job is one row of the HParams table.
        writer = self.writer._get_file_writer()
        for part in hparams(params, metrics):
            writer.add_summary(part)
        step = int(summary.get("steps") or 0)
        for tag, value in metrics.items():
            if math.isfinite(value):
                self.writer.add_scalar(tag, value, step)
