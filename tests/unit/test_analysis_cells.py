"""Cells of a sweep with repeats: grouped by recorded cell, counted honestly, compared, tabled."""

from __future__ import annotations

import math

import pytest

from analysis.cells import cell_table, compare_cells, has_repeats, pairs_table
from analysis.collect import collect
from analysis.report import build_report
from tests.fixtures_analysis import job


def _cell(sweep, start: int, arch: str, opt: str, finals: list[float], **kw) -> None:
    """One cell: a job per seed (1, 2, ...) whose best validation perplexity is `finals[k]`
    (test = 0.95 x it, fixtures_analysis)."""
    for k, final in enumerate(finals):
        seed = k + 1
        job(
            sweep,
            start + k,
            arch,
            opt,
            [final * 2, final],
            extra={"seed": seed},
            summary_fields={"seed": seed, "git_commit": kw.get("commits", ["abc"] * 9)[k]},
            optim=kw.get("optim", {}),
        )


@pytest.fixture
def sweep(tmp_path):
    """GRU/Adam clearly best; LSTM/Adam close to it; RNN/SGD far worse; one RNN/SGD diverged."""
    root = tmp_path / "sweep"
    _cell(root, 0, "gru", "adam", [100.0, 102.0, 101.0])
    _cell(root, 3, "lstm", "adam", [101.0, 104.0, 103.0], commits=["abc", "abc", "def"])
    _cell(root, 6, "rnn", "sgd", [150.0, 160.0, 155.0])
    job(
        root, 9, "rnn", "sgd", [300.0, math.inf], extra={"seed": 4},
        summary_fields={"seed": 4, "status": "diverged", "test_ppl": None},
    )  # fmt: skip
    return root


def test_cells_pool_the_seeds_and_count_what_they_leave_out(sweep) -> None:
    jobs = collect([sweep]).jobs
    assert has_repeats(jobs) and jobs["cell"].nunique() == 3
    study = compare_cells(jobs, metric="best_val_ppl")
    frame = study.frame
    assert list(frame["label"]) == ["GRU Adam", "LSTM Adam", "RNN SGD"]  # sorted by the mean
    gru = frame.iloc[0]
    assert gru["best_val_ppl_n"] == 3 and gru["best_val_ppl_mean"] == pytest.approx(101.0)
    # sd 1, t(0.975, 2) = 4.302653: half-width 2.484
    assert gru["best_val_ppl_high"] - 101.0 == pytest.approx(2.484137, abs=1e-5)
    rnn = frame.iloc[2]
    assert rnn["best_val_ppl_n"] == 3 and rnn["not_counted"] == {"diverged": 1}
    assert any("RNN SGD: 1 diverged (not in its statistics)" in n for n in study.notes)
    assert any("LSTM Adam: its runs come from 2 code versions" in n for n in study.notes)


def test_pairs_are_tested_and_lettered_and_summed_up(sweep) -> None:
    study = compare_cells(collect([sweep]).jobs, metric="best_val_ppl")
    assert dict(zip(study.frame["label"], study.frame["group"], strict=True)) == {
        "GRU Adam": "a",
        "LSTM Adam": "a",
        "RNN SGD": "b",
    }
    # GRU and LSTM draw different weights from a seed: Welch; nothing here shares one
    assert set(study.pairs["test"]) == {"Welch t"}
    assert study.sentence == (
        "GRU Adam has the lowest mean Val PPL; LSTM Adam is not distinguishable from it; "
        "RNN SGD is worse (p < 0.01 after Holm, alpha = 0.05)."
    )
    table = cell_table(study)
    assert table.headers[:5] == ["#", "Model", "Optim", "n", "Test PPL"]
    row = dict(zip(table.headers, table.cells[2], strict=True))
    assert row["n"] == "3 (+1 not counted)" and row["Val PPL"] == "155.0 ± 12.4"
    assert row["Group"] == "b" and (0, table.headers.index("Val PPL")) in table.bold
    assert len(pairs_table(study).cells) == 3


def test_an_lr_grid_pairs_its_cells_by_seed(tmp_path) -> None:
    """Same architecture, data and seeds, another learning rate: the same initial weights per
    seed, so the paired test, which sees a consistent shift that Welch's would not."""
    root = tmp_path / "lr"
    _cell(root, 0, "gru", "adam", [100.0, 110.0, 120.0], optim={"lr": 0.001})
    _cell(root, 3, "gru", "adam", [101.0, 111.5, 121.0], optim={"lr": 0.002})
    study = compare_cells(collect([root]).jobs, metric="best_val_ppl")
    (pair,) = study.pairs.itertuples()
    assert pair.test == "paired t" and pair.p < 0.05
    welch = compare_cells(collect([root]).jobs, metric="best_val_ppl", test="welch")
    assert welch.pairs["p"].iloc[0] > 0.5


def test_the_log_scale_shows_geometric_means_and_intervals(sweep) -> None:
    study = compare_cells(collect([sweep]).jobs, metric="best_val_ppl", scale="log")
    gru = study.frame.iloc[0]
    assert gru["best_val_ppl_mean"] == pytest.approx((100.0 * 102.0 * 101.0) ** (1 / 3))
    text = dict(zip(cell_table(study).headers, cell_table(study).cells[0], strict=True))
    assert text["Val PPL"].startswith("101.0 [") and "±" not in text["Val PPL"]


def test_one_seed_a_cell_is_no_repeat_and_a_lone_best_is_not_tested(tmp_path) -> None:
    root = tmp_path / "single"
    job(root, 0, "gru", "adam", [200.0, 100.0])
    job(root, 1, "lstm", "adam", [200.0, 120.0])
    jobs = collect([root]).jobs
    assert not has_repeats(jobs)
    study = compare_cells(jobs, metric="best_val_ppl")
    assert study.sentence.endswith("no difference can be tested (run seeds=3 or more).")


def test_the_report_leads_with_the_cells_and_keeps_every_seed(sweep, tmp_path) -> None:
    out = tmp_path / "report"
    build_report([sweep], out)
    assert (out / "cells.csv").is_file() and (out / "pairs.csv").is_file()
    assert (out / "figures" / "cells-val-ppl.png").is_file()
    page = (out / "report.md").read_text()
    assert page.index("**Table 1.** Cells") < page.index("**Table 3.** Train and validation")
    assert page.count("| completed |") + page.count("completed") >= 9  # per-seed rows stay
