"""The gate's statistics against known values (textbook tables, published examples, closed forms)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from harness.gate import stats
from harness.gate.stats import (
    StatsError,
    binomial_share_test,
    clopper_pearson_lower,
    clopper_pearson_upper,
    hodges_lehmann,
    mismatch_upper_bound,
    percentiles,
    rate_bound,
    rate_difference_interval,
    rule_of_three_upper,
    samples_needed,
    samples_needed_rate_difference,
    wilson_interval,
)

# ---------------------------------------------------------------------------------------------
# rare events


def test_rule_of_three_known_values() -> None:
    assert rule_of_three_upper(300) == pytest.approx(0.009936, abs=1e-6)
    assert rule_of_three_upper(1) == pytest.approx(0.95)
    assert rule_of_three_upper(100, 0.99) == pytest.approx(1 - 0.01 ** (1 / 100))
    assert rule_of_three_upper(30_000) == pytest.approx(3 / 30_000, rel=2e-3)  # ≈ 3/n (exactly -ln(0.05)/n)


def test_rule_of_three_with_no_data_bounds_nothing() -> None:
    assert rule_of_three_upper(0) == 1.0
    assert clopper_pearson_upper(0, 0) == 1.0
    assert mismatch_upper_bound(0, 0) == 1.0
    bound = rate_bound(0, 0)
    assert (bound.estimate, bound.lower, bound.upper, bound.method) == (None, 0.0, 1.0, "no data")


def test_clopper_pearson_known_values() -> None:
    assert clopper_pearson_upper(1, 100) == pytest.approx(0.0466, abs=5e-5)
    assert clopper_pearson_lower(1, 100) == pytest.approx(0.000513, abs=1e-6)
    assert clopper_pearson_upper(100, 100) == 1.0
    assert clopper_pearson_lower(0, 100) == 0.0
    assert clopper_pearson_lower(10, 10) == pytest.approx(0.05 ** (1 / 10))  # mirror of the rule of three


@pytest.mark.parametrize("n", [1, 7, 59, 299, 3000])
def test_clopper_pearson_with_zero_events_is_the_rule_of_three(n: int) -> None:
    assert clopper_pearson_upper(0, n) == rule_of_three_upper(n)
    assert rule_of_three_upper(n) == pytest.approx(float(sps.beta.ppf(0.95, 1, n)), rel=1e-9)


def test_mismatch_upper_bound_chooses_the_method() -> None:
    assert rate_bound(0, 300).method == "rule of three"
    assert rate_bound(2, 300).method == "Clopper-Pearson"
    assert mismatch_upper_bound(0, 300) == rule_of_three_upper(300)
    assert mismatch_upper_bound(2, 300) == clopper_pearson_upper(2, 300)
    bound = rate_bound(2, 300)
    assert bound.estimate == pytest.approx(2 / 300)
    assert bound.lower < 2 / 300 < bound.upper


def test_samples_needed_is_exact() -> None:
    assert samples_needed(0.01) == 299
    assert rule_of_three_upper(299) < 0.01 <= rule_of_three_upper(298)
    assert [samples_needed(e) for e in (0.05, 0.03, 0.02, 0.01, 0.005, 0.001)] == [59, 99, 149, 299, 598, 2995]
    assert samples_needed(0.01, 0.99) == 459


@pytest.mark.parametrize("eps", [0.2, 0.05, 0.0123, 0.001, 0.0001])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_samples_needed_is_the_smallest_n_below_epsilon(eps: float, confidence: float) -> None:
    n = samples_needed(eps, confidence)
    assert rule_of_three_upper(n, confidence) < eps
    assert n == 1 or rule_of_three_upper(n - 1, confidence) >= eps


@pytest.mark.parametrize("call", [
    lambda: rule_of_three_upper(-1),
    lambda: rule_of_three_upper(10, 1.0),
    lambda: rule_of_three_upper(10, 0),
    lambda: clopper_pearson_upper(5, 4),
    lambda: clopper_pearson_upper(True, 4),  # type: ignore[arg-type]
    lambda: rate_bound(1.5, 4),  # type: ignore[arg-type]
    lambda: samples_needed(0),
    lambda: samples_needed(1.0),
])
def test_bad_arguments_are_named(call: object) -> None:
    with pytest.raises(StatsError):
        call()  # type: ignore[operator]


# ---------------------------------------------------------------------------------------------
# rate differences (Newcombe 1998, Statistics in Medicine 17:873, method 10)


@pytest.mark.parametrize(("counts", "expected"), [
    ((56, 70, 48, 80), (0.0524, 0.3339)),
    ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ((0, 10, 0, 20), (-0.1611, 0.2775)),
    ((0, 10, 0, 10), (-0.2775, 0.2775)),
    ((10, 10, 0, 20), (0.6791, 1.0000)),
    ((10, 10, 0, 10), (0.6075, 1.0000)),
])
def test_rate_difference_matches_newcombe(counts: tuple[int, int, int, int], expected: tuple[float, float]) -> None:
    interval = rate_difference_interval(*counts)
    assert (interval.lower, interval.upper) == pytest.approx(expected, abs=1e-4)
    assert interval.estimate == pytest.approx(counts[0] / counts[1] - counts[2] / counts[3])


def test_wilson_interval() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    low, high = wilson_interval(0, 100)
    assert low == 0.0
    assert high == pytest.approx(1.959964**2 / (100 + 1.959964**2), rel=1e-6)


def test_samples_needed_for_a_rate_difference() -> None:
    assert samples_needed_rate_difference(0.01) == 381
    assert rate_difference_interval(0, 381, 0, 381).upper <= 0.01 < rate_difference_interval(0, 380, 0, 380).upper


def test_rate_difference_needs_trials_on_both_sides() -> None:
    with pytest.raises(StatsError, match="both sides"):
        rate_difference_interval(0, 0, 0, 10)


# ---------------------------------------------------------------------------------------------
# shares


def test_binomial_share_test_known_values() -> None:
    result = binomial_share_test(5, 20, 0.5)
    assert result.p_value == pytest.approx(2 * sum(math.comb(20, i) for i in range(6)) / 2**20)
    assert (result.lower, result.upper) == pytest.approx((0.0866, 0.4910), abs=1e-4)  # Clopper–Pearson table
    assert result.observed == 0.25
    assert binomial_share_test(0, 10, 0.5).p_value == pytest.approx(2 * 0.5**10)
    assert binomial_share_test(500, 1000, 0.5).p_value == pytest.approx(1.0)


def test_binomial_share_test_edges() -> None:
    assert binomial_share_test(10, 10, 1.0).p_value == pytest.approx(1.0)
    assert binomial_share_test(9, 10, 1.0).p_value == 0.0
    with pytest.raises(StatsError, match="n=0"):
        binomial_share_test(0, 0, 0.5)
    with pytest.raises(StatsError, match="share"):
        binomial_share_test(1, 2, 50)


# ---------------------------------------------------------------------------------------------
# distributions


def test_percentiles() -> None:
    p = percentiles(list(range(1, 101)))
    assert (p.n, p.p50, p.p95, p.p99) == (100, 50.5, pytest.approx(95.05), pytest.approx(99.01))
    assert percentiles([7.0]) == stats.Percentiles(1, 7.0, 7.0, 7.0)
    with pytest.raises(StatsError, match="non-empty"):
        percentiles([])
    with pytest.raises(StatsError, match="non-finite"):
        percentiles([1.0, math.nan])


def test_mann_whitney_null_distribution() -> None:
    cdf = stats._mann_whitney_cdf(10, 10)
    assert cdf[-1] == 1.0
    pmf = np.diff((0.0, *cdf))
    assert pmf == pytest.approx(pmf[::-1])  # symmetric around nm/2
    # the two-sided 5 % critical value for n = m = 10 is 23 (tables of the Mann–Whitney U)
    assert cdf[23] <= 0.025 < cdf[24]
    assert cdf[3] == pytest.approx(7 / math.comb(20, 10))  # U <= 3: 1 + 1 + 2 + 3 arrangements


def test_exact_interval_uses_the_tabulated_rank() -> None:
    rng = np.random.default_rng(7)
    x, y = rng.normal(0, 1, 10), rng.normal(0, 1, 10)
    k, achieved, method = stats._critical_rank(x, y, 0.95)
    assert (k, method) == (24, "exact")  # Hollander & Wolfe: C_alpha = 24 for m = n = 10
    assert achieved == pytest.approx(1 - 2 * stats._mann_whitney_cdf(10, 10)[23])
    assert achieved >= 0.95


def test_hodges_lehmann_of_a_pure_shift() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(100, 10, 40)
    result = hodges_lehmann(x, x + 10)
    assert result.estimate == pytest.approx(10)
    assert result.lower <= 10 <= result.upper
    assert result.method == "exact"
    assert (result.n_control, result.n_candidate) == (40, 40)


def test_hodges_lehmann_estimate_is_the_median_of_pairwise_differences() -> None:
    x, y = [1.0, 2.0, 4.0], [3.0, 10.0]
    diffs = sorted(b - a for a in x for b in y)
    assert hodges_lehmann(x, y).estimate == float(np.median(diffs))


def test_hodges_lehmann_interval_inverts_the_exact_test() -> None:
    """Just inside an end the two-sided exact Mann–Whitney test keeps the shift; just outside it rejects it."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(50, 5, 12), rng.normal(55, 5, 15)
    result = hodges_lehmann(x, y)
    alpha = 1 - 0.95

    def p(delta: float) -> float:
        return float(sps.mannwhitneyu(y - delta, x, alternative="two-sided", method="exact").pvalue)

    tiny = 1e-9
    assert p(result.lower - tiny) <= alpha < p(result.lower + tiny)
    assert p(result.upper + tiny) <= alpha < p(result.upper - tiny)


