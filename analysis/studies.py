"""CMU 10-601 HW7 §5 studies: loss vs sequences seen, final loss vs sequence budget, time per
batch size.

Each output is made only when the collected jobs call for it, whatever the values swept:

- `loss-vs-sequences` (figure): jobs trained with a sequence budget (`trainer.max_sequences`
  set); train and validation loss (nats per token) against the `sequences` column of
  metrics.csv, one line per job labelled by what varies between the jobs.
- `final-loss-vs-budget` (figure): `trainer.max_sequences` varies; the last metrics row's train
  and validation loss of each *completed* job against its budget. A running, failed or
  diverged job did not train for its whole budget, so its last row would sit at the wrong x; the
  caption names the jobs left out. Jobs that differ in anything else too get one line per
  setting.
- `batch_time` (table): `data.batch_size` varies; one row per job sorted by batch size, with the
  run's wall-clock time (last metrics row's `wall_time_s`) and its final train and validation
  loss.

The lines of a study usually share architecture and optimizer, so colour here tells jobs apart
(a sequential map, in table order, i.e. by the swept value); the marker is the experiment's, as in
every figure (`analysis.style`). CMU 10-601 HW7 asks for separate train and validation plots:
they are the two panels, titled "Training loss" and "Validation loss", of one figure.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, FixedLocator, NullFormatter

from . import style
from .figures import FigureFile, _new_figure, _save, legend_below
from .formats import MISSING, Table
from .tables import Column, fmt_num, job_label, varies, varying_hyper_columns

# metrics.csv's train_loss is a running mean over the epoch so far, which drops at every epoch
# boundary; a sequence budget knows no epochs, so these plots show the mean over the sequences
# trained since the previous evaluation instead (derived: `interval_train_loss`).
TRAIN_INTERVAL = "train_loss_interval"
SPLITS = ((TRAIN_INTERVAL, "Training loss"), ("val_loss", "Validation loss"))
LOSS_LABEL = "loss (nats per token)"
KIND = "study"  # the report page's section for these figures


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def with_sequence_budget(ordered: pd.DataFrame) -> pd.DataFrame:
    """The jobs whose config sets `trainer.max_sequences` (older configs lack it: none)."""
    if "max_sequences" not in ordered:
        return ordered.iloc[0:0]
    return ordered[ordered["max_sequences"].map(_finite)]


def interval_train_loss(curve: pd.DataFrame) -> np.ndarray:
    """Per metrics row, the mean training NLL over the tokens trained since the previous row.

    `train_loss` is token-weighted over the epoch so far, and the trainer evaluates at every
    epoch end, so train_loss x (tokens since the epoch started) is the epoch's NLL sum at each
    row; consecutive differences of it are the intervals' sums. A row that starts an epoch
    (`epoch` crosses an integer) covers the tokens since that epoch began. NaN where the
    columns are missing or a difference has no tokens.
    """
    if not {"epoch", "tokens", "train_loss"} <= set(curve):
        return np.full(len(curve), math.nan)
    out = []
    current, epoch_start, prev_tokens, prev_sum = 0, 0.0, 0.0, 0.0
    for epoch, tokens, loss in curve[["epoch", "tokens", "train_loss"]].to_numpy(float):
        index = max(math.ceil(epoch - 1e-6) - 1, 0)  # 0-based epoch this row lies in
        if index != current:
            current, epoch_start, prev_sum = index, prev_tokens, 0.0
        total = loss * (tokens - epoch_start)
        span = tokens - prev_tokens
        out.append((total - prev_sum) / span if span > 0 else math.nan)
        prev_tokens, prev_sum = tokens, total
    return np.asarray(out, dtype=float)


def _values(curve: pd.DataFrame, column: str) -> np.ndarray | None:
    if column == TRAIN_INTERVAL:
        return interval_train_loss(curve)
    return curve[column].to_numpy(float) if column in curve else None


def loss_points(curve: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """(sequences seen, loss) of every metrics row where both are finite, in file order."""
    ys = _values(curve, column)
    if "sequences" not in curve or ys is None:
        return np.array([]), np.array([])
    xs = curve["sequences"].to_numpy(float)
    keep = np.isfinite(xs) & np.isfinite(ys)
    return xs[keep], ys[keep]


def final_value(curve: pd.DataFrame, column: str) -> float:
    """`column` of the last metrics row; NaN without rows or without that column."""
    values = _values(curve, column)
    if not len(curve) or values is None:
        return math.nan
    return float(values[-1])


def _line_colors(n: int) -> list[Any]:
    """`n` colours along viridis, dark to light, stopping before its pale yellow end."""
    cmap = colormaps["viridis"]
    return [cmap(0.85 * i / max(n - 1, 1)) for i in range(n)]


def _two_panels() -> tuple[Figure, Any]:
    """Train and validation panels side by side, each with its own y axis (`legend_below` adds
    the legend's room)."""
    fig, axes = _new_figure(11, 4.0, sharey=False)
    for ax, (_, title) in zip(axes, SPLITS, strict=True):
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(LOSS_LABEL)
        ax.grid(True, which="both", alpha=0.3)
    return fig, axes


def _numbers(rows: pd.DataFrame) -> str:
    return ", ".join(f"#{e}" for e in rows["exp"])


def loss_vs_sequences_figure(
    ordered: pd.DataFrame, curves: dict[str, pd.DataFrame], out_dir: Path
) -> FigureFile | None:
    """Train and validation loss of every job with a sequence budget vs sequences seen.

    None when no job has a sequence budget or none of them has a finite loss to draw.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = with_sequence_budget(ordered)
    drawable = [any(len(loss_points(curves[j], c)[0]) for c, _ in SPLITS) for j in jobs["job_id"]]
    if not any(drawable):
        return None
    varying = varying_hyper_columns(ordered)
    fig, axes = _two_panels()
    colors = iter(_line_colors(sum(drawable)))
    for (_, row), ok in zip(jobs.iterrows(), drawable, strict=True):
        if not ok:
            continue
        look = {
            "color": next(colors),
            "linestyle": style.optim_dash(row),
            "marker": style.job_marker(int(row["exp"])),
            "markersize": 5,
            "label": job_label(row, varying),
        }
        for ax, (column, _) in zip(axes, SPLITS, strict=True):
            xs, ys = loss_points(curves[row["job_id"]], column)
            ax.plot(xs, ys, **look)
    for ax in axes:
        ax.set_xlabel("sequences seen in training")
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.set_xlim(left=0)
    legend_below(fig, axes)
    title = "Loss vs sequences seen"
    fig.suptitle(title)
    drawn, skipped = jobs[drawable], jobs[[not d for d in drawable]]
    caption = (
        "Training loss (left: mean over the sequences trained since the previous point, "
        "dropout on) and validation loss (right) in nats per token against the number of "
        "training sequences seen so far, "
        f"one line per job trained with a sequence budget ({_numbers(drawn)}); one point per "
        "evaluation. Colour: job, ordered as in the results table; marker: experiment."
    )
    if len(skipped):
        caption += f" Not drawn (no finite loss): {_numbers(skipped)}."
    others = ordered[~ordered["job_id"].isin(jobs["job_id"])]
    if len(others):
        caption += f" Jobs without a sequence budget are left out: {_numbers(others)}."
    name = "loss-vs-sequences"
    return FigureFile(name, KIND, title, caption, _save(fig, out_dir, name))


def _setting_columns(ordered: pd.DataFrame) -> list[Column]:
    """What varies besides the sequence budget: each combination is one line of its own."""
    return [c for c in varying_hyper_columns(ordered) if c.source != "max_sequences"]


def _setting(row: Any, columns: list[Column]) -> str:
    parts = [str(row["model_label"]), str(row["optim_label"])]
    parts += [f"{c.header}={c.fmt(row[c.source])}" for c in columns if _finite_or_text(row, c)]
    return " ".join(parts)


def _finite_or_text(row: Any, column: Column) -> bool:
    value = row[column.source]
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def final_losses(ordered: pd.DataFrame, curves: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per completed job with a sequence budget and metrics rows: its final losses.

    Columns: setting (architecture, optimizer and whatever else varies; one line each),
    max_sequences, train_loss, val_loss (the last metrics row's, NaN when absent), exp, job_id;
    sorted by setting, then budget. These are the points of `final_loss_figure`.
    """
    columns = _setting_columns(ordered)
    rows = []
    for _, row in with_sequence_budget(ordered).iterrows():
        curve = curves[row["job_id"]]
        if row["status"] != "completed" or not len(curve):
            continue
        rows.append(
            {
                "setting": _setting(row, columns),
                "max_sequences": float(row["max_sequences"]),
                "train_loss": final_value(curve, TRAIN_INTERVAL),
                "val_loss": final_value(curve, "val_loss"),
                "exp": int(row["exp"]),
                "job_id": row["job_id"],
            }
        )
    names = ["setting", "max_sequences", "train_loss", "val_loss", "exp", "job_id"]
    frame = pd.DataFrame(rows, columns=names)
    return frame.sort_values(["setting", "max_sequences", "exp"], kind="stable").reset_index(
        drop=True
    )


def final_loss_figure(
    ordered: pd.DataFrame, curves: dict[str, pd.DataFrame], out_dir: Path
) -> FigureFile | None:
    """Final train and validation loss against the sequence budget (log axis).

    None unless `trainer.max_sequences` varies and some completed job has a finite final loss.
    """
    if "max_sequences" not in ordered or not varies(ordered["max_sequences"]):
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    points = final_losses(ordered, curves)
    finite = points[["train_loss", "val_loss"]].map(_finite).any(axis=1)
    if not finite.any():
        return None
    settings = list(dict.fromkeys(points["setting"]))
    fig, axes = _two_panels()
    colors = _line_colors(len(settings))
    for setting, color in zip(settings, colors, strict=True):
        group = points[points["setting"] == setting]
        for ax, column in zip(axes, ("train_loss", "val_loss"), strict=True):
            keep = group[group[column].map(_finite)]
            ax.plot(keep["max_sequences"], keep[column], color=color, marker="o", label=setting)
    budgets = sorted(set(points.loc[finite, "max_sequences"]))
    for ax in axes:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(FixedLocator(budgets))
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("sequences (budget)")
    if len(settings) > 1:
        legend_below(fig, axes)
    title = "Final loss vs number of sequences"
    fig.suptitle(title)
    budget_jobs = with_sequence_budget(ordered)
    left_out = budget_jobs[~budget_jobs["job_id"].isin(points["job_id"])]
    caption = (
        "Final training loss (left: mean over the sequences since the previous evaluation, "
        "dropout on) and "
        "validation loss (right), in nats per token, taken from the last metrics row of each "
        f"completed job ({_numbers(points)}), against its sequence budget "
        "(trainer.max_sequences, log axis)."
    )
    caption += (
        f" One line per setting: {'; '.join(settings)}."
        if len(settings) > 1
        else f" Setting: {settings[0]}."
    )
    if len(left_out):
        statuses = ", ".join(f"#{r.exp} ({r.status})" for r in left_out.itertuples())
        caption += f" Left out (not completed or no metrics rows): {statuses}."
    name = "final-loss-vs-budget"
    return FigureFile(name, KIND, title, caption, _save(fig, out_dir, name))


def study_figures(
    ordered: pd.DataFrame, curves: dict[str, pd.DataFrame], out_dir: Path
) -> list[FigureFile]:
    """The study figures these jobs call for (possibly none), written under `out_dir`."""
    made = [
        loss_vs_sequences_figure(ordered, curves, out_dir),
        final_loss_figure(ordered, curves, out_dir),
    ]
    return [f for f in made if f is not None]


def batch_time_table(ordered: pd.DataFrame, curves: dict[str, pd.DataFrame]) -> Table | None:
    """Wall-clock time and final losses of each job, sorted by batch size; None unless it varies.

    Time is the last metrics row's `wall_time_s`: the run from its start to its final
    evaluation, periodic validation included (summary.json's `wall_time_s` when the CSV has no
    row). Other settings that vary get a column of their own so that rows stay distinct.
    """
    if "batch_size" not in ordered or not varies(ordered["batch_size"]):
        return None
    jobs = ordered.sort_values(["batch_size", "exp"], na_position="last", kind="stable")
    others = [c for c in varying_hyper_columns(ordered) if c.source != "batch_size"]
    loss = lambda v: fmt_num(v, ".3f")  # noqa: E731
    records, cells = [], []
    for _, row in jobs.iterrows():
        curve = curves[row["job_id"]]
        wall = final_value(curve, "wall_time_s")
        record = {
            "exp": int(row["exp"]),
            "job_id": row["job_id"],
            "batch_size": row["batch_size"],
            **{c.source: row[c.source] for c in others},
            "wall_time_s": wall if _finite(wall) else float(row["wall_time_s"]),
            "final_train_loss": final_value(curve, TRAIN_INTERVAL),
            "final_val_loss": final_value(curve, "val_loss"),
            "status": row["status"],
        }
        records.append(record)
        cells.append(
            [
                str(record["exp"]),
                fmt_num(record["batch_size"]),
                *(c.fmt(row[c.source]) if _finite_or_text(row, c) else MISSING for c in others),
                fmt_num(record["wall_time_s"], ".1f"),
                loss(record["final_train_loss"]),
                loss(record["final_val_loss"]),
                str(record["status"]),
            ]
        )
    headers = ["#", "BS", *(c.header for c in others), "Time (s)", "Train loss", "Val loss"]
    headers.append("Status")
    meanings = [f"{c.header}: {c.meaning}" for c in others]
    caption = (
        "Training time per batch size: one row per job, sorted by batch size (BS). #: "
        "experiment number of the results table; Time (s): the run's total wall-clock time in "
        "seconds, from its start to its final evaluation (the last metrics.csv row's "
        "wall_time_s, periodic validation included; summary.json's wall_time_s for a job "
        "without metrics rows); Train loss: mean training loss over the "
        "sequences since the previous evaluation and Val loss: validation loss, both at the "
        "last evaluation, in "
        "nats per token" + "".join(f"; {m}" for m in meanings) + f"; {MISSING}: not recorded."
    )
    numeric = [True, True, *(c.numeric for c in others), True, True, True, False]
    raw = pd.DataFrame(records)
    return Table("batch_time", caption, headers, cells, set(), numeric, raw)
