"""tlbook.stats against closed forms computed here, scipy's other routes to the same number, and the
coverage the intervals promise, measured by simulation."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from tlbook import stats


def _wilson_by_hand(k, n, confidence):
    z = scipy_stats.norm.ppf((1 + confidence) / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize(("k", "n", "confidence"), [(81, 263, 0.95), (0, 10, 0.95), (10, 10, 0.9), (6, 32, 0.99)])
def test_wilson_interval_is_the_closed_form(k, n, confidence):
    got = stats.wilson_interval(k, n, confidence=confidence)
    low, high = _wilson_by_hand(k, n, confidence)
    assert got.estimate == k / n and got.confidence == confidence
    assert got.low == pytest.approx(max(low, 0.0), abs=1e-12) and got.high == pytest.approx(min(high, 1.0), abs=1e-12)
    assert 0 <= got.low <= got.estimate <= got.high <= 1


def test_wilson_interval_names_bad_counts():
    with pytest.raises(ValueError, match="correct=11, n=10"):
        stats.wilson_interval(11, 10)
    with pytest.raises(ValueError, match="correct must be an integer"):
        stats.wilson_interval(0.5, 10)
    with pytest.raises(ValueError, match="confidence must be"):
        stats.wilson_interval(5, 10, confidence=95)


def _pairs(both, only_a, only_b, neither):
    """Labels and predictions with the given 2x2 counts (1 = correct, 0 = wrong, all labels 1)."""
    a = [1] * both + [1] * only_a + [0] * only_b + [0] * neither
    b = [1] * both + [0] * only_a + [1] * only_b + [0] * neither
    return np.ones(len(a), int), np.array(a), np.array(b)


def test_paired_comparison_counts_and_mcnemars_exact_p_value():
    result = stats.paired_comparison(*_pairs(50, 9, 1, 40))
    assert (result.n, result.only_a, result.only_b) == (100, 9, 1)
    assert (result.accuracy_a, result.accuracy_b) == (0.59, 0.51)
    assert result.difference.estimate == pytest.approx(0.08)
    # two-sided exact binomial test of 9 of 10 discordant pairs: 2 * P(X <= 1 | 10, 1/2)
    assert result.p_value == pytest.approx(2 * (1 + 10) / 2**10, rel=1e-12)
    assert result.difference.low < 0.08 < result.difference.high
    assert stats.paired_comparison(*_pairs(5, 0, 0, 5)).p_value == 1.0


def test_paired_interval_is_narrower_than_the_unpaired_one_when_the_models_agree():
    def square_and_add(k_a, k_b, n):  # Newcombe's interval for two independent accuracies
        a, b = stats.wilson_interval(k_a, n), stats.wilson_interval(k_b, n)
        d = (k_a - k_b) / n
        return d - math.hypot(a.estimate - a.low, b.high - b.estimate), d + math.hypot(
            a.high - a.estimate, b.estimate - b.low
        )

    uncorrelated = stats.paired_comparison(*_pairs(20, 30, 20, 30))  # both*neither == only_a*only_b
    low, high = square_and_add(50, 40, 100)
    assert uncorrelated.difference.low == pytest.approx(low) and uncorrelated.difference.high == pytest.approx(high)
    agree = stats.paired_comparison(*_pairs(80, 6, 0, 14))  # the models agree on 94 images of 100
    assert agree.difference.low > square_and_add(86, 80, 100)[0] and agree.difference.excludes_zero()
    for counts in ((30, 0, 0, 20), (25, 0, 0, 25), (199, 0, 0, 199)):  # never disagree: an interval, not a point
        never = stats.paired_comparison(*_pairs(*counts)).difference
        assert never.low < -0.004 and never.high > 0.004, counts


@pytest.mark.parametrize(
    "probabilities",
    [
        (0.62, 0.08, 0.02, 0.28),  # both right, only A right, only B right, neither: 10 % discordant
        (0.45, 0.04, 0.01, 0.50),  # 5 % discordant
        (0.495, 0.01, 0.0, 0.495),  # 1 %: the two models (almost) always agree, as two rounds of one run do
    ],
)
def test_paired_interval_keeps_its_coverage(probabilities):
    """Simulated pairs of classifiers with known accuracies and correlation: the 95 % interval
    contains the true difference in at least 93 % of 1,500 test sets of 60 images (without the
    continuity correction of phi, the last case covers about 58 %)."""
    rng = np.random.default_rng(0)
    truth = probabilities[1] - probabilities[2]
    covered = 0
    for _ in range(1500):
        counts = rng.multinomial(60, probabilities)
        interval = stats.paired_comparison(*_pairs(*counts)).difference
        covered += interval.low <= truth <= interval.high
    assert covered / 1500 >= 0.93


def test_paired_comparison_names_bad_input():
    with pytest.raises(ValueError, match=r"pred_b holds fractions such as 0\.9.*not probabilities"):
        stats.paired_comparison([0, 1], [0.0, 1.0], [0.9, 0.2])
    assert stats.paired_comparison(np.array([0, 1]), np.array([0.0, 1.0]), [1, 1]).accuracy_a == 1.0
    assert stats.paired_comparison([0, 1], [0, 1], [1, 1], confidence=np.float32(0.9)).difference.confidence
    with pytest.raises(ValueError, match=r"argmax\(axis=1\)"):
        stats.paired_comparison([0, 1], np.eye(2), [0, 1])
    with pytest.raises(ValueError, match=r"same length >= 1, got \[2, 3, 2\]"):
        stats.paired_comparison([0, 1], [0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="same length"):
        stats.paired_comparison([], [], [])


def test_paired_t_interval_is_scipys_one_sample_t_interval():
    differences = [0.031, 0.012, 0.054, -0.004, 0.027]
    got = stats.paired_t_interval(differences, confidence=0.9)
    ci = scipy_stats.ttest_1samp(differences, 0.0).confidence_interval(confidence_level=0.9)
    assert got.estimate == pytest.approx(np.mean(differences))
    assert (got.low, got.high) == (pytest.approx(ci.low, abs=1e-12), pytest.approx(ci.high, abs=1e-12))
    assert got.excludes_zero() and not stats.paired_t_interval([0.1, -0.1, 0.05]).excludes_zero()
    same = stats.paired_t_interval([0.02, 0.02, 0.02])
    assert (same.low, same.high) == (0.02, 0.02)


@pytest.mark.parametrize("bad", [[0.1], [0.1, float("nan")], [[0.1, 0.2]]])
def test_paired_t_interval_names_bad_input(bad):
    with pytest.raises(ValueError, match="at least two finite differences"):
        stats.paired_t_interval(bad)
