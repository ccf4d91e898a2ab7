"""The statistics behind the gate: small pure functions, each checked against known values.

Two kinds of evidence need two kinds of statistics (DESIGN.md §4):

Rare events (mismatches, errors) are judged by a confidence bound on their *rate*, never by a rank
test (rank tests are blind to zero-versus-a-few: kayenta#426, spinnaker#5622).

- ``rule_of_three_upper(n, c)``: with 0 events in n trials the exact one-sided upper bound is
  ``1 - (1 - c) ** (1 / n)`` (≈ 3/n at c = 0.95). n = 0 gives 1.0: no data bounds nothing.
- ``clopper_pearson_upper(k, n, c)`` / ``clopper_pearson_lower``: the exact one-sided bounds from
  the beta distribution, ``Beta(c; k + 1, n - k)`` and ``Beta(1 - c; k, n - k + 1)``. For k = 0 the
  upper bound *is* the rule of three; it is computed in closed form there.
- ``rate_bound(k, n, c)`` gathers estimate, one-sided lower and upper bounds and the method's name;
  ``mismatch_upper_bound(k, n, c)`` is its upper bound (rule of three for k = 0, Clopper–Pearson
  otherwise).
- ``samples_needed(eps, c)``: the smallest n whose zero-event upper bound is strictly below eps,
  i.e. ``floor(log(1 - c) / log(1 - eps)) + 1`` (eps = 1 %, c = 95 %: 299).
- ``rate_difference_interval(k1, n1, k2, n2, c)``: a two-sided interval for ``p1 - p2`` by
  Newcombe's hybrid score method (his method 10, built from two Wilson intervals): it behaves well
  at zero counts, where the Wald interval collapses to a point. ``samples_needed_rate_difference``
  is the n per arm that, with zero events on both arms, brings its upper bound to at most delta.

Continuous measurements (latency) are compared as distributions:

- ``hodges_lehmann(control, candidate, c)``: the shift ``candidate - control`` estimated as the
  median of all pairwise differences ``y_j - x_i``, with the distribution-free two-sided interval
  ``[d_(k), d_(nm - k + 1)]`` where ``k - 1`` is the largest ``u`` with ``P(U <= u) <= (1 - c) / 2``
  under the null distribution of the Mann–Whitney U (Hollander & Wolfe; what R's ``wilcox.test``
  and Kayenta's classifier report). Each end is therefore a one-sided ``(1 + c) / 2`` bound.
  The null distribution is exact (a Gaussian binomial coefficient, in integers) when both samples
  are smaller than 50 and have no ties, as in R; otherwise k comes from the normal approximation
  with the tie-corrected variance and a continuity correction. The pairwise differences are
  materialised only up to ``PAIR_LIMIT`` pairs; beyond that each needed order statistic is found by
  bisection on the value with an O(m log n) count per step, which is deterministic, needs no
  memory beyond the samples, and agrees with the full method to within a 1e-12 relative tolerance
  (no subsampling). The Mann–Whitney p-value is one-sided, "the candidate is slower"
  (``scipy.stats.mannwhitneyu(candidate, control, alternative="greater")``).

Also ``binomial_share_test(k, n, p)`` (two-sided exact binomial p-value and Clopper–Pearson
two-sided interval for the observed share) and ``percentiles(samples)`` (p50 / p95 / p99, linear
interpolation). Bad input (negative counts, k > n, confidence outside (0, 1), empty or non-finite
samples) raises ``StatsError`` naming the argument.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats as sps

from harness.errors import HarnessError

PAIR_LIMIT = 1_000_000  # largest n×m whose pairwise differences are materialised (8 MB of float64)
EXACT_LIMIT = 50  # exact Mann–Whitney null distribution when both samples are smaller than this and untied
_BISECT_RTOL = 1e-12

Samples = Sequence[float] | npt.NDArray[np.floating]  # measurements: a list or a numpy array


class StatsError(HarnessError):
    """A statistic was asked of arguments it is not defined for."""


# ---------------------------------------------------------------------------------------------
# rates of rare events


@dataclass(frozen=True)
class RateBound:
    """k events in n trials: estimate and one-sided bounds at ``confidence``."""

    k: int
    n: int
    confidence: float
    estimate: float | None  # None when n == 0
    lower: float
    upper: float
    method: Literal["rule of three", "Clopper-Pearson", "no data"]


def _check_confidence(confidence: float, name: str = "confidence") -> None:
    if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not 0 < confidence < 1:
        raise StatsError(f"{name} must be a number strictly between 0 and 1, got {confidence!r}")


def _check_count(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise StatsError(f"{name} must be a non-negative integer, got {value!r}")


def _check_counts(k: int, n: int) -> None:
    _check_count(k, "k")
    _check_count(n, "n")
    if k > n:
        raise StatsError(f"k must not exceed n, got k={k}, n={n}")


def rule_of_three_upper(n: int, confidence: float = 0.95) -> float:
    """Exact one-sided upper bound on a rate after 0 events in ``n`` trials: 1 - (1-c)^(1/n)."""
    _check_count(n, "n")
    _check_confidence(confidence)
    if n == 0:
        return 1.0
    return -math.expm1(math.log1p(-confidence) / n)


def clopper_pearson_upper(k: int, n: int, confidence: float = 0.95) -> float:
    """Exact (Clopper–Pearson) one-sided upper bound on a rate after ``k`` events in ``n`` trials."""
    _check_counts(k, n)
    _check_confidence(confidence)
    if n == 0 or k == n:
        return 1.0
    if k == 0:
        return rule_of_three_upper(n, confidence)
    return float(sps.beta.ppf(confidence, k + 1, n - k))


def clopper_pearson_lower(k: int, n: int, confidence: float = 0.95) -> float:
    """Exact (Clopper–Pearson) one-sided lower bound on a rate after ``k`` events in ``n`` trials."""
    _check_counts(k, n)
    _check_confidence(confidence)
    if k == 0:
        return 0.0
    if k == n:
        return math.exp(math.log1p(-confidence) / n)
    return float(sps.beta.ppf(1 - confidence, k, n - k + 1))


def rate_bound(k: int, n: int, confidence: float = 0.95) -> RateBound:
    """Estimate and one-sided bounds for a rare-event rate, naming the method used for the upper bound."""
    _check_counts(k, n)
    _check_confidence(confidence)
    if n == 0:
        return RateBound(k, n, confidence, None, 0.0, 1.0, "no data")
    method: Literal["rule of three", "Clopper-Pearson"] = "rule of three" if k == 0 else "Clopper-Pearson"
    return RateBound(k, n, confidence, k / n, clopper_pearson_lower(k, n, confidence),
                     clopper_pearson_upper(k, n, confidence), method)


def mismatch_upper_bound(k: int, n: int, confidence: float = 0.95) -> float:
    """One-sided upper bound on a mismatch rate: rule of three for k = 0, Clopper–Pearson for k > 0."""
    return rate_bound(k, n, confidence).upper


def samples_needed(epsilon: float, confidence: float = 0.95) -> int:
    """Smallest n such that 0 events in n trials give an upper bound strictly below ``epsilon``."""
    _check_confidence(epsilon, "epsilon")
    _check_confidence(confidence)
    n = max(1, math.floor(math.log1p(-confidence) / math.log1p(-epsilon)) + 1)
    while n > 1 and rule_of_three_upper(n - 1, confidence) < epsilon:  # guard against rounding
        n -= 1
    while rule_of_three_upper(n, confidence) >= epsilon:
        n += 1
    return n


@dataclass(frozen=True)
class Interval:
    """A two-sided interval at ``confidence`` around ``estimate``."""

    estimate: float
    lower: float
    upper: float
    confidence: float


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided Wilson score interval for a proportion; (0, 1) when n == 0."""
    _check_counts(k, n)
    _check_confidence(confidence)
    if n == 0:
        return 0.0, 1.0
    z = float(sps.norm.ppf(1 - (1 - confidence) / 2))
    p = k / n
    centre = (k + z * z / 2) / (n + z * z)
    half = z / (n + z * z) * math.sqrt(k * (n - k) / n + z * z / 4)
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


