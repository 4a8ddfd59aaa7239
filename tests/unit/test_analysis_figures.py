"""analysis.figures: every figure is written as a valid PNG and PDF, with a fixed visual code."""

from __future__ import annotations

import math

import pytest

from analysis import style
from analysis.collect import collect
from analysis.figures import make_figures
from analysis.tables import order_jobs
from lmexp.models import display, names
from lmexp.training import optim as optimizers
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
    drawn = {j for f in figs if f.kind == "experiment" for j in f.job_ids}
    assert drawn == set(plotted["job_id"])
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
    # an optimizer's line style follows its registry rank the same way
    dashes = [style.optim_dash({"optim": o, **optimizers.display(o)}) for o in optimizers.names()]
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


def test_a_sweep_of_many_jobs_gets_pages_of_small_multiples(tmp_path) -> None:
    from analysis.figures import GRID_COLUMNS, GRID_ROWS, MAX_EXPERIMENT_FIGURES

    n = MAX_EXPERIMENT_FIGURES + 8  # e.g. a 20-trial search: 20 jobs of one architecture
    for k in range(n):
        job(tmp_path / "s", k, "gru", "adam", [400.0 - k, 300.0 - k], optim={"lr": 1e-3 * (k + 1)})
    collection = collect([tmp_path / "s"])
    ordered = order_jobs(collection.jobs)
    figs = make_figures(ordered, collection.curves, tmp_path / "f")
    pages = [f for f in figs if f.kind == "experiment"]
    per_page = GRID_COLUMNS * GRID_ROWS
    assert [len(p.job_ids) for p in pages] == [per_page, n - per_page]
    assert {j for p in pages for j in p.job_ids} == set(ordered["job_id"])
    assert (
        pages[0].name == f"experiments-01-{per_page:02d}" and "one panel each" in pages[0].caption
    )
    (arch,) = [f for f in figs if f.kind == "architecture"]
    assert f"The 12 best of its {n} experiments are drawn" in arch.caption
    assert "#1," not in arch.caption.split("(")[1]  # the worst (#1: ppl 300) is left out


def test_the_legend_fits_inside_the_canvas_whatever_its_labels() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from analysis.figures import _new_figure, legend_below

    fig, axes = _new_figure(11, 4.0)
    for k in range(7):
        label = f"#{k} GRU SGD-LR-SC IL=10 BS=20 HS=150 NL=2 Keep=0.35 SL=35 decay=0.5 seed={k}"
        axes[0].plot([0, 1], [k + 1, k + 2], label=label)
    legend_below(fig, axes)
    FigureCanvasAgg(fig).draw()
    box, canvas = fig.legends[0].get_window_extent(), fig.bbox
    assert canvas.x0 <= box.x0 and box.x1 <= canvas.x1 and canvas.y0 <= box.y0, (box, canvas)
    panels = axes[0].get_window_extent()
    assert box.y1 < panels.y0  # below the panels, not over them


def test_a_single_evaluation_is_labelled_a_point() -> None:
    import pandas as pd

    from analysis.figures import _single_points

    curves = {"a": pd.DataFrame({"epoch": [1.0], "val_ppl": [300.0]})}
    curves["b"] = pd.DataFrame({"epoch": [0.5, 1.0], "val_ppl": [400.0, 300.0]})
    rows = pd.DataFrame({"job_id": ["a", "b"], "exp": [1, 2]})
    assert _single_points(curves, rows) == ["#1"]


def test_the_wall_clock_note_names_jobs_that_shared_or_waited_for_the_machine() -> None:
    import pandas as pd

    from analysis.figures import concurrent_jobs, wall_clock_note

    jobs = pd.DataFrame(
        {
            "job_id": ["a", "b", "c", "d", "e"],
            "exp": [1, 2, 3, 4, 5],
            "host": ["h", "h", "h", "h", "other"],
            "started_at": [
                "2026-12-03T10:00:00+00:00",
                "2026-12-03T10:05:00+00:00",
                "2026-12-03T10:07:00+00:00",
                "2026-12-03T10:20:00+00:00",
                "2026-12-03T10:00:00+00:00",
            ],  # fmt: skip
            "ended_at": [
                "2026-12-03T10:10:00+00:00",
                "2026-12-03T10:15:00+00:00",
                "2026-12-03T10:08:00+00:00",
                "2026-12-03T10:30:00+00:00",
                "2026-12-03T10:30:00+00:00",
            ],  # fmt: skip
            "cpu_count": [2.0, 2.0, 2.0, 2.0, 2.0],
            "load_1m": [2.1, 2.0, 3.0, 3.9, float("nan")],
        }
    )
    together = concurrent_jobs(jobs)
    # a and b overlap, and c runs inside both: 3 at once; d ran alone; e on another host
    assert together == {"a": 3, "b": 3, "c": 3, "d": 1, "e": 1}
    note = wall_clock_note(jobs, together)
    assert "#1, #2, #3 ran at the same time as other jobs (up to 3 at once)" in note
    assert "#4 (load 3.9 on 2 cores) ran on a busy machine" in note
    assert wall_clock_note(jobs.iloc[[4]], together) == ""  # alone, load unknown: nothing said


def _tick_label_boxes(fig, gap_px: float) -> list:
    """Each visible x tick label's box, widened by half of `gap_px` on each side."""
    renderer = fig.canvas.get_renderer()
    boxes = []
    for ax in fig.axes:
        low, high = ax.get_xlim()
        for tick in ax.xaxis.get_major_ticks():  # those matplotlib draws: inside the view
            x, label = tick.get_loc(), tick.label1
            inside = low - 1e-3 * (high - low) <= x <= high + 1e-3 * (high - low)
            if inside and label.get_visible() and label.get_text():
                boxes.append(label.get_window_extent(renderer).padded(gap_px / 2))
    return boxes


@pytest.mark.parametrize("jobs", [4, 20])  # one figure per job; pages of small multiples
def test_x_tick_labels_of_single_point_jobs_never_overlap(tmp_path, monkeypatch, jobs) -> None:
    """Within a panel and between panels side by side (a lone point, any epoch): at least
    the width of a space (4 px at the figures' DPI) apart."""
    import analysis.figures as figures_module

    clashes, measured = [], []
    save = figures_module._save

    def measure_then_save(fig, out_dir, name):  # _save clears the figure: measure it first
        fig.draw_without_rendering()
        boxes = _tick_label_boxes(fig, gap_px=4)
        measured.append(len(boxes))
        clashes.extend(
            (name, a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :] if a.overlaps(b)
        )
        return save(fig, out_dir, name)

    monkeypatch.setattr(figures_module, "_save", measure_then_save)
    arch = names()
    for i in range(jobs):
        path = job(tmp_path / "s", i, arch[i % len(arch)], "sgd", [300.0 + 9 * i])
        rows = (path / "metrics.csv").read_text().splitlines()
        header, row = rows[0].split(","), rows[1].split(",")
        row[header.index("epoch")] = str([0.25, 0.3, 0.943, 1.0, 7.0][i % 5])
        (path / "metrics.csv").write_text(f"{rows[0]}\n{','.join(row)}\n")
    collection = collect([tmp_path / "s"])
    make_figures(order_jobs(collection.jobs), collection.curves, tmp_path / "out")
    assert measured and min(measured) > 0
    assert not clashes, clashes[:3]
