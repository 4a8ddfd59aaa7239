"""The studies' own protocols, in real runs: what their documents specify, as lmexp runs it."""

from __future__ import annotations

import csv
import json
import math

import pytest

from tests.conftest import TINY_TEXT_GRU, run_module

pytestmark = pytest.mark.slow


def _train(run_dir, corpus, data_dir, *extra: str) -> None:
    args = [*TINY_TEXT_GRU, "trainer.max_epochs=null", f"data.root={corpus}"]
    done = run_module("lmexp.train", [*args, f"hydra.run.dir={run_dir}", *extra], data_dir)
    assert done.returncode == 0, done.stderr[-3000:]


def test_cmu_hw7s_protocol_ten_validations_and_a_per_sequence_loss(
    tmp_path, data_dir, small_corpus
):
    """Sentence batches, validated only at each tenth of the step budget (no epoch-end
    evaluation), trained on each sentence's mean loss: a real run, its metrics.csv read back."""
    run = tmp_path / "run"
    _train(
        run,
        small_corpus,
        data_dir,
        "data.mode=sentences",
        "trainer.max_steps=20",
        "trainer.eval_every=null",
        "trainer.eval_every_budget=0.1",
        "trainer.loss_average=sequence",
    )
    with (run / "metrics.csv").open() as f:
        steps = [int(row["step"]) for row in csv.DictReader(f)]
    assert steps == list(range(2, 21, 2))  # ten, at 10 %, 20 %, ... of 20 steps
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["stop_reason"] == "max_steps"


def test_ift6135s_text_protocol_scores_the_test_set_as_one_sequence(
    tmp_path, data_dir, small_corpus
):
    """trainer.test_whole: the best checkpoint on the test split as one stream (N = 1, every
    token after the first scored), beside the streams' figure; both in the summary and the
    report's table."""
    run = tmp_path / "run"
    _train(run, small_corpus, data_dir, "trainer.max_steps=30", "trainer.test_whole=true")
    summary = json.loads((run / "summary.json").read_text())
    streams, whole = summary["test_ppl"], summary["test_ppl_whole"]
    assert 1 < whole < 10_000 and whole != streams  # a different reading of the same text
    from lmexp.analysis.collect import collect
    from lmexp.analysis.tables import results_table

    table = results_table(collect([run]).jobs)
    assert "Test PPL (1 seq)" in table.headers


def test_the_ift6135_presets_ask_for_the_texts_test_protocol():
    import lmexp

    for preset in ("table1_gru_adam", "table2_transformer_1"):
        cfg = lmexp.compose([f"experiment=ift6135_a2/{preset}", "scale=cpu"])
        assert cfg.trainer.test_whole is True, preset


def test_zaremba_2014s_protocol_tests_the_model_as_training_left_it(
    tmp_path, data_dir, small_corpus
):
    """trainer.test_checkpoint=last: the test pass scores the final weights (what last.pt
    holds, and lmexp-evaluate --checkpoint last scores), not best.pt; the summary says so."""
    from lmexp.inspect.evaluate import main as evaluate_main

    run = tmp_path / "run"
    # a high learning rate, so the last evaluation is not the best: the two checkpoints differ
    _train(
        run,
        small_corpus,
        data_dir,
        "trainer.max_steps=30",
        "trainer.eval_every=0.05",
        "optim=adam",
        "optim.lr=0.3",
        "trainer.divergence_ppl=null",
        "trainer.test_checkpoint=last",
    )
    summary = json.loads((run / "summary.json").read_text())
    assert summary["test_checkpoint"] == "last"
    scores = {}
    for checkpoint in ("best", "last"):
        assert evaluate_main([str(run), "--checkpoint", checkpoint, "--pairs", "1"]) == 0
        scores[checkpoint] = json.loads(
            (run / "evaluation" / f"test_{checkpoint}.json").read_text()
        )["perplexity"]
    assert summary["test_ppl"] == pytest.approx(scores["last"], rel=1e-6)
    assert scores["best"] != pytest.approx(scores["last"], rel=1e-6)


def test_the_plateau_schedule_divides_after_each_epoch_that_did_not_improve(
    tmp_path, data_dir, small_corpus
):
    """schedule=plateau in a real run (pytorch/examples' rule): each epoch's lr in metrics.csv
    follows from the epoch-end validation perplexities before it. Adam at 0.02 overfits the
    small corpus within a few epochs, so some epochs do not improve and the rate falls."""
    run = tmp_path / "run"
    args = [
        *TINY_TEXT_GRU,
        f"data.root={small_corpus}",
        "trainer.max_epochs=5",
        "trainer.max_steps=null",
        "trainer.eval_every=0.5",
        "optim=adam",
        "optim.lr=0.02",
        "schedule=plateau",
        f"hydra.run.dir={run}",
    ]
    done = run_module("lmexp.train", args, data_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    with (run / "metrics.csv").open() as f:
        rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
    ends = [r["val_ppl"] for r in rows if r["epoch"] == round(r["epoch"])]
    assert len(ends) == 5
    best, lr, misses = float("inf"), [], 0
    for ppl in ends:  # the rate of the epoch after each end
        misses += ppl >= best
        best = min(best, ppl)
        lr.append(0.02 / 4**misses)
    for row in rows:
        epoch = math.ceil(row["epoch"]) - 1  # the epoch the row's evaluation closes or splits
        assert row["lr"] == pytest.approx(0.02 if epoch == 0 else lr[epoch - 1]), row
    assert misses >= 1  # the rule was exercised, not only read


def test_plateau_without_epoch_end_evaluations_is_refused_before_training(data_dir) -> None:
    done = run_module(
        "lmexp.train",
        ["schedule=plateau", "trainer.eval_every=null", "trainer.eval_every_budget=0.1"],
        data_dir,
    )
    assert done.returncode == 2
    assert "schedule=plateau decides each epoch's rate" in done.stderr
