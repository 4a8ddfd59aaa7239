"""The report's interactive view of a sweep: hyper-parameters against the metric, offline.

Two parts of `report.html`, both inside the one file (no CDN, no network):

- a parallel-coordinates plot: one vertical axis per hyper-parameter that varies across the
  jobs and one for the metric, one line per job coloured by its metric; drag along an axis to
  keep the jobs in that range, hover a line to name its job (vanilla JavaScript on SVG);
- the hyper-parameters' importance for the metric, fANOVA as Optuna computes it
  (`optuna.importance.FanovaImportanceEvaluator`, which needs scikit-learn) or, without
  scikit-learn, Optuna's PED-ANOVA; each job is told to an in-memory study as a trial.

The data is the results table's (`tables.order_jobs`): the page stays small (a 500-job sweep
adds about 100 kB) and opens at once.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .tables import SORT_NAMES, finite, varying_hyper_columns

MIN_JOBS = 3  # fewer: nothing to compare along an axis
LOG_RATIO = 20.0  # a positive axis spanning more than this factor is drawn on a log scale


@dataclass
class Axis:
    """One axis of the plot: a column of the jobs frame and how to place its values."""

    key: str  # the frame's column
    label: str  # as the results table names it
    kind: str  # "log", "linear" or "category"
    values: list[Any]  # one per job (None: not recorded)


def _axis(key: str, label: str, column: pd.Series) -> Axis:
    values = [
        None if (v is None or (isinstance(v, float) and math.isnan(v))) else v for v in column
    ]
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        numbers = [float(v) for v in present if finite(v)]
        positive = numbers and min(numbers) > 0
        kind = "log" if positive and max(numbers) / min(numbers) > LOG_RATIO else "linear"
        return Axis(key, label, kind, [float(v) if finite(v) else None for v in values])
    return Axis(key, label, "category", [None if v is None else str(v) for v in values])


def axes(ordered: pd.DataFrame, metric: str) -> list[Axis]:
    """The varying hyper-parameters (as the results table shows them), then the metric."""
    found = []
    for column in varying_hyper_columns(ordered):
        found.append(_axis(column.source, column.header, ordered[column.source]))
    for key, label in (("model", "Model"), ("optim", "Optim")):
        if ordered[key].nunique() > 1 and all(a.key != key for a in found):
            found.insert(0, _axis(key, label, ordered[f"{key}_label"]))
    metric_values = [float(v) if finite(v) else None for v in ordered[metric]]
    found.append(Axis(metric, SORT_NAMES[metric], "log", metric_values))
    return found


def importance(
    ordered: pd.DataFrame, plotted: list[Axis], metric: str
) -> tuple[dict[str, float], str, list[int]]:
    """{axis label: importance in [0, 1]} for the metric, how it was computed, and the jobs
    (row positions) it weighed; ({}, why, []) when it cannot be (Optuna missing, too few
    finished jobs, nothing varies)."""
    try:
        import optuna
        from optuna.distributions import CategoricalDistribution, FloatDistribution
    except ImportError:
        return {}, "install Optuna (the optuna extra) for each hyper-parameter's importance", []
    params = [a for a in plotted if a.key != metric]
    target = next(a for a in plotted if a.key == metric)
    rows = [i for i, v in enumerate(target.values) if v is not None]
    rows = [i for i in rows if ordered.iloc[i]["status"] != "pruned"]  # ran their budget
    if len(rows) < MIN_JOBS or not params:
        return {}, f"too few jobs with a finite {SORT_NAMES[metric]} to weigh", []
    distributions = {}
    for axis in params:
        present = [axis.values[i] for i in rows if axis.values[i] is not None]
        if len(set(present)) < 2:
            continue
        if axis.kind == "category":
            distributions[axis.label] = CategoricalDistribution(sorted(set(present)))
        else:
            low, high = min(present), max(present)
            distributions[axis.label] = FloatDistribution(low, high, log=axis.kind == "log")
    if not distributions:
        return {}, "no hyper-parameter varies among the finished jobs", []
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize")
    for i in rows:
        values = {a.label: a.values[i] for a in params if a.label in distributions}
        if any(v is None for v in values.values()):
            continue
        study.add_trial(
            optuna.trial.create_trial(
                params=values,
                distributions={k: distributions[k] for k in values},
                value=math.log(target.values[i]),  # log-perplexity: the loss
            )
        )
    try:
        import sklearn  # noqa: F401

        evaluator: Any = optuna.importance.FanovaImportanceEvaluator(seed=0)
        how = "fANOVA (Optuna's FanovaImportanceEvaluator, seed 0)"
    except ImportError:
        evaluator = optuna.importance.PedAnovaImportanceEvaluator()
        how = "PED-ANOVA (Optuna's PedAnovaImportanceEvaluator; scikit-learn gives fANOVA)"
    try:
        found = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (ValueError, RuntimeError) as exc:
        return {}, f"importance not computed: {exc}", []
    return dict(found), how, rows


def _labels(ordered: pd.DataFrame) -> list[str]:
    return [f"#{r.exp} {r.job_id}" for r in ordered.itertuples()]


def explore_html(ordered: pd.DataFrame, metric: str) -> str:
    """The section's HTML (with its data and script inline), or "" for too few jobs."""
    if len(ordered) < MIN_JOBS:
        return ""
    plotted = axes(ordered, metric)
    if len(plotted) < 2:
        return ""
    weights, how, rows = importance(ordered, plotted, metric)
    data = {
        "axes": [{"label": a.label, "kind": a.kind, "values": a.values} for a in plotted],
        "jobs": _labels(ordered),
        "status": [str(s) for s in ordered["status"]],
    }
    bars = "".join(
        f'<tr><td>{html.escape(name)}</td><td class="num">{value:.2f}</td>'
        f'<td><div class="bar" style="width:{max(1.0, 300 * value):.0f}px"></div></td></tr>'
        for name, value in weights.items()
    )
    weighed = (
        f"<table><caption>Importance of each hyper-parameter for log {SORT_NAMES[metric]} "
        f"({html.escape(how)}, over the {len(rows)} jobs that ran their budget): the share "
        "of its variance each explains; with few jobs, a rough guide.</caption>"
        "<thead><tr><th>hyper-parameter</th><th class=num>importance</th><th></th></tr></thead>"
        f"<tbody>{bars}</tbody></table>"
        if weights
        else f"<p><small>Importance: {html.escape(how)}.</small></p>"
    )
    payload = json.dumps(data, allow_nan=False, default=str).replace("</", "<\\/")
    return (
        f'<h2 id="explore">Hyper-parameters against {html.escape(SORT_NAMES[metric])}</h2>'
        "<p>One axis per hyper-parameter that varies, and the metric last; one line per job, "
        "darker for a lower (better) metric. Drag along an axis to keep the jobs in that "
        "range (click the axis to clear); hover a line for its job.</p>"
        f'<div id="parcoords"></div><p id="parcoords-note"><small></small></p>{weighed}'
        f'<script type="application/json" id="parcoords-data">{payload}</script>'
        f"<script>{SCRIPT}</script>"
    )


# The plot's script and style, shipped beside this module (package data): inlined in the page
STYLE = (Path(__file__).parent / "parcoords.css").read_text(encoding="utf-8").strip()
SCRIPT = (
    (Path(__file__).parent / "parcoords.js").read_text(encoding="utf-8")
    .replace("__STYLE__", json.dumps(STYLE))
)  # fmt: skip
