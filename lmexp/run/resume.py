"""What to do with a job directory that may already hold a run: start, resume, skip or refuse.

Re-running a sweep command into the same sweep directory with `resume=true` keeps Hydra's job
numbering and directories: finished jobs are skipped, interrupted or failed ones continue from
its last checkpoint. Without `resume`, an existing run is never overwritten.
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmexp.atomic import replacing
from lmexp.run import keys
from lmexp.run.record import flatten
from lmexp.run.rundir import RunDir

log = logging.getLogger(__name__)

FINISHED = ("completed", "diverged")


class JobDirInUse(RuntimeError):
    """The job directory already holds a run and `resume` is off."""


class CheckpointMismatch(ValueError):
    """The checkpoint to resume from was trained with a different architecture, data or vocab."""


@dataclass
class JobDirPlan:
    action: str  # "fresh" | "resume" | "skip"
    summary: dict[str, Any] | None = None
    checkpoint: Path | None = None
    budget_changes: dict[str, tuple] = field(
        default_factory=dict
    )  # resume=force: {key: (old, new)}


def read_summary(out_dir: Path) -> dict[str, Any] | None:
    path = RunDir(out_dir).summary
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {"status": "unknown"}
    return data if isinstance(data, dict) else {"status": "unknown"}


def plan_job_dir(out_dir: Path, resume: bool) -> JobDirPlan:
    """Decide how to treat `out_dir`; raises JobDirInUse rather than overwrite a run."""
    run = RunDir(out_dir)
    summary = read_summary(out_dir)
    has_run = summary is not None or run.metrics.exists()
    if not has_run:
        return JobDirPlan("fresh")
    status = (summary or {}).get("status", "unknown")
    if not resume:
        raise JobDirInUse(
            f"{out_dir} already holds a run (status {status}). Rerun the same command with "
            "resume=true to continue it (finished jobs are skipped), or write elsewhere: "
            "hydra.run.dir=... / hydra.sweep.dir=..."
        )
    if status in FINISHED:
        return JobDirPlan("skip", summary)
    if run.last.exists():
        return JobDirPlan("resume", summary, run.last)
    # Nothing to continue from (it died before its first checkpoint): start it over.
    run.metrics.unlink(missing_ok=True)
    shutil.rmtree(run.checkpoints, ignore_errors=True)
    return JobDirPlan("fresh", summary)


def check_compatible(saved: dict[str, Any], current: dict[str, Any], path: Path) -> None:
    """Refuse to resume a checkpoint whose architecture or batching differs from the config
    (the keys that pin a checkpoint: run/keys.py)."""
    old, new = flatten(saved), flatten(current)
    # The current config's keys: a checkpoint written before each architecture had its own
    # schema also saved keys its architecture never read.
    for key in new:
        if keys.pins_checkpoint(key) and old.get(key) != new[key]:
            raise CheckpointMismatch(
                f"checkpoint {path} was trained with {key}={old.get(key)!r} but the "
                f"config says {key}={new[key]!r}. Resume with the original "
                "settings, or start a new run in another directory (hydra.run.dir=... / "
                "hydra.sweep.dir=...)."
            )


def check_vocab(saved_digest: str | None, digest: str, path: Path) -> None:
    if saved_digest is not None and saved_digest != digest:
        raise CheckpointMismatch(
            f"checkpoint {path} was trained on a different vocabulary than the data the config "
            "loads now (data.root or the corpus files changed). Point data.root at the original "
            "files, or start a new run in another directory."
        )


def truncate_metrics(path: Path, last_step: int) -> int:
    """Keep the header and the complete rows up to `last_step`; returns the rows kept.

    Rows written after the checkpoint (and a half-written last line) would otherwise appear
    twice once the resumed run evaluates those steps again.
    """
    if not path.exists():
        return 0
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows:
        return 0
    header, kept = rows[0], []
    for row in rows[1:]:
        if len(row) != len(header):
            break
        values = dict(zip(header, row, strict=True))
        try:
            if int(values["step"]) > last_step:
                break
        except ValueError:
            break
        kept.append(row)
    with replacing(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, *kept])
    return len(kept)