def test_hodges_lehmann_too_small_for_an_interval() -> None:
    result = hodges_lehmann([1.0, 2.0, 3.0], [11.0, 12.0, 13.0])
    assert result.estimate == 10.0
    assert (result.lower, result.upper) == (-math.inf, math.inf)


def test_hodges_lehmann_large_and_tied_samples_use_the_normal_approximation() -> None:
    rng = np.random.default_rng(5)
    x = np.round(rng.normal(200, 20, 3000))  # whole milliseconds: many ties
    y = np.round(rng.normal(205, 20, 2500))
    result = hodges_lehmann(x, y)
    assert result.method == "normal approximation"
    assert result.lower < 5 < result.upper
    assert result.upper - result.lower < 3
    assert result.achieved_confidence == pytest.approx(0.95, abs=1e-3)
    assert result.p_value < 1e-10


def test_order_statistics_without_materialising_agree_with_the_full_method() -> None:
    rng = np.random.default_rng(11)
    x, y = rng.exponential(30, 300), rng.exponential(35, 200) + 2
    ranks = [1, 17, 29_999, 30_000, 30_001, 59_000, 60_000]
    full = stats._order_statistics(x, y, ranks)
    bisected = stats._order_statistics(x, y, ranks, pair_limit=0)
    assert bisected == pytest.approx(full, rel=1e-9, abs=1e-9)


def test_mann_whitney_p_value_is_one_sided_candidate_slower() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(100, 5, 60)
    assert hodges_lehmann(x, x + 20).p_value < 1e-6
    assert hodges_lehmann(x, x - 20).p_value > 0.99


def test_all_values_tied_is_no_shift() -> None:
    result = hodges_lehmann([5.0] * 40, [5.0] * 40)
    assert (result.estimate, result.lower, result.upper, result.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_hodges_lehmann_rejects_bad_samples() -> None:
    with pytest.raises(StatsError, match="control"):
        hodges_lehmann([], [1.0])
    with pytest.raises(StatsError, match="candidate.*non-finite"):
        hodges_lehmann([1.0], [math.inf])
