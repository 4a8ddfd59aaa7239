"""Perplexity: hand-checked values, token weighting, and the metrics.csv contract."""

from __future__ import annotations

import csv
import math

import pytest
import torch
from torch import Tensor, nn

from lmexp.data import batchify
from lmexp.models import build_model, model_config
from lmexp.models.base import LanguageModel, State
from lmexp.training.evaluation import evaluate
from lmexp.training.metrics import MetricsWriter, perplexity
from lmexp.training.schema import TrainerConfig
from lmexp.training.trainer import COLUMNS, Trainer


class UniformLM(LanguageModel):
    """Outputs all-zero logits: every token has probability 1/V."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        return torch.zeros(*tokens.shape, self.vocab_size) + 0 * self.dummy, state

    def init_state(self, batch_size: int, device: torch.device) -> State:
        return None


class BigramLM(LanguageModel):
    """Stateless: the logits of the next token are a learned row per current token."""

    def __init__(self, table: Tensor) -> None:
        super().__init__()
        self.table = nn.Parameter(table.clone())

    def forward(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        return self.table[tokens], state  # (B, T, V)

    def init_state(self, batch_size: int, device: torch.device) -> State:
        return None


TABLE = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 3.0], [-2.0, 0.5, 0.0]])
STREAM = torch.tensor([0, 1, 2, 2, 0, 1, 1, 2, 0, 0, 2, 1])  # 12 tokens -> 11 targets


def _brute_force_nll(table: Tensor, stream: Tensor) -> list[float]:
    """Per-position NLL written out with math.log/exp, independent of the code under test."""
    out = []
    for cur, nxt in zip(stream[:-1].tolist(), stream[1:].tolist(), strict=True):
        row = table[cur].tolist()
        out.append(-(row[nxt] - math.log(sum(math.exp(v) for v in row))))
    return out


def test_perplexity_is_exp_of_mean_nll() -> None:
    assert perplexity(2.0 * math.log(5.0), 2) == pytest.approx(5.0)
    assert perplexity(float("nan"), 3) == math.inf
    assert perplexity(1e6, 1) == math.inf


def test_uniform_logits_have_perplexity_equal_to_vocab_size() -> None:
    streams = batchify(torch.arange(1000) % 50, batch_size=4)
    nll, count = evaluate(UniformLM(50), streams, seq_len=7)
    assert count == 4 * (streams.size(1) - 1)
    assert perplexity(nll, count) == pytest.approx(50.0, rel=1e-6)


def test_evaluation_is_token_weighted_not_a_mean_of_window_means() -> None:
    nlls = _brute_force_nll(TABLE, STREAM)
    token_weighted = math.exp(sum(nlls) / len(nlls))
    windows = [nlls[0:5], nlls[5:10], nlls[10:11]]  # seq_len 5: the last window is 1 token
    mean_of_means = math.exp(sum(sum(w) / len(w) for w in windows) / len(windows))
    assert abs(token_weighted - mean_of_means) > 0.05  # the two really differ here
    nll, count = evaluate(BigramLM(TABLE), STREAM.view(1, -1), seq_len=5)
    assert count == 11
    assert perplexity(nll, count) == pytest.approx(token_weighted, rel=1e-6)


def test_training_perplexity_is_token_weighted_too() -> None:
    # lr so small that the weights do not move: the epoch's train ppl is the brute-force value.
    model = BigramLM(TABLE)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-12)
    rows = []
    cfg = TrainerConfig(max_epochs=1, clip_norm=None, eval_every=1.0, progress="off")
    trainer = Trainer(
        model,
        optimizer,
        lambda e: 1e-12,
        STREAM.view(1, -1),
        STREAM.view(1, -1),
        5,
        cfg,
        lambda point: rows.append(point.row),
    )
    trainer.fit()
    nlls = _brute_force_nll(TABLE, STREAM)
    assert len(rows) == 1 and rows[0]["tokens"] == 11
    assert rows[0]["train_ppl"] == pytest.approx(math.exp(sum(nlls) / 11), rel=1e-6)


def test_metrics_writer_writes_header_once_and_appends(tmp_path) -> None:
    path = tmp_path / "metrics.csv"
    row = dict.fromkeys(COLUMNS, 1.5)
    with MetricsWriter(path, COLUMNS) as writer:
        writer.write(row)
        assert len(path.read_text().splitlines()) == 2  # flushed while still open
    with MetricsWriter(path, COLUMNS) as writer:
        writer.write({**row, "val_ppl": math.inf})
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(COLUMNS)
    assert [r["val_ppl"] for r in rows] == ["1.5", "inf"]


def test_a_file_from_before_a_new_column_is_widened_and_every_row_read(tmp_path) -> None:
    """A job resumed after lmexp added a column appends full rows under a widened header."""
    from analysis.collect import read_metrics

    path, old = tmp_path / "metrics.csv", COLUMNS[:-1]
    with MetricsWriter(path, old) as writer:
        writer.write(dict.fromkeys(old, 1.5))
    with MetricsWriter(path, COLUMNS) as writer:
        writer.write(dict.fromkeys(COLUMNS, 2.5))
    with path.open() as f:
        rows = list(csv.reader(f))
    assert rows[0] == list(COLUMNS) and {len(r) for r in rows} == {len(COLUMNS)}
    frame = read_metrics(path)
    assert list(frame["val_ppl"]) == [1.5, 2.5]
    assert math.isnan(frame[COLUMNS[-1]][0]) and frame[COLUMNS[-1]][1] == 2.5


def test_metrics_writer_refuses_incomplete_rows(tmp_path) -> None:
    with (
        MetricsWriter(tmp_path / "m.csv", COLUMNS) as writer,
        pytest.raises(KeyError, match="val_ppl"),
    ):
        writer.write({k: 0 for k in COLUMNS if k != "val_ppl"})


def test_grouping_stateless_windows_leaves_the_result_unchanged() -> None:
    torch.manual_seed(0)
    model = build_model(
        model_config(name="transformer", hidden_size=16, num_heads=2, ff_size=32), vocab_size=40
    )
    streams = batchify(torch.randint(40, (3 * 103,)), batch_size=3)  # 102 targets: 14 windows
    one_by_one = evaluate(model, streams, seq_len=7, stateless_group=1)
    grouped = evaluate(model, streams, seq_len=7, stateless_group=8)
    assert grouped[1] == one_by_one[1] == 3 * 102
    assert grouped[0] == pytest.approx(one_by_one[0], rel=1e-6)
