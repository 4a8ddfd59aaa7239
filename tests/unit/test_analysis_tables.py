"""analysis.tables: order, numbering, one bold per architecture, shown columns, LaTeX shape."""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest

from analysis.collect import collect
from analysis.formats import latex_escape, to_html, to_latex, to_markdown, write_table
from analysis.tables import commands_table, order_jobs, results_table
from tests.fixtures_analysis import job, mixed_sweep


@pytest.fixture
def jobs(tmp_path) -> pd.DataFrame:
    return collect([mixed_sweep(tmp_path)]).jobs


def test_sorted_by_architecture_then_optimizer_and_numbered(jobs) -> None:
    ordered = order_jobs(jobs)
    pairs = list(zip(ordered["model"], ordered["optim"], strict=True))
    assert pairs == [
        ("rnn", "sgd"), ("rnn", "sgd_schedule"), ("rnn", "adam"),
        ("gru", "sgd"), ("gru", "sgd"), ("gru", "adam"),
        ("lstm", "sgd"), ("lstm", "adam"),
        ("transformer", "sgd"), ("transformer", "adam"),
    ]  # fmt: skip
    assert ordered["exp"].tolist() == list(range(1, 11))


def test_sorted_by_a_metric_best_first_pruned_after_and_the_best_named(tmp_path) -> None:
    sweep = tmp_path / "s"
    job(sweep, 0, "gru", "sgd", [300], optim={"lr": 20.0})
    job(sweep, 1, "lstm", "sgd", [250], optim={"lr": 1.0})
    job(sweep, 2, "gru", "sgd", [200], optim={"lr": 5.0}, summary_fields={"status": "pruned"})
    job(sweep, 3, "rnn", "adam", [math.inf])
    table = results_table(collect([sweep]).jobs, sort="best_val_ppl")
    names = table.raw["job_id"].str.split("/").str[1].tolist()
    assert names == ["1-lstm-sgd", "0-gru-sgd", "2-gru-sgd", "3-rnn-adam"]
    assert "sorted by best validation perplexity, best first" in table.caption
    assert table.caption.endswith(
        "Best by best validation perplexity: #1 LSTM SGD IL=1 (250.0); #2 GRU SGD IL=20 (300.0)."
    )


def test_other_hyperparameters_break_ties_and_unknown_names_go_last(tmp_path) -> None:
    sweep = tmp_path / "s"
    job(sweep, 0, "gru", "sgd", [300], optim={"lr": 20.0})
    job(sweep, 1, "gru", "sgd", [300], optim={"lr": 1.0})
    job(sweep, 2, "mamba", "sgd", [300])
    job(sweep, 3, "gru", "lion", [300])
    job(sweep, 4, "gru", "sgd", [300], optim={"lr": 1.0}, model={"hidden_size": 100})
    ordered = order_jobs(collect([sweep]).jobs)
    assert ordered["job_id"].str.split("/").str[1].tolist() == [
        "4-gru-sgd", "1-gru-sgd", "0-gru-sgd", "3-gru-lion", "2-mamba-sgd",
    ]  # fmt: skip


def test_exactly_one_bold_per_architecture_at_its_minimum(jobs) -> None:
    ordered = order_jobs(jobs)
    best = ordered[ordered["best"]]
    assert sorted(best["model"]) == ["gru", "lstm", "rnn", "transformer"]
    for model, group in ordered.groupby("model"):
        finite = group[group["best_val_ppl"].map(math.isfinite)]
        bold = best.loc[best["model"] == model, "best_val_ppl"].item()
        assert bold == finite["best_val_ppl"].min()
    table = results_table(jobs)
    assert to_markdown(table).count("**") == 2 * 4
    assert to_latex(table).count("\\textbf{") == 4
    assert {row for row, _ in table.bold} == set(best.index)


def test_architecture_without_a_finite_result_has_no_bold(tmp_path) -> None:
    job(tmp_path / "s", 0, "rnn", "sgd", [math.inf])
    job(tmp_path / "s", 1, "gru", "sgd", [300.0])
    ordered = order_jobs(collect([tmp_path]).jobs)
    assert ordered.set_index("model")["best"].to_dict() == {"rnn": False, "gru": True}


def test_seed_columns_always_and_other_columns_only_when_they_vary(jobs, tmp_path) -> None:
    headers = results_table(jobs).headers
    for column in (
        "#",
        "Model",
        "Optim",
        "IL",
        "BS",
        "SL",
        "HS",
        "NL",
        "Keep",
        "Train PPL",
        "Val PPL",
        "Test PPL",
        "Params",
        "Epochs",
        "Status",
    ):
        assert column in headers
    assert headers.index("Model") < headers.index("Optim") < headers.index("Val PPL")
    assert not {"ES", "Seed", "Heads", "Clip"} & set(headers)  # heads: transformers agree
    sweep = tmp_path / "varied"
    job(sweep, 0, "rnn", "sgd", [300], model={"emb_size": 100}, extra={"seed": 1})
    job(sweep, 1, "rnn", "sgd", [300], model={"emb_size": 200}, extra={"seed": 2})
    varied = results_table(collect([sweep]).jobs)
    assert {"ES", "Seed"} <= set(varied.headers) and "Heads" not in varied.headers


