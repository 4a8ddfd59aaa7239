"""Learning-curve and overview figures (IFT6135 A2 items 1, 4, 5), each saved as PNG and PDF.

Draws on `matplotlib.figure.Figure` with the Agg canvas, never pyplot, so it leaves no global
figure state behind and works headless. Colour = architecture, line style = optimizer, marker =
experiment (see `analysis.style`); the same in every figure.
"""

from __future__ import annotations

import math
import re
import textwrap
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator

from . import style
from .tables import job_label, varying_hyper_columns

PPL_CAP = 1e5  # y-axis ceiling: beyond 10x the PTB vocabulary a curve has diverged anyway
DPI = 110
LEGEND_COLUMNS = 3  # at most; fewer when the labels are too long for the canvas
MAX_EXPERIMENT_FIGURES = 12  # beyond this many jobs, pages of small multiples replace them
GRID_COLUMNS, GRID_ROWS = 4, 4  # panels per page of small multiples
MAX_GROUP_CURVES = 12  # curves in one optimizer or architecture figure: the best ones
BUSY_LOAD = 1.5  # a load average above this many times the cores: the machine was busy


@dataclass
class FigureFile:
    """One saved figure: its files and the caption the report prints below it."""

    name: str
    kind: str  # experiment | optimizer | architecture | overview
    title: str
    caption: str
    paths: list[Path] = field(default_factory=list)  # [png, pdf]
    job_ids: tuple[str, ...] = ()  # the jobs an experiment figure (or page of them) draws

    @property
    def png(self) -> Path:
        return self.paths[0]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text))


def _time_axis(seconds: float) -> tuple[float, str]:
    """Divisor and axis label for wall-clock time: seconds unless the runs are long."""
    if seconds >= 20 * 3600:
        return 3600.0, "wall-clock time (h)"
    if seconds >= 600:
        return 60.0, "wall-clock time (min)"
    return 1.0, "wall-clock time (s)"


def _points(curve: pd.DataFrame, x: str, y: str) -> tuple[np.ndarray, np.ndarray]:
    """Points drawable on a log axis: finite x, finite positive y up to PPL_CAP (an inf ppl,
    or a diverged job's 5e299, is left out: a log axis up to there has no room for ticks)."""
    xs, ys = curve[x].to_numpy(float), curve[y].to_numpy(float)
    keep = np.isfinite(xs) & np.isfinite(ys) & (ys > 0) & (ys <= PPL_CAP)
    return xs[keep], ys[keep]


def _has_curve(curve: pd.DataFrame, *columns: str) -> bool:
    return any(len(_points(curve, "epoch", y)[0]) for y in columns or ("val_ppl",))


def _new_figure(width: float, height: float, sharey: bool = True) -> tuple[Figure, Any]:
    """Two panels, sharing the y axis unless `sharey=False` (then each has its own ticks).

    Margins are fixed in inches rather than computed by a layout engine, which would double the
    time to save each figure; perplexity tick labels are at most 6 characters wide. A legend
    below the panels adds its own height (`legend_below`).
    """
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, sharey=sharey)
    fig.subplots_adjust(
        left=0.8 / width,
        right=1 - 0.15 / width,
        top=1 - 0.62 / height,
        bottom=0.55 / height,
        wspace=0.04 if sharey else 0.2,
    )
    return fig, axes


def _grow_bottom(fig: Figure, inches: float) -> None:
    """Add `inches` of canvas below the panels, keeping the panels' size and margins."""
    width, height = fig.get_size_inches()
    top, bottom = (1 - fig.subplotpars.top) * height, fig.subplotpars.bottom * height
    fig.set_size_inches(width, height + inches)
    fig.subplots_adjust(
        top=1 - top / (height + inches), bottom=(bottom + inches) / (height + inches)
    )


def legend_below(fig: Figure, axes: Any) -> None:
    """One figure legend under the panels, one entry per label over all of them (a job may be
    drawn in only one panel), inside the canvas: in as many columns (up to LEGEND_COLUMNS) as
    its labels' measured width allows, with the canvas grown by its measured height."""
    entries: dict[str, Any] = {}
    for ax in axes:
        for handle, text in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(text, handle)
    if not entries:
        return
    renderer = fig.canvas.get_renderer()
    for ncol in range(min(LEGEND_COLUMNS, len(entries)), 0, -1):
        legend = fig.legend(
            list(entries.values()),
            list(entries),
            loc="lower center",
            bbox_to_anchor=(0.5, 0.0),
            ncol=ncol,
            fontsize=8,
            frameon=False,
        )
        box = legend.get_window_extent(renderer)
        if box.width / fig.dpi <= fig.get_figwidth() - 0.2 or ncol == 1:
            break
        legend.remove()
    _grow_bottom(fig, box.height / fig.dpi + 0.05)


