"""Fixed-sample statistics the harness still reports with: small pure functions, each checked against known values.

The gate itself decides on confidence sequences (``harness.gate.sequential``), valid however often it
looks. What remains here is for one look at a finished sample:

- ``clopper_pearson_upper(k, n, c)`` / ``clopper_pearson_lower``: the exact one-sided bounds on a rate
  from the beta distribution, ``Beta(c; k + 1, n - k)`` and ``Beta(1 - c; k, n - k + 1)``; for k = 0 the
  upper bound is the rule of three, ``1 - (1 - c) ** (1 / n)`` (``rule_of_three_upper``), in closed
  form. ``harness chaos --runs K`` reports rates over runs with them.
- ``percentiles(samples)``: p50 / p95 / p99 (linear interpolation), for the gate's and the reports'
  latency tables.

Bad input (negative counts, k > n, confidence outside (0, 1), empty or non-finite samples) raises
``StatsError`` naming the argument.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats as sps

from harness.errors import HarnessError

Samples = Sequence[float] | npt.NDArray[np.floating]  # measurements: a list or a numpy array


class StatsError(HarnessError):
    """A statistic was asked of arguments it is not defined for."""


# ---------------------------------------------------------------------------------------------
# rates of rare events


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


# ---------------------------------------------------------------------------------------------
# measurements


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
