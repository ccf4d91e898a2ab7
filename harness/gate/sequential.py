"""Anytime-valid statistics for the gate: confidence sequences that may be read after every round.

The gate gathers evidence in rounds and looks after each one. A fixed-sample interval read after
every round and acted on at the first decisive look errs far more often than its level says; a
*confidence sequence* (CS) does not: with probability at least 1 − α it covers the true value at
every sample size at once, so the gate may stop the moment a criterion is decided. Every CS here
comes from a test martingale M_n(θ₀) (nonnegative, mean 1 when θ₀ is true) and Ville's inequality,
P(sup_n M_n(θ₀) ≥ 1/α) ≤ α: the CS at n is {θ₀ : M_n(θ₀) < 1/α}.

- **Proportions** (``proportion_cs``): Robbins' method of mixtures with a beta mixing distribution,
  M_n(p₀) = B(a + s, b + n − s) / (B(a, b) · p₀^s · (1 − p₀)^(n − s)) after s events in n trials
  (Robbins 1970, "Statistical methods related to the law of the iterated logarithm"; Howard, Ramdas,
  McAuliffe & Sekhon 2021, "Time-uniform, nonparametric, nonasymptotic confidence sequences", Annals
  of Statistics, §3). For rare events (``rare=True``: mismatches, platform errors) half the mixing
  weight is put on p = 0, whose martingale is (1 − p₀)^(−n) while no event has been seen: a clean
  sample then decides almost as fast as the rule of three (304 clean pairs bound a rate below 1 % at
  α = 5 % with the mixing mean at 1 %, against 299 for a single fixed-n look), and events still move the bound through the beta
  part. A mixture of test martingales with fixed weights is a test martingale, so the CS keeps its level.
- **Medians** (``median_cs``): Howard & Ramdas 2022, "Sequential estimation of quantiles with
  applications to A/B-testing and best-arm identification" (Bernoulli 28(3)), the fixed-quantile CS:
  at the true median m, the count of observations ≤ m after n is Binomial(n, ½), so the counts s
  whose beta-binomial martingale at p₀ = ½ stays below 1/α form an interval [s_lo, s_hi], and the
  median lies in [X₍s_lo₎, X₍s_hi+1₎) (order statistics) at every n with probability ≥ 1 − α. No
  assumption on the distribution; an unfinished Celery evaluation may enter as +∞, which only moves
  the CS in the conservative direction. The gate applies it to the median of paired Celery − legacy
  differences (``criteria.paired_differences``).
- **Two rates** (``difference_cs``): a CS at α/2 for each path's rate gives [L_c − U_l, U_c − L_l] for
  the difference at α (a union bound): the error rate.

All functions are pure and take plain numbers; ``decide`` turns their bounds into verdicts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import betaln

from harness.errors import HarnessError

__all__ = ["CS", "METHOD", "MEDIAN_PRIOR", "SequentialError", "difference_cs", "median_cs", "min_clean_samples",
           "min_median_samples", "proportion_cs"]

METHOD = ("anytime-valid confidence sequences: beta-binomial mixture martingales (Robbins; Howard et al. 2021) "
          "for rates, the fixed-quantile CS of Howard & Ramdas 2022 for medians")
# Beta(r, r) mixing distribution of the median CS. Measured widths (share of the order statistics the CS
# spans at alpha 2.5 %) for n = 100 / 200 / 400 / 800: r = 8: .33/.235/.168/.121; r = 32: .37/.235/.163/.116;
# r = 128: .53/.305/.182/.121. r = 32 is tightest for the few hundred samples per path of one gate run.
MEDIAN_PRIOR = 32.0
_TINY = 1e-12


class SequentialError(HarnessError):
    """Bad input to a confidence sequence (a count out of range, a level outside (0, 1))."""


@dataclass(frozen=True)
class CS:
    """A confidence sequence read at one sample size: ``lower`` <= the true value <= ``upper``."""

    estimate: float
    lower: float
    upper: float
    n: int
    alpha: float


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise SequentialError(f"alpha must be within (0, 1), got {alpha!r}")


def _log_mixture(s: int, n: int, p0: float, a: float, b: float, rare: bool) -> float:
    """log M_n(p0) of the (optionally zero-weighted) beta-binomial mixture after s events in n trials."""
    p0 = min(max(p0, _TINY), 1 - _TINY)
    log_bb = betaln(a + s, b + n - s) - betaln(a, b) - s * math.log(p0) - (n - s) * math.log1p(-p0)
    if not rare:
        return float(log_bb)
    log_half = math.log(0.5)
    if s > 0:
        return float(log_half + log_bb)
    log_zero = -n * math.log1p(-p0)
    return float(log_half + np.logaddexp(log_zero, log_bb))


def _prior(mean: float, strength: float) -> tuple[float, float]:
    return mean * strength, (1 - mean) * strength


def proportion_cs(s: int, n: int, alpha: float, *, rare: bool = False, prior_mean: float = 0.5,
                  prior_strength: float = 2.0) -> CS:
    """The CS for a proportion after ``s`` events in ``n`` trials (n = 0: the whole of [0, 1]).

    ``prior_mean`` and ``prior_strength`` set the beta mixing distribution Beta(mean·strength,
    (1 − mean)·strength); they change how fast the CS narrows for rates near that mean, never its level.
    """
    _check_alpha(alpha)
    if isinstance(s, bool) or isinstance(n, bool) or not 0 <= s <= n:
        raise SequentialError(f"need 0 <= events <= trials, got {s} events in {n} trials")
    if not 0 < prior_mean < 1 or prior_strength <= 0:
        raise SequentialError(f"the mixing distribution needs a mean within (0, 1) and a positive strength, got "
                              f"{prior_mean!r}, {prior_strength!r}")
    if n == 0:
        return CS(math.nan, 0.0, 1.0, 0, alpha)
    a, b = _prior(prior_mean, prior_strength)
    threshold = math.log(1 / alpha)
    estimate = s / n

    def rejected(p0: float) -> bool:
        return _log_mixture(s, n, p0, a, b, rare) >= threshold

    def crossing(inside: float, outside: float) -> float:
        # M is monotone between the estimate and either end: bisect for the boundary of {M < 1/α}.
        for _ in range(80):
            mid = (inside + outside) / 2
            if rejected(mid):
                outside = mid
            else:
                inside = mid
        return inside

    upper = 1.0 if not rejected(1 - _TINY) else crossing(max(estimate, _TINY), 1 - _TINY)
    lower = 0.0 if s == 0 or not rejected(_TINY) else crossing(min(estimate, 1 - _TINY), _TINY)
    return CS(estimate, lower, upper, n, alpha)


def min_clean_samples(epsilon: float, alpha: float, *, prior_mean: float | None = None) -> int:
    """The fewest trials with no event whose rare-event CS has its upper end below ``epsilon``."""
    _check_alpha(alpha)
    if not 0 < epsilon < 1:
        raise SequentialError(f"epsilon must be within (0, 1), got {epsilon!r}")
    mean = prior_mean if prior_mean is not None else epsilon
    lo, hi = 1, 1
    while proportion_cs(0, hi, alpha, rare=True, prior_mean=mean).upper >= epsilon:
        lo, hi = hi, hi * 2
        if hi > 10**9:
            raise SequentialError(f"no sample size bounds a rate below {epsilon!r} at alpha {alpha!r}")
    while lo < hi:
        mid = (lo + hi) // 2
        if proportion_cs(0, mid, alpha, rare=True, prior_mean=mean).upper < epsilon:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _median_counts(n: int, alpha: float, r: float) -> tuple[int, int]:
    """The counts s in [s_lo, s_hi] whose beta-binomial martingale at p0 = 1/2 stays below 1/alpha."""
    s = np.arange(n + 1)
    log_m = betaln(r + s, r + n - s) - betaln(r, r) + n * math.log(2)
    accepted = np.nonzero(log_m < math.log(1 / alpha))[0]
    if accepted.size == 0:  # cannot happen (the middle count always has M <= 1), kept for safety
        return 0, n
    return int(accepted[0]), int(accepted[-1])


def median_cs(samples: Sequence[float], alpha: float, *, r: float = MEDIAN_PRIOR) -> CS:
    """The CS for the median of the distribution ``samples`` come from; ends may be ±inf when n is small."""
    _check_alpha(alpha)
    x = np.sort(np.asarray([float(v) for v in samples], dtype=float))
    if np.isnan(x).any():
        raise SequentialError("a latency sample is NaN")
    n = int(x.size)
    if n == 0:
        return CS(math.nan, -math.inf, math.inf, 0, alpha)
    s_lo, s_hi = _median_counts(n, alpha, r)
    lower = -math.inf if s_lo < 1 else float(x[s_lo - 1])  # X_(s_lo), 1-based
    upper = math.inf if s_hi + 1 > n else float(x[s_hi])  # X_(s_hi + 1)
    return CS(float(np.median(x)), lower, upper, n, alpha)


def min_median_samples(alpha: float, *, r: float = MEDIAN_PRIOR) -> int:
    """The fewest samples whose median CS has both ends finite."""
    _check_alpha(alpha)
    n = 1
    while True:
        s_lo, s_hi = _median_counts(n, alpha, r)
        if s_lo >= 1 and s_hi + 1 <= n:
            return n
        n += 1


def difference_cs(candidate: CS, control: CS) -> CS:
    """candidate − control from two CSs (each at α/2 for a difference at α)."""
    def sub(x: float, y: float, undefined: float) -> float:
        if math.isinf(x) and math.isinf(y) and (x > 0) == (y > 0):
            return undefined  # inf − inf: nothing is known, take the cautious end
        return x - y
    estimate = sub(candidate.estimate, control.estimate, math.nan)
    return CS(estimate, sub(candidate.lower, control.upper, -math.inf), sub(candidate.upper, control.lower, math.inf),
              min(candidate.n, control.n), candidate.alpha + control.alpha)