# Mantissas of the labelled ticks of a log axis, finer as its range narrows, so a range of
# 835-1,653 is labelled 900, 1,000, 1,200, 1,500 rather than only 900 and 1,000.
_LOG_MANTISSAS = (
    (3.0, (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 9)),
    (30.0, (1, 1.5, 2, 3, 5, 7)),
    (1000.0, (1, 2, 5)),
    (math.inf, (1,)),
)


def log_ticks(low: float, high: float) -> list[float]:
    """Labelled ticks for a log axis from `low` to `high`: at least three where the range
    allows, at round values (1, 2, 5 x 10^k, finer for a narrow range)."""
    if not (math.isfinite(low) and math.isfinite(high)) or low <= 0 or high <= low:
        return []
    span = high / low
    index = next(i for i, (limit, _) in enumerate(_LOG_MANTISSAS) if span <= limit)
    ticks: list[float] = []
    for _, mantissas in reversed(_LOG_MANTISSAS[: index + 1]):
        ticks = [
            m * 10.0**k
            for k in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
            for m in mantissas
            if low <= m * 10.0**k <= high
        ]
        if len(ticks) >= 3:
            break
    if len(ticks) < 3:  # a range too narrow for round log values: evenly spaced ones
        ticks = [float(t) for t in MaxNLocator(4).tick_values(low, high) if low <= t <= high]
    bottom = _round_up(low)  # the lowest part of the axis gets a label too (a curve's minimum)
    if ticks and ticks[0] / bottom > 1.1:
        ticks.insert(0, bottom)
    return ticks


def _round_up(value: float, digits: int = 2) -> float:
    """`value` rounded up to `digits` significant digits (84.3 -> 85)."""
    scale = 10.0 ** (math.floor(math.log10(value)) - digits + 1)
    return math.ceil(value / scale) * scale


def _plain(value: float, _position: Any = None) -> str:
    return f"{value:,.0f}" if value >= 10 and value == round(value) else f"{value:,.4g}"


def readable_log_axis(axis: Any, low: float, high: float) -> None:
    """Round, plainly written labelled ticks on a log-scaled `axis` (an Axes' xaxis/yaxis or a
    colour bar's), and no unlabelled minor ticks between them."""
    ticks = log_ticks(low, high)
    if not ticks:
        return
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(_plain))
    axis.set_minor_locator(NullLocator())


def _x_from_zero(ax: Any) -> None:
    """Epochs and time start at 0; the last point keeps a margin off the right frame (a lone
    point would otherwise sit on it). A labelled tick on (or just inside) the right frame
    would put its label under the next panel's first one: the axis then ends past it."""
    right = float(ax.dataLim.x1)
    if not (math.isfinite(right) and right > 0):
        ax.set_xlim(left=0)
        return
    limit = right * 1.06
    ticks = ax.xaxis.get_major_locator().tick_values(0, limit)
    at_frame = [float(t) for t in ticks if 0.95 * limit <= t <= 1.01 * limit]
    if at_frame:
        limit = max(at_frame) * 1.06
    ax.set_xlim(0, limit)


def _style_axes(axes: Any, time_label: str) -> None:
    for ax, xlabel in zip(axes, ("epoch", time_label), strict=True):
        ax.set_xlabel(xlabel)
        ax.set_yscale("log")
        ax.margins(y=0.1)  # room above the top point for its value label
        ax.grid(True, which="major", alpha=0.3)
        _x_from_zero(ax)
        low, high = ax.get_ylim()
        if high > PPL_CAP:
            ax.set_ylim(low, PPL_CAP)
        readable_log_axis(ax.yaxis, *ax.get_ylim())
    axes[0].set_ylabel("perplexity (log scale)")
    axes[0].set_title("vs epochs", fontsize=10)
    axes[1].set_title("vs wall-clock time", fontsize=10)