def rate_difference_interval(k1: int, n1: int, k2: int, n2: int, confidence: float = 0.95) -> Interval:
    """Newcombe's hybrid score interval for ``k1/n1 - k2/n2`` (two-sided, at ``confidence``)."""
    _check_counts(k1, n1)
    _check_counts(k2, n2)
    _check_confidence(confidence)
    if n1 == 0 or n2 == 0:
        raise StatsError(f"a rate difference needs trials on both sides, got n1={n1}, n2={n2}")
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_interval(k1, n1, confidence)
    l2, u2 = wilson_interval(k2, n2, confidence)
    d = p1 - p2
    return Interval(d, d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2), confidence)


def samples_needed_rate_difference(delta: float, confidence: float = 0.95) -> int:
    """Smallest n per arm such that 0 events on both arms give a difference upper bound <= ``delta``."""
    _check_confidence(delta, "delta")
    _check_confidence(confidence)
    z = float(sps.norm.ppf(1 - (1 - confidence) / 2))
    n = max(1, math.ceil(z * z * (1 - delta) / delta))  # Wilson upper bound of 0/n is z²/(n + z²)
    while n > 1 and rate_difference_interval(0, n - 1, 0, n - 1, confidence).upper <= delta:
        n -= 1
    while rate_difference_interval(0, n, 0, n, confidence).upper > delta:
        n += 1
    return n


