"""analysis.figures: every figure is written as a valid PNG and PDF, with a fixed visual code."""

from __future__ import annotations

import math

import pytest

from analysis import style
from analysis.collect import collect
from analysis.figures import make_figures
from analysis.tables import order_jobs
from lmexp.models import display, names
from tests.fixtures_analysis import job, mixed_sweep


@pytest.fixture(scope="module")
def figures(tmp_path_factory):
    root = tmp_path_factory.mktemp("figs")
    collection = collect([mixed_sweep(root)])
    ordered = order_jobs(collection.jobs)
    return ordered, make_figures(ordered, collection.curves, root / "out" / "figures")


def test_every_figure_is_a_valid_png_and_pdf(figures) -> None:
    _, figs = figures
    for fig in figs:
        png, pdf = fig.paths
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        assert pdf.read_bytes()[:5] == b"%PDF-", pdf
        assert fig.caption and fig.title


def test_one_figure_per_plotted_job_optimizer_architecture_and_an_overview(figures) -> None:
    ordered, figs = figures
    kinds = [f.kind for f in figs]
    plotted = ordered[ordered["n_points"] > 0]  # the failed job has no rows: no figure
    assert kinds.count("experiment") == len(plotted) == 9
    assert {f.job_id for f in figs if f.kind == "experiment"} == set(plotted["job_id"])
    assert kinds.count("optimizer") == 3 and kinds.count("architecture") == 4
    assert kinds.count("overview") == 1
    names = {f.name for f in figs}
    assert {"exp01-rnn-sgd", "optim-sgd_schedule", "arch-transformer", "overview"} <= names


def test_captions_say_what_is_drawn(figures) -> None:
    _, figs = figures
    by_name = {f.name: f for f in figs}
    assert "epochs" in by_name["exp01-rnn-sgd"].caption
    assert "wall-clock" in by_name["exp01-rnn-sgd"].caption
    assert "#8" in by_name["arch-lstm"].caption and "Not drawn" in by_name["arch-lstm"].caption
    assert "minimum" in by_name["overview"].caption


def test_single_point_curve_is_drawn(tmp_path) -> None:
    job(tmp_path / "s", 0, "gru", "adam", [300.0])
    collection = collect([tmp_path / "s"])
    figs = make_figures(order_jobs(collection.jobs), collection.curves, tmp_path / "f")
    assert figs[0].kind == "experiment" and figs[0].png.stat().st_size > 1000


def test_colours_and_dashes_are_fixed_by_name_not_position() -> None:
    # an architecture's colour follows its registry rank, which its jobs record
    colors = [style.arch_color({"model": m, **display(m)}) for m in names()]
    assert len(set(colors)) == len(colors)
    gru = {"model": "gru", **display("gru")}
    assert style.arch_color(gru) == style.ARCH_PALETTE[names().index("gru")]
    mamba = {"model": "mamba", "model_rank": math.inf}
    assert style.arch_color(mamba) == style.arch_color(mamba)  # stable for unknown names
    dashes = [style.optim_dash(o) for o in style.OPTIM_ORDER]
    assert len(set(dashes)) == len(dashes)
    assert style.job_marker(1) == style.job_marker(1 + len(style.MARKERS))