def _draw(ax: Any, curve: pd.DataFrame, x: str, y: str, scale: float, **kw: Any) -> bool:
    xs, ys = _points(curve, x, y)
    if len(xs):
        # Markers on every evaluation point; a job evaluated once is a point, not a curve, so
        # it is drawn larger and labelled with its value.
        ax.plot(xs / scale, ys, **{"markersize": 7 if len(xs) == 1 else 5, **kw})
        if len(xs) == 1:
            ax.annotate(  # to its left: the x axis starts at 0, so there is room there
                _plain(round(float(ys[0]), 1)),
                (xs[0] / scale, ys[0]),
                xytext=(-6, 4),
                textcoords="offset points",
                ha="right",
                fontsize=7,
                color=kw.get("color"),
            )
    return bool(len(xs))


def _single_points(curves: dict[str, pd.DataFrame], rows: pd.DataFrame) -> list[str]:
    """`#k` of the jobs among `rows` with exactly one finite validation point."""
    return [
        f"#{row['exp']}"
        for _, row in rows.iterrows()
        if len(_points(curves[row["job_id"]], "epoch", "val_ppl")[0]) == 1
    ]


def _timestamp(value: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except (TypeError, ValueError):
        return None


def concurrent_jobs(jobs: pd.DataFrame) -> dict[str, int]:
    """job_id -> the most jobs, itself included, that ran at once on its host while it ran
    (from `started_at`/`ended_at`; a job without both is left out)."""
    spans: dict[str, tuple[float, float, Any]] = {}
    for _, row in jobs.iterrows():
        start, end = _timestamp(row.get("started_at")), _timestamp(row.get("ended_at"))
        if start is not None and end is not None and end >= start:
            spans[row["job_id"]] = (start, end, row.get("host"))
    peaks = {}
    for job_id, (start, end, host) in spans.items():
        events = []
        for other, (s, e, h) in spans.items():
            if other != job_id and h == host and s < end and e > start:
                events += [(max(s, start), 1), (min(e, end), -1)]
        running = peak = 0
        for _, change in sorted(events, key=lambda event: (event[0], event[1])):
            running += change
            peak = max(peak, running)
        peaks[job_id] = 1 + peak
    return peaks


def wall_clock_note(rows: pd.DataFrame, together: dict[str, int]) -> str:
    """A caption sentence when the wall-clock times of `rows` include waiting for the machine:
    jobs that ran at the same time as others (`together`: `concurrent_jobs`), or under a load
    average above BUSY_LOAD x its cores. Empty when every job had the machine to itself."""
    shared = [row for _, row in rows.iterrows() if together.get(row["job_id"], 1) > 1]
    loaded = [
        row
        for _, row in rows.iterrows()
        if math.isfinite(float(row.get("load_1m", math.nan)))
        and math.isfinite(float(row.get("cpu_count", math.nan)))
        and float(row["load_1m"]) > BUSY_LOAD * float(row["cpu_count"])
    ]
    parts = []
    if shared:
        most = max(together[row["job_id"]] for row in shared)
        names = ", ".join(f"#{row['exp']}" for row in shared)
        parts.append(f"{names} ran at the same time as other jobs (up to {most} at once)")
    if loaded:
        names = ", ".join(
            f"#{row['exp']} (load {float(row['load_1m']):.1f} on {int(row['cpu_count'])} cores)"
            for row in loaded
        )
        parts.append(f"{names} ran on a busy machine")
    if not parts:
        return ""
    return (
        f" Wall-clock time includes waiting for the machine: {'; '.join(parts)}. Compare "
        "speeds between jobs that ran alone."
    )


def _save(fig: Figure, out_dir: Path, name: str) -> list[Path]:
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=DPI)
    fig.set_layout_engine("none")  # keep any layout just computed: no second pass for the PDF
    fig.savefig(paths[1], dpi=DPI)
    fig.clear()
    return paths


def _job_style(row: Any) -> dict[str, Any]:
    return {
        "color": style.arch_color(row),
        "linestyle": style.optim_dash(row),
        "marker": style.job_marker(int(row["exp"])),
    }


