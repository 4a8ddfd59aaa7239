"""analysis.studies: CMU 10-601 HW7 §5's loss-vs-sequences, final-loss-vs-budget and
batch-time outputs.

Each sweep below differs in one setting, as CMU 10-601 HW7's studies do; the numbers checked are
worked out by hand from `tests.fixtures_analysis.study_job` (train loss ln(1.3 val), val loss
ln(val)).
"""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest
import yaml

from analysis.collect import collect
from analysis.report import build_report
from analysis.studies import (
    TRAIN_INTERVAL,
    batch_time_table,
    final_losses,
    final_value,
    interval_train_loss,
    loss_points,
    loss_vs_sequences_figure,
)
from analysis.tables import order_jobs, results_table
from tests.fixtures_analysis import job, study_job

WIDTHS = (64, 128, 256, 512)


def _report(sweep, out):
    written = build_report([sweep], out)
    return written, (out / "report.md").read_text(), (out / "report.html").read_text()


@pytest.fixture(scope="module")
def width_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("width")
    sweep = root / "width"
    for num, width in enumerate(WIDTHS):
        size = {"model.emb_size": width, "model.hidden_size": width}
        study_job(sweep, num, [400, 300, 250, 200 + width / 10], max_sequences=20000, extra=size)
    return sweep, *_report(sweep, root / "out")


def test_width_sweep_draws_loss_vs_sequences_and_the_pages_show_it(width_report) -> None:
    sweep, written, md, page = width_report
    out = written[0].parent
    for ext in ("png", "pdf"):
        assert (out / "figures" / f"loss-vs-sequences.{ext}") in written
        assert (out / "figures" / f"loss-vs-sequences.{ext}").stat().st_size > 1000
    assert "](figures/loss-vs-sequences.png)" in md and "## Loss vs sequences" in md
    assert '<figure id="loss-vs-sequences">' in page
    caption = re.search(r'id="loss-vs-sequences">.*?<figcaption>(.*?)</figcaption>', page, re.S)
    assert "#1, #2, #3, #4" in caption[1] and "sequences seen" in caption[1]
    # the budget does not vary: no final-loss figure; the batch size does not: no Table 4
    assert not (out / "figures" / "final-loss-vs-budget.png").exists()
    assert not (out / "batch_time.md").exists() and "**Table 4.**" not in md


def test_loss_points_are_sequences_seen_and_natural_log_losses(width_report) -> None:
    collection = collect([width_report[0]])
    curve = collection.curves["width/0-rnn_attn-adam"]
    xs, ys = loss_points(curve, "val_loss")
    assert xs.tolist() == [5000, 10000, 15000, 20000]
    assert ys == pytest.approx([5.991465, 5.703782, 5.521461, 5.329816])  # ln 400 300 250 206.4
    xs, ys = loss_points(curve, "train_loss")  # the running mean, as metrics.csv has it
    assert ys[0] == pytest.approx(6.253829)  # ln 520
    curve.loc[1, "val_loss"] = math.inf  # a diverged point is not drawn
    assert loss_points(curve, "val_loss")[0].tolist() == [5000, 15000, 20000]


def test_no_loss_vs_sequences_without_a_sequence_budget(tmp_path) -> None:
    sweep = tmp_path / "epochs"
    for num, width in enumerate(WIDTHS[:2]):
        study_job(sweep, num, [300, 200], max_sequences=None, extra={"model.hidden_size": width})
    old = job(sweep, 2, "gru", "adam", [300, 250])  # a job from before trainer.max_sequences:
    config = old / ".hydra" / "config.yaml"
    data = yaml.safe_load(config.read_text())
    del data["trainer"]["max_sequences"]
    config.write_text(yaml.safe_dump(data))
    written, md, _ = _report(sweep, tmp_path / "out")
    assert not [p for p in written if "sequences" in p.name or "budget" in p.name]
    assert "loss-vs-sequences" not in md and "## Loss vs sequences" not in md
    assert math.isnan(
        collect([sweep]).jobs.set_index("job_id").loc["epochs/2-gru-adam"].max_sequences
    )


