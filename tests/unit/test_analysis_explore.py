"""The report's interactive view: its axes, the importance of each hyper-parameter, its size."""

from __future__ import annotations

import json
import re

import pytest

from analysis.collect import collect
from analysis.explore import axes, explore_html, importance
from analysis.tables import order_jobs
from tests.fixtures_analysis import job


def _sweep(tmp_path, n: int):
    sweep = tmp_path / "s"
    for i in range(n):
        lr = [0.1, 1.0, 10.0][i % 3]
        ppl = 300.0 - 50 * (i % 3) + (i % 7)  # the learning rate matters, the rest is noise
        job(sweep, i, "gru", "sgd", [ppl], optim={"lr": lr}, model={"dropout": 0.1 * (i % 2)})
    return order_jobs(collect([sweep]).jobs)


def test_one_axis_per_varying_hyperparameter_then_the_metric(tmp_path):
    ordered = _sweep(tmp_path, 12)
    plotted = axes(ordered, "best_val_ppl")
    assert [a.label for a in plotted] == ["IL", "Keep", "best validation perplexity"]
    assert [a.kind for a in plotted] == ["log", "linear", "log"]  # lr spans 100x: a log axis
    assert len(plotted[0].values) == 12


def test_the_importance_names_the_hyperparameter_that_matters(tmp_path):
    pytest.importorskip("optuna")
    ordered = _sweep(tmp_path, 30)
    weights, how, rows = importance(ordered, axes(ordered, "best_val_ppl"), "best_val_ppl")
    assert len(rows) == 30 and "Optuna" in how
    assert max(weights, key=weights.get) == "IL", weights
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-6)


def test_the_view_is_self_contained_and_small_for_500_jobs(tmp_path):
    ordered = _sweep(tmp_path, 500)
    page = explore_html(ordered, "best_val_ppl")
    data = re.search(r'id="parcoords-data">(.*?)</script>', page, re.S).group(1)
    assert len(json.loads(data)["jobs"]) == 500
    assert len(page.encode()) < 500_000  # the whole report stays far under 10 MB
    assert "src=" not in page and "https://" not in page  # nothing fetched


def test_too_few_jobs_get_no_view(tmp_path):
    assert explore_html(_sweep(tmp_path, 2), "best_val_ppl") == ""
