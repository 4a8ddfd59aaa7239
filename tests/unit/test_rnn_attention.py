"""rnn_attn (CMU 10-601 HW7 §7.5): causal, steps like its full forward, attention by hand."""

from __future__ import annotations

import math

import pytest
import torch

from lmexp.models import build_model, model_config
from lmexp.models.rnn_attention import CausalSelfAttention, RNNAttentionLM

VOCAB = 30


def _model(max_len: int = 64, **kw) -> RNNAttentionLM:
    torch.manual_seed(0)
    cfg = model_config(
        name="rnn_attn",
        emb_size=8,
        hidden_size=12,
        num_layers=1,
        max_len=max_len,
        d_k=5,
        d_v=7,
        **kw,
    )
    model = build_model(cfg, VOCAB)
    assert isinstance(model, RNNAttentionLM)
    return model.eval()


def test_attention_of_one_query_over_two_outputs_by_hand() -> None:
    att = CausalSelfAttention(width=2, d_k=2, d_v=2)
    with torch.no_grad():
        for lin in (att.query, att.key, att.value, att.out):
            lin.weight.copy_(torch.eye(2))
    y = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])  # ŷ_1, ŷ_2
    out = att(y, torch.zeros(1, 0, 2), reach=10)
    # t=1 sees only ŷ_1; t=2: scores k·q/√2 = [0, 4/√2] over [ŷ_1, ŷ_2]
    w = torch.softmax(torch.tensor([0.0, 4.0 / math.sqrt(2)]), 0)
    assert out[0, 0].tolist() == pytest.approx([1.0, 0.0])
    assert out[0, 1].tolist() == pytest.approx((w[0] * y[0, 0] + w[1] * y[0, 1]).tolist())


@pytest.mark.parametrize("max_len", [64, 3])  # 3: the cache overflows within the window
def test_stepping_one_token_at_a_time_matches_the_full_forward(max_len: int) -> None:
    model = _model(max_len, nonlinearity="relu")
    tokens = torch.randint(VOCAB, (2, 9))
    state = model.init_state(2, torch.device("cpu"))
    full, (h_full, cache_full) = model(tokens, state)
    steps = []
    for t in range(tokens.size(1)):
        logits, state = model(tokens[:, t : t + 1], state)
        steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(state[0], h_full)
    torch.testing.assert_close(state[1], cache_full)
    assert cache_full.size(1) == min(max_len, 9)


def test_an_output_never_depends_on_a_later_token() -> None:
    model = _model()
    tokens = torch.randint(VOCAB, (1, 8))
    changed = tokens.clone()
    changed[0, 5:] = (changed[0, 5:] + 1) % VOCAB
    state = model.init_state(1, torch.device("cpu"))
    a, _ = model(tokens, state)
    b, _ = model(changed, state)
    torch.testing.assert_close(a[:, :5], b[:, :5])
    assert not torch.allclose(a[:, 5:], b[:, 5:])


def test_the_state_carries_across_windows_as_one_stream() -> None:
    model = _model()
    tokens = torch.randint(VOCAB, (2, 10))
    whole, _ = model(tokens, model.init_state(2, torch.device("cpu")))
    first, state = model(tokens[:, :4], model.init_state(2, torch.device("cpu")))
    second, _ = model(tokens[:, 4:], model.detach_state(state))
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole, atol=1e-5, rtol=1e-5)
