"""The `logger` config group's schema: which experiment trackers a job writes to, besides its files.

`metrics.csv` and `summary.json` are the run's record (resume, the report and the end-of-sweep
table read them), so they are always written; `logger=csv`, the default, is that record alone.
Each tracker is a section set by its own option file (conf/logger/<name>.yaml), so several can
be chosen at once: `logger=[csv,tensorboard,mlflow]`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TensorBoardConfig:
    """Event files in the job directory: `tensorboard --logdir <sweep dir>` compares the jobs."""

    # inside the job directory; ".": the job directory itself, so TensorBoard names each run
    # after its job (a folder would add "/<dir>" to every run's name)
    dir: str = "."
    hparams: bool = True  # the config and final metrics, for TensorBoard's HParams view
    # varying: in a sweep, the keys it varies (and model.name, optim.name, status): TensorBoard
    # lists hyper-parameters alphabetically and checks the first few, so constant ones (data.*)
    # would hide what differs; all: every key that changes what a job computes
    hparams_keys: str = "varying"

    def __post_init__(self) -> None:
        if self.hparams_keys not in ("varying", "all"):
            raise ValueError(
                f"logger.tensorboard.hparams_keys={self.hparams_keys!r} unknown; choose varying "
                "or all"
            )


@dataclass
class MlflowConfig:
    """One MLflow run per job; the sweep directory's name is the experiment."""

    # null: $MLFLOW_TRACKING_URI if set, else a sqlite store at outputs/mlflow.db (beside the
    # runs; `mlflow ui --backend-store-uri sqlite:///outputs/mlflow.db` shows it)
    tracking_uri: str | None = None
    experiment: str | None = None  # null: the sweep directory's name ("lmexp" for a single run)
    artifacts: bool = True  # at the end, the job directory's files as the run's artifacts
    checkpoints: bool = False  # ... checkpoints/ included (large: off by default)


@dataclass
class LoggerConfig:
    """The trackers a job writes to; an unset section is a tracker not chosen."""

    tensorboard: TensorBoardConfig | None = None
    mlflow: MlflowConfig | None = None

    def chosen(self) -> list[str]:
        """The trackers set, in a fixed order (the CSV record is always written)."""
        return [name for name in ("tensorboard", "mlflow") if getattr(self, name) is not None]
