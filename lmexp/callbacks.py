"""Hydra callback that ends a multirun with a list of every failed or diverged job.

Hydra 1.3.8 prints only the first failure and, since each job here records its failure and
returns +inf, would otherwise exit 0. This reads every job's `summary.json` in the sweep
directory, logs one line per job that did not complete, and exits non-zero when a job failed
(unless `fail_on_error` is off, e.g. for Optuna studies, where a bad trial is data).
"""

from __future__ import annotations

import logging
import math
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from lmexp.atomic import replacing
from lmexp.resolvers import is_slurm_launcher
from lmexp.run.liveness import effective_status
from lmexp.run.record import hold_sweep_record, read_launch, restore_sweep_record
from lmexp.run.resume import read_summary
from lmexp.run.sweepdir import SweepDir
from lmexp.textfmt import duration
from lmexp.validation import USAGE_EXIT

log = logging.getLogger("lmexp.sweep")


def sweep_statuses(sweep_dir: Path) -> dict[str, dict[str, Any]]:
    """Job directory name -> its summary (status "unknown" when unreadable or missing), with
    the job number its record holds (`job_num`, run/record.py) for the launch order."""
    statuses: dict[str, dict[str, Any]] = {}
    for job in SweepDir(sweep_dir).jobs():
        summary = read_summary(job.root) or {"status": "unknown"}
        # a job SIGKILLed while running still says so: its process is gone
        launch = read_launch(job)
        number = launch.job_num if launch is not None else None
        statuses[job.root.name] = {
            **summary,
            "status": effective_status(summary, job.root),
            "job_num": number,
        }
    return statuses


_launched: list[Path] = []  # the sweep this process launched (on_multirun_start)
# The number of jobs of the sweep, for the bars' "k/N": set in the launching process, whose
# environment its launcher's workers and submitted jobs inherit.
SWEEP_SIZE_ENV = "LMEXP_SWEEP_SIZE"


