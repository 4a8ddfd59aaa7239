"""The results (IFT6135 A2 item 2), commands (item 3) and status tables: rows, columns, bold.

Owns the experiment order, numbering, shown columns and the per-architecture bold; the file
formats (Markdown, LaTeX, HTML, CSV) are `analysis.formats`, the plots `analysis.figures`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from lmexp.run import keys

from .formats import MISSING, Table

# Sort keys after architecture and optimizer: the hyper-parameters, then the job's identity.
SORT_KEYS = (*(key.column for key in keys.columns()), "sweep", "job_num", "job_id")


def fmt_num(value: Any, spec: str = "g") -> str:
    """A number for a table cell: NaN/None as an em dash, infinities as "inf"."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return MISSING if value is None else str(value)
    if math.isnan(number):
        return MISSING
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    return format(number, spec)


def _fmt_params(value: Any) -> str:
    number = float(value) if value is not None else math.nan
    return fmt_num(number / 1e6, ".2f") + "M" if math.isfinite(number) else MISSING


@dataclass(frozen=True)
class Column:
    """One table column: where its value comes from, how it reads, what its header means."""

    header: str
    source: str
    meaning: str = ""  # explained in the caption when non-empty
    fmt: Callable[[Any], str] = fmt_num
    always: bool = True  # False: shown only when the value varies across jobs
    numeric: bool = True  # right-aligned


def _key_column(key: keys.Key) -> Column:
    """A config key's column, as lmexp's table of keys (lmexp/run/keys.py) describes it."""
    fmt: Callable[[Any], str] = str if key.text else lambda v: fmt_num(v, key.fmt)
    source = key.shown or key.column
    assert source is not None
    return Column(key.header, source, key.meaning, fmt, key.always, not key.text)


HYPER_COLUMNS = tuple(_key_column(key) for key in keys.columns())


SORTS = ("arch", "best_val_ppl", "test_ppl")  # the report's --sort: IFT6135's order, or best first
SORT_NAMES = {"best_val_ppl": "best validation perplexity", "test_ppl": "test perplexity"}


def _metric_key(values: pd.Series) -> pd.Series:
    """A perplexity to sort by, best first: not-a-number and infinite ones last."""
    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    return numbers.where(numbers.map(math.isfinite), math.inf)


def order_jobs(jobs: pd.DataFrame, sort: str = "arch") -> pd.DataFrame:
    """Jobs sorted (architecture, optimizer, hyper-parameters), numbered `exp` 1..N, `best` set.

    `sort="best_val_ppl"` or `"test_ppl"` orders them by that metric instead, best first, a
    pruned job after every job that ran its budget (it is not comparable), jobs without a
    finite value last. `best` marks the
    single lowest finite validation perplexity of each architecture (the first in table order
    on a tie), so a diverged, pruned or empty job is never bold.
    """
    frame = jobs.copy()
    frame["_arch"] = list(zip(frame["model_rank"], frame["model"], strict=True))
    frame["_optim"] = list(zip(frame["optim_rank"], frame["optim"], strict=True))
    keys = ["_arch", "_optim", *(k for k in SORT_KEYS if k in frame)]
    helpers = keys[:2]
    if sort != "arch":
        frame["_metric"] = _metric_key(frame[sort])
        frame["_missing"] = ~frame["_metric"].map(math.isfinite)  # failed, diverged: last
        frame["_pruned"] = frame["status"] == "pruned"
        keys = ["_missing", "_pruned", "_metric", *keys]
        helpers = keys[:5]
    frame = frame.sort_values(keys, na_position="last", kind="stable").drop(columns=helpers)
    frame = frame.reset_index(drop=True)
    frame.insert(0, "exp", range(1, len(frame) + 1))
    finite = frame[
        frame["best_val_ppl"].map(lambda v: math.isfinite(float(v)))
        & (frame["status"] != "pruned")  # stopped early on less budget: never ranked first
    ]
    frame["best"] = frame.index.isin(finite.groupby("model", sort=False)["best_val_ppl"].idxmin())
    return frame


def varies(values: pd.Series) -> bool:
    """More than one distinct value among the jobs that have one."""
    return values.dropna().astype(str).nunique() > 1