def test_test_column_only_when_some_job_has_a_test_ppl(tmp_path) -> None:
    job(tmp_path / "s", 0, "rnn", "sgd", [300], summary_fields={"test_ppl": None})
    assert "Test PPL" not in results_table(collect([tmp_path]).jobs).headers


def test_the_caption_says_which_model_each_test_scored(tmp_path) -> None:
    """trainer.test_checkpoint=last (Zaremba et al.'s protocol) tests the final model, not
    Val PPL's checkpoint: the caption says so, per job where a table mixes the two."""
    last = {"test_ppl": 120.0, "test_checkpoint": "last"}
    job(tmp_path / "a", 0, "rnn", "sgd", [300], summary_fields={"test_ppl": 310.0})
    job(tmp_path / "a", 1, "gru", "sgd", [200], summary_fields=last)
    mixed = results_table(collect([tmp_path / "a"]).jobs).caption
    assert "Test PPL: test perplexity of Val PPL's checkpoint, except #2: of the model as " \
        "training left it (trainer.test_checkpoint=last)" in mixed  # fmt: skip
    job(tmp_path / "b", 0, "gru", "sgd", [200], summary_fields=last)
    alone = results_table(collect([tmp_path / "b"]).jobs).caption
    assert "Test PPL: test perplexity of the model as training left it " \
        "(trainer.test_checkpoint=last), not of Val PPL's checkpoint" in alone  # fmt: skip
    job(tmp_path / "c", 0, "gru", "sgd", [200], summary_fields={"test_ppl": 190.0})
    best = results_table(collect([tmp_path / "c"]).jobs).caption
    assert "Test PPL: test perplexity of that checkpoint;" in best


def test_latex_has_booktabs_and_caption_above_explaining_abbreviations(jobs) -> None:
    table = results_table(jobs)
    tex = to_latex(table)
    order = [
        tex.index(s)
        for s in (
            "\\caption{",
            "\\begin{tabular}",
            "\\toprule",
            "\\midrule",
            "\\bottomrule",
            "\\end{tabular}",
        )
    ]
    assert order == sorted(order)
    caption = re.search(r"\\caption\{(.*)\}\n", tex)[1]
    for header in ("IL", "BS", "SL", "HS", "NL", "Keep", "Train PPL", "Val PPL", "SGD-LR-SC"):
        assert f"{header}:" in caption
    assert tex.count(" \\\\\n") == len(table.cells) + 1  # header + one line per job


def test_latex_escapes_special_characters(jobs) -> None:
    assert latex_escape("a_b & 50% #1 {x} ~ ^") == (
        r"a\_b \& 50\% \#1 \{x\} \textasciitilde{} \textasciicircum{}"
    )
    tex = to_latex(commands_table(jobs))
    assert "sweep/0-rnn-sgd" in tex and "sgd\\_schedule" in tex


def test_failed_diverged_and_unknown_jobs_stay_in_the_table(jobs) -> None:
    table = results_table(jobs)
    statuses = [row[table.headers.index("Status")] for row in table.cells]
    assert {"failed", "diverged", "unknown", "completed"} == set(statuses)
    failed = table.cells[statuses.index("failed")]
    assert failed[table.headers.index("Val PPL")] == "inf"
    assert failed[table.headers.index("Train PPL")] == "—"


def test_files_written_with_raw_numbers_and_a_bool_best_column(jobs, tmp_path) -> None:
    paths = write_table(results_table(jobs), tmp_path / "out", 1)
    assert [p.name for p in paths] == ["results.md", "results.tex", "results.csv"]
    csv = pd.read_csv(paths[2])
    assert csv["best"].dtype == bool and csv["best"].sum() == 4
    assert csv["exp"].tolist() == list(range(1, 11))
    assert csv.loc[csv["best"], "best_val_ppl"].sort_values().tolist() == [100, 110, 120, 150]
    assert paths[0].read_text().startswith("**Table 1.** ")


def test_commands_table_maps_numbers_to_commands(jobs) -> None:
    table = commands_table(jobs)
    assert table.headers == ["#", "Job", "Command"]
    assert table.cells[0] == ["1", "sweep/0-rnn-sgd", "python -m lmexp.train model=rnn optim=sgd"]


def test_commands_are_typeset_as_code_in_every_format(jobs) -> None:
    table = commands_table(jobs)
    assert "| `python -m lmexp.train model=rnn optim=sgd` " in to_markdown(table)
    assert "<td><code>python -m lmexp.train model=rnn optim=sgd</code></td>" in to_html(table)
    assert ">{\\ttfamily\\raggedright\\arraybackslash}p{0.6\\linewidth}" in to_latex(table)