def experiment_figure(
    row: Any, curve: pd.DataFrame, label: str, out_dir: Path, note: str = ""
) -> FigureFile:
    """Train and validation perplexity of one job vs epochs and vs wall-clock time (item 1);
    `note` (`wall_clock_note`) ends the caption."""
    scale, time_label = _time_axis(float(curve["wall_time_s"].max()))
    fig, axes = _new_figure(10, 3.8)
    look = _job_style(row)
    for ax, x, s in zip(axes, ("epoch", "wall_time_s"), (1.0, scale), strict=True):
        for y, name, extra in (
            ("train_ppl", "train", {"marker": "s", "markerfacecolor": "white", "alpha": 0.6}),
            ("val_ppl", "validation", {"marker": "o"}),
        ):
            _draw(ax, curve, x, y, s, **{**look, **extra}, label=name)
    _style_axes(axes, time_label)
    axes[0].legend(title=None, fontsize=9)
    fig.suptitle(f"Experiment {label}")
    name = f"exp{int(row['exp']):02d}-{_slug(row['model'])}-{_slug(row['optim'])}"
    n = len(_points(curve, "epoch", "val_ppl")[0])
    lost = curve.loc[~curve["val_ppl"].map(math.isfinite), "epoch"].tolist()
    caption = (
        f"Learning curves of experiment {label} ({row['status']}): train perplexity (open "
        "squares, running mean over the epoch so far, dropout on) and validation perplexity "
        f"(filled circles, {n} evaluation point{'s' if n != 1 else ''}) against epochs (left) "
        "and wall-clock time (right); log-scale perplexity."
    )
    if n == 1:
        caption += " One evaluation: a point, labelled with its value, not a curve."
    if lost:
        epochs = ", ".join(f"{e:g}" for e in lost)
        caption += f" Non-finite validation perplexity at epoch {epochs} is not drawn."
    caption += note
    paths = _save(fig, out_dir, name)
    title = f"Experiment {label}"
    return FigureFile(name, "experiment", title, caption, paths, (row["job_id"],))


def _best_first(group: pd.DataFrame, limit: int) -> pd.DataFrame:
    """The `limit` jobs of `group` with the lowest best validation perplexity (no result
    last), kept in table order."""
    if len(group) <= limit:
        return group
    best = group["best_val_ppl"].astype(float).fillna(math.inf).sort_values(kind="stable")
    return group.loc[sorted(best.index[:limit], key=list(group.index).index)]


def group_figure(
    group: pd.DataFrame,
    curves: dict[str, pd.DataFrame],
    labels: dict[str, str],
    kind: str,
    value: str,
    name: str,
    out_dir: Path,
    together: dict[str, int] | None = None,
) -> FigureFile:
    """The validation curves of one optimizer or architecture vs epochs and wall-clock, at
    most MAX_GROUP_CURVES of them (the best); `together` (`concurrent_jobs`) lets the caption
    say which wall-clock times include waiting for the machine.

    IFT6135 A2 items 4 and 5 ask for two plots each; here they are the two panels of one figure.
    """
    title = f"Validation curves of {kind} {value}"
    shown = _best_first(group, MAX_GROUP_CURVES)
    longest = max((float(curves[j]["wall_time_s"].max()) for j in shown["job_id"]), default=0.0)
    scale, time_label = _time_axis(longest if math.isfinite(longest) else 0.0)
    fig, axes = _new_figure(11, 4.0)
    drawn, skipped = [], []
    for _, row in shown.iterrows():
        curve, look = curves[row["job_id"]], _job_style(row)
        ok = [
            _draw(ax, curve, x, "val_ppl", s, **look, label=labels[row["job_id"]])
            for ax, x, s in zip(axes, ("epoch", "wall_time_s"), (1.0, scale), strict=True)
        ][0]
        (drawn if ok else skipped).append(f"#{row['exp']}")
    _style_axes(axes, time_label)
    legend_below(fig, axes)
    fig.suptitle(title)
    caption = _group_caption(value, drawn, skipped, every=len(shown) == len(group))
    if len(shown) < len(group):
        caption += (
            f" The {len(shown)} best of its {len(group)} experiments are drawn; the results "
            "table lists them all."
        )
    single = _single_points(curves, shown)
    if single:
        caption += f" Evaluated once (a point, not a curve): {', '.join(single)}."
    caption += wall_clock_note(shown, together or {})
    return FigureFile(name, kind, title, caption, _save(fig, out_dir, name))


def _group_caption(value: str, drawn: list[str], skipped: list[str], every: bool = True) -> str:
    caption = (
        f"Validation perplexity of {'every' if every else 'the best'} {value} experiment"
        f"{'' if every else 's'} ({', '.join(drawn)}) against "
        "epochs (left) and wall-clock time (right); log-scale perplexity. Colour: "
        "architecture; line style: optimizer; marker: experiment."
    )
    if skipped:
        caption += f" Not drawn (no finite validation point): {', '.join(skipped)}."
    return caption


