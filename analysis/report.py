"""`python -m analysis.report <sweep_or_run_dir>... --out <dir>`: tables, figures and a report.

The command line and the order of the steps; each step lives in its own module (collect, tables,
figures, page) and is importable on its own.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lmexp.validation import USAGE_EXIT, InputError, check_writable_dir
from lmexp.version import add_version_flag

from .cell_figures import cell_figures
from .cells import COMPARED, cell_table, compare_cells, has_repeats, pairs_table, pick_metric
from .collect import NoJobsError, collect, find_job_dirs
from .explore import explore_html
from .figures import make_figures
from .formats import write_table
from .internals import internals_figures, sample_files
from .page import Content, render_html, render_markdown
from .stats import ALPHA, SCALES, TESTS
from .studies import batch_time_table, study_figures
from .tables import SORT_NAMES, SORTS, commands_table, results_table, status_table

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Comparison:
    """How cells are compared (the report's --metric, --alpha, --test, --scale)."""

    metric: str = "auto"
    alpha: float = ALPHA
    test: str = "auto"
    scale: str = "linear"


PROG = "lmexp-report"  # the console script; `python -m lmexp.analysis.report` is the same

DESCRIPTION = """\
Build a results report from lmexp sweep or run directories.

Each PATH is searched recursively for job directories (a directory holding .hydra/config.yaml,
summary.json or metrics.csv); only those files are read. Every job appears, whatever its
status (completed, diverged, failed, running, unknown).
"""

EPILOG = """\
writes into --out:
  cells.{md,tex,csv}, pairs.{md,tex,csv}, figures/cells-val-ppl.{png,pdf}
                         first, only when cells (jobs differing only in their seed) have
                         several seeds: each cell's n, mean ± 95 % interval, the letters of
                         the pairwise tests (Holm-adjusted), one sentence; every pair's test
                         and p-values; the mean validation curve of each cell with its band.
                         The tables below then number on from 3.
  results.{md,tex,csv}   Table 1: jobs sorted by architecture, optimizer, hyper-parameters,
                         numbered 1..N, best validation perplexity per architecture in bold
  commands.{md,tex,csv}  Table 2: the command that reproduces each numbered experiment
  status.{md,tex,csv}    Table 3: each job's status, stop reason and error
  batch_time.{md,tex,csv}
                         Table 4, only when data.batch_size varies: each job's wall-clock time
                         (last metrics row) and final train/validation loss, sorted by batch size
  figures/*.{png,pdf}    learning curves per experiment, per optimizer, per architecture,
                         and an architecture x optimizer overview; for CMU 10-601 HW7's studies also
  figures/loss-vs-sequences.{png,pdf}
                         only for jobs with trainer.max_sequences set: train and validation
                         loss vs sequences seen, one line per job
  figures/final-loss-vs-budget.{png,pdf}
                         only when trainer.max_sequences varies: final train and validation
                         loss of each completed job vs its sequence budget
  report.html            everything above in one self-contained page (images inlined)
  report.md              the same in Markdown, linking the figure files

example:
  python -m analysis.report outputs/multirun/2026-01-01_12-00-00-000000 --out reports/arch
"""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; `--help` lists every file written."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_version_flag(parser)
    parser.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="sweep directories, run directories, or folders holding them",
    )
    parser.add_argument(
        "--out",
        "-o",
        type=Path,
        required=True,
        metavar="DIR",
        help="output directory (created if missing; files in it are replaced)",
    )
    parser.add_argument("--title", default="lmexp results", help="report title")
    parser.add_argument(
        "--sort",
        choices=SORTS,
        default="arch",
        help="results table order: arch (architecture, optimizer, hyper-parameters; default) or "
        "a metric, best first, with the best configurations named",
    )
    repeats = parser.add_argument_group(
        "cells (jobs that differ only in their seed), compared when a sweep has repeats"
    )
    repeats.add_argument(
        "--metric",
        choices=("auto", *COMPARED),
        default="auto",
        help="compared metric; auto: test_ppl if every completed job has one, else best_val_ppl",
    )
    repeats.add_argument(
        "--alpha", type=float, default=ALPHA, help=f"family-wise error rate (default {ALPHA})"
    )
    repeats.add_argument(
        "--test",
        choices=TESTS,
        default="auto",
        help="welch; paired (pairs of cells that ran the same seeds from the same weights and "
        "batches); auto (default): paired where that holds, else welch",
    )
    repeats.add_argument(
        "--scale",
        choices=SCALES,
        default="linear",
        help="linear (default): mean ± half-width; log: on log-perplexity (the loss), the "
        "geometric mean [low, high]",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="do not print the paths written")
    return parser.parse_args(argv)


def build_report(
    paths: Sequence[Path],
    out_dir: Path,
    title: str = "lmexp results",
    comparison: Comparison | None = None,
    sort: str = "arch",
) -> list[Path]:
    """Collect the jobs under `paths` and write tables, figures and both report pages.

    With repeats (cells of several seeds), the cells table and the pairwise comparisons come
    first, compared as `comparison` says. Returns the paths written, report pages first.
    """
    collection = collect(paths)
    results = results_table(collection.jobs, sort)
    ordered = results.raw
    tables = [results, commands_table(collection.jobs), status_table(ordered)]
    study = None
    if has_repeats(collection.jobs):
        how = comparison or Comparison()
        study = compare_cells(collection.jobs, how.metric, how.alpha, how.test, how.scale)
        tables = [cell_table(study), pairs_table(study), *tables]
    batch_time = batch_time_table(ordered, collection.curves)
    if batch_time is not None:
        tables.append(batch_time)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for number, table in enumerate(tables, start=1):
        written += write_table(table, out_dir, number)
    figures = cell_figures(study, collection.curves, out_dir / "figures")
    figures += make_figures(ordered, collection.curves, out_dir / "figures")
    figures += study_figures(ordered, collection.curves, out_dir / "figures")
    figures += internals_figures(ordered, out_dir / "figures")
    samples = sample_files(ordered)
    metric = sort if sort != "arch" else pick_metric(ordered, (comparison or Comparison()).metric)
    metric = metric if metric in SORT_NAMES else "best_val_ppl"  # a perplexity on its axis
    content = Content(title, [str(p) for p in paths], tables, figures, ordered, samples)
    content.explore = explore_html(ordered, metric)  # interactive, in report.html only
    html_path, md_path = out_dir / "report.html", out_dir / "report.md"
    html_path.write_text(render_html(content), encoding="utf-8")
    md_path.write_text(render_markdown(content, out_dir), encoding="utf-8")
    return [html_path, md_path, *written, *(p for f in figures for p in f.paths)]


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry: 2 on a bad path (before any work), else 0 after printing what was written."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        find_job_dirs(args.paths)  # fail on a bad path before any work
        check_writable_dir(args.out, "--out")  # a file there, read-only, a full disk
    except (FileNotFoundError, NoJobsError, InputError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return USAGE_EXIT
    if not 0 < args.alpha < 1:
        print(
            f"{PROG}: error: --alpha {args.alpha} must be in (0, 1)",
            file=sys.stderr,
        )
        return USAGE_EXIT
    how = Comparison(args.metric, args.alpha, args.test, args.scale)
    written = build_report(args.paths, args.out, args.title, how, args.sort)
    if not args.quiet:
        figures = [p for p in written if p.parent.name == "figures"]
        for path in written:
            if path not in figures:
                print(path)
        print(f"{args.out / 'figures'}/ ({len(figures)} files: PNG and PDF)")
    return 0


def cli() -> None:
    """The `lmexp-report` command."""
    sys.exit(main())


if __name__ == "__main__":
    cli()
