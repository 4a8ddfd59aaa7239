"""The benchmark's arithmetic (FLOPs per token) by hand, and one real row end to end."""

from __future__ import annotations

import csv

import pytest

from benchmarks.speed.__main__ import main
from benchmarks.speed.rows import VOCAB, train_flops_per_token
from lmexp.models import model_config


def test_flops_per_token_of_a_recurrent_model_by_hand() -> None:
    # LSTM, emb 3, hidden 2, 2 layers: layer 1 = 4 gates * 2 * (3 + 2) = 40 MACs,
    # layer 2 = 4 * 2 * (2 + 2) = 32, softmax projection 2 * V; training = 6 x forward MACs.
    cfg = model_config(name="lstm", emb_size=3, hidden_size=2, num_layers=2)
    assert train_flops_per_token(cfg) == 6 * (40 + 32 + 2 * VOCAB)


def test_flops_per_token_of_a_transformer_by_hand() -> None:
    # d 4, ff 8, 1 layer, window 5: QKV + W_O = 4 * 16, feed-forward 2 * 4 * 8,
    # scores + weighted sum over the full window 2 * 5 * 4, softmax projection 4 * V.
    cfg = model_config(name="transformer", hidden_size=4, num_heads=2, ff_size=8, num_layers=1)
    assert train_flops_per_token(cfg, seq_len=5) == 6 * (64 + 64 + 40 + 4 * VOCAB)


@pytest.mark.slow
def test_one_architecture_runs_end_to_end_and_writes_its_csv(tmp_path, capsys) -> None:
    out = tmp_path / "bench.csv"
    args = ["--archs", "rnn", "--sizes", "small", "--variants", "fused", "--steps", "2"]
    assert main([*args, "--warmup", "1", "--device", "cpu", "--csv", str(out)]) == 0
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert [r["variant"] for r in rows] == ["baseline", "fused"]
    assert float(rows[0]["vs_baseline"]) == 1.0
    for row in rows:
        assert float(row["tokens_per_s"]) > 0 and float(row["peak_mem_mb"]) > 0
        assert 0 < float(row["frac_of_ceiling"]) < 2
    printed = capsys.readouterr().out
    assert "| rnn | 200 | fused |" in printed and "matmul ceiling (best" in printed


def test_graph_rows_exist_only_on_cuda() -> None:
    from benchmarks.speed.rows import variants

    cpu = [v.name for v in variants("gru", False)]
    cuda = {v.name: v for v in variants("gru", False, cuda=True)}
    assert not any(v.endswith("graph") or "+graph+" in v for v in cpu)
    assert {"scratch+graph", "scratch+graph+bf16", "fused+graph"} <= set(cuda)
    assert cuda["scratch+graph+bf16"].precision == "bf16" and cuda["fused+graph"].graph
    attention = {v.name for v in variants("transformer", False, cuda=True)}
    assert {"sdpa+graph", "sdpa+graph+bf16"} <= attention
