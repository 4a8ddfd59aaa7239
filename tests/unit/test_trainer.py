"""Budgets, evaluation cadence, and that a tiny model learns and is deterministic."""

from __future__ import annotations

import math

import pytest
import torch

from lmexp.data import batchify
from lmexp.models import build_model, model_config, model_config_from_dict
from lmexp.training.budget import Budget, budget_points, eval_points
from lmexp.training.schema import TrainerConfig
from lmexp.training.trainer import Trainer


def test_budget_first_limit_wins() -> None:
    cfg = TrainerConfig(max_epochs=2.0, max_steps=150, max_tokens=None, max_minutes=None)
    budget = Budget.from_config(cfg, steps_per_epoch=100)
    assert budget.max_steps == 150
    assert budget.reached(149, 0, 0.0) is None and budget.reached(150, 0, 0.0) == "max_steps"
    cfg = TrainerConfig(max_epochs=0.5, max_tokens=1000, max_minutes=1.0)
    budget = Budget.from_config(cfg, steps_per_epoch=100)
    assert budget.max_steps == 50
    assert budget.reached(10, 1000, 0.0) == "max_tokens"
    assert budget.reached(10, 0, 60.0) == "max_minutes"


def test_the_budget_that_set_the_step_cap_is_named() -> None:
    """A job that ran its epochs stopped for `max_epochs`, not for a step budget it never had."""
    by_epochs = Budget.from_config(TrainerConfig(max_epochs=2.0), steps_per_epoch=100)
    assert by_epochs.reached(200, 0, 0.0) == "max_epochs"
    cfg = TrainerConfig(max_epochs=None, max_sequences=40)
    assert Budget.from_config(cfg, steps_per_epoch=100, batch_size=4).reached(10, 0, 0.0) == (
        "max_sequences"
    )
    both = TrainerConfig(max_epochs=1.0, max_steps=100)  # a tie: the step budget was asked for
    assert Budget.from_config(both, steps_per_epoch=100).reached(100, 0, 0.0) == "max_steps"


def test_eval_points_cover_fractions_and_epoch_end() -> None:
    assert eval_points(100, 1.0) == {100}
    assert eval_points(100, 0.25) == {25, 50, 75, 100}
    assert eval_points(10, 0.3) == {3, 6, 9, 10}


def test_a_sequence_budget_is_a_step_cap_of_batch_size_sequences_per_step() -> None:
    cfg = TrainerConfig(max_epochs=None, max_sequences=1000)
    assert Budget.from_config(cfg, steps_per_epoch=100, batch_size=32).max_steps == 32  # ceil
    assert budget_points(50, 0.1) == {5, 10, 15, 20, 25, 30, 35, 40, 45, 50}
    assert budget_points(None, 0.1) == set() and budget_points(50, None) == set()


def test_evaluation_every_tenth_of_a_sequence_budget_across_epochs() -> None:
    # 4 streams: 4 sequences a step; 280 sequences = 70 steps = 2 epochs of 35 windows.
    cfg = TrainerConfig(
        max_epochs=None, max_sequences=280, eval_every=1.0, eval_every_budget=0.1, progress="off"
    )
    rows = _fit(0, cfg)
    assert [r["step"] for r in rows] == [7, 14, 21, 28, 35, 42, 49, 56, 63, 70]
    assert [r["sequences"] for r in rows] == [4 * r["step"] for r in rows]
    assert rows[-1]["sequences"] == 280


def test_cmu_hw7_validates_ten_times_in_all_not_also_at_epoch_ends() -> None:
    # 240 sequences = 60 steps; an epoch is 35: with epoch-end evaluations an 11th at step 35
    every_epoch = TrainerConfig(
        max_epochs=None, max_sequences=240, eval_every=1.0, eval_every_budget=0.1, progress="off"
    )
    assert 35 in [r["step"] for r in _fit(0, every_epoch)]
    budget_only = TrainerConfig(
        max_epochs=None, max_sequences=240, eval_every=None, eval_every_budget=0.1, progress="off"
    )
    assert [r["step"] for r in _fit(0, budget_only)] == list(range(6, 61, 6))
    with pytest.raises(ValueError, match="eval_every=null needs trainer.eval_every_budget"):
        TrainerConfig(max_steps=10, eval_every=None)


def test_the_sequence_average_weighs_each_row_once_whatever_its_length() -> None:
    from lmexp.training.trainer import sequence_averaged

    torch.manual_seed(0)
    logits = torch.randn(2, 4, 5)
    targets = torch.tensor([[1, 2, 3, 4], [0, 1, 0, 0]])
    mask = torch.tensor([[True, True, True, True], [True, True, False, False]])
    nll = torch.nn.functional.cross_entropy(
        logits.flatten(0, 1), targets.flatten(), reduction="none"
    )
    nll = nll.view(2, 4)
    row0, row1 = nll[0].mean(), nll[1, :2].mean()
    objective, reported = sequence_averaged(logits, targets, mask, num_tokens=6)
    assert objective.item() == pytest.approx(((row0 + row1) / 2).item())
    assert reported.item() == pytest.approx(((nll[0].sum() + nll[1, :2].sum()) / 6).item())
    same = torch.ones(2, 4, dtype=torch.bool)  # equal lengths: both averages agree
    objective, reported = sequence_averaged(logits, targets, same, num_tokens=8)
    assert objective.item() == pytest.approx(reported.item())


