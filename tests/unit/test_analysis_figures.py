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


def test_log_ticks_label_a_narrow_range_and_the_bottom_of_the_axis() -> None:
    from analysis.figures import log_ticks

    assert log_ticks(835, 1653) == [900, 1000, 1200, 1500]  # not only 900 and 1,000
    assert log_ticks(84.3, 400) == [85, 100, 150, 200, 300]  # the curve's minimum is labelled
    assert log_ticks(80, 5000) == [80, 100, 200, 500, 1000, 2000, 5000]
    assert log_ticks(141, 150) == [142.5, 145, 147.5, 150]  # evenly spaced when no round ones
    assert log_ticks(0, 10) == [] and log_ticks(5, 5) == []


def test_the_first_architectures_colours_are_far_apart() -> None:
    from itertools import combinations

    from analysis.style import ARCH_PALETTE

    def rgb(colour: str) -> tuple[int, ...]:
        return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))

    first = [rgb(c) for c in ARCH_PALETTE[:5]]  # rnn, gru, lstm, transformer, rnn_attn
    distances = [math.dist(a, b) for a, b in combinations(first, 2)]
    closest = min(distances)
    assert closest > 70  # RGB distance; seaborn colorblind gave GRU and Transformer 50
