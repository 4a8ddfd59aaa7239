"""`lmexp-status [SWEEP]`: where each job of a sweep stands, while it runs or after.

One line per job: status, how far through its budget, the best validation perplexity so far,
its training time and, for a running job, the time it still needs at its pace so far. It reads
only the run directories (summary.json, metrics.csv, the recorded config), so it works from
another terminal, on another host that sees the files, and on a sweep long finished. No torch,
no Hydra: it answers in a fraction of a second.

    lmexp-status                        # outputs/multirun/latest
    lmexp-status outputs/multirun/2026-12-06_09-00-00-000000 --sort best_val_ppl --top 3
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys
from pathlib import Path
from typing import Any

from lmexp.run.liveness import effective_status
from lmexp.run.record import read_launch, read_recorded_config
from lmexp.run.resume import read_summary
from lmexp.run.rundir import RunDir
from lmexp.run.sweepdir import LATEST, SweepDir
from lmexp.textfmt import duration
from lmexp.validation import USAGE_EXIT
from lmexp.version import add_version_flag

PROG = "lmexp-status"
DEFAULT_SWEEP = Path("outputs/multirun") / LATEST
SORTABLE = ("best_val_ppl", "test_ppl", "wall_time_s", "job")
# (budget key in the recorded trainer config, metrics.csv column it is counted in)
BUDGETS = (
    ("max_epochs", "epoch"),
    ("max_steps", "step"),
    ("max_tokens", "tokens"),
    ("max_sequences", "sequences"),
    ("max_minutes", "wall_time_s"),
)


def last_row(run: RunDir) -> dict[str, float]:
    """The last complete row of `metrics.csv` as numbers ({} before the first evaluation)."""
    try:
        text = run.metrics.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    rows = list(csv.reader(io.StringIO(text)))
    if len(rows) < 2:
        return {}
    header = rows[0]
    for fields in reversed(rows[1:]):
        if len(fields) == len(header):  # a row cut by a kill has fewer fields
            try:
                return {k: float(v) for k, v in zip(header, fields, strict=True) if v != ""}
            except ValueError:
                continue
    return {}


def progress(row: dict[str, float], trainer: dict[str, Any]) -> float | None:
    """The fraction of its budget the job has used: the largest over the budgets it has (the
    first one used up ends the run). None without a row or a budget."""
    fractions = []
    for key, column in BUDGETS:
        limit = trainer.get(key)
        if limit and column in row:
            done = row[column] / 60.0 if key == "max_minutes" else row[column]
            fractions.append(min(1.0, done / float(limit)))
    return max(fractions) if fractions else None


def job_status(run: RunDir) -> dict[str, Any]:
    """What `lmexp-status` shows of one job."""
    summary = read_summary(run.root) or {}
    config = read_recorded_config(run) or {}
    launch = read_launch(run)
    row = last_row(run)
    status = (
        effective_status(summary, run.root) if summary else ("starting" if row == {} else "unknown")
    )
    done = status not in ("running", "starting")
    fraction = 1.0 if status == "completed" else progress(row, config.get("trainer") or {})
    train_s = row.get("wall_time_s", summary.get("wall_time_s"))
    eta = None
    if not done and fraction and train_s and fraction < 1:
        eta = train_s * (1 - fraction) / fraction  # at its pace so far
    best = summary.get("best_val_ppl", row.get("best_val_ppl"))
    if not done:
        best = row.get("best_val_ppl", best)
    return {
        "job": run.root.name,
        "job_num": launch.job_num if launch is not None else None,
        "status": status,
        "progress": fraction,
        "best_val_ppl": best,
        "test_ppl": summary.get("test_ppl"),
        "wall_time_s": train_s,
        "eta_s": eta,
    }


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.inf
    return number if math.isfinite(number) else math.inf


def _ppl(value: Any) -> str:
    number = _number(value)
    return f"{number:,.2f}" if math.isfinite(number) else "-"


def sweep_lines(sweep: Path, sort: str = "job", top: int | None = None) -> list[str]:
    """The table (and, sorted by a metric, the best configurations named) as lines."""
    from tabulate import tabulate

    jobs = [job_status(run) for run in SweepDir(sweep).jobs()]
    if sort == "job":
        jobs.sort(key=lambda j: (j["job_num"] if j["job_num"] is not None else 1 << 30, j["job"]))
    else:
        jobs.sort(key=lambda j: (_number(j[sort]), j["job"]))
    shown = jobs[:top] if top else jobs
    rows = [
        [
            j["job"],
            j["status"],
            "-" if j["progress"] is None else f"{100 * j['progress']:.0f}%",
            _ppl(j["best_val_ppl"]),
            _ppl(j["test_ppl"]),
            duration(j["wall_time_s"]),
            duration(j["eta_s"]) if j["eta_s"] is not None else "",
        ]
        for j in shown
    ]
    headers = ["job", "status", "progress", "best val ppl", "test ppl", "train time", "eta"]
    counts: dict[str, int] = {}
    for j in jobs:
        counts[j["status"]] = counts.get(j["status"], 0) + 1
    lines = [f"sweep {sweep}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))]
    lines += tabulate(rows, headers, tablefmt="github", disable_numparse=True).splitlines()
    if sort != "job" and shown and math.isfinite(_number(shown[0][sort])):
        lines.append(f"best by {sort}: {shown[0]['job']} ({_ppl(shown[0][sort])})")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Each job of a sweep: status, progress through its budget, best validation "
        "perplexity so far, training time and, while it runs, the time left at its pace.",
    )
    parser.add_argument(
        "sweep",
        nargs="?",
        type=Path,
        default=DEFAULT_SWEEP,
        help=f"a sweep directory (default {DEFAULT_SWEEP}, the newest sweep)",
    )
    parser.add_argument(
        "--sort",
        choices=SORTABLE,
        default="job",
        help="order: job (launch order, default) or a metric, best first",
    )
    parser.add_argument("--top", type=int, default=None, help="show only the first N jobs")
    add_version_flag(parser)
    args = parser.parse_args(argv)
    if not (args.sweep / "multirun.yaml").is_file() and not SweepDir(args.sweep).jobs():
        print(
            f"{PROG}: error: {args.sweep} is not a sweep directory (no multirun.yaml and no "
            "job directories); give the folder a `-m` run wrote, e.g. outputs/multirun/latest",
            file=sys.stderr,
        )
        return USAGE_EXIT
    print("\n".join(sweep_lines(args.sweep, args.sort, args.top)))
    return 0


def cli() -> None:
    """The `lmexp-status` command."""
    sys.exit(main())


if __name__ == "__main__":
    cli()