def _fit(seed: int, cfg: TrainerConfig, model_name: str = "gru") -> list[dict]:
    torch.manual_seed(seed)
    stream = torch.tensor(([0, 1, 2, 3, 4, 5, 6, 7] * 3 + [1, 3, 5, 7]) * 40)
    model = build_model(
        model_config_from_dict(  # the keys model_name's architecture has
            {
                "name": model_name,
                "emb_size": 16,
                "hidden_size": 16,
                "num_layers": 1,
                "num_heads": 2,
                "ff_size": 32,
                "dropout": 0.1,
            }
        ),
        vocab_size=8,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    rows: list[dict] = []
    trainer = Trainer(
        model,
        optimizer,
        lambda e: 0.01,
        batchify(stream, 4),
        batchify(stream, 2),
        8,
        cfg,
        lambda point: rows.append(point.row),
    )
    trainer.fit()
    return rows


def test_tiny_model_learns_and_rows_follow_the_cadence() -> None:
    rows = _fit(0, TrainerConfig(max_epochs=3, eval_every=0.5, progress="off"))
    # 35 windows per epoch: evaluations after window 18 and 35 of each of the three epochs
    assert [r["epoch"] for r in rows] == [0.5143, 1.0, 1.5143, 2.0, 2.5143, 3.0]
    assert [r["step"] for r in rows] == [18, 35, 53, 70, 88, 105]
    assert rows[-1]["val_ppl"] < rows[0]["val_ppl"] < 8.0
    assert all(math.isfinite(r["train_ppl"]) for r in rows)
    assert rows[-1]["best_val_ppl"] == min(r["val_ppl"] for r in rows)
    assert all(b["wall_time_s"] >= a["wall_time_s"] for a, b in zip(rows, rows[1:], strict=False))


def test_step_budget_ends_mid_epoch_with_a_final_evaluation() -> None:
    rows = _fit(0, TrainerConfig(max_epochs=None, max_steps=5, eval_every=1.0, progress="off"))
    assert len(rows) == 1 and rows[0]["step"] == 5 and rows[0]["epoch"] < 1.0


def test_same_seed_gives_identical_perplexities() -> None:
    cfg = TrainerConfig(max_epochs=1, eval_every=0.5, progress="off")
    cols = ("train_loss", "train_ppl", "val_loss", "val_ppl")
    for name in ("gru", "transformer"):
        a, b = _fit(3, cfg, name), _fit(3, cfg, name)
        assert [[r[c] for c in cols] for r in a] == [[r[c] for c in cols] for r in b]


def test_a_run_resumed_after_its_final_evaluation_does_not_train_further() -> None:
    stream = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7] * 40)
    cfg = TrainerConfig(max_epochs=None, max_steps=4, eval_every=1.0, progress="off")

    def trainer(rows: list, snaps: list) -> Trainer:
        torch.manual_seed(0)
        model = build_model(model_config(name="rnn", emb_size=8, hidden_size=8, num_layers=1), 8)
        return Trainer(
            model,
            torch.optim.SGD(model.parameters(), lr=0.1),
            lambda e: 0.1,
            batchify(stream, 4),
            batchify(stream, 2),
            8,
            cfg,
            lambda p: rows.append(p.row),
            lambda t: snaps.append(t.snapshot()),
        )

    rows, snaps = [], []
    trainer(rows, snaps).fit()
    assert [r["step"] for r in rows] == [4] and snaps[-1]["fit"]["stop_reason"] == "max_steps"
    again_rows: list = []
    resumed = trainer(again_rows, [])
    resumed.restore(snaps[-1])
    state = resumed.fit()
    assert again_rows == [] and state.step == 4 and state.last_row["step"] == 4


def test_a_time_summed_loss_is_the_token_mean_times_the_window_for_sgd_and_clipping() -> None:
    """Zaremba et al. (2014) sum each row's loss over its 20 steps: SGD at lr 1 with the norm
    clipped at 5 on that loss is SGD at lr 20 clipped at 5/20 on the token mean, step for step."""
    stream = torch.tensor(([0, 1, 2, 3, 4, 5, 6, 7] * 3 + [1, 3, 5, 7]) * 40)
    window = 8

    def weights(loss_average: str, lr: float, clip: float) -> list[torch.Tensor]:
        torch.manual_seed(0)
        cfg = model_config(name="lstm", emb_size=8, hidden_size=8, num_layers=2, dropout=0.0)
        model = build_model(cfg, 8)
        trainer_cfg = TrainerConfig(
            max_epochs=None,
            max_steps=30,  # full windows only: a shorter tail window sums fewer steps
            eval_every=1.0,
            clip_norm=clip,
            loss_average=loss_average,
            progress="off",
        )
        Trainer(
            model,
            torch.optim.SGD(model.parameters(), lr=lr),
            lambda e: lr,
            batchify(stream, 4),
            batchify(stream, 2),
            window,
            trainer_cfg,
            lambda point: None,
        ).fit()
        return [p.detach().clone() for p in model.parameters()]

    summed = weights("time_sum", lr=1.0, clip=5.0)
    averaged = weights("token", lr=1.0 * window, clip=5.0 / window)
    for a, b in zip(summed, averaged, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    plain = weights("token", lr=1.0, clip=5.0)  # the same rate on the mean is another run
    assert max((a - b).abs().max().item() for a, b in zip(summed, plain, strict=True)) > 1e-3