def test_jobs_without_a_budget_are_left_out_of_loss_vs_sequences(tmp_path) -> None:
    sweep = tmp_path / "s"
    study_job(sweep, 0, [300, 200], max_sequences=10000)
    study_job(sweep, 1, [300, 200], max_sequences=None, extra={"seed": 7})
    collection = collect([sweep])
    figure = loss_vs_sequences_figure(
        order_jobs(collection.jobs), collection.curves, tmp_path / "f"
    )
    assert figure is not None and figure.png.is_file()
    assert "(#1)" in figure.caption
    assert "without a sequence budget are left out: #2" in figure.caption


@pytest.fixture(scope="module")
def batch_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    sweep = root / "batch"
    # job number order differs from batch order; the lr of the batch-32 job sorts it last in
    # the results table, so only the table's own sort puts it first
    for num, (batch, lr, seconds, vals) in enumerate(
        [
            (128, 0.001, 8.0, [400, 300, 260, 240]),
            (32, 0.002, 20.0, [400, 300, 250, 200]),
            (256, 0.001, 5.5, [400, 320, 280, 270]),
            (64, 0.001, 12.0, [400, 300, 240, 220]),
        ]
    ):
        setting = {"data.batch_size": batch, "optim.lr": lr}
        study_job(sweep, num, vals, max_sequences=50000, seconds_per_point=seconds, extra=setting)
    return sweep, *_report(sweep, root / "out")


def test_batch_time_table_is_sorted_by_batch_size_with_times_and_final_losses(
    batch_report,
) -> None:
    sweep, written, md, page = batch_report
    out = written[0].parent
    assert [out / f"batch_time.{ext}" for ext in ("md", "tex", "csv")] == [
        p for p in written if p.stem == "batch_time"
    ]
    csv = pd.read_csv(out / "batch_time.csv")
    assert csv["batch_size"].tolist() == [32, 64, 128, 256]
    assert csv["exp"].tolist() == [4, 1, 2, 3]  # #4: lr 0.002 sorts after the others
    # last metrics row's wall time: 4 points x seconds_per_point (summary.json says 2 s more)
    assert csv["wall_time_s"].tolist() == [80.0, 48.0, 32.0, 22.0]
    assert csv["final_val_loss"].tolist() == pytest.approx([5.298317, 5.393628, 5.480639, 5.598422])
    assert csv["final_train_loss"].tolist() == pytest.approx(
        # the last quarter's mean: 4 ln(1.3 v4) - 3 ln(1.3 v3), the running means being ln(1.3 v)
        [4.891251, 5.394958, 5.502875, 5.751683]
    )
    table = md[md.index("**Table 4.**") :]
    rows = [line.split("|")[1:-1] for line in table.splitlines() if line.startswith("| ")]
    cells = [[c.strip() for c in row] for row in rows]
    assert cells[0] == ["#", "BS", "IL", "Time (s)", "Train loss", "Val loss", "Status"]
    assert cells[1] == ["4", "32", "0.002", "80.0", "4.891", "5.298", "completed"]
    assert [row[1] for row in cells[1:]] == ["32", "64", "128", "256"]
    assert '<table id="batch_time">' in page and "wall_time_s" in page
    assert "\\begin{tabular}" in (out / "batch_time.tex").read_text()


def test_batch_time_table_only_when_the_batch_size_varies(width_report) -> None:
    collection = collect([width_report[0]])
    assert batch_time_table(order_jobs(collection.jobs), collection.curves) is None


def test_a_job_without_metrics_rows_keeps_its_row_with_the_summary_time(tmp_path) -> None:
    sweep = tmp_path / "s"
    study_job(sweep, 0, [300], max_sequences=1000, extra={"data.batch_size": 64})
    empty = study_job(sweep, 1, [300], max_sequences=1000, extra={"data.batch_size": 16})
    header = (empty / "metrics.csv").read_text().splitlines()[0]
    (empty / "metrics.csv").write_text(header + "\n")  # killed before its first evaluation
    collection = collect([sweep])
    table = batch_time_table(order_jobs(collection.jobs), collection.curves)
    assert table.raw["batch_size"].tolist() == [16, 64]
    assert table.raw["wall_time_s"].tolist() == [12.0, 10.0]  # summary.json, then the CSV
    assert table.headers[3:5] == ["Train loss", "Val loss"]
    assert table.cells[0][3:5] == ["—", "—"]