def experiments_page(
    rows: pd.DataFrame, curves: dict[str, pd.DataFrame], labels: dict[str, str], out_dir: Path
) -> FigureFile:
    """Small multiples: one panel per job of `rows` (up to GRID_COLUMNS x GRID_ROWS), train and
    validation perplexity vs epochs, each panel with its own axes. Used instead of one figure
    per job when a sweep has more than MAX_EXPERIMENT_FIGURES jobs (a 30-trial search)."""
    columns = min(GRID_COLUMNS, len(rows))
    lines = math.ceil(len(rows) / columns)
    width, height = 2.9 * columns, 2.35 * lines + 1.3
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    grid = fig.subplots(lines, columns, squeeze=False)
    for ax, (_, row) in zip(grid.flat, rows.iterrows(), strict=False):
        curve, look = curves[row["job_id"]], _job_style(row)
        for y, name, extra in (
            ("train_ppl", "train", {"marker": "s", "markerfacecolor": "white", "alpha": 0.6}),
            ("val_ppl", "validation", {"marker": "o"}),
        ):
            _draw(ax, curve, "epoch", y, 1.0, **{**look, **extra, "markersize": 4}, label=name)
        ax.set_yscale("log")
        ax.margins(y=0.15)  # room above the top point for its value label
        # a 2.9-inch panel holds four x labels; more (0.00 0.05 ... 0.25) run into each other
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10]))
        _x_from_zero(ax)
        low, high = ax.get_ylim()
        if high > PPL_CAP:
            ax.set_ylim(low, PPL_CAP)
        readable_log_axis(ax.yaxis, *ax.get_ylim())
        ax.grid(True, which="major", alpha=0.3)
        ax.tick_params(labelsize=7)
        title = textwrap.shorten(labels[row["job_id"]], 90, placeholder="…")  # "#k <labels>..."
        ax.set_title(textwrap.fill(title, 42), fontsize=7)
    for ax in grid.flat[len(rows) :]:
        ax.set_axis_off()
    for index, ax in enumerate(grid.flat[: len(rows)]):
        if index + columns >= len(rows):  # nothing drawn below it: the bottom of its column
            ax.set_xlabel("epoch", fontsize=7)
    fig.subplots_adjust(
        left=0.55 / width,
        right=1 - 0.1 / width,
        top=1 - 0.75 / height,
        bottom=0.55 / height,  # the bottom row's "epoch" label
        wspace=0.3,
        hspace=0.6,
    )
    first, last = rows["exp"].iloc[0], rows["exp"].iloc[-1]
    title = f"Learning curves of experiments #{first} to #{last}"
    fig.suptitle(title)
    handles, names = grid.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, names, loc="upper right", ncol=2, fontsize=8, frameon=False)
    name = f"experiments-{int(first):02d}-{int(last):02d}"
    caption = (
        f"Train perplexity (open squares, running mean over the epoch so far, dropout on) and "
        f"validation perplexity (filled circles) of experiments #{first} to #{last} against "
        "epochs, one panel each with its own log-scale axes. A sweep of more than "
        f"{MAX_EXPERIMENT_FIGURES} experiments gets these pages instead of one figure per "
        "experiment; the optimizer and architecture figures draw them against wall-clock time."
    )
    single = _single_points(curves, rows)
    if single:
        caption += f" Evaluated once (a point, labelled with its value): {', '.join(single)}."
    paths = _save(fig, out_dir, name)
    return FigureFile(name, "experiment", title, caption, paths, tuple(rows["job_id"]))


def overview_figure(ordered: pd.DataFrame, out_dir: Path) -> FigureFile:
    """Best validation perplexity per architecture x optimizer, min over jobs in a cell."""
    models, optims = style.arch_order(ordered), style.order(ordered, "optim")
    values = np.full((len(models), len(optims)), np.nan)
    notes = np.full(values.shape, "", dtype=object)
    for (m, o), cell in ordered.groupby(["model", "optim"], sort=False):
        i, j = models.index(m), optims.index(o)
        best = cell.loc[cell["best_val_ppl"].astype(float).fillna(math.inf).idxmin()]
        values[i, j] = float(best["best_val_ppl"])
        value = f"{values[i, j]:.1f}" if math.isfinite(values[i, j]) else "no finite\nresult"
        notes[i, j] = f"{value}\n(#{best['exp']}, n={len(cell)})"
    fig = Figure(
        figsize=(1.9 * len(optims) + 2.6, 0.9 * len(models) + 1.6), dpi=DPI, layout="constrained"
    )
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    optim_labels = style.labels(ordered, "optim")
    rows, cols = [style.arch_labels(ordered)[m] for m in models], [optim_labels[o] for o in optims]
    _heatmap(ax, values, notes, rows, cols)
    ax.set_title("Best validation perplexity")
    name = "overview"
    caption = (
        "Best validation perplexity for each architecture (rows) and optimizer (columns): the "
        "minimum over the n experiments sharing the cell, whose number is in brackets; "
        "yellow is lowest (log colour scale). Grey with text: no job in the cell reached a "
        "finite validation perplexity (diverged, failed or no evaluation yet); grey without "
        "text: no job with that pair."
    )
    return FigureFile(name, "overview", "Overview", caption, _save(fig, out_dir, name))