def sweep_size(config: DictConfig) -> int | None:
    """How many jobs this multirun launches: an Optuna study's trials, or the grid's size."""
    sweeper = config.hydra.get("sweeper") or {}
    seeds = int(config.get("seeds") or 1)  # each cell's repeats (lmexp.search.repeats)
    if sweeper.get("n_trials") is not None:
        return int(sweeper.n_trials) * seeds
    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides = list(config.hydra.overrides.task)
    overrides += [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
    size = seeds
    try:
        for override in OverridesParser.create().parse_overrides(overrides):
            if override.is_sweep_override():
                size *= len(list(override.sweep_string_iterator()))
    except Exception:  # an interval or an expression the grid cannot count: no N shown
        return None
    return size


def launched_sweep_dir() -> Path | None:
    """The sweep directory of the multirun this process launched, if any.

    HydraConfig is set only inside a job, and joblib's jobs run in worker processes, so the
    launching process learns its sweep directory from the callback instead.
    """
    return _launched[-1] if _launched else None


def end_of_launch(sweep_dir: Path) -> None:
    """Put the first launch's multirun.yaml back after a relaunch, filing the relaunch's."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%S.%f")
    filed = restore_sweep_record(SweepDir(sweep_dir), stamp)
    if filed is not None:
        log.info("this launch's multirun.yaml is kept as %s; the sweep's is its first", filed)


def summary_lines(statuses: dict[str, dict[str, Any]]) -> list[str]:
    """One line per job that did not complete, after a count of each status."""
    counts: dict[str, int] = {}
    for summary in statuses.values():
        counts[summary.get("status", "unknown")] = (
            counts.get(summary.get("status", "unknown"), 0) + 1
        )
    lines = [", ".join(f"{n} {status}" for status, n in sorted(counts.items()))]
    for name, summary in statuses.items():
        status = summary.get("status", "unknown")
        if status == "completed":
            continue
        detail = summary.get("error") or summary.get("stop_reason") or ""
        if summary.get("error_type"):
            detail = f"{summary['error_type']}: {detail}"
        lines.append(f"  {name}: {status}" + (f" ({detail.splitlines()[0]})" if detail else ""))
    return lines


def _number(value: Any, digits: int = 2) -> str:
    try:
        return f"{float(value):,.{digits}f}"
    except (TypeError, ValueError):
        return "-"


def sweep_table(statuses: dict[str, dict[str, Any]]) -> str:
    """Every job of the sweep in launch order: status, best validation and test perplexity,
    and its time end to end (`total_time_s`; `wall_time_s` for a job without it)."""
    from tabulate import tabulate

    rows = [
        [
            name,
            summary.get("status", "unknown"),
            _number(summary.get("best_val_ppl")),
            _number(summary.get("test_ppl")),
            duration(summary.get("total_time_s") or summary.get("wall_time_s")),
        ]
        for name, summary in sorted(statuses.items(), key=_launch_order)
    ]
    # "total": end to end; the report's "Train time" is the training part (`wall_time_s`)
    headers = ["job", "status", "best val ppl", "test ppl", "total time"]
    return tabulate(
        rows, headers, tablefmt="github", colalign=("left", "left", "right", "right", "right")
    )


def _launch_order(item: tuple[str, dict[str, Any]]) -> tuple[int, str]:
    """By the job number the record holds, then by name (a job without one goes last)."""
    number = item[1].get("job_num")
    return (number if isinstance(number, int) else 1 << 30, item[0])


def write_results(sweep_dir: Path, statuses: dict[str, dict[str, Any]]) -> Path:
    """The results table as `<sweep>/results.md`, replaced at each end of a launch."""
    path = SweepDir(sweep_dir).results
    with replacing(path, "w", encoding="utf-8") as f:
        f.write(f"# Sweep {Path(sweep_dir).name}\n\n{sweep_table(statuses)}\n")
    return path


def report_sweep(sweep_dir: Path, statuses: dict[str, dict[str, Any]]) -> list[str]:
    """The end of a sweep's console: status counts, jobs that did not complete, the table."""
    path = write_results(sweep_dir, statuses)
    lines = [*summary_lines(statuses), "", sweep_table(statuses), f"(also in {path})"]
    best = best_job(statuses)
    if best is not None:
        lines.append(f"best: {best} (lmexp-status {sweep_dir} --sort best_val_ppl ranks them)")
    return lines


def best_job(statuses: dict[str, dict[str, Any]]) -> str | None:
    """`<job> (best val ppl 123.45)` of the completed job with the lowest one, if any."""
    scored = []
    for name, summary in statuses.items():
        try:
            value = float(summary.get("best_val_ppl"))
        except (TypeError, ValueError):
            continue
        if summary.get("status") == "completed" and math.isfinite(value):
            scored.append((value, name))
    if len(scored) < 2:
        return None  # one job is not a ranking
    value, name = min(scored)
    return f"{name} (best val ppl {value:,.2f})"


# Launcher settings that must be positive integers when set: the launchers themselves fail on
# them only once jobs are dispatched (joblib's n_jobs=0 after the first job's data is loaded).
POSITIVE_LAUNCHER_KEYS = (
    "n_jobs",  # joblib: -1 = every core, -2 = all but one, ...; 0 is no jobs at all
    "timeout_min",
    "cpus_per_task",
    "gpus_per_node",
    "tasks_per_node",
    "mem_gb",
    "nodes",
    "array_parallelism",
    "max_num_timeout",
)


# SLURM sends `--signal` "up to 60 seconds earlier than specified" (sbatch(1)): a job must be
# able to start (imports, data) before the earliest time it can come, or the signal finds no
# handler and kills it ("srun: error: ... task 0: User defined signal 2", never requeued).
SLURM_SIGNAL_EARLY_S = 60
SLURM_START_UP_S = 30


def _slurm_signal_problem(launcher: Any) -> str | None:
    """Why a SLURM job's time-limit signal could reach it while it still starts, if it could."""
    if not is_slurm_launcher(launcher.get("_target_", "")):
        return None
    limit, delay = launcher.get("timeout_min"), launcher.get("signal_delay_s")
    if not isinstance(limit, int) or not isinstance(delay, int) or limit <= 0:
        return None
    earliest = limit * 60 - delay - SLURM_SIGNAL_EARLY_S
    if earliest >= SLURM_START_UP_S:
        return None
    least = math.ceil((delay + SLURM_SIGNAL_EARLY_S + SLURM_START_UP_S) / 60)
    return (
        f"hydra.launcher.timeout_min={limit} with signal_delay_s={delay}: SLURM may send the "
        f"time-limit signal up to {SLURM_SIGNAL_EARLY_S} s early, {max(earliest, 0)} s into the "
        f"job, before it can save; set timeout_min>={least} or lower signal_delay_s"
    )


def launcher_problems(launcher: Any, sweeper: Any = None) -> list[str]:
    """One line per launcher or sweeper setting that cannot work, naming the key."""
    problems = []
    signal_problem = _slurm_signal_problem(launcher) if launcher is not None else None
    if signal_problem:
        problems.append(signal_problem)
    for key in POSITIVE_LAUNCHER_KEYS:
        value = launcher.get(key) if launcher is not None else None
        if value is None:
            continue
        allowed_negative = key == "n_jobs"
        if not isinstance(value, int) or value == 0 or (value < 0 and not allowed_negative):
            if key == "max_num_timeout" and value == 0:
                continue  # no requeue: allowed
            problems.append(f"hydra.launcher.{key}={value!r} must be a positive integer")
    batch = sweeper.get("max_batch_size") if sweeper is not None else None
    if batch is not None and (not isinstance(batch, int) or batch < 1):
        problems.append(f"hydra.sweeper.max_batch_size={batch!r} must be a positive integer")
    return problems


def _mark_latest(sweep: SweepDir) -> None:
    """`<sweeps>/latest` -> this sweep, so the README's report command needs no edit."""
    sweep.root.mkdir(parents=True, exist_ok=True)
    try:
        sweep.mark_latest()
    except OSError as exc:  # a file system without symlinks (Windows without the privilege)
        log.warning("could not point %s at this sweep: %s", sweep.latest, exc)


class SweepSummary(Callback):
    """At the end of a multirun, list every job that failed, diverged or never finished.

    At its start, refuse launcher settings that cannot work, before any job is dispatched.
    """

    def __init__(self, fail_on_error: bool = True) -> None:
        self.fail_on_error = fail_on_error

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _launched.append(Path(config.hydra.sweep.dir))
        size = sweep_size(config)
        if size is not None:
            os.environ[SWEEP_SIZE_ENV] = str(size)
        sweep = SweepDir(_launched[-1])
        hold_sweep_record(sweep)  # before Hydra rewrites multirun.yaml
        _mark_latest(sweep)
        problems = launcher_problems(config.hydra.get("launcher"), config.hydra.get("sweeper"))
        if problems:
            log.error("%s", "; ".join(problems))
            sys.exit(2)  # not an exception: Hydra would turn that into a warning and go on

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        end_of_launch(sweep_dir)
        statuses = sweep_statuses(sweep_dir)
        if not statuses:
            return
        lines = report_sweep(sweep_dir, statuses)
        failed = [n for n, s in statuses.items() if s.get("status") == "failed"]
        report = log.error if failed else log.info
        report("sweep %s: %s", sweep_dir, "\n".join(lines))
        if failed and self.fail_on_error:
            # Hydra turns exceptions raised in callbacks into warnings; this runs in the
            # launching process after every job has finished, so exiting here loses nothing.
            sys.exit(failure_exit([statuses[n] for n in failed]))


def failure_exit(failed: list[dict[str, Any]]) -> int:
    """A sweep's exit code for its failed jobs: USAGE_EXIT when each one refused its input
    (a one-line cause and fix, as a single run exits), 1 when any met a fault."""
    return USAGE_EXIT if all(job.get("usage_error") for job in failed) else 1