BUDGETS = (10000, 20000, 50000, 100000)


@pytest.fixture(scope="module")
def budget_sweep(tmp_path_factory):
    sweep = tmp_path_factory.mktemp("budget") / "budget"
    for num, (budget, last) in enumerate(zip(BUDGETS, (300, 250, 200, 150), strict=True)):
        study_job(sweep, num, [400, last], max_sequences=budget)
    study_job(sweep, 4, [390], max_sequences=200000, status="running")  # killed or still going
    return sweep


def test_final_losses_are_the_last_rows_of_completed_jobs_by_budget(budget_sweep) -> None:
    collection = collect([budget_sweep])
    points = final_losses(order_jobs(collection.jobs), collection.curves)
    assert points["max_sequences"].tolist() == list(BUDGETS)  # the running job is left out
    assert points["val_loss"].tolist() == pytest.approx([5.703782, 5.521461, 5.298317, 5.010635])
    assert points["train_loss"].tolist() == pytest.approx(
        # the second half's mean: 2 ln(1.3 last) - ln(1.3 x 400)
        [5.678465, 5.313822, 4.867534, 4.292170]
    )
    assert points["setting"].nunique() == 1 and points["setting"][0] == "RNN+Attn Adam"


def test_budget_sweep_report_has_the_final_loss_figure(budget_sweep, tmp_path) -> None:
    written, md, page = _report(budget_sweep, tmp_path / "out")
    figures = tmp_path / "out" / "figures"
    assert figures / "final-loss-vs-budget.png" in written
    assert (figures / "final-loss-vs-budget.pdf").stat().st_size > 1000
    assert "](figures/final-loss-vs-budget.png)" in md
    assert "](figures/loss-vs-sequences.png)" in md  # every job has a budget
    caption = re.search(r'id="final-loss-vs-budget">.*?<figcaption>(.*?)</figcaption>', page, re.S)
    assert "#5 (running)" in caption[1] and "trainer.max_sequences" in caption[1]
    assert " MaxSeq |" in (tmp_path / "out" / "results.md").read_text()


def test_other_varying_settings_get_a_line_each(tmp_path) -> None:
    sweep = tmp_path / "s"
    for num, (budget, batch) in enumerate([(1000, 32), (2000, 32), (1000, 64), (2000, 64)]):
        setting = {"data.batch_size": batch}
        study_job(sweep, num, [300, 200 + num], max_sequences=budget, extra=setting)
    collection = collect([sweep])
    points = final_losses(order_jobs(collection.jobs), collection.curves)
    assert points["setting"].tolist() == ["RNN+Attn Adam BS=32"] * 2 + ["RNN+Attn Adam BS=64"] * 2
    assert points["val_loss"].tolist() == pytest.approx([math.log(v) for v in (200, 201, 202, 203)])


def test_results_table_shows_the_budget_only_when_it_varies(budget_sweep, width_report) -> None:
    assert "MaxSeq" in results_table(collect([budget_sweep]).jobs).headers
    assert "MaxSeq" not in results_table(collect([width_report[0]]).jobs).headers


def test_interval_training_loss_undoes_the_running_mean_and_restarts_each_epoch() -> None:
    # running means 4.0, 3.5 over epoch 0 (100 tokens each), then 3.0, 2.8 over epoch 1
    curve = pd.DataFrame(
        {"epoch": [0.5, 1.0, 1.5, 2.0], "tokens": [100, 200, 300, 400],
         "train_loss": [4.0, 3.5, 3.0, 2.8], "sequences": [10, 20, 30, 40]}
    )  # fmt: skip
    # (3.5 x 200 - 400) / 100 = 3.0; epoch 1: 3.0 x 100 / 100; (2.8 x 200 - 300) / 100 = 2.6
    assert interval_train_loss(curve).tolist() == pytest.approx([4.0, 3.0, 3.0, 2.6])
    xs, ys = loss_points(curve, TRAIN_INTERVAL)
    assert xs.tolist() == [10, 20, 30, 40] and ys[-1] == pytest.approx(2.6)
    assert final_value(curve, TRAIN_INTERVAL) == pytest.approx(2.6)
