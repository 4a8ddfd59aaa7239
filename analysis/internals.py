"""The report's "Inside the models" section: per-time-step loss, gradient flow, text samples.

Reads what `lmexp-internals` and `lmexp-generate` leave in a job directory
(`internals/timestep_loss.csv`, `internals/grad_flow.csv`, `samples/*.txt`); computes nothing
about the models itself. Jobs without these files are simply not in the section.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lmexp.run.rundir import RunDir

from . import style
from .collect import collect
from .figures import DPI, FigureFile, _save
from .tables import job_label, order_jobs, varying_hyper_columns


@dataclass
class SampleFile:
    """One samples file of one job, as the appendix shows it."""

    job: str  # the job's label: "#3 <architecture> <optimizer>" and what varies
    name: str  # file stem, e.g. t1_len35
    header: str  # how they were made (the file's # line)
    lines: list[str]
    total: int  # samples in the file


def _read(job_dir: str, name: str) -> pd.DataFrame | None:
    """`name`: the RunDir attribute of the CSV (`timestep_loss` or `grad_flow`)."""
    path = getattr(RunDir(job_dir), name)
    try:
        return pd.read_csv(path)
    except (OSError, ValueError, pd.errors.EmptyDataError):
        return None


# How each CSV was computed (its `state` / `definition`, `mode` columns; files from before
# the columns hold lmexp's earlier definitions) -> the caption's words for it.
HOW: dict[str, tuple[tuple[str, ...], dict[tuple[str, ...], str], tuple[str, ...]]] = {
    "timestep_loss": (
        ("state",),
        {
            ("fresh",): "as the assignment computes it: every window starts from the zero "
            "state, so t = 0 is predicted without context",
            ("carried",): "the recurrent state carried between windows, as in evaluation",
        },
        ("carried",),
    ),
    "grad_flow": (
        ("definition", "mode"),
        {
            ("assignment", "train"): "as the assignment defines it: the minibatch's mean loss "
            "at the last step, with respect to the state h_t each step t starts from (h_0 the "
            "initial state), in training mode (dropout on), min-max rescaled to [0, 1]",
            ("assignment", "eval"): "as the assignment defines it (the minibatch's mean loss at "
            "the last step, the state each step t starts from, min-max rescaled to [0, 1]) "
            "with dropout off",
            ("per-sequence", "train"): "per-sequence norms of the summed loss, with respect to "
            "the state after step t, averaged, divided by the maximum; dropout on",
            ("per-sequence", "eval"): "per-sequence norms of the summed loss, with respect to "
            "the state after step t, averaged, divided by the maximum; dropout off",
        },
        ("per-sequence", "eval"),
    ),
}


def _how(table: pd.DataFrame, file: str) -> tuple[str, ...]:
    columns, _, legacy = HOW[file]
    if not all(c in table for c in columns):
        return legacy
    return tuple(str(table[c].iloc[0]) for c in columns)


def _curve_figure(
    ordered: pd.DataFrame,
    labels: dict[str, str],
    file: str,
    y: str,
    ylabel: str,
) -> tuple[Figure, list[str], set[tuple[str, ...]]] | None:
    fig = Figure(figsize=(7.5, 4.2), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    drawn: list[str] = []
    hows: set[tuple[str, ...]] = set()
    for _, row in ordered.iterrows():
        table = _read(row["job_dir"], file)
        if table is None or y not in table or table.empty:
            continue
        hows.add(_how(table, file))
        ax.plot(
            table["t"],
            table[y],
            color=style.arch_color(row),
            linestyle=style.optim_dash(row),
            marker=style.job_marker(int(row["exp"])),
            markersize=4,
            label=labels[row["job_id"]],
        )
        drawn.append(labels[row["job_id"]])
    if not drawn:
        return None
    ax.set_xlabel("time step t (position in the window)")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.subplots_adjust(left=0.11, right=0.98, top=0.93, bottom=0.12)
    return fig, drawn, hows


def internals_figures(ordered: pd.DataFrame, out_dir: Path) -> list[FigureFile]:
    """The per-time-step loss and gradient-flow figures of the jobs that have the CSVs."""
    out_dir.mkdir(parents=True, exist_ok=True)
    varying = varying_hyper_columns(ordered)
    labels = {row["job_id"]: job_label(row, varying) for _, row in ordered.iterrows()}
    made = []
    specs = (
        (
            "timestep_loss",
            "loss",
            "mean validation loss L_t (nats)",
            "internals-timestep-loss",
            "Loss at each time step",
            "Average cross-entropy L_t at each position t of the validation windows (IFT6135 A2 "
            "§5.1; {how}; the Transformer sees each window alone). Jobs: {jobs}.",
        ),
        (
            "grad_flow",
            "scaled",
            "‖∇_{h_t} L_T‖, rescaled to [0, 1]",
            "internals-grad-flow",
            "Gradient flow through time",
            "Euclidean norm of the gradient of the final step's loss L_T on one training "
            "minibatch (IFT6135 A2 §5.2; {how}). h_t is every layer's hidden state; for the "
            "Transformer, the residual stream entering its top block at position t. A curve "
            "that falls towards t = 0 shows vanishing gradients. Jobs: {jobs}.",
        ),
    )
    for file, y, ylabel, name, title, caption in specs:
        result = _curve_figure(ordered, labels, file, y, ylabel)
        if result is None:
            continue
        fig, drawn, hows = result
        fig.suptitle(title, fontsize=11)
        paths = _save(fig, out_dir, name)
        words = HOW[file][1]
        how = words.get(hows.pop(), "") if len(hows) == 1 else ""
        how = how or "computed as each job's CSV says (its state or definition column)"
        text = caption.format(jobs="; ".join(drawn), how=how)
        made.append(FigureFile(name, "internals", title, text, paths))
    return made


def sample_files(ordered: pd.DataFrame) -> list[SampleFile]:
    """Every job's samples/*.txt, every sample of each, in job order."""
    varying = varying_hyper_columns(ordered)
    found = []
    for _, row in ordered.iterrows():
        for path in sorted(RunDir(row["job_dir"]).samples.glob("*.txt")):
            text = path.read_text(encoding="utf-8", errors="replace").splitlines()
            header = text[0][1:].strip() if text and text[0].startswith("#") else ""
            body = [line for line in text if line and not line.startswith("#")]
            found.append(
                SampleFile(
                    job_label(row, varying),
                    path.stem,
                    header,
                    body,  # all of them: IFT6135 A2 §5.3 puts every sample in an appendix
                    len(body),
                )
            )
    return found


def plot_internals(run_dirs: Sequence[Path], out_dir: Path) -> list[Path]:
    """The two comparison plots for `run_dirs`, alone (the report draws them among the rest)."""
    ordered = order_jobs(collect(run_dirs).jobs)
    return [p for fig in internals_figures(ordered, out_dir) for p in fig.paths]
