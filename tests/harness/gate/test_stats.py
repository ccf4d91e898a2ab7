"""The fixed-sample statistics against known values (textbook tables, closed forms)."""

from __future__ import annotations

import math

import pytest
from scipy import stats as sps

from harness.gate import stats
from harness.gate.stats import (
    StatsError,
    clopper_pearson_lower,
    clopper_pearson_upper,
    percentiles,
    rule_of_three_upper,
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


@pytest.mark.parametrize("call", [
    lambda: rule_of_three_upper(-1),
    lambda: rule_of_three_upper(10, 1.0),
    lambda: rule_of_three_upper(10, 0),
    lambda: clopper_pearson_upper(5, 4),
    lambda: clopper_pearson_upper(True, 4),  # type: ignore[arg-type]
    lambda: clopper_pearson_lower(1.5, 4),  # type: ignore[arg-type]
])
def test_bad_arguments_are_named(call: object) -> None:
    with pytest.raises(StatsError):
        call()  # type: ignore[operator]


# ---------------------------------------------------------------------------------------------
# measurements


def test_percentiles() -> None:
    p = percentiles(list(range(1, 101)))
    assert (p.n, p.p50, p.p95, p.p99) == (100, 50.5, pytest.approx(95.05), pytest.approx(99.01))
    assert percentiles([7.0]) == stats.Percentiles(1, 7.0, 7.0, 7.0)
    with pytest.raises(StatsError, match="non-empty"):
        percentiles([])
    with pytest.raises(StatsError, match="non-finite"):
        percentiles([1.0, math.nan])
