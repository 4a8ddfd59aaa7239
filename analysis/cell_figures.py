"""Learning curves per cell: the mean over a cell's seeds with its 95 % band, on epochs and on
wall-clock time (the figure of a sweep with repeats; analysis.cells computes the cells).

A cell's runs are evaluated at their own moments: each run's validation perplexity is
interpolated (on its logarithm, the loss) onto a common grid of the span every run covers,
then averaged; the band is Student's t over the runs at each grid point, so it is the
geometric mean and its interval, as the log axis shows them.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as st

from . import style
from .cells import CellStudy
from .figures import (
    MAX_GROUP_CURVES,
    FigureFile,
    _new_figure,
    _points,
    _save,
    _style_axes,
    _time_axis,
    legend_below,
)
from .stats import LEVEL

GRID_POINTS = 60  # wall-clock grid of a band


def band(
    curves: list[pd.DataFrame], x: str, level: float = LEVEL
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Grid, geometric mean, low and high of the runs' validation perplexity against `x`, over
    the span all runs cover; None with fewer than two runs that have points there."""
    runs = [_points(c, x, "val_ppl") for c in curves]
    runs = [(xs, np.log(ys)) for xs, ys in runs if len(xs) >= 1]
    if len(runs) < 2:
        return None
    start = max(float(xs.min()) for xs, _ in runs)
    end = min(float(xs.max()) for xs, _ in runs)
    if end < start:
        return None
    if x == "epoch":  # the runs' own evaluation epochs inside the common span
        grid = np.unique(np.concatenate([xs[(xs >= start) & (xs <= end)] for xs, _ in runs]))
    else:
        grid = np.linspace(start, end, GRID_POINTS) if end > start else np.array([start])
    values = np.stack([np.interp(grid, xs, ys) for xs, ys in runs])
    n = len(runs)
    mean, sd = values.mean(axis=0), values.std(axis=0, ddof=1)
    half = float(st.t.ppf((1 + level) / 2, n - 1)) * sd / math.sqrt(n)
    return grid, np.exp(mean), np.exp(mean - half), np.exp(mean + half)


def cell_curves_figure(
    study: CellStudy, curves: dict[str, pd.DataFrame], out_dir: Path
) -> FigureFile | None:
    """The best MAX_GROUP_CURVES cells with two or more completed runs: mean and band."""
    frame = study.frame
    shown = frame[frame["job_ids"].map(len) >= 2].head(MAX_GROUP_CURVES)
    if shown.empty:
        return None
    longest = max(float(curves[j]["wall_time_s"].max()) for ids in shown["job_ids"] for j in ids)
    scale, time_label = _time_axis(longest if math.isfinite(longest) else 0.0)
    fig, axes = _new_figure(10, 4.2)
    drawn = []
    for row in shown.itertuples():
        row_facts = row._asdict()
        look = {"color": style.arch_color(row_facts), "linestyle": style.optim_dash(row_facts)}
        runs = [curves[j] for j in row.job_ids]
        for ax, x, s in zip(axes, ("epoch", "wall_time_s"), (1.0, scale), strict=True):
            got = band(runs, x)
            if got is None:
                continue
            grid, mean, low, high = got
            label = f"#{row.rank} {row.label} (n={len(runs)})"
            if len(grid) == 1:  # one common evaluation: a point and its interval
                spread = [mean - low, high - mean]
                ax.errorbar(grid / s, mean, yerr=spread, marker="o", capsize=3, label=label, **look)
                continue
            ax.plot(grid / s, mean, label=label, **look)
            ax.fill_between(grid / s, low, high, color=look["color"], alpha=0.18, linewidth=0)
        drawn.append(f"#{row.rank} {row.label}")
    _style_axes(axes, time_label)
    legend_below(fig, axes)
    fig.suptitle("Validation perplexity per cell: mean over seeds and 95 % band")
    left_out = len(frame[frame["job_ids"].map(len) >= 2]) - len(shown)
    caption = (
        "Validation perplexity of each cell (its jobs differ only in the seed; # is its rank "
        "in the cells table) against epochs (left) and wall-clock time (right): the geometric "
        "mean over the cell's completed runs, each interpolated on its loss over the span all "
        f"of them reached, and the 95 % band of that mean (Student's t, {_runs(shown)}). "
        + (f"The {left_out} cells ranked lower are not drawn. " if left_out > 0 else "")
        + "Cells with one run have no band and are not drawn; the per-experiment figures "
        "show every run."
    )
    paths = _save(fig, out_dir, "cells-val-ppl")
    jobs = tuple(j for ids in shown["job_ids"] for j in ids)
    return FigureFile(
        "cells-val-ppl", "cells", "Validation perplexity per cell", caption, paths, jobs
    )


def _runs(shown: pd.DataFrame) -> str:
    counts = sorted({len(ids) for ids in shown["job_ids"]})
    return f"n = {counts[0]}" if len(counts) == 1 else f"n from {counts[0]} to {counts[-1]}"


def cell_figures(
    study: CellStudy | None, curves: dict[str, pd.DataFrame], out_dir: Path
) -> list[FigureFile]:
    """The cells' figures, when the sweep has repeats."""
    if study is None:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    figure = cell_curves_figure(study, curves, out_dir)
    return [figure] if figure is not None else []
