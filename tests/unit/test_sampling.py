"""Next-token choice: greedy, temperature (CMU 10-601 HW7 §7.7), top-k, top-p, by hand."""

from __future__ import annotations

import math

import pytest
import torch

from lmexp.inspect.generate import Sampling, choose, next_token_probs, sample_seed

LOGITS = torch.tensor([[2.0, 1.0, 0.0, -1.0]])


def test_temperature_divides_the_logits_before_the_softmax() -> None:
    probs = next_token_probs(LOGITS, Sampling(temperature=0.5))
    expected = [math.exp(v / 0.5) for v in (2.0, 1.0, 0.0, -1.0)]
    total = sum(expected)
    assert probs[0].tolist() == pytest.approx([e / total for e in expected])


def test_temperature_zero_is_greedy_and_ignores_the_generator() -> None:
    assert next_token_probs(LOGITS, Sampling(temperature=0)).tolist() == [[1.0, 0, 0, 0]]
    a = choose(LOGITS, Sampling(temperature=0), torch.Generator().manual_seed(1))
    b = choose(LOGITS, Sampling(temperature=0), torch.Generator().manual_seed(2))
    assert a.tolist() == b.tolist() == [0]


def test_top_k_and_top_p_cut_and_renormalise() -> None:
    k2 = next_token_probs(LOGITS, Sampling(top_k=2))[0]
    e = [math.exp(2.0), math.exp(1.0)]
    assert k2.tolist() == pytest.approx([e[0] / sum(e), e[1] / sum(e), 0, 0])
    full = torch.softmax(LOGITS, -1)[0].tolist()  # 0.644, 0.237, 0.087, 0.032
    top2 = full[0] + full[1]
    p = next_token_probs(LOGITS, Sampling(top_p=0.7))[0]  # needs the top two to reach 0.7
    assert p.tolist() == pytest.approx([full[0] / top2, full[1] / top2, 0, 0])
    assert next_token_probs(LOGITS, Sampling(top_p=0.5))[0].tolist() == [1.0, 0, 0, 0]


def test_sampling_follows_the_tempered_distribution() -> None:
    sampling = Sampling(temperature=2.0)
    gen = torch.Generator().manual_seed(0)
    draws = choose(LOGITS.expand(20_000, 4), sampling, gen)
    freq = torch.bincount(draws, minlength=4).float() / draws.numel()
    assert freq.tolist() == pytest.approx(next_token_probs(LOGITS, sampling)[0].tolist(), abs=0.01)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"temperature": -1}, "temperature"), ({"top_k": 0}, "top_k"), ({"top_p": 1.5}, "top_p")],
)
def test_bad_settings_are_refused(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        Sampling(**kwargs)


def test_a_sentence_sample_ends_at_its_first_sentence_end() -> None:
    from lmexp.inspect.generate import through_sentence_end

    assert through_sentence_end([5, 6, 2, 7, 2], end_id=2) == [5, 6, 2]
    assert through_sentence_end([5, 6, 7], end_id=2) == [5, 6, 7]


def test_every_length_and_temperature_draws_from_its_own_stream() -> None:
    base = sample_seed(0, 35, Sampling(1.0))
    assert base == sample_seed(0, 35, Sampling(1.0))  # reproducible
    others = {
        sample_seed(0, 70, Sampling(1.0)),  # twice the length
        sample_seed(0, 35, Sampling(0.8)),  # another temperature
        sample_seed(1, 35, Sampling(1.0)),  # another --seed
    }
    assert base not in others and len(others) == 3
    assert all(0 <= s < 2**63 for s in (base, *others))