def _heatmap(ax: Any, values: np.ndarray, notes: np.ndarray, rows: list, cols: list) -> None:
    """Annotated grid on a log colour scale; non-finite cells are grey, with their note."""
    finite = np.isfinite(values)
    low, high = (values[finite].min(), values[finite].max()) if finite.any() else (1.0, 10.0)
    norm = LogNorm(low, high) if finite.any() and high > low else None
    cmap = colormaps["viridis_r"].with_extremes(bad="#dddddd")
    mesh = ax.pcolormesh(
        np.ma.masked_invalid(values), cmap=cmap, norm=norm, edgecolors="white", linewidth=1
    )
    if finite.any():
        bar = ax.figure.colorbar(mesh, ax=ax, label="perplexity")
        if norm is not None:  # plain numbers on the colour bar, not 6x10^2
            readable_log_axis(bar.ax.yaxis, low, high)
    for (i, j), text in np.ndenumerate(notes):
        if not text:
            continue
        dark = finite[i, j] and norm is not None and norm(values[i, j]) > 0.6
        color = "white" if dark else "black"  # viridis_r is dark at its high end
        ax.text(j + 0.5, i + 0.5, text, ha="center", va="center", fontsize=9, color=color)
    ax.set_xticks(np.arange(len(cols)) + 0.5, cols)
    ax.set_yticks(np.arange(len(rows)) + 0.5, rows)
    ax.set_xlim(0, len(cols))
    ax.set_ylim(len(rows), 0)  # first architecture on top, as in the tables
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xlabel("optimizer")
    ax.set_ylabel("architecture")


def make_figures(
    ordered: pd.DataFrame, curves: dict[str, pd.DataFrame], out_dir: Path
) -> list[FigureFile]:
    """Every figure for the numbered jobs of `tables.order_jobs`, written under `out_dir`: one
    per job up to MAX_EXPERIMENT_FIGURES jobs, else pages of small multiples."""
    out_dir.mkdir(parents=True, exist_ok=True)
    varying = varying_hyper_columns(ordered)
    labels = {row["job_id"]: job_label(row, varying) for _, row in ordered.iterrows()}
    together = concurrent_jobs(ordered)
    plotted = ordered[[_has_curve(curves[j], "val_ppl", "train_ppl") for j in ordered["job_id"]]]
    figures = []
    if len(plotted) <= MAX_EXPERIMENT_FIGURES:
        for _, row in plotted.iterrows():
            note = wall_clock_note(plotted.loc[[row.name]], together)
            curve = curves[row["job_id"]]
            figures.append(experiment_figure(row, curve, labels[row["job_id"]], out_dir, note))
    else:
        per_page = GRID_COLUMNS * GRID_ROWS
        for start in range(0, len(plotted), per_page):
            page = plotted.iloc[start : start + per_page]
            figures.append(experiments_page(page, curves, labels, out_dir))
    labels_of = style.arch_labels(ordered)
    for kind, column, namer, values in (
        (
            "optimizer",
            "optim",
            style.labels(ordered, "optim").__getitem__,
            style.order(ordered, "optim"),
        ),
        ("architecture", "model", labels_of.__getitem__, style.arch_order(ordered)),
    ):
        for value in values:
            group = ordered[ordered[column] == value]
            if not any(_has_curve(curves[j]) for j in group["job_id"]):
                continue  # empty axes say nothing; the status table lists these jobs
            name = f"{'optim' if kind == 'optimizer' else 'arch'}-{_slug(value)}"
            figures.append(
                group_figure(group, curves, labels, kind, namer(value), name, out_dir, together)
            )
    figures.append(overview_figure(ordered, out_dir))
    return figures