def varying_hyper_columns(ordered: pd.DataFrame) -> list[Column]:
    """Hyper-parameter columns whose value differs between jobs (they label curves too)."""
    return [c for c in HYPER_COLUMNS if c.source in ordered and varies(ordered[c.source])]


def shown_hyper_columns(ordered: pd.DataFrame) -> list[Column]:
    """IFT6135 A2's table's hyper-parameters, plus any other that varies across the jobs."""
    varying = varying_hyper_columns(ordered)
    return [c for c in HYPER_COLUMNS if c.always or c in varying]


def job_label(row: Any, varying: list[Column]) -> str:
    """`#4 <architecture> <optimizer> IL=5`: number, labels and the hyper-parameters that vary."""
    parts = [f"#{row['exp']}", str(row["model_label"]), str(row["optim_label"])]
    for column in varying:
        value = row[column.source]
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            parts.append(f"{column.header}={column.fmt(value)}")
    return " ".join(parts)


def _time_column(ordered: pd.DataFrame) -> Column:
    """Training wall-clock in s, min or h, whichever keeps the longest job's number readable.

    `wall_time_s`: training and its evaluations. The end-of-sweep table shows `total_time_s`
    (data loading and the test pass too) as "total time"; the two are named apart."""
    longest = ordered["wall_time_s"].replace([math.inf], math.nan).max()
    scale, unit = (1, "s")
    if longest >= 600:  # NaN (no job has a time) compares False: seconds
        scale, unit = (60, "min") if longest < 36000 else (3600, "h")
    return Column(
        f"Train time ({unit})",
        "wall_time_s",
        "wall-clock time of training and its evaluations (not data loading or the test pass)",
        lambda v: fmt_num(float(v) / scale, ".0f" if unit == "s" else ".1f"),
    )


def finite(value: Any) -> bool:
    """A number that is neither missing, junk, NaN nor infinite."""
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def result_columns(ordered: pd.DataFrame) -> list[Column]:
    """Columns of the results table, in IFT6135 assignment 2's order, then size, time and status."""
    ppl = lambda v: fmt_num(v, ".1f")  # noqa: E731
    columns = [
        Column("#", "exp", "experiment number"),
        Column("Model", "model_label", "", str, numeric=False),
        Column("Optim", "optim_label", "", str, numeric=False),
        *shown_hyper_columns(ordered),
        Column(
            "Train PPL",
            "train_ppl_at_best",
            "train perplexity when Val PPL was reached (running mean over that epoch, dropout on)",
            ppl,
        ),
        Column("Val PPL", "best_val_ppl", "best validation perplexity of the job", ppl),
    ]
    if ordered["test_ppl"].map(lambda v: math.isfinite(float(v))).any():
        columns.append(Column("Test PPL", "test_ppl", _test_meaning(ordered), ppl))
    if "test_ppl_whole" in ordered and ordered["test_ppl_whole"].map(finite).any():
        columns.append(
            Column(
                "Test PPL (1 seq)",
                "test_ppl_whole",
                "the same checkpoint on the test split read as one sequence, every token "
                "scored (IFT6135 A2's text; Test PPL reads it as eval_batch_size streams)",
                ppl,
            )
        )
    columns += [
        Column("Params", "params", "trainable parameters (M = millions)", _fmt_params),
        Column("Epochs", "epochs", "epochs run", lambda v: fmt_num(v, ".3g")),
        _time_column(ordered),
        Column("Status", "status", "", str, numeric=False),
    ]
    return columns


def _test_meaning(ordered: pd.DataFrame) -> str:
    """Which model each job's test pass scored (`trainer.test_checkpoint`): Val PPL's checkpoint,
    or the model as training left it, named per job where the table mixes both."""
    tested = ordered["test_ppl"].map(finite)
    checkpoints = ordered.get("test_checkpoint", pd.Series("best", index=ordered.index))
    last = ordered["exp"][tested & (checkpoints == "last")].tolist()
    if not last:
        return "test perplexity of that checkpoint"
    final = "the model as training left it (trainer.test_checkpoint=last)"
    if len(last) == int(tested.sum()):
        return f"test perplexity of {final}, not of Val PPL's checkpoint"
    named = ", ".join(f"#{exp}" for exp in last)
    return f"test perplexity of Val PPL's checkpoint, except {named}: of {final}"


