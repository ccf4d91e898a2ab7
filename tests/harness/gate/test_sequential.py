"""The gate's confidence sequences: coverage at every look (by simulation), the sample sizes they need,
how they narrow, censored samples, the two-path difference and bad input."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache

import numpy as np
import pytest
from scipy import stats as sps

from harness.errors import HarnessError
from harness.gate.sequential import (
    CS,
    SequentialError,
    difference_cs,
    median_cs,
    min_clean_samples,
    min_median_samples,
    proportion_cs,
)

# ---------------------------------------------------------------------------------------------
# coverage at every look, by simulation
#
# 200 seeded streams of 600 samples, the CS read after every 20 (30 looks, as the gate reads it after every
# round). A CS at level 1 − α covers the truth at every look at once with probability >= 1 − α, so the share
# of streams whose CS EVER excludes the truth must be at most α. The simulation's own error: if each stream
# missed with probability exactly α, the count of missing streams would be Binomial(200, α), whose 99th
# percentile is 30 of 200 (15 %) at α = 0.1; the bound below is that percentile, so a correct CS fails this
# test for fewer than 1 seed in 100 (and the seeds are fixed, so the result is deterministic). A fixed-sample
# interval read at every look exceeds it by far: see the control at the end of the section.

ALPHA = 0.1
STREAMS, LENGTH, EVERY = 200, 600, 20
LOOKS = np.arange(EVERY, LENGTH + 1, EVERY)
SLACK_BOUND = float(sps.binom.ppf(0.99, STREAMS, ALPHA)) / STREAMS  # 0.15


def ever_excluded(excludes: Callable[[np.ndarray, int], bool], draws: np.ndarray) -> float:
    """The share of streams (rows of ``draws``) whose CS excludes the truth at some look."""
    missed = sum(any(excludes(row[:n], int(n)) for n in LOOKS) for row in draws)
    return missed / len(draws)


@pytest.mark.parametrize(("p", "rare", "prior_mean"), [
    (0.01, True, 0.01),  # the parity and error-rate criteria's CS: rare events, mixing mean at the budget
    (0.3, False, 0.5),  # the split criterion's CS
    (0.3, True, 0.01),  # a rare-event CS whose prior is far from the truth still covers it
])
def test_proportion_cs_covers_at_every_look(p: float, rare: bool, prior_mean: float) -> None:
    draws = np.random.default_rng([11, int(p * 1000), rare]).random((STREAMS, LENGTH)) < p

    @cache  # the CS depends on (events, trials) only
    def excludes_at(s: int, n: int) -> bool:
        cs = proportion_cs(s, n, ALPHA, rare=rare, prior_mean=prior_mean)
        return not cs.lower <= p <= cs.upper

    rate = ever_excluded(lambda prefix, n: excludes_at(int(prefix.sum()), n), draws)
    assert rate <= SLACK_BOUND, rate


def test_rare_event_cs_covers_at_every_look_exactly() -> None:
    """The rare-event CS at the budget it guards is nearly tight (a clean run excludes p as soon as
    (1 − p)^n <= α/2), so its miss probability is computed exactly as well: the distribution of the event
    count, stream by stream, with the mass the CS has excluded removed at every look. No simulation error."""
    p, length = 0.01, 1200
    alive = np.zeros(length + 1)
    alive[0] = 1.0
    for n in range(1, length + 1):
        alive[1:] = alive[1:] * (1 - p) + alive[:-1] * p
        alive[0] *= 1 - p
        if n % EVERY == 0:
            for s in np.nonzero(alive > 1e-15)[0]:
                cs = proportion_cs(int(s), n, ALPHA, rare=True, prior_mean=p)
                if not cs.lower <= p <= cs.upper:
                    alive[s] = 0.0
    assert 1 - alive.sum() <= ALPHA


def test_median_cs_covers_at_every_look() -> None:
    draws = np.random.default_rng(12).exponential(1.0, (STREAMS, LENGTH))
    truth = math.log(2)  # the median of Exp(1)

    def excludes(prefix: np.ndarray, n: int) -> bool:
        cs = median_cs(prefix.tolist(), ALPHA)
        return not cs.lower <= truth <= cs.upper

    rate = ever_excluded(excludes, draws)
    assert rate <= SLACK_BOUND, rate


def test_a_fixed_sample_interval_read_at_every_look_fails_the_same_check() -> None:
    """Control: the simulation can tell. A 90 % Wald interval, valid for one look, read at all 30 looks
    excludes the true rate in far more than 15 % of the streams."""
    p = 0.3
    draws = np.random.default_rng(13).random((STREAMS, LENGTH)) < p
    z = float(sps.norm.ppf(1 - ALPHA / 2))

    def excludes(prefix: np.ndarray, n: int) -> bool:
        est = float(prefix.mean())
        return abs(est - p) > z * math.sqrt(est * (1 - est) / n)

    assert ever_excluded(excludes, draws) > 2 * SLACK_BOUND


# ---------------------------------------------------------------------------------------------
# sample sizes


@pytest.mark.parametrize(("epsilon", "alpha"), [(0.01, 0.05), (0.05, 0.05), (0.005, 0.05), (0.01, 0.025)])
def test_min_clean_samples_is_where_the_upper_end_first_drops_below_epsilon(epsilon: float, alpha: float) -> None:
    n = min_clean_samples(epsilon, alpha)
    assert proportion_cs(0, n, alpha, rare=True, prior_mean=epsilon).upper < epsilon
    assert proportion_cs(0, n - 1, alpha, rare=True, prior_mean=epsilon).upper >= epsilon


def test_min_clean_samples_known_values() -> None:
    # the gate's parity budget at 75 % and its error rate (per path, at α/2); the fixed-sample rule of three
    # (one look only) needed 299 for the first
    assert min_clean_samples(0.01, 0.05) == 304
    assert min_clean_samples(0.01, 0.025) == 373
    # the mixing distribution's mean changes how fast the CS narrows, never its level
    assert min_clean_samples(0.01, 0.05, prior_mean=0.5) > 304


def test_min_median_samples_is_where_both_ends_first_become_finite() -> None:
    rng = np.random.default_rng(5)
    for alpha in (0.05, 0.025):
        n = min_median_samples(alpha)
        samples = rng.normal(0, 1, n).tolist()
        both = median_cs(samples, alpha)
        assert math.isfinite(both.lower) and math.isfinite(both.upper)
        fewer = median_cs(samples[:-1], alpha)
        assert math.isinf(fewer.lower) or math.isinf(fewer.upper)
    assert min_median_samples(0.025) == 27  # the latency criteria's per-path level


# ---------------------------------------------------------------------------------------------
# shape


def width(cs: CS) -> float:
    return cs.upper - cs.lower


def test_a_proportion_cs_narrows_as_n_grows() -> None:
    widths = [width(proportion_cs(n // 2, n, 0.05)) for n in (100, 400, 1600, 6400)]
    assert widths == sorted(widths, reverse=True) and len(set(widths)) == 4
    uppers = [proportion_cs(0, n, 0.05, rare=True, prior_mean=0.01).upper for n in range(10, 1000, 10)]
    assert all(a > b for a, b in zip(uppers, uppers[1:], strict=False))


def test_a_median_cs_narrows_as_n_grows() -> None:
    samples = np.random.default_rng(6).normal(100, 10, 6400).tolist()
    widths = [width(median_cs(samples[:n], 0.05)) for n in (100, 400, 1600, 6400)]
    assert widths == sorted(widths, reverse=True) and len(set(widths)) == 4


def test_a_cs_contains_its_estimate() -> None:
    for s, n in ((0, 50), (1, 50), (25, 50), (50, 50)):
        cs = proportion_cs(s, n, 0.05)
        assert 0 <= cs.lower <= cs.estimate <= cs.upper <= 1
    assert proportion_cs(0, 0, 0.05) == CS(proportion_cs(0, 0, 0.05).estimate, 0.0, 1.0, 0, 0.05)
    assert (proportion_cs(0, 10, 0.05).lower, proportion_cs(10, 10, 0.05).upper) == (0.0, 1.0)
    samples = np.random.default_rng(8).exponential(1.0, 300).tolist()
    cs = median_cs(samples, 0.05)
    assert cs.lower <= cs.estimate <= cs.upper


# ---------------------------------------------------------------------------------------------
# censored samples (+inf: a Celery evaluation still in flight when the load run ended)


@pytest.mark.parametrize("unfinished", [0, 10, 29, 30, 31, 60, 200])
def test_median_cs_takes_infinite_samples_and_its_ends_are_order_statistics(unfinished: int) -> None:
    finished = np.random.default_rng(9).normal(50, 5, 60).tolist()
    samples = finished + [math.inf] * unfinished
    cs = median_cs(samples, 0.05)
    assert not any(math.isnan(v) for v in (cs.estimate, cs.lower, cs.upper))
    assert cs.n == len(samples)
    assert cs.lower in samples and cs.upper in samples  # order statistics of the input (+inf included)
    assert cs.lower <= cs.estimate <= cs.upper
    if unfinished > len(finished):
        assert cs.estimate == math.inf  # most never finished: the median is unbounded


def test_more_unfinished_samples_only_move_the_median_cs_up() -> None:
    finished = np.random.default_rng(10).normal(50, 5, 200).tolist()
    ends = [median_cs(finished + [math.inf] * k, 0.05) for k in (0, 20, 60, 120, 200)]
    assert [e.lower for e in ends] == sorted(e.lower for e in ends)
    assert [e.upper for e in ends] == sorted(e.upper for e in ends)
    assert ends[-1].upper == math.inf


def test_a_median_cs_of_too_few_samples_is_unbounded() -> None:
    assert median_cs([], 0.05).lower == -math.inf and median_cs([], 0.05).upper == math.inf
    cs = median_cs([1.0, 2.0, 3.0], 0.05)
    assert (cs.lower, cs.estimate, cs.upper) == (-math.inf, 2.0, math.inf)


# ---------------------------------------------------------------------------------------------
# two paths


def test_difference_cs_arithmetic() -> None:
    candidate = CS(5.0, 3.0, 8.0, 100, 0.025)
    control = CS(2.0, 1.0, 4.0, 80, 0.025)
    diff = difference_cs(candidate, control)
    assert diff == CS(3.0, 3.0 - 4.0, 8.0 - 1.0, 80, 0.05)  # [L_c − U_l, U_c − L_l] at α_c + α_l


@pytest.mark.parametrize(("candidate", "control", "lower", "upper"), [
    ((-math.inf, math.inf), (1.0, 4.0), -math.inf, math.inf),  # a path with too few samples bounds nothing
    ((3.0, 8.0), (-math.inf, math.inf), -math.inf, math.inf),
    ((3.0, math.inf), (1.0, 4.0), -1.0, math.inf),  # Celery's unfinished: only the upper end is lost
    ((math.inf, math.inf), (1.0, 4.0), math.inf, math.inf),  # most of Celery never finished: infinitely slower
    ((3.0, 8.0), (1.0, math.inf), -math.inf, 7.0),
    ((3.0, 8.0), (-math.inf, 4.0), -1.0, math.inf),
    ((-math.inf, 8.0), (1.0, 4.0), -math.inf, 7.0),
])
def test_difference_cs_with_infinite_ends(candidate: tuple[float, float], control: tuple[float, float],
                                          lower: float, upper: float) -> None:
    diff = difference_cs(CS(5.0, *candidate, 100, 0.025), CS(2.0, *control, 100, 0.025))
    assert (diff.lower, diff.upper) == (lower, upper)
    assert not math.isnan(diff.lower) and not math.isnan(diff.upper)


# ---------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("call", [
    lambda: proportion_cs(1, 10, 0.0),
    lambda: proportion_cs(1, 10, 1.0),
    lambda: proportion_cs(1, 10, -0.1),
    lambda: proportion_cs(11, 10, 0.05),  # s > n
    lambda: proportion_cs(-1, 10, 0.05),
    lambda: proportion_cs(True, 10, 0.05),  # a bool is not a count
    lambda: proportion_cs(1, 10, 0.05, prior_mean=0.0),
    lambda: proportion_cs(1, 10, 0.05, prior_mean=1.0),
    lambda: proportion_cs(1, 10, 0.05, prior_strength=0.0),
    lambda: median_cs([1.0, 2.0], 0.0),
    lambda: median_cs([1.0, 2.0], 1.0),
    lambda: median_cs([1.0, math.nan, 2.0], 0.05),
    lambda: min_clean_samples(0.01, 0.0),
    lambda: min_clean_samples(0.01, 1.0),
    lambda: min_clean_samples(0.0, 0.05),
    lambda: min_clean_samples(1.0, 0.05),
], ids=["alpha 0", "alpha 1", "alpha < 0", "s > n", "s < 0", "bool s", "prior mean 0", "prior mean 1",
        "prior strength 0", "median alpha 0", "median alpha 1", "median NaN", "min clean alpha 0",
        "min clean alpha 1", "epsilon 0", "epsilon 1"])
def test_bad_input_raises_sequential_error(call: Callable[[], object]) -> None:
    with pytest.raises(SequentialError):
        call()
    assert issubclass(SequentialError, HarnessError)