# ---------------------------------------------------------------------------------------------
# shares


@dataclass(frozen=True)
class ShareTest:
    """k of n went one way where a share ``expected`` was configured."""

    k: int
    n: int
    expected: float
    observed: float
    p_value: float  # two-sided exact binomial test
    lower: float  # two-sided Clopper–Pearson interval for the observed share
    upper: float
    confidence: float


def binomial_share_test(k: int, n: int, p: float, confidence: float = 0.95) -> ShareTest:
    """Is k of n consistent with share ``p``? Two-sided exact binomial test and Clopper–Pearson interval."""
    _check_counts(k, n)
    _check_confidence(confidence)
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 1:
        raise StatsError(f"p must be a share within 0..1, got {p!r}")
    if n == 0:
        raise StatsError("a share test needs at least one trial, got n=0")
    result = sps.binomtest(int(k), int(n), float(p), alternative="two-sided")
    ci = result.proportion_ci(confidence_level=confidence, method="exact")
    return ShareTest(int(k), int(n), float(p), k / n, float(result.pvalue), float(ci.low), float(ci.high),
                     confidence)


# ---------------------------------------------------------------------------------------------
# distributions


@dataclass(frozen=True)
class Percentiles:
    n: int
    p50: float
    p95: float
    p99: float


def _sample(values: Samples, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise StatsError(f"{name} must be a sequence of numbers: {exc}") from exc
    if arr.ndim != 1 or arr.size == 0:
        raise StatsError(f"{name} must be a non-empty one-dimensional sequence of numbers")
    if not np.all(np.isfinite(arr)):
        raise StatsError(f"{name} holds {int(np.sum(~np.isfinite(arr)))} non-finite value(s) (NaN or inf)")
    return arr


def percentiles(samples: Samples) -> Percentiles:
    """p50 / p95 / p99 of the samples (linear interpolation between order statistics)."""
    arr = _sample(samples, "samples")
    p50, p95, p99 = (float(v) for v in np.percentile(arr, [50, 95, 99]))
    return Percentiles(int(arr.size), p50, p95, p99)


@dataclass(frozen=True)
class ShiftEstimate:
    """Hodges–Lehmann shift ``candidate - control`` with its distribution-free interval."""

    estimate: float
    lower: float  # -inf / +inf when the samples are too small for an interval at this confidence
    upper: float
    confidence: float  # requested two-sided confidence
    achieved_confidence: float  # the interval's actual coverage (order statistics are discrete)
    n_control: int
    n_candidate: int
    p_value: float  # one-sided Mann–Whitney, alternative "the candidate is slower" (stochastically greater)
    method: Literal["exact", "normal approximation"]


@lru_cache(maxsize=64)
def _mann_whitney_cdf(n: int, m: int) -> tuple[float, ...]:
    """P(U <= u) for u = 0..nm under the null, from the Gaussian binomial coefficient [n+m choose n]_q."""
    top = n * m
    coeffs = [1] + [0] * top
    for i in range(1, n + 1):
        step = m + i
        for t in range(top, step - 1, -1):  # multiply by (1 - q^(m+i))
            coeffs[t] -= coeffs[t - step]
        for t in range(i, top + 1):  # divide by (1 - q^i); exact, the quotient is a polynomial
            coeffs[t] += coeffs[t - i]
    total = math.comb(n + m, n)
    out, running = [], 0
    for c in coeffs:
        running += c
        out.append(running / total)
    return tuple(out)


def _critical_rank(x: np.ndarray, y: np.ndarray, confidence: float) -> tuple[int, float, Literal[
        "exact", "normal approximation"]]:
    """The k of the interval [d_(k), d_(nm-k+1)] (0 when none exists), its coverage, and the method."""
    n, m = x.size, y.size
    nm = n * m
    half_alpha = (1 - confidence) / 2
    combined = np.concatenate([x, y])
    _, tie_counts = np.unique(combined, return_counts=True)
    if n < EXACT_LIMIT and m < EXACT_LIMIT and tie_counts.size == combined.size:
        cdf = _mann_whitney_cdf(min(n, m), max(n, m))  # U's null distribution is symmetric in n, m
        k = int(np.searchsorted(np.asarray(cdf), half_alpha * (1 + 1e-12), side="right"))
        k = min(k, (nm + 1) // 2)
        return k, (1 - 2 * cdf[k - 1]) if k >= 1 else 0.0, "exact"
    big_n = n + m
    ties = float(np.sum(tie_counts.astype(float) ** 3 - tie_counts))
    variance = nm / 12 * ((big_n + 1) - ties / (big_n * (big_n - 1)))
    sigma = math.sqrt(max(variance, 0.0))
    z = float(sps.norm.ppf(1 - half_alpha))
    k = min(math.floor(nm / 2 - z * sigma + 0.5), (nm + 1) // 2)
    if k < 1:
        return 0, 0.0, "normal approximation"
    achieved = 1 - 2 * float(sps.norm.cdf((k - 0.5 - nm / 2) / sigma)) if sigma > 0 else 1.0
    return k, achieved, "normal approximation"


def _order_statistics(x: np.ndarray, y: np.ndarray, ranks: Sequence[int], pair_limit: int = PAIR_LIMIT
                      ) -> list[float]:
    """The given 1-based order statistics of the pairwise differences ``y_j - x_i``."""
    n, m = x.size, y.size
    if n * m <= pair_limit:
        d = np.subtract.outer(y, x).ravel()
        idx = sorted({r - 1 for r in ranks})
        part = np.partition(d, idx)
        return [float(part[r - 1]) for r in ranks]
    xs, ys = np.sort(x), np.sort(y)

    def count_le(t: float) -> int:  # #{(i, j): y_j - x_i <= t} = sum_j #{i: x_i >= y_j - t}
        return int(n * m - np.searchsorted(xs, ys - t, side="left").sum())

    out = []
    for r in ranks:
        lo, hi = float(ys[0] - xs[-1]), float(ys[-1] - xs[0])
        if count_le(lo) >= r:
            out.append(lo)
            continue
        while hi - lo > _BISECT_RTOL * max(1.0, abs(lo), abs(hi)):  # invariant: count(lo) < r <= count(hi)
            mid = (lo + hi) / 2
            if mid in (lo, hi):
                break
            if count_le(mid) >= r:
                hi = mid
            else:
                lo = mid
        out.append(hi)
    return out


def hodges_lehmann(control: Samples, candidate: Samples, confidence: float = 0.95
                   ) -> ShiftEstimate:
    """Shift of ``candidate`` over ``control`` (HL estimate), its two-sided interval and the MW p-value."""
    _check_confidence(confidence)
    x = _sample(control, "control")
    y = _sample(candidate, "candidate")
    n, m = x.size, y.size
    nm = n * m
    k, achieved, method = _critical_rank(x, y, confidence)
    median_ranks = [(nm + 1) // 2, nm // 2 + 1]
    ranks = median_ranks + ([k, nm - k + 1] if k >= 1 else [])
    stats_ = _order_statistics(x, y, ranks)
    estimate = (stats_[0] + stats_[1]) / 2
    lower, upper = (stats_[2], stats_[3]) if k >= 1 else (-math.inf, math.inf)
    p_value = float(sps.mannwhitneyu(y, x, alternative="greater").pvalue)
    if math.isnan(p_value):  # every value tied: no evidence the candidate is slower
        p_value = 1.0
    return ShiftEstimate(estimate, lower, upper, confidence, achieved, n, m, p_value, method)
