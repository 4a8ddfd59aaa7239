"""Learning-curve and overview figures (IFT6135 A2 items 1, 4, 5), each saved as PNG and PDF.

Draws on `matplotlib.figure.Figure` with the Agg canvas, never pyplot, so it leaves no global
figure state behind and works headless. Colour = architecture, line style = optimizer, marker =
experiment (see `analysis.style`); the same in every figure.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator

from . import style
from .tables import job_label, varying_hyper_columns

PPL_CAP = 1e5  # y-axis ceiling: beyond 10x the PTB vocabulary a curve has diverged anyway
DPI = 110
LEGEND_COLUMNS = 3


@dataclass
class FigureFile:
    """One saved figure: its files and the caption the report prints below it."""

    name: str
    kind: str  # experiment | optimizer | architecture | overview
    title: str
    caption: str
    paths: list[Path] = field(default_factory=list)  # [png, pdf]
    job_id: str | None = None  # the job of an experiment figure

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
    """Points drawable on a log axis: finite x, finite positive y (an inf ppl is left out)."""
    xs, ys = curve[x].to_numpy(float), curve[y].to_numpy(float)
    keep = np.isfinite(xs) & np.isfinite(ys) & (ys > 0)
    return xs[keep], ys[keep]


def _has_curve(curve: pd.DataFrame, *columns: str) -> bool:
    return any(len(_points(curve, "epoch", y)[0]) for y in columns or ("val_ppl",))


def _new_figure(
    width: float, height: float, bottom: float = 0.0, sharey: bool = True
) -> tuple[Figure, Any]:
    """Two panels, sharing the y axis unless `sharey=False` (then each has its own ticks), with
    `bottom` extra inches below them (for a legend: `legend_band`).

    Margins are fixed in inches rather than computed by a layout engine, which would double the
    time to save each figure; perplexity tick labels are at most 6 characters wide.
    """
    fig = Figure(figsize=(width, height + bottom), dpi=DPI)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, sharey=sharey)
    w, h = fig.get_size_inches()
    fig.subplots_adjust(
        left=0.8 / w,
        right=1 - 0.15 / w,
        top=1 - 0.62 / h,
        bottom=(0.55 + bottom) / h,
        wspace=0.04 if sharey else 0.2,
    )
    return fig, axes


def legend_band(entries: int) -> float:
    """Inches below the panels that a legend of `entries` lines in LEGEND_COLUMNS columns needs."""
    return 0.12 + 0.19 * math.ceil(entries / LEGEND_COLUMNS) if entries else 0.0


def legend_below(fig: Figure, axes: Any) -> None:
    """One figure legend under the panels, one entry per label over all of them (a job may be
    drawn in only one panel)."""
    entries: dict[str, Any] = {}
    for ax in axes:
        for handle, text in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(text, handle)
    if entries:
        fig.legend(
            list(entries.values()),
            list(entries),
            loc="lower center",
            bbox_to_anchor=(0.5, 0.01),
            ncol=min(LEGEND_COLUMNS, len(entries)),
            fontsize=8,
            frameon=False,
        )


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


def _style_axes(axes: Any, time_label: str) -> None:
    for ax, xlabel in zip(axes, ("epoch", time_label), strict=True):
        ax.set_xlabel(xlabel)
        ax.set_yscale("log")
        ax.grid(True, which="major", alpha=0.3)
        ax.set_xlim(left=0)  # epochs and time both start at 0; a lone point is not lost
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
        # Markers on every evaluation point: a one-point curve is still visible.
        ax.plot(xs / scale, ys, markersize=7 if len(xs) == 1 else 5, **kw)
    return bool(len(xs))


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
        "linestyle": style.optim_dash(row["optim"]),
        "marker": style.job_marker(int(row["exp"])),
    }


def experiment_figure(row: Any, curve: pd.DataFrame, label: str, out_dir: Path) -> FigureFile:
    """Train and validation perplexity of one job vs epochs and vs wall-clock time (item 1)."""
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
    if lost:
        epochs = ", ".join(f"{e:g}" for e in lost)
        caption += f" Non-finite validation perplexity at epoch {epochs} is not drawn."
    paths = _save(fig, out_dir, name)
    return FigureFile(name, "experiment", f"Experiment {label}", caption, paths, row["job_id"])


def group_figure(
    group: pd.DataFrame,
    curves: dict[str, pd.DataFrame],
    labels: dict[str, str],
    kind: str,
    value: str,
    name: str,
    out_dir: Path,
) -> FigureFile:
    """All validation curves of one optimizer or architecture vs epochs and wall-clock.

    IFT6135 A2 items 4 and 5 ask for two plots each; here they are the two panels of one figure.
    """
    title = f"Validation curves of {kind} {value}"
    longest = max((float(curves[j]["wall_time_s"].max()) for j in group["job_id"]), default=0.0)
    scale, time_label = _time_axis(longest if math.isfinite(longest) else 0.0)
    fig, axes = _new_figure(11, 4.0, bottom=legend_band(len(group)))
    drawn, skipped = [], []
    for _, row in group.iterrows():
        curve, look = curves[row["job_id"]], _job_style(row)
        ok = [
            _draw(ax, curve, x, "val_ppl", s, **look, label=labels[row["job_id"]])
            for ax, x, s in zip(axes, ("epoch", "wall_time_s"), (1.0, scale), strict=True)
        ][0]
        (drawn if ok else skipped).append(f"#{row['exp']}")
    _style_axes(axes, time_label)
    legend_below(fig, axes)
    fig.suptitle(title)
    caption = _group_caption(value, drawn, skipped)
    return FigureFile(name, kind, title, caption, _save(fig, out_dir, name))


def _group_caption(value: str, drawn: list[str], skipped: list[str]) -> str:
    caption = (
        f"Validation perplexity of every {value} experiment ({', '.join(drawn)}) against "
        "epochs (left) and wall-clock time (right); log-scale perplexity. Colour: "
        "architecture; line style: optimizer; marker: experiment."
    )
    if skipped:
        caption += f" Not drawn (no finite validation point): {', '.join(skipped)}."
    return caption


def overview_figure(ordered: pd.DataFrame, out_dir: Path) -> FigureFile:
    """Best validation perplexity per architecture x optimizer, min over jobs in a cell."""
    models = style.arch_order(ordered)
    optims = sorted(ordered["optim"].unique(), key=lambda o: style.rank(o, style.OPTIM_ORDER))
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
    _heatmap(ax, values, notes, [style.arch_labels(ordered)[m] for m in models], optims)
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
    """Annotated grid; non-finite cells are grey, with their note written on top."""
    finite = np.isfinite(values)
    low, high = (values[finite].min(), values[finite].max()) if finite.any() else (1.0, 10.0)
    norm = LogNorm(low, high) if finite.any() and high > low else None
    with warnings.catch_warnings():  # seaborn warns on an all-NaN grid; it still draws it
        warnings.simplefilter("ignore", RuntimeWarning)
        sns.heatmap(
            np.where(finite, values, np.nan),
            mask=~finite,
            ax=ax,
            cmap="viridis_r",
            norm=norm,
            annot=np.where(finite, notes, ""),
            fmt="",
            cbar=bool(finite.any()),
            cbar_kws={"label": "perplexity"},
            xticklabels=[style.optim_name(o) for o in cols],
            yticklabels=rows,
            linewidths=1,
            linecolor="white",
        )
    if norm is not None:  # plain numbers on the colour bar, not 6x10^2
        readable_log_axis(ax.collections[0].colorbar.ax.yaxis, low, high)
    ax.set_facecolor("#dddddd")
    for (i, j), text in np.ndenumerate(notes):
        if text and not finite[i, j]:
            ax.text(j + 0.5, i + 0.5, text, ha="center", va="center", fontsize=9)
    ax.set_xlabel("optimizer")
    ax.set_ylabel("architecture")
    ax.tick_params(axis="y", rotation=0)


def make_figures(
    ordered: pd.DataFrame, curves: dict[str, pd.DataFrame], out_dir: Path
) -> list[FigureFile]:
    """Every figure for the numbered jobs of `tables.order_jobs`, written under `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    varying = varying_hyper_columns(ordered)
    labels = {row["job_id"]: job_label(row, varying) for _, row in ordered.iterrows()}
    figures = []
    for _, row in ordered.iterrows():
        curve = curves[row["job_id"]]
        if _has_curve(curve, "val_ppl", "train_ppl"):
            figures.append(experiment_figure(row, curve, labels[row["job_id"]], out_dir))
    optims = sorted(ordered["optim"].unique(), key=lambda o: style.rank(o, style.OPTIM_ORDER))
    labels_of = style.arch_labels(ordered)
    for kind, column, namer, values in (
        ("optimizer", "optim", style.optim_name, optims),
        ("architecture", "model", labels_of.__getitem__, style.arch_order(ordered)),
    ):
        for value in values:
            group = ordered[ordered[column] == value]
            if not any(_has_curve(curves[j]) for j in group["job_id"]):
                continue  # empty axes say nothing; the status table lists these jobs
            name = f"{'optim' if kind == 'optimizer' else 'arch'}-{_slug(value)}"
            figures.append(group_figure(group, curves, labels, kind, namer(value), name, out_dir))
    figures.append(overview_figure(ordered, out_dir))
    return figures
