"""What to do with a job directory that may already hold a run: start, resume, skip or refuse.

Re-running a sweep command into the same sweep directory with `resume=true` keeps Hydra's job
numbering and directories: finished jobs are skipped, interrupted or failed ones continue from
its last checkpoint. Without `resume`, an existing run is never overwritten.
"""

from __future__ import annotations

import csv
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmexp.atomic import replacing
from lmexp.run import keys
from lmexp.run.record import flatten
from lmexp.run.rundir import RunDir
from lmexp.run.summary import UnreadableFile, read_json_file
from lmexp.validation import UsageError

log = logging.getLogger(__name__)

FINISHED = ("completed", "diverged", "pruned")  # a resume skips them


class JobDirInUse(UsageError, RuntimeError):
    """The job directory already holds a run and `resume` is off."""


class CheckpointMismatch(UsageError, ValueError):
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
        data = read_json_file(path)
    except UnreadableFile:
        return {"status": "unknown"}
    return data if isinstance(data, dict) else {"status": "unknown"}


def holds_run(out_dir: Path, resume: bool) -> bool:
    """Whether `out_dir` holds a run; JobDirInUse if it does and `resume` is off. Reads only:
    pre-flight asks it of every job directory a command would write into."""
    summary = read_summary(out_dir)
    if summary is None and not RunDir(out_dir).metrics.exists():
        return False
    if not resume:
        status = (summary or {}).get("status", "unknown")
        raise JobDirInUse(
            f"{out_dir} already holds a run (status {status}). Rerun the same command with "
            "resume=true to continue it (finished jobs are skipped), or write elsewhere: "
            "hydra.run.dir=... / hydra.sweep.dir=..."
        )
    return True


def plan_job_dir(out_dir: Path, resume: bool) -> JobDirPlan:
    """Decide how to treat `out_dir`; raises JobDirInUse rather than overwrite a run."""
    run = RunDir(out_dir)
    summary = read_summary(out_dir)
    if not holds_run(out_dir, resume):
        return JobDirPlan("fresh")
    status = (summary or {}).get("status", "unknown")
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


class MetricsLost(UsageError, ValueError):
    """metrics.csv cannot be put back as it was at the checkpoint: resuming would lose rows."""


def restore_metrics(path: Path, saved: str | None, last_step: int, checkpoint: Path) -> str | None:
    """Put `metrics.csv` back exactly as it was when `checkpoint` was written: its rows up to
    `last_step` (a row written after it would appear twice once those steps run again).

    `saved` is the file's text the checkpoint carries (lmexp writes it into every last.pt):
    the file is rewritten from it, whatever happened to it since; the note returned says what
    differed. A checkpoint of an older lmexp carries none: the file's own rows up to the step
    are kept, and a file that is missing, or holds a malformed row other than a half-written
    last line, is refused (MetricsLost), since its rows cannot be known.
    """
    if saved is not None:
        # the bytes as they are (csv writes \r\n; read_text would turn them into \n)
        current = path.read_bytes().decode("utf-8", "replace") if path.exists() else None
        with replacing(path, "w", newline="", encoding="utf-8") as f:
            f.write(saved)
        if current is None:
            return f"{path} was missing: its rows up to step {last_step} restored from {checkpoint}"
        if not current.startswith(saved):
            return (
                f"{path} differed from {checkpoint}'s copy of its rows up to step {last_step} "
                "(a row changed, malformed or missing): restored from the checkpoint"
            )
        return None
    if not path.exists():
        raise MetricsLost(
            f"{path} is missing and {checkpoint} (written by an older lmexp) does not carry its "
            f"rows: resuming would start the curve at step {last_step}. Put the file back, or "
            f"start the job over (rm {checkpoint})"
        )
    truncate_metrics(path, last_step)
    return None


def truncate_metrics(path: Path, last_step: int) -> int:
    """Keep the header and the complete rows up to `last_step`; returns the rows kept.

    Rows written after the checkpoint would otherwise appear twice once the resumed run
    evaluates those steps again. A half-written last line (a job killed as it wrote it, after
    its last checkpoint) is dropped; a malformed row before other rows is refused
    (MetricsLost): dropping it, or the rows after it, would lose history.
    """
    if not path.exists():
        return 0
    with path.open(newline="", encoding="utf-8", errors="replace") as f:
        rows = list(csv.reader(f))
    if not rows:
        return 0
    header, kept = rows[0], []
    for number, row in enumerate(rows[1:], start=2):
        step = _step(header, row)
        if step is None:
            if number == len(rows):  # the last line, half written
                break
            raise MetricsLost(
                f"{path} line {number} is malformed ({len(row)} fields, header has "
                f"{len(header)}): its rows up to step {last_step} cannot be restored. Repair "
                "or remove that line, then resume again"
            )
        if step > last_step:
            break
        kept.append(row)
    with replacing(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, *kept])
    return len(kept)


def _step(header: list[str], row: list[str]) -> int | None:
    """The row's step, or None for a row that is not a complete one."""
    if len(row) != len(header):
        return None
    try:
        return int(dict(zip(header, row, strict=True))["step"])
    except (KeyError, ValueError):
        return None


def epoch_end_val_ppl(path: Path) -> list[float]:
    """The validation perplexity measured at the end of each epoch so far (epochs 1, 2, ...),
    from metrics.csv: what `schedule=plateau` decides the next epoch's rate from. A resumed run
    reads the rows its checkpoint put back, so it decides as the uninterrupted run did."""
    if not path.exists():
        return []
    ends: dict[int, float] = {}
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            try:
                epoch, ppl = float(row["epoch"]), float(row["val_ppl"])
            except (KeyError, TypeError, ValueError):
                continue
            if epoch >= 1 and epoch == round(epoch):
                ends[int(epoch)] = ppl
    return [ends[e] for e in sorted(ends)]
