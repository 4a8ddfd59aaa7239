"""The layout of a sweep directory: the one place that knows its file names.

`RunDir` owns a job directory; this owns the folder a multirun makes around its jobs. Every
writer (the end-of-sweep callback, the search sweeper, the relaunch record) and every reader (the
trackers' experiment name, the analysis) finds these files here, so a name changes here or
nowhere. Imports neither torch nor Hydra.

    <sweeps>/
      latest -> <sweep>                    the sweep started last in <sweeps> (a symlink)
      <sweep>/
        multirun.yaml                      Hydra's sweeper writes it at every launch
        results.md                         the end-of-sweep table of every job (callbacks.py)
        optimization_results.yaml          sweep=optuna: the study's best so far
        .lmexp/multirun.yaml               the first launch's multirun.yaml (run/record.py)
        .lmexp/relaunches/<stamp>.yaml     each relaunch's, filed when it ends
        .lmexp/job_numbers/<n>/            a search's job numbers, each taken by one process
        <n>-<model>-<optim>[-<k>=<v>,...]/ one job directory each (RunDir), named by what varies
                                           (run/jobname.py): 3-gru-adam-lr=0.01,seed=2
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from lmexp.run.rundir import RunDir

LATEST = "latest"  # beside the sweeps of one folder: a link to the one started last


@dataclass(frozen=True)
class SweepDir:
    """Paths inside one sweep directory; nothing is created or read until a caller does it."""

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    @property
    def multirun(self) -> Path:
        return self.root / "multirun.yaml"

    @property
    def results(self) -> Path:
        return self.root / "results.md"

    @property
    def search_results(self) -> Path:
        return self.root / "optimization_results.yaml"

    @property
    def record(self) -> Path:
        return self.root / ".lmexp"

    @property
    def recorded_multirun(self) -> Path:
        return self.record / "multirun.yaml"

    @property
    def job_numbers(self) -> Path:
        return self.record / "job_numbers"

    def relaunch(self, stamp: str) -> Path:
        """Where a relaunch's own multirun.yaml is filed once it ends."""
        return self.record / "relaunches" / f"{stamp}.yaml"

    @property
    def latest(self) -> Path:
        return self.root.parent / LATEST

    def is_sweep(self) -> bool:
        """Hydra's sweeper has written its multirun.yaml here."""
        return self.multirun.is_file()

    @classmethod
    def of_job(cls, job: RunDir) -> SweepDir | None:
        """The sweep a job directory belongs to; None for a single run's directory."""
        sweep = cls(job.root.parent)
        return sweep if sweep.is_sweep() else None

    def task_overrides(self) -> list[str] | None:
        """The sweep command's overrides (the first launch's; not hydra.* ones), or None when
        its multirun.yaml is missing or unreadable."""
        import yaml

        path = self.recorded_multirun if self.recorded_multirun.is_file() else self.multirun
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            return None
        task = ((data.get("hydra") or {}).get("overrides") or {}).get("task")
        return [str(o) for o in task] if isinstance(task, list) else None

    def jobs(self) -> list[RunDir]:
        """The job directories Hydra made directly inside this sweep, by name."""
        found = self.root.glob("*/.hydra/config.yaml")
        return [RunDir(p.parent.parent) for p in sorted(found)]

    def mark_latest(self) -> Path | None:
        """Point `<sweeps>/latest` at this sweep, in one step (a reader never sees it missing).

        Only a link is replaced: a real file or folder named `latest` is left alone (None).
        """
        link = self.latest
        if link.exists() and not link.is_symlink():
            return None
        staged = link.with_name(f".{LATEST}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            staged.unlink()
        staged.symlink_to(self.root.name, target_is_directory=True)  # relative: movable
        os.replace(staged, link)
        return link
