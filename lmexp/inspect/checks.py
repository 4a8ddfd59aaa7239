"""The char-LM report's checks of a language model: sanity (chain rule) and normalization.

- **sanity**: the log-probability the model gives a whole continuation equals the sum of the
  next-token log-probabilities it gives one token at a time, each from the prefix alone. A
  model that lets a position see later tokens, or scores windows differently from one call to
  the next, fails it.
- **normalization**: every next-token distribution sums to 1 (its log-sum-exp is 0). A model
  that returns scores rather than log-probabilities fails it.

Both run over (context, continuation) pairs cut from real text at random offsets, with
continuations long enough to cross a window boundary, so the state or window handling between
windows is exercised too. They take anything with `next_log_probs(context_ids)` and
`log_prob(continuation_ids, context_ids)` (ScoringLM).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from lmexp.data import Vocab

SANITY_ATOL, SANITY_RTOL = 1e-3, 1e-4  # float32 log-softmax, sums of up to ~100 terms
NORMALIZATION_ATOL = 1e-4  # |log sum p| for one distribution in float32


class Scorer(Protocol):
    vocab: Vocab

    def next_log_probs(self, context: list[str]) -> np.ndarray: ...

    def log_prob(self, continuation: list[str], context: list[str]) -> float: ...


@dataclass(frozen=True)
class Pair:
    context: list[str]
    continuation: list[str]


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    max_error: float  # the largest deviation seen (absolute, in nats)
    checked: int  # how many pairs or distributions


def sample_pairs(tokens: list[str], n: int, seq_len: int, seed: int = 0) -> list[Pair]:
    """`n` pairs from `tokens`: contexts of 0 to 2 x seq_len tokens, continuations of 1 to
    seq_len + 5 tokens (so most cross a window boundary). Deterministic for a seed."""
    if len(tokens) < 2:
        raise ValueError("the checks need a text of at least two tokens")
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n):
        context_len = int(rng.integers(0, 2 * seq_len + 1))
        cont_len = int(rng.integers(1, seq_len + 6))
        context_len = min(context_len, len(tokens) - 1)
        cont_len = min(cont_len, len(tokens) - context_len)
        start = int(rng.integers(0, len(tokens) - context_len - cont_len + 1))
        middle = start + context_len
        pairs.append(Pair(tokens[start:middle], tokens[middle : middle + cont_len]))
    return pairs


def sanity_check(lm: Scorer, pairs: list[Pair]) -> CheckResult:
    """log_prob(continuation | context) == sum_i log p(continuation[i] | context + cont[:i])."""
    worst, passed = 0.0, True
    for pair in pairs:
        whole = lm.log_prob(pair.continuation, pair.context)
        stepwise = 0.0
        for i, token in enumerate(pair.continuation):
            dist = lm.next_log_probs(pair.context + pair.continuation[:i])
            stepwise += float(dist[lm.vocab.encode([token])[0]])
        error = abs(whole - stepwise)
        worst = max(worst, error)
        ok = math.isfinite(whole) and error <= SANITY_ATOL + SANITY_RTOL * abs(stepwise)
        passed = passed and ok
    return CheckResult(passed, worst, len(pairs))


def normalization_check(lm: Scorer, contexts: list[list[str]]) -> CheckResult:
    """Every next-token distribution sums to 1: |log sum_w p(w | context)| <= 1e-4."""
    worst = 0.0
    for context in contexts:
        log_probs = np.asarray(lm.next_log_probs(context), dtype=np.float64)
        top = float(log_probs.max())
        error = abs(top + math.log(float(np.exp(log_probs - top).sum())))
        worst = max(worst, error if math.isfinite(error) else math.inf)
    return CheckResult(worst <= NORMALIZATION_ATOL, worst, len(contexts))
