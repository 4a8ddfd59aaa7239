"""Statistics across seeds: a cell's mean and interval, pairwise tests, Holm, compact letters.

The maths only, on plain numbers (scipy's t distribution and tests); `analysis.cells` applies
it to a sweep's jobs. Conventions, the ones `docs/analysis.md` states:

- an interval is Student's t at `level` (95 %) on the values as they are (`scale="linear"`:
  `mean ± half-width`), or on their logarithm (`scale="log"`: for perplexity that is the loss
  in nats, whose spread does not grow with its level; the mean is then the geometric mean and
  the interval `[low, high]` is not symmetric). One value: no interval (n = 1).
- a pair of cells is compared by Welch's t-test (unequal variances), or by the paired t-test
  when both ran the same seeds and a seed means the same there (same initial weights and data
  order); the p-values of all pairs are adjusted by Holm's step-down method, which bounds the
  probability of any false difference (the family-wise error rate) by alpha.
- letters: cells that share a letter are not distinguishable at alpha (Piepho's
  insert-and-absorb algorithm, so every non-significant pair shares a letter).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from string import ascii_lowercase

import numpy as np
from scipy import stats

LEVEL = 0.95  # the intervals' confidence
ALPHA = 0.05  # the family-wise error rate of the pairwise comparisons
SCALES = ("linear", "log")
TESTS = ("auto", "welch", "paired")


@dataclass(frozen=True)
class Interval:
    """A cell's values: how many, their mean and standard deviation, and the interval."""

    n: int
    mean: float
    sd: float  # on the scale the interval was computed on (log: of the logarithms)
    low: float
    high: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


def interval(values: Sequence[float], level: float = LEVEL, scale: str = "linear") -> Interval:
    """Mean and Student-t interval of the finite `values` (NaN bounds for fewer than two)."""
    if scale not in SCALES:
        raise ValueError(f"scale={scale!r} unknown; choose from {list(SCALES)}")
    x = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if scale == "log":
        x = np.log(x[x > 0])
    n = len(x)
    if n == 0:
        return Interval(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if n == 1:
        low = high = sd = math.nan
    else:
        sd = float(x.std(ddof=1))
        half = float(stats.t.ppf((1 + level) / 2, n - 1)) * sd / math.sqrt(n)
        low, high = mean - half, mean + half
    if scale == "log":
        return Interval(n, math.exp(mean), sd, math.exp(low), math.exp(high))
    return Interval(n, mean, sd, low, high)


def p_value(a: Sequence[float], b: Sequence[float], paired: bool = False) -> float:
    """Two-sided p-value of "the two cells have the same mean".

    Welch's t-test; with `paired`, `a[i]` and `b[i]` share a seed and the paired t-test is used.
    NaN when a side has fewer than two values (no variance to judge by). Two cells whose values
    do not vary at all are different (p = 0) exactly when their means differ.
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if paired:
        if len(x) != len(y):
            raise ValueError("a paired test needs one value of each cell per seed")
        if len(x) < 2:
            return math.nan
        d = x - y
        if np.all(d == d[0]):
            return 0.0 if d[0] != 0 else 1.0
        return float(stats.ttest_rel(x, y).pvalue)
    if len(x) < 2 or len(y) < 2:
        return math.nan
    if x.std() == 0 and y.std() == 0:
        return 0.0 if x.mean() != y.mean() else 1.0
    return float(stats.ttest_ind(x, y, equal_var=False).pvalue)


def holm(p: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment: reject the k-th smallest p-value (k = 1..m) while
    p_(k) * (m - k + 1) <= alpha. Adjusted values are monotone and at most 1; a NaN (a pair
    that could not be tested) stays NaN and does not count in m."""
    values = np.asarray(p, dtype=float)
    tested = [i for i in range(len(values)) if not math.isnan(values[i])]
    adjusted = [math.nan] * len(values)
    m, running = len(tested), 0.0
    for rank, i in enumerate(sorted(tested, key=lambda i: values[i])):
        running = max(running, (m - rank) * values[i])
        adjusted[i] = min(1.0, running)
    return adjusted


def letters(cells: Sequence[str], different: set[frozenset[str]]) -> dict[str, str]:
    """Compact letter display: `cells` (best first) -> letters such that two cells share a
    letter exactly when they are not in `different` (pairs found significantly different).

    Insert-and-absorb (Piepho 2004): start with one group of every cell; for each different
    pair, split each group holding both into one without either member; drop a group contained
    in another. Letters are given in the order of each group's best cell.
    """
    rank = {cell: k for k, cell in enumerate(cells)}
    groups: list[set[str]] = [set(cells)]
    for pair in sorted(different, key=lambda p: sorted(rank[c] for c in p)):
        a, b = tuple(pair)
        split: list[set[str]] = []
        for group in groups:
            if a in group and b in group:
                split += [group - {a}, group - {b}]
            else:
                split.append(group)
        groups = [g for g in split if not any(g < h for h in split)]
        groups = [g for k, g in enumerate(groups) if g not in groups[:k]]
    groups.sort(key=lambda g: sorted(rank[c] for c in g))
    names = _letter_names(len(groups))
    return {cell: "".join(names[k] for k, g in enumerate(groups) if cell in g) for cell in cells}


def _letter_names(count: int) -> list[str]:
    """a..z, then aa, ab, ...: enough letters for any number of groups."""
    names, width = [], 1
    while len(names) < count:
        names += [
            "".join(ascii_lowercase[(k // 26**p) % 26] for p in reversed(range(width)))
            for k in range(26**width)
        ]
        width += 1
    return names[:count]
