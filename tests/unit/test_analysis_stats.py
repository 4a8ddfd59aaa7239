"""The statistics of `analysis.stats`: hand-checked values, then their error rates by simulation.

The simulations are seeded and train nothing: 500 synthetic sweeps each, drawn from known
distributions, as the issue's acceptance asks (family-wise false positives, power, coverage).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from analysis.stats import holm, interval, letters, p_value


def test_interval_by_hand() -> None:
    # values 1, 2, 3: mean 2, sd 1, t(0.975, 2) = 4.302653, half-width 4.302653 / sqrt(3)
    got = interval([1.0, 2.0, 3.0])
    assert (got.n, got.mean, got.sd) == (3, 2.0, 1.0)
    assert got.half_width == pytest.approx(2.484137, abs=1e-6)
    assert (got.low, got.high) == pytest.approx((2 - 2.484137, 2 + 2.484137), abs=1e-6)


def test_an_interval_on_the_log_scale_is_the_geometric_mean_and_asymmetric() -> None:
    # log values 0, log 10, log 100: mean log 10 (geometric mean 10), sd log 10
    got = interval([1.0, 10.0, 100.0], scale="log")
    assert got.mean == pytest.approx(10.0)
    half = 4.302653 * math.log(10) / math.sqrt(3)
    assert (got.low, got.high) == pytest.approx((10 * math.exp(-half), 10 * math.exp(half)))
    assert got.high - got.mean > got.mean - got.low


def test_one_value_has_no_interval_and_infinities_are_not_values() -> None:
    one = interval([5.0, math.inf, math.nan])
    assert (one.n, one.mean) == (1, 5.0) and math.isnan(one.low) and math.isnan(one.high)
    assert interval([]).n == 0


def test_welch_and_paired_p_values_by_hand() -> None:
    # Welch: means 2 and 5, variances 1 and 1 (n 3 each): t = -3 / sqrt(2/3) = -3.674, df 4
    assert p_value([1, 2, 3], [4, 5, 6]) == pytest.approx(0.021311, abs=1e-6)
    # paired: differences -3, -2, -4: mean -3, sd 1, t = -5.196, df 2
    assert p_value([1, 2, 3], [4, 4, 7], paired=True) == pytest.approx(0.035098, abs=1e-6)
    assert math.isnan(p_value([1.0], [2.0, 3.0]))
    assert p_value([2, 2], [3, 3]) == 0.0 and p_value([2, 2], [2, 2]) == 1.0


def test_holm_by_hand() -> None:
    # sorted 0.01, 0.02, 0.04 (m = 3): 0.03, max(0.03, 0.04), max(0.04, 0.04); NaN untouched
    got = holm([0.04, 0.01, math.nan, 0.02])
    assert got[0] == pytest.approx(0.04) and got[1] == pytest.approx(0.03)
    assert math.isnan(got[2]) and got[3] == pytest.approx(0.04)
    assert holm([0.5, 0.9]) == [1.0, 1.0]


def test_letters_share_exactly_when_not_different() -> None:
    cells = ["A", "B", "C", "D"]
    different = {frozenset("AC"), frozenset("AD"), frozenset("BD")}
    got = letters(cells, different)
    assert got == {"A": "a", "B": "ab", "C": "b", "D": "c"} or _consistent(got, cells, different)
    assert _consistent(got, cells, different)
    assert letters(cells, set()) == dict.fromkeys(cells, "a")
    every = {frozenset(p) for p in itertools.combinations(cells, 2)}
    assert letters(cells, every) == {"A": "a", "B": "b", "C": "c", "D": "d"}


def _consistent(got: dict[str, str], cells: list[str], different: set) -> bool:
    return all(
        (frozenset((a, b)) in different) == (not set(got[a]) & set(got[b]))
        for a, b in itertools.combinations(cells, 2)
    )


def test_letters_of_random_patterns_are_always_consistent() -> None:
    rng = np.random.default_rng(7)
    cells = [f"c{k}" for k in range(7)]
    pairs = [frozenset(p) for p in itertools.combinations(cells, 2)]
    for _ in range(200):
        different = {p for p in pairs if rng.random() < 0.4}
        assert _consistent(letters(cells, different), cells, different)


def _sweep_p_values(values: np.ndarray, paired: bool = False) -> dict[tuple[int, int], float]:
    pairs = list(itertools.combinations(range(len(values)), 2))
    adjusted = holm([p_value(values[i], values[j], paired) for i, j in pairs])
    return dict(zip(pairs, adjusted, strict=True))


SWEEPS = 500


def test_family_wise_false_positives_stay_at_alpha_on_null_sweeps() -> None:
    """500 sweeps of 4 equal cells x 3 seeds: some pair called different in at most 6 %."""
    rng = np.random.default_rng(20261206)
    hits = sum(
        any(p < 0.05 for p in _sweep_p_values(rng.normal(100, 5, (4, 3))).values())
        for _ in range(SWEEPS)
    )
    assert hits / SWEEPS <= 0.06, hits


def test_a_two_standard_deviation_difference_is_found_with_shared_seeds() -> None:
    """500 sweeps of an lr-like grid (same initial weights per seed: half the variance is the
    seed's, shared by both cells), n = 5, a difference of 2 standard deviations of a job's
    value: the paired test finds it in at least 80 % of sweeps."""
    rng = np.random.default_rng(11)
    found = 0
    for _ in range(SWEEPS):
        seed_effect = rng.normal(0, math.sqrt(0.5), 5)
        cells = np.stack(
            [seed_effect + rng.normal(0, math.sqrt(0.5), 5) + shift for shift in (0, 2)]
        )
        found += _sweep_p_values(cells, paired=True)[(0, 1)] < 0.05
    assert found / SWEEPS >= 0.80, found


def test_welch_power_at_two_standard_deviations_is_what_theory_allows() -> None:
    """Unpaired (different architectures), n = 5, 2 SD: no two-sided level-5 % test can find it
    more often than Student's t does, 79 % (its power, the uniformly most powerful unbiased
    test); Welch's is 77 % (docs/analysis.md). Checked against that, not against 80 %."""
    rng = np.random.default_rng(12)
    found = sum(
        _sweep_p_values(np.stack([rng.normal(0, 1, 5), rng.normal(2, 1, 5)]))[(0, 1)] < 0.05
        for _ in range(SWEEPS)
    )
    assert 0.72 <= found / SWEEPS <= 0.83, found


def test_intervals_cover_the_true_mean_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(13)
    normal = [interval(rng.normal(120, 6, 3)) for _ in range(SWEEPS * 4)]
    covered = np.mean([i.low <= 120 <= i.high for i in normal])
    assert 0.93 <= covered <= 0.97, covered
    # perplexities log-normal around 120: the log-scale interval covers their geometric mean
    skewed = [
        interval(np.exp(rng.normal(math.log(120), 0.2, 5)), scale="log") for _ in range(SWEEPS * 4)
    ]
    covered = np.mean([i.low <= 120 <= i.high for i in skewed])
    assert 0.93 <= covered <= 0.97, covered
