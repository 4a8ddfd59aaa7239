"""Hydra callback that ends a multirun with a list of every failed or diverged job.

Hydra 1.3.8 prints only the first failure and, since each job here records its failure and
returns +inf, would otherwise exit 0. This reads every job's `summary.json` in the sweep
directory, logs one line per job that did not complete, and exits non-zero when a job failed
(unless `fail_on_error` is off, e.g. for Optuna studies, where a bad trial is data).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from lmexp.run.rundir import RunDir

log = logging.getLogger("lmexp.sweep")


def sweep_statuses(sweep_dir: Path) -> dict[str, dict[str, Any]]:
    """Job directory name -> its summary (status "unknown" when unreadable or missing)."""
    statuses: dict[str, dict[str, Any]] = {}
    for job in RunDir.children(sweep_dir):
        try:
            statuses[job.root.name] = json.loads(job.summary.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            statuses[job.root.name] = {"status": "unknown"}
    return statuses


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


class SweepSummary(Callback):
    """At the end of a multirun, list every job that failed, diverged or never finished."""

    def __init__(self, fail_on_error: bool = True) -> None:
        self.fail_on_error = fail_on_error

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        statuses = sweep_statuses(sweep_dir)
        if not statuses:
            return
        lines = summary_lines(statuses)
        failed = [n for n, s in statuses.items() if s.get("status") == "failed"]
        report = log.error if failed else log.info
        report("sweep %s: %s", sweep_dir, "\n".join(lines))
        if failed and self.fail_on_error:
            # Hydra turns exceptions raised in callbacks into warnings; this runs in the
            # launching process after every job has finished, so exiting here loses nothing.
            sys.exit(1)