def _caption(columns: list[Column], ordered: pd.DataFrame, sort: str = "arch") -> str:
    order = (
        "architecture, then optimizer, then hyper-parameters"
        if sort == "arch"
        else f"{SORT_NAMES[sort]}, best first (pruned jobs after those that ran their budget)"
    )
    text = (
        f"Train and validation perplexity of {len(ordered)} experiments, sorted by "
        f"{order}. Bold: the best (lowest) "
        "validation perplexity of each architecture among jobs not stopped early (a pruned "
        "job ran less budget: its perplexity is not comparable). "
    )
    meanings = [f"{c.header}: {c.meaning}" for c in columns if c.meaning and c.header != "#"]
    notes = ordered.dropna(subset=["optim_note"]).drop_duplicates("optim_label")
    meanings += [f"{r.optim_label}: {r.optim_note}" for r in notes.itertuples()]
    meanings.append(f"{MISSING}: not recorded")
    return text + "; ".join(meanings) + "." + _top(ordered, sort)


def _top(ordered: pd.DataFrame, sort: str, n: int = 3) -> str:
    """Sorted by a metric: the best configurations, named by what varies."""
    if sort == "arch":
        return ""
    varying = varying_hyper_columns(ordered)
    ranked = ordered[
        _metric_key(ordered[sort]).map(math.isfinite) & (ordered["status"] != "pruned")
    ]
    named = [
        f"{job_label(row, varying)} ({fmt_num(row[sort], '.1f')})"
        for _, row in ranked.head(n).iterrows()
    ]
    return f" Best by {SORT_NAMES[sort]}: {'; '.join(named)}." if named else ""


def results_table(jobs: pd.DataFrame, sort: str = "arch") -> Table:
    """IFT6135 assignment 2's Table 1: one numbered row per job, best per architecture in bold
    (`sort`: that table's order, or best first by a metric)."""
    ordered = order_jobs(jobs, sort)
    columns = result_columns(ordered)
    cells = [[c.fmt(row[c.source]) for c in columns] for _, row in ordered.iterrows()]
    val = [c.header for c in columns].index("Val PPL")
    bold = {(i, val) for i in ordered.index[ordered["best"]]}
    numeric = [c.numeric for c in columns]
    return Table(
        "results",
        _caption(columns, ordered, sort),
        [c.header for c in columns],
        cells,
        bold,
        numeric,
        ordered,
    )


def commands_table(jobs: pd.DataFrame) -> Table:
    """IFT6135 assignment 2 item 3: the exact command that reruns each numbered experiment alone."""
    ordered = order_jobs(jobs)
    cells = [[str(r.exp), str(r.job_id), str(r.command)] for r in ordered.itertuples()]
    caption = (
        "Command reproducing each experiment of the results table, run from the repository "
        "root (every hyper-parameter not on the line is the config default recorded in the "
        "job's .hydra/config.yaml). #: experiment number; Job: sweep directory/job directory."
    )
    raw = ordered[["exp", "job_id", "command", "job_dir"]]
    headers = ["#", "Job", "Command"]
    return Table("commands", caption, headers, cells, set(), [True, False, False], raw, code=2)


def status_table(ordered: pd.DataFrame) -> Table:
    """Each job's status, stop reason, number of evaluation points and, if failed, its error."""
    cells = []
    for r in ordered.itertuples():
        error = f"{r.error_type}: {r.error}" if isinstance(r.error_type, str) else MISSING
        if isinstance(r.pruned, str):
            error = r.pruned  # the comparison that stopped it
        reason = r.stop_reason if isinstance(r.stop_reason, str) else MISSING
        cells.append(
            [str(r.exp), str(r.job_id), str(r.status), reason, fmt_num(r.n_points, ".0f"), error]
        )
    caption = (
        "Status of every job: completed, pruned (stopped early by prune=median or asha: "
        "the comparison that stopped it), diverged (non-finite loss), failed (with the error "
        "from summary.json), running (summary.json says running: still training, or killed), "
        "unknown (no summary.json). Points: evaluation rows in metrics.csv; jobs with none "
        "have no learning curve."
    )
    headers = ["#", "Job", "Status", "Stop reason", "Points", "Error"]
    raw = ordered[["exp", "job_id", "status", "stop_reason", "n_points", "error_type", "error"]]
    return Table(
        "status", caption, headers, cells, set(), [True, False, False, False, True, False], raw
    )
