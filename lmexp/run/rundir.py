"""The layout of a job directory: the one place that knows its file names.

The job writes these files and every reader (resume, scoring, evaluation, generation, the
internals, the end-of-sweep summary and the analysis) finds them through `RunDir`, so a name
changes here or nowhere. Imports neither torch nor Hydra: the analysis reads runs without them.

    <job>/
      .hydra/config.yaml, overrides.yaml   the composed config and the command-line overrides
      .lmexp/config.json, launch.json      the record, written once (run/record.py): the validated
                                           config, and the command, overrides and job number
      .lmexp/hydra/*.yaml                  Hydra's files as the first launch wrote them
      summary.json                         status and headline numbers, rewritten atomically
      metrics.csv                          one row per evaluation (training/trainer.py's METRICS)
      checkpoints/best.pt, last.pt         lowest validation perplexity; where a resume starts
      vocab.json, corpus.json              the vocabulary; how scoring splits and starts text
      tokenizer.json                       a BPE run's tokenizer (data.tokenizer=bpe)
      evaluation/<split>_<checkpoint>.json lmexp-evaluate
      internals/timestep_loss.csv, grad_flow.csv   lmexp-internals
      samples/*.txt                        lmexp-generate
      tensorboard/                         logger=tensorboard's event files (lmexp/loggers/)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CHECKPOINTS = ("best", "last")  # the names `checkpoint=` accepts besides a .pt path
HYDRA_FILES = ("config.yaml", "hydra.yaml", "overrides.yaml")  # what Hydra writes in .hydra/


@dataclass(frozen=True)
class RunDir:
    """Paths inside one job directory; nothing is created or read until a caller does it."""

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    # --- what Hydra writes
    @property
    def hydra_dir(self) -> Path:
        return self.root / ".hydra"

    @property
    def hydra_config(self) -> Path:
        return self.root / ".hydra" / "config.yaml"

    @property
    def hydra_overrides(self) -> Path:
        return self.root / ".hydra" / "overrides.yaml"

    @property
    def hydra_settings(self) -> Path:
        """Hydra's own config for the job (`hydra.job.num`, `hydra.mode`)."""
        return self.root / ".hydra" / "hydra.yaml"

    # --- the record of the first launch (run/record.py)
    @property
    def record(self) -> Path:
        return self.root / ".lmexp"

    @property
    def recorded_config(self) -> Path:
        return self.record / "config.json"

    @property
    def recorded_launch(self) -> Path:
        """How the job was first launched: its command, overrides and number in its sweep."""
        return self.record / "launch.json"

    @property
    def heartbeat(self) -> Path:
        """Refreshed by the running job, for readers on other hosts (run/liveness.py)."""
        return self.record / "heartbeat.json"

    @property
    def lock(self) -> Path:
        """Held by the one process writing this job directory (run/liveness.py)."""
        return self.record / "lock"

    @property
    def pruning(self) -> Path:
        """Every early-stopping decision of the job, written before it is acted on
        (lmexp/training/pruning.py): a resume replays them."""
        return self.record / "pruning.json"

    @property
    def environment(self) -> Path:
        """What each session ran on and with: versions, code, packages, hardware
        (lmexp/runtime/environment.py); `lmexp-diff` compares two runs by it."""
        return self.record / "environment.json"

    def code_diff(self, digest: str) -> Path:
        """The uncommitted changes a session ran with, kept once per content."""
        return self.record / f"code-{digest}.diff"

    def recorded_hydra(self, name: str) -> Path:
        """The first launch's copy of `.hydra/<name>` (one of HYDRA_FILES)."""
        return self.record / "hydra" / name

    # --- what the job writes
    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.csv"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def checkpoint(self, name: str) -> Path:
        """`best` or `last` (see CHECKPOINTS)."""
        return self.checkpoints / f"{name}.pt"

    @property
    def best(self) -> Path:
        return self.checkpoint("best")

    @property
    def last(self) -> Path:
        return self.checkpoint("last")

    @property
    def vocab(self) -> Path:
        return self.root / "vocab.json"

    @property
    def corpus(self) -> Path:
        return self.root / "corpus.json"

    @property
    def tokenizer(self) -> Path:
        return self.root / "tokenizer.json"

    # --- what the commands that read a finished run write beside it
    def evaluation(self, split: str, checkpoint: str) -> Path:
        return self.root / "evaluation" / f"{split}_{checkpoint}.json"

    @property
    def internals(self) -> Path:
        return self.root / "internals"

    @property
    def timestep_loss(self) -> Path:
        return self.internals / "timestep_loss.csv"

    @property
    def grad_flow(self) -> Path:
        return self.internals / "grad_flow.csv"

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    # --- finding job directories
    def markers(self) -> tuple[Path, ...]:
        """The files of which any one marks a job directory."""
        return (self.hydra_config, self.summary, self.metrics)

    def is_job(self) -> bool:
        """Holds a file a job writes (a sweep directory, with its multirun.yaml, does not)."""
        return any(p.is_file() for p in self.markers())
