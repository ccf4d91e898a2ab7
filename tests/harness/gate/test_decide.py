"""The gate's decision on constructed evidence: every rule, the rendering, and the thresholds file."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from harness.errors import HarnessError
from harness.gate import (
    DEFAULT_THRESHOLDS,
    ChaosOutcome,
    Criterion,
    ErrorCount,
    Evidence,
    GateError,
    LatencyEvidence,
    ParityEvidence,
    SplitEvidence,
    Thresholds,
    ThresholdsError,
    Verdict,
    decide,
    load_thresholds,
    render_text,
)
from harness.gate.decide import samples_needed
from harness.gate.sequential import min_clean_samples

TH = load_thresholds()
LATENCY = "latency (queueing + delivery)"
EXECUTION = "execution time"
RESOURCES = "resources (CPU, peak memory)"


def latency(overhead_shift_ms: float = 0.0, n: int = 500, legacy_overhead_ms: float = 12.0,
            execution_shift_ms: float = 0.0, memory_factor: float = 1.0, errors: tuple[int, int] = (0, 0),
            seed: int = 0) -> LatencyEvidence:
    """A load run's evidence, every sequence in submission order. Overhead (submit + queue + delivery =
    end-to-end − execution) is about normal(12, 2) ms on legacy (scaled to ``legacy_overhead_ms``), Celery's
    queue wait ``overhead_shift_ms`` longer; execution about normal(200, 20) ms on both paths, Celery's
    ``execution_shift_ms`` longer; CPU normal(30, 3) ms; peak RSS normal(9000, 300) KiB, Celery's ×
    ``memory_factor``."""
    rng = np.random.default_rng(seed)
    scale = legacy_overhead_ms / 12.0
    samples: dict[str, list[float]] = {}
    stages: dict[str, dict[str, list[float]]] = {}
    resources: dict[str, dict[str, list[float]]] = {}
    for path in ("legacy", "celery"):
        celery = path == "celery"
        submit = rng.normal(2.0, 0.5, n) * scale
        queue = rng.normal(7.0, 1.5, n) * scale + (overhead_shift_ms if celery else 0.0)
        delivery = rng.normal(3.0, 1.0, n) * scale
        execution = rng.normal(200.0, 20.0, n) + (execution_shift_ms if celery else 0.0)
        overhead = submit + queue + delivery
        stages[path] = {"submit": submit.tolist(), "queue": queue.tolist(), "execution": execution.tolist(),
                        "delivery": delivery.tolist(), "overhead": overhead.tolist()}
        samples[path] = (overhead + execution).tolist()
        resources[path] = {"cpu_ms": rng.normal(30.0, 3.0, n).tolist(),
                           "peak_rss_kb": (rng.normal(9000.0, 300.0, n) * (memory_factor if celery else 1.0)).tolist()}
    return LatencyEvidence(samples, {"legacy": ErrorCount(n, errors[0]), "celery": ErrorCount(n, errors[1])}, {},
                           stages, resources)


def with_overhead(evidence: LatencyEvidence, legacy: Sequence[float], celery: Sequence[float]) -> LatencyEvidence:
    """``evidence`` with the ``overhead`` stage of both paths replaced."""
    stages = {path: dict(by_stage) for path, by_stage in evidence.stages_ms.items()}
    stages["legacy"]["overhead"], stages["celery"]["overhead"] = list(legacy), list(celery)
    return replace(evidence, stages_ms=stages)


def good() -> Evidence:
    return Evidence(
        parity=ParityEvidence(n=700, mismatches=0, mismatches_by_field={}, wrong={"legacy": 0, "celery": 0}, noise=2),
        chaos=(ChaosOutcome("worker-kill", "held"), ChaosOutcome("broker-restart", "finding")),
        latency=latency(),
        split=SplitEvidence(50, 1000, 507),
    )


def by_name(verdict: Verdict) -> dict[str, str]:
    return {c.name: c.status for c in verdict.criteria}


def criterion(verdict: Verdict, name: str) -> Criterion:
    return next(c for c in verdict.criteria if c.name == name)


def number(c: Criterion, key: str) -> float:
    value = c.values[key]
    assert isinstance(value, int | float), (key, value)
    return float(value)


# ---------------------------------------------------------------------------------------------
# the four required cases


def test_pass_when_every_criterion_holds() -> None:
    verdict = decide(good(), 50, 75, TH)
    assert (verdict.verdict, verdict.exit_code) == ("PASS", 0)
    assert set(by_name(verdict).values()) == {"PASS"}
    assert list(by_name(verdict)) == ["parity mismatch rate", "critical fields", "oracle (wrong results)",
                                      "chaos invariants", LATENCY, EXECUTION, RESOURCES, "error rate",
                                      "split accuracy"]
    assert verdict.headline == "PASS: may move the split 50 % → 75 %: all 9 criteria hold"
    assert verdict.epsilon == 0.01
    assert "confidence sequences" in verdict.method


def test_fail_on_one_mismatch_at_a_critical_field() -> None:
    # 1 mismatch in 2000 is within the 1 % rate budget (the CS's upper end is below ε); in 700 it would not
    # be yet (one mismatch needs more pairs than zero): the critical field fails the step either way.
    parity = ParityEvidence(2000, 1, {"exit_code": 1}, {"legacy": 0, "celery": 0})
    verdict = decide(replace(good(), parity=parity), 50, 75, TH)
    assert (verdict.verdict, verdict.exit_code) == ("FAIL", 1)
    assert by_name(verdict)["critical fields"] == "FAIL"
    assert by_name(verdict)["parity mismatch rate"] == "PASS"
    assert verdict.headline == "FAIL: may not move the split 50 % → 75 %: 1 mismatch on exit_code"


def test_inconclusive_on_too_few_samples() -> None:
    parity = ParityEvidence(120, 0, {}, {"legacy": 0, "celery": 0})
    verdict = decide(replace(good(), parity=parity), 50, 75, TH)
    assert (verdict.verdict, verdict.exit_code) == ("INCONCLUSIVE", 2)
    rate = criterion(verdict, "parity mismatch rate")
    assert rate.status == "INCONCLUSIVE"
    assert "need >= 304" in rate.detail
    # 304 clean pairs bound a rate below 1 % at every look (the fixed-sample rule of three needed 299)
    assert verdict.samples_needed["parity_pairs"] == 304 == min_clean_samples(0.01, 0.05)
    assert number(rate, "upper") > 0.01


def test_fail_on_latency_regression() -> None:
    verdict = decide(replace(good(), latency=latency(overhead_shift_ms=60)), 50, 75, TH)
    assert verdict.verdict == "FAIL"
    lat = criterion(verdict, LATENCY)
    assert lat.status == "FAIL"
    assert number(lat, "tolerance") == 10.0  # max(10 ms, 15 % of a 12 ms median)
    assert number(lat, "lower") > number(lat, "tolerance")
    assert number(lat, "noise_floor") < number(lat, "tolerance")
    assert "queueing + delivery regression" in verdict.headline
    assert by_name(verdict)[EXECUTION] == "PASS"  # the executions are as fast as legacy's


# ---------------------------------------------------------------------------------------------
# parity


def test_budget_shrinks_as_the_target_grows() -> None:
    parity = ParityEvidence(120, 0, {}, {"celery": 0})
    assert by_name(decide(replace(good(), parity=parity, split=SplitEvidence(10, 1000, 98)), 10, 25, TH))[
        "parity mismatch rate"] == "PASS"  # ε = 3 %: 103 pairs suffice
    assert by_name(decide(replace(good(), parity=parity), 25, 50, TH))["parity mismatch rate"] == "INCONCLUSIVE"
    assert [TH.epsilon(t) for t in (1, 10, 11, 25, 30, 50, 75, 76, 100)] == [
        0.05, 0.05, 0.03, 0.03, 0.02, 0.02, 0.01, 0.005, 0.005]
    assert [samples_needed(TH, t)["parity_pairs"] for t in (10, 25, 50, 75, 100)] == [62, 103, 153, 304, 604]


def test_mismatch_rate_over_budget_fails() -> None:
    parity = ParityEvidence(700, 30, {"output": 30}, {"celery": 0})
    verdict = decide(replace(good(), parity=parity), 50, 75, TH)
    rate = criterion(verdict, "parity mismatch rate")
    assert (verdict.verdict, rate.status) == ("FAIL", "FAIL")
    assert rate.values["k"] == 30
    assert number(rate, "lower") > 0.01  # the CS's lower end is above ε, not just the estimate
    assert "mismatch rate above ε = 1 %" in rate.detail


def test_mismatches_within_budget_but_a_bound_over_it_is_inconclusive() -> None:
    parity = ParityEvidence(700, 4, {"output": 4}, {"celery": 0})
    rate = criterion(decide(replace(good(), parity=parity), 50, 75, TH), "parity mismatch rate")
    assert rate.status == "INCONCLUSIVE"
    assert number(rate, "lower") <= 0.01 <= number(rate, "upper")
    assert "straddles" in rate.detail


def test_a_few_non_critical_mismatches_can_pass() -> None:
    parity = ParityEvidence(2000, 3, {"output": 3}, {"celery": 0})
    verdict = decide(replace(good(), parity=parity), 50, 75, TH)
    assert verdict.verdict == "PASS"
    assert number(criterion(verdict, "parity mismatch rate"), "upper") < 0.01


def test_wrong_results_fail_on_either_path() -> None:
    for wrong in ({"legacy": 0, "celery": 2}, {"legacy": 1, "celery": 0}):
        parity = ParityEvidence(700, 0, {}, wrong)
        verdict = decide(replace(good(), parity=parity), 50, 75, TH)
        assert verdict.verdict == "FAIL"
        assert by_name(verdict)["oracle (wrong results)"] == "FAIL"
    assert "2 wrong on celery" in decide(
        replace(good(), parity=ParityEvidence(700, 0, {}, {"celery": 2})), 50, 75, TH).headline


def test_no_oracle_checks_is_inconclusive() -> None:
    verdict = decide(replace(good(), parity=ParityEvidence(700, 0)), 50, 75, TH)
    assert verdict.verdict == "INCONCLUSIVE"
    assert by_name(verdict)["oracle (wrong results)"] == "INCONCLUSIVE"


# ---------------------------------------------------------------------------------------------
# chaos


def test_chaos_violation_fails() -> None:
    chaos = (ChaosOutcome("worker-kill", "held"), ChaosOutcome("redis-restart", "failed", ("2 lost", "1 duplicated")))
    verdict = decide(replace(good(), chaos=chaos), 50, 75, TH)
    assert verdict.verdict == "FAIL"
    assert "invariant violated in redis-restart: 2 lost, 1 duplicated" in verdict.headline


def test_chaos_evidence_that_contradicts_itself_is_refused() -> None:
    with pytest.raises(GateError, match="is 'held' but lists violations"):
        ChaosOutcome("partition", "held", ("1 stuck",))
    with pytest.raises(GateError, match="not a chaos outcome: 'pass'"):
        ChaosOutcome("partition", "pass")  # type: ignore[arg-type]


def test_a_known_failure_is_never_held_and_blocks_the_step() -> None:
    chaos = (ChaosOutcome("worker-kill", "held"),
             ChaosOutcome("gateway-broker-resets", "known-failure", ("unexpected 1 > 0",), "lost reply, task runs"))
    verdict = decide(replace(good(), chaos=chaos), 50, 75, TH)
    c = criterion(verdict, "chaos invariants")
    assert (verdict.verdict, c.status) == ("FAIL", "FAIL")
    assert c.observed == "1/2 scenarios held, 1 known-failure"
    assert "known failure in gateway-broker-resets (unexpected 1 > 0), not accepted" in c.detail


def test_a_known_failure_accepted_by_name_in_the_thresholds_passes_and_the_headline_says_so() -> None:
    accepted = replace(TH, accepted_known_failures={"gateway-broker-resets": "duplicates are idempotent here"})
    chaos = (ChaosOutcome("gateway-broker-resets", "known-failure", ("unexpected 1 > 0",)),)
    verdict = decide(replace(good(), chaos=chaos), 50, 75, accepted)
    assert criterion(verdict, "chaos invariants").status == "PASS"
    assert verdict.verdict == "PASS"
    assert verdict.headline.endswith("accepting the known failure of gateway-broker-resets "
                                     "(duplicates are idempotent here)")
    other = (ChaosOutcome("celery-redis-memory-noeviction", "known-failure", ("duplicated 1 > 0",)),)
    assert decide(replace(good(), chaos=other), 50, 75, accepted).verdict == "FAIL"  # acceptance is by name


def test_a_scenario_that_could_not_be_carried_out_is_inconclusive_never_held() -> None:
    chaos = (ChaosOutcome("worker-kill", "held"), ChaosOutcome("partition", "error", (), "steady state failed"))
    verdict = decide(replace(good(), chaos=chaos), 50, 75, TH)
    c = criterion(verdict, "chaos invariants")
    assert (verdict.verdict, c.status) == ("INCONCLUSIVE", "INCONCLUSIVE")
    assert c.detail == "partition could not be carried out (steady state failed)"


def test_no_chaos_evidence_is_inconclusive() -> None:
    for chaos in (None, ()):
        verdict = decide(replace(good(), chaos=chaos), 50, 75, TH)
        assert verdict.verdict == "INCONCLUSIVE"
        assert criterion(verdict, "chaos invariants").detail == "no chaos evidence"


# ---------------------------------------------------------------------------------------------
# latency, execution, resources, error rate, split


def test_too_few_latency_samples_is_inconclusive() -> None:
    verdict = decide(replace(good(), latency=latency(n=20)), 50, 75, TH)
    for name in (LATENCY, EXECUTION, RESOURCES):
        assert criterion(verdict, name).status == "INCONCLUSIVE"
    assert "need >= 30 per path" in criterion(verdict, LATENCY).detail
    one_path = latency()
    one_path = replace(one_path, stages_ms={"legacy": one_path.stages_ms["legacy"]})
    lat = criterion(decide(replace(good(), latency=one_path), 50, 75, TH), LATENCY)
    assert lat.status == "INCONCLUSIVE"
    assert "celery 0" in lat.detail


def test_load_evidence_without_stages_is_inconclusive() -> None:
    """Rows stored before the stages were measured: end-to-end alone cannot be split into queueing and
    execution, so the latency criteria do not judge them."""
    old = LatencyEvidence({"legacy": [100.0] * 50, "celery": [100.0] * 50},
                          {"legacy": ErrorCount(50, 0), "celery": ErrorCount(50, 0)})
    verdict = decide(replace(good(), latency=old), 50, 75, TH)
    assert {by_name(verdict)[name] for name in (LATENCY, EXECUTION, RESOURCES)} == {"INCONCLUSIVE"}
    assert "no latency stages" in criterion(verdict, LATENCY).detail


def test_an_overhead_shift_near_zero_passes() -> None:
    lat = criterion(decide(replace(good(), latency=latency(overhead_shift_ms=0.5)), 50, 75, TH), LATENCY)
    assert lat.status == "PASS"
    assert number(lat, "upper") <= number(lat, "tolerance") == 10.0
    assert lat.sample_size == 500


def test_latency_confidence_sequence_straddling_the_tolerance_is_inconclusive() -> None:
    # 500 per path give a CS about a millisecond wide: a shift of exactly the tolerance cannot be told apart
    lat = criterion(decide(replace(good(), latency=latency(overhead_shift_ms=10)), 50, 75, TH), LATENCY)
    assert lat.status == "INCONCLUSIVE"
    assert number(lat, "lower") <= number(lat, "tolerance") < number(lat, "upper")
    assert "straddles" in lat.detail


def test_latency_tolerance_is_the_larger_of_the_floor_and_the_fraction() -> None:
    floor = criterion(decide(replace(good(), latency=latency(overhead_shift_ms=4)), 50, 75, TH), LATENCY)
    assert number(floor, "tolerance") == 10.0  # 15 % of 12 ms is 1.8 ms: the absolute floor wins
    assert floor.status == "PASS"
    # a 100 ms overhead: 15 % of legacy's median (about 15 ms) wins; a 40 ms shift fails it, a 4 ms one passes
    slow = criterion(decide(replace(good(), latency=latency(overhead_shift_ms=40, legacy_overhead_ms=100)), 50, 75,
                            TH), LATENCY)
    assert number(slow, "tolerance") == pytest.approx(0.15 * number(slow, "legacy_median"))
    assert number(slow, "tolerance") > 10.0
    assert slow.status == "FAIL"
    fine = criterion(decide(replace(good(), latency=latency(overhead_shift_ms=4, legacy_overhead_ms=100)), 50, 75,
                            TH), LATENCY)
    assert fine.status == "PASS"


def alternating(n: int, first: float, second: float, rng: np.random.Generator) -> list[float]:
    """Evaluations in submission order whose every other one runs in a different regime (a background job
    that hits alternate requests): the two A/A halves differ by ``second − first``."""
    values = np.empty(n)
    values[0::2], values[1::2] = rng.normal(first, 1.0, (n + 1) // 2), rng.normal(second, 1.0, n // 2)
    return values.tolist()


@pytest.mark.parametrize("noisy", ["legacy", "celery"])
def test_machine_noise_above_the_tolerance_is_inconclusive_even_when_the_difference_would_pass(noisy: str) -> None:
    """The A/A noise floor: each path's evaluations split alternately in two halves that share the same time
    windows. When the halves of either path differ by more than the tolerance, the machine cannot resolve a
    difference that small, so the criterion is INCONCLUSIVE even though the A/B confidence sequence alone
    would pass (Celery is faster, or no slower than the tolerance)."""
    rng = np.random.default_rng(7)
    if noisy == "legacy":  # legacy alternates between 12 and 30 ms, Celery is steady at 5 ms
        evidence = with_overhead(latency(), alternating(500, 12.0, 30.0, rng), rng.normal(5.0, 1.0, 500).tolist())
    else:  # legacy is steady at 20 ms, Celery alternates between 5 and 25 ms
        evidence = with_overhead(latency(), rng.normal(20.0, 1.0, 500).tolist(), alternating(500, 5.0, 25.0, rng))
    verdict = decide(replace(good(), latency=evidence), 50, 75, TH)
    lat = criterion(verdict, LATENCY)
    assert lat.status == "INCONCLUSIVE"
    assert "noise" in lat.detail
    assert number(lat, "upper") <= number(lat, "tolerance")  # the A/B difference alone would PASS
    assert number(lat, "noise_floor") > number(lat, "tolerance")
    assert number(lat, f"noise_{noisy}") == number(lat, "noise_floor")  # the floor is the noisier path's
    assert verdict.noise_floor[LATENCY] == number(lat, "noise_floor")
    assert verdict.verdict == "INCONCLUSIVE"


def test_a_difference_beyond_the_tolerance_and_the_noise_together_fails_on_a_noisy_machine() -> None:
    """Noise above the tolerance forbids a PASS and a marginal FAIL, not a FAIL no noise could explain: Celery
    alternates between 80 and 100 ms (A/A noise about 20 ms) against a steady 20 ms legacy."""
    rng = np.random.default_rng(3)
    steady, noisy = rng.normal(20.0, 1.0, 500).tolist(), alternating(500, 80.0, 100.0, rng)
    lat = criterion(decide(replace(good(), latency=with_overhead(latency(), steady, noisy)), 50, 75, TH), LATENCY)
    assert number(lat, "noise_floor") > number(lat, "tolerance")
    assert number(lat, "lower") > number(lat, "tolerance") + number(lat, "noise_floor")
    assert lat.status == "FAIL" and "plus the machine's A/A noise" in lat.detail
    # the same noise with a difference within tolerance + noise stays INCONCLUSIVE
    near = alternating(500, 15.0, 35.0, rng)
    lat = criterion(decide(replace(good(), latency=with_overhead(latency(), steady, near)), 50, 75, TH), LATENCY)
    assert lat.status == "INCONCLUSIVE" and "noise" in lat.detail


def test_a_quiet_machine_has_a_low_noise_floor() -> None:
    verdict = decide(good(), 50, 75, TH)
    for name in (LATENCY, EXECUTION):
        c = criterion(verdict, name)
        assert number(c, "noise_floor") < number(c, "tolerance") / 2
        assert verdict.noise_floor[name] == number(c, "noise_floor")


def test_slower_executions_fail_execution_time_not_queueing() -> None:
    verdict = decide(replace(good(), latency=latency(execution_shift_ms=60)), 50, 75, TH)
    execution = criterion(verdict, EXECUTION)
    assert (verdict.verdict, execution.status) == ("FAIL", "FAIL")
    assert number(execution, "tolerance") == pytest.approx(0.15 * number(execution, "legacy_median"))  # ~30 ms
    assert number(execution, "lower") > number(execution, "tolerance")
    assert "execution regression" in execution.detail
    # end-to-end is 60 ms slower too, but queueing + delivery is unchanged and passes
    assert by_name(verdict)[LATENCY] == "PASS"
    assert verdict.stages["celery"]["end_to_end"]["p50"] > verdict.stages["legacy"]["end_to_end"]["p50"] + 50
    assert by_name(decide(good(), 50, 75, TH))[EXECUTION] == "PASS"


def test_celery_using_a_fifth_more_memory_fails_resources() -> None:
    verdict = decide(replace(good(), latency=latency(memory_factor=1.2)), 50, 75, TH)
    res = criterion(verdict, RESOURCES)
    assert (verdict.verdict, res.status) == ("FAIL", "FAIL")
    assert number(res, "peak_rss_kb_tolerance") == 1024.0  # max(1 MiB, 10 % of about 9000 KiB)
    assert number(res, "peak_rss_kb_lower") > 1024.0
    assert number(res, "cpu_ms_upper") <= number(res, "cpu_ms_tolerance") == 5.0  # CPU is unchanged
    assert res.detail.startswith("peak memory regression")
    assert "CPU time" not in res.detail  # the detail names only the failing resource
    # 5 % more memory (about 450 KiB) is within the tolerance
    assert by_name(decide(replace(good(), latency=latency(memory_factor=1.05)), 50, 75, TH))[RESOURCES] == "PASS"


def starve(evidence: LatencyEvidence, unfinished: int) -> LatencyEvidence:
    """``evidence`` with Celery's last ``unfinished`` evaluations still in flight when the load run ended."""
    keep = len(evidence.samples_ms["celery"]) - unfinished
    stages = {path: dict(by_stage) for path, by_stage in evidence.stages_ms.items()}
    stages["celery"] = {stage: list(values[:keep]) for stage, values in stages["celery"].items()}
    resources = {path: dict(by_key) for path, by_key in evidence.resources.items()}
    resources["celery"] = {key: list(values[:keep]) for key, values in resources["celery"].items()}
    return replace(evidence, samples_ms={"legacy": evidence.samples_ms["legacy"],
                                         "celery": list(evidence.samples_ms["celery"][:keep])},
                   errors={"legacy": evidence.errors["legacy"], "celery": ErrorCount(keep, 0)},
                   unfinished_ms={"celery": [5000.0] * unfinished}, stages_ms=stages, resources=resources)


def test_a_queue_that_starves_part_of_its_work_cannot_pass_by_leaving_it_unfinished() -> None:
    """Survivor bias: 5 % of Celery's evaluations still in flight at the end of the load run, the
    finished ones as fast as legacy's. Dropping the unfinished would PASS; they count as errors (the
    platform did not answer in time) and in the overhead as Celery's worst case (+inf)."""
    finished = latency(n=500)
    starved = starve(finished, 25)
    clean = decide(replace(good(), latency=finished), 50, 75, TH)
    assert by_name(clean)["error rate"] == by_name(clean)[LATENCY] == "PASS"
    verdict = decide(replace(good(), latency=starved), 50, 75, TH)
    assert verdict.verdict == "FAIL"
    err = criterion(verdict, "error rate")
    assert err.status == "FAIL"
    assert (err.values["celery_errors"], err.values["celery_n"], err.values["celery_unfinished"]) == (25, 500, 25)
    assert "of which unfinished at the end of the load run: legacy 0, celery 25" in err.observed
    lat = criterion(verdict, LATENCY)
    assert lat.values["n_celery"] == 500 and lat.sample_size == 500  # 475 finished + 25 unfinished
    assert "unfinished legacy 0, celery 25" in lat.observed
    assert "25 Celery evaluation(s) still in flight" in lat.detail
    # The censored samples make the difference an upper bound: larger than with the starved work left out.
    left_out = replace(starved, unfinished_ms={})
    assert number(lat, "difference") > number(criterion(decide(replace(good(), latency=left_out), 50, 75, TH),
                                                         LATENCY), "difference")


def test_a_queue_that_starves_most_of_its_work_cannot_pass_latency() -> None:
    """With most of Celery's evaluations unfinished its median is unbounded: the latency criterion itself
    cannot pass (not only the error rate), whatever the finished ones show."""
    verdict = decide(replace(good(), latency=starve(latency(n=500), 300)), 50, 75, TH)
    lat = criterion(verdict, LATENCY)
    assert lat.status != "PASS"
    assert number(lat, "lower") == math.inf  # the CS lies wholly above the tolerance
    assert criterion(verdict, "error rate").status == "FAIL"
    assert verdict.verdict == "FAIL"


def test_unfinished_legacy_evaluations_count_as_errors_only() -> None:
    """A few legacy evaluations in flight at the end do not hide Celery's latency, and do not stop a
    comparison that Celery wins: they count as legacy's errors, not as latency samples."""
    base = latency(n=500)
    legacy_left = replace(base, unfinished_ms={"legacy": [250.0] * 10})
    verdict = decide(replace(good(), latency=legacy_left), 50, 75, TH)
    lat = criterion(verdict, LATENCY)
    assert lat.status == "PASS"
    assert lat.values["n_legacy"] == 500 and lat.values["n_celery"] == 500
    assert lat.sample_size == 500
    assert "0 Celery evaluation(s)" in lat.detail and "10 unfinished, count as errors only" in lat.detail
    err = criterion(verdict, "error rate")
    assert (err.status, err.values["legacy_errors"], err.values["legacy_n"]) == ("PASS", 10, 510)


def test_error_rate_regression_fails() -> None:
    verdict = decide(replace(good(), latency=latency(errors=(2, 40))), 50, 75, TH)
    err = criterion(verdict, "error rate")
    assert (verdict.verdict, err.status) == ("FAIL", "FAIL")
    assert number(err, "lower") > 0.01


def test_error_rate_counts_parity_dual_write_errors() -> None:
    """Every parity program ran on both paths: its platform errors count with the load run's. A clean load
    run does not hide 40 Celery errors in 400 dual-write programs (40/900 = 4.4 % pooled)."""
    parity = ParityEvidence(400, 0, {}, {"legacy": 0, "celery": 0},
                            errors={"legacy": ErrorCount(400, 0), "celery": ErrorCount(400, 40)})
    verdict = decide(replace(good(), parity=parity), 50, 75, TH)
    err = criterion(verdict, "error rate")
    assert (verdict.verdict, err.status) == ("FAIL", "FAIL")
    assert (err.values["legacy_errors"], err.values["legacy_n"]) == (0, 900)
    assert (err.values["celery_errors"], err.values["celery_n"]) == (40, 900)
    assert err.values["population"] == "the load mix and parity's dual-write programs"
    assert "celery 40/900" in err.observed
    # 30 in 400 pooled with 500 clean load evaluations (30/900) is not yet enough to fail: its CS straddles
    # the one-point tolerance
    fewer = replace(parity, errors={"legacy": ErrorCount(400, 0), "celery": ErrorCount(400, 30)})
    straddling = criterion(decide(replace(good(), parity=fewer), 50, 75, TH), "error rate")
    assert straddling.status == "INCONCLUSIVE"
    assert number(straddling, "lower") <= 0.01 < number(straddling, "upper")
    # without a load run the dual-write programs are judged alone
    alone = criterion(decide(replace(good(), parity=parity, latency=None), 50, 75, TH), "error rate")
    assert (alone.status, alone.values["population"], alone.values["celery_n"]) == (
        "FAIL", "parity's dual-write programs", 400)


def test_error_rate_needs_enough_evaluations() -> None:
    err = criterion(decide(replace(good(), latency=latency(n=100)), 50, 75, TH), "error rate")
    assert err.status == "INCONCLUSIVE"
    assert "need >= 373" in err.detail
    assert samples_needed(TH, 75)["error_rate_per_path"] == 373 == min_clean_samples(0.01, 0.025)
    no_counts = replace(latency(), errors={})
    assert criterion(decide(replace(good(), latency=no_counts), 50, 75, TH), "error rate").status == "INCONCLUSIVE"


def test_split_inaccuracy_fails() -> None:
    verdict = decide(replace(good(), split=SplitEvidence(50, 1000, 600)), 50, 75, TH)
    split = criterion(verdict, "split accuracy")
    assert (verdict.verdict, split.status) == ("FAIL", "FAIL")
    assert number(split, "strict_lower") > 0.5  # outside even the 99.9 % confidence sequence
    assert "split inaccurate" in verdict.headline


def test_an_accurate_split_passes() -> None:
    split = criterion(decide(replace(good(), split=SplitEvidence(50, 1000, 505)), 50, 75, TH), "split accuracy")
    assert split.status == "PASS"
    assert 0.4 <= number(split, "lower") <= 0.5 <= number(split, "upper") <= 0.6


def test_a_split_known_only_roughly_is_inconclusive() -> None:
    # At the fewest routed evaluations (420 >= 400) a balanced split already has a 95 % CS within ± 10 pp
    # ([41.8 %, 58.2 %]): it passes. 240 of 420 (57 %) has a CS reaching above 60 % while 50 % is still inside
    # the 99.9 % one: neither accurate enough to pass nor far enough off to fail.
    balanced = criterion(decide(replace(good(), split=SplitEvidence(50, 420, 210)), 50, 75, TH), "split accuracy")
    assert balanced.status == "PASS"
    rough = criterion(decide(replace(good(), split=SplitEvidence(50, 420, 240)), 50, 75, TH), "split accuracy")
    assert rough.status == "INCONCLUSIVE"
    assert number(rough, "upper") > 0.6
    assert number(rough, "strict_lower") <= 0.5
    assert "± 10 pp" in rough.detail


def test_split_evidence_must_be_enough_and_at_the_current_split() -> None:
    few = criterion(decide(replace(good(), split=SplitEvidence(50, 100, 50)), 50, 75, TH), "split accuracy")
    assert (few.status, "need >= 400" in few.detail) == ("INCONCLUSIVE", True)
    elsewhere = criterion(decide(replace(good(), split=SplitEvidence(25, 1000, 250)), 50, 75, TH), "split accuracy")
    assert elsewhere.status == "INCONCLUSIVE"
    assert "collected at 25 %" in elsewhere.detail


# ---------------------------------------------------------------------------------------------
# missing evidence, validation, rendering


def test_missing_evidence_is_never_a_pass() -> None:
    verdict = decide(Evidence(), 50, 75, TH)
    assert (verdict.verdict, verdict.exit_code) == ("INCONCLUSIVE", 2)
    assert set(by_name(verdict).values()) == {"INCONCLUSIVE"}
    assert verdict.headline.count("no parity evidence") == 1  # one reason, named once
    empty = Evidence(ParityEvidence(0, 0, {}, {}), (), LatencyEvidence({}, {}), SplitEvidence(50, 0, 0))
    assert set(by_name(decide(empty, 50, 75, TH)).values()) == {"INCONCLUSIVE"}


@pytest.mark.parametrize(("current", "target", "message"), [
    (75, 50, "must be greater"),
    (50, 50, "must be greater"),
    (-1, 50, "--current"),
    (50, 101, "--target"),
    (50, float("nan"), "--target"),
    (False, 50, "--current"),
])
def test_current_and_target_are_validated(current: float, target: float, message: str) -> None:
    with pytest.raises(GateError, match=message):
        decide(good(), current, target, TH)


def test_inconsistent_evidence_is_rejected() -> None:
    with pytest.raises(GateError, match="exceeds parity.n"):
        ParityEvidence(10, 11)
    with pytest.raises(GateError, match="exit_code"):
        ParityEvidence(10, 1, {"exit_code": -1})
    with pytest.raises(GateError, match="to_celery"):
        SplitEvidence(50, 10, 11)
    with pytest.raises(GateError, match="errors in only"):
        LatencyEvidence({}, {"celery": ErrorCount(3, 4)})
    assert issubclass(GateError, HarnessError)


def test_a_nan_end_to_end_latency_is_rejected() -> None:
    evidence = latency(n=60)
    evidence = replace(evidence, samples_ms={"legacy": evidence.samples_ms["legacy"],
                                             "celery": [*evidence.samples_ms["celery"][:-1], math.nan]})
    with pytest.raises(HarnessError, match="NaN"):
        decide(replace(good(), latency=evidence), 50, 75, TH)


def test_a_stage_value_that_was_not_measured_is_left_out_not_fatal() -> None:
    """A row with an execution time but no queue time (a timestamp missing) stores NaN for that stage: the
    stage has one sample less; the gate does not stop."""
    evidence = latency(n=60)
    evidence = with_overhead(evidence, evidence.stages_ms["legacy"]["overhead"],
                             [*evidence.stages_ms["celery"]["overhead"][:-1], math.nan])
    lat = criterion(decide(replace(good(), latency=evidence), 50, 75, TH), LATENCY)
    assert lat.values["n_celery"] == 59 and lat.values["n_legacy"] == 60


def test_render_text_puts_the_verdict_first() -> None:
    parity = ParityEvidence(2000, 1, {"exit_code": 1}, {"celery": 0})
    verdict = decide(replace(good(), parity=parity), 50, 75, TH)
    text = render_text(verdict)
    lines = text.splitlines()
    assert lines[0] == "FAIL: may not move the split 50 % → 75 %: 1 mismatch on exit_code"
    assert lines[2].split() == ["criterion", "status", "observed", "threshold", "n", "bound", "detail"]
    for c in verdict.criteria:
        assert any(line.startswith(c.name) and c.status in line for line in lines)
    assert "304  paired comparisons with zero mismatches (parity, ε = 1 %)" in text
    assert "373  evaluations per path with zero errors" in text
    at = next(i for i, line in enumerate(lines) if line.startswith("latency by stage"))
    for stage in ("submit", "queue", "execution", "delivery"):
        assert stage in lines[at]
    assert {"legacy", "celery"} <= {line.split()[0] for line in lines[at + 1:at + 3]}
    floor = next(line for line in lines if line.startswith("A/A noise floor: "))
    assert LATENCY in floor and EXECUTION in floor


def test_verdict_to_dict_is_strict_json() -> None:
    verdict = decide(good(), 50, 75, TH)
    doc = json.loads(json.dumps(verdict.to_dict(), allow_nan=False))
    assert (doc["verdict"], doc["exit_code"], doc["samples_needed"]["parity_pairs"]) == ("PASS", 0, 304)
    assert [c["name"] for c in doc["criteria"]][0] == "parity mismatch rate"
    assert doc["criteria"][4]["name"] == LATENCY
    assert doc["criteria"][4]["values"]["n_legacy"] == 500
    assert set(doc["stages"]) == {"legacy", "celery"}
    assert set(doc["stages"]["celery"]) == {"end_to_end", "submit", "queue", "execution", "delivery", "overhead",
                                            "cpu_ms", "peak_rss_kb"}
    overhead = doc["stages"]["celery"]["overhead"]
    assert overhead["n"] == 500
    assert overhead["lower"] <= overhead["p50"] <= overhead["upper"]
    assert set(doc["noise_floor"]) == {LATENCY, EXECUTION}
    assert all(isinstance(v, float) for v in doc["noise_floor"].values())
    assert "confidence sequences" in doc["method"]
    assert doc["sequential"] == {}
    tiny = replace(verdict, criteria=(replace(verdict.criteria[0], values={"upper": float("inf")}),))
    assert json.loads(json.dumps(tiny.to_dict(), allow_nan=False))["criteria"][0]["values"]["upper"] is None
    # a starved queue's infinite median and bounds, and empty evidence's unbounded stages, become null
    starved = json.loads(json.dumps(decide(replace(good(), latency=starve(latency(), 300)), 50, 75, TH).to_dict(),
                                    allow_nan=False))
    values = starved["criteria"][4]["values"]
    assert values["celery_median"] is None and values["lower"] is None and values["upper"] is None
    for evidence in (latency(n=40), LatencyEvidence({}, {}), LatencyEvidence({}, {}, stages_ms={"legacy": {}})):
        doc = json.loads(json.dumps(decide(replace(good(), latency=evidence), 50, 75, TH).to_dict(),
                                    allow_nan=False))
        assert doc["verdict"] == "INCONCLUSIVE"
    empty = json.loads(json.dumps(decide(replace(good(), latency=LatencyEvidence({}, {})), 50, 75, TH).to_dict(),
                                  allow_nan=False))
    assert empty["stages"]["celery"]["overhead"] == {"n": 0, "p50": None, "p95": None, "lower": None, "upper": None}


def test_decide_is_deterministic() -> None:
    assert decide(good(), 50, 75, TH) == decide(good(), 50, 75, TH)


# ---------------------------------------------------------------------------------------------
# thresholds file


def test_shipped_thresholds() -> None:
    assert TH.confidence == 0.95
    assert TH.critical_fields == ("exit_code", "error_class", "lost")
    assert [(b.up_to, b.epsilon) for b in TH.budgets] == [(10, 0.05), (25, 0.03), (50, 0.02), (75, 0.01),
                                                          (100, 0.005)]
    assert (TH.latency_min_samples, TH.latency_tolerance_ms, TH.latency_tolerance_fraction) == (30, 10.0, 0.15)
    assert (TH.error_rate_max_increase, TH.split_p_value_floor, TH.split_min_samples, TH.split_tolerance) == (
        0.01, 0.001, 400, 0.10)
    assert (TH.cpu_tolerance_ms, TH.cpu_tolerance_fraction, TH.memory_tolerance_kb, TH.memory_tolerance_fraction) == (
        5.0, 0.15, 1024.0, 0.10)
    assert TH.accepted_known_failures == {}


def write(tmp_path: Path, old: str, new: str) -> Path:
    text = DEFAULT_THRESHOLDS.read_text()
    assert text.count(old) == 1, old
    path = tmp_path / "thresholds.toml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize(("old", "new", "key"), [
    ("epsilon = 0.03", "epsilon = 1.5", "parity.budget[1].epsilon"),
    ("epsilon = 0.01", "epsilon = 0.04", "parity.budget[3].epsilon"),  # budget grew with the target
    ("up_to = 50", "up_to = 20", "parity.budget[2].up_to"),
    ("up_to = 100", "up_to = 90", "parity.budget[4].up_to"),
    ("min_samples = 30", "min_sample = 30", "latency.min_sample"),  # typo: unknown key
    ("min_samples = 400", "min_samples = 400.5", "split.min_samples"),
    ("tolerance_ms = 10.0", 'tolerance_ms = "10"', "latency.tolerance_ms"),
    ("confidence = 0.95", "confidence = 1", "confidence"),
    ('critical_fields = ["exit_code", "error_class", "lost"]', 'critical_fields = "exit_code"',
     "parity.critical_fields"),
    ("[error_rate]\n", "[error_rates]\n", "error_rates"),
    ("\ntolerance = 0.10", "\ntolerance = 0", "split.tolerance"),  # (0, 1): a zero tolerance can never pass
    ("memory_tolerance_kb = 1024.0", "memory_tolerance_kb = -1", "resources.memory_tolerance_kb"),
    ("cpu_tolerance_ms = 5.0", "cpu_tolerance = 5.0", "resources.cpu_tolerance"),  # typo: unknown key
    ("[resources]\n", "[resource]\n", "resource"),
])
def test_a_broken_thresholds_file_names_the_file_and_key(tmp_path: Path, old: str, new: str, key: str) -> None:
    path = write(tmp_path, old, new)
    with pytest.raises(ThresholdsError) as info:
        Thresholds.load(path)
    assert str(info.value).startswith(f"{path}: {key}: ")


def test_unreadable_thresholds_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ThresholdsError, match="cannot read"):
        load_thresholds(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("confidence = \n")
    with pytest.raises(ThresholdsError, match=str(bad)):
        load_thresholds(bad)


def test_pairs_are_formed_in_submission_time_and_never_change_as_evaluations_arrive() -> None:
    """At a 10 % split each Celery evaluation pairs with the latest unpaired legacy one submitted before it
    (not with legacy's i-th, submitted long before); one with none waits for the next legacy one; adding
    evaluations only adds pairs at the end."""
    from harness.gate.criteria import paired_differences

    legacy = [(float(t), 10.0 + t) for t in range(1, 40) if t % 10]  # legacy at every t but the tens
    celery = [(0.5, 100.0), (10.5, 200.0), (20.5, 300.0)]
    # 0.5 waits and takes legacy at t=1 (11); 10.5 takes t=9 (19); 20.5 takes t=19 (29)
    assert paired_differences(celery, legacy) == [89.0, 181.0, 271.0]
    more = paired_differences([*celery, (30.5, 400.0)], [*legacy, (41.0, 51.0)])
    assert more[:3] == [89.0, 181.0, 271.0] and more[3] == 400.0 - 39.0
    assert paired_differences([(1.0, math.inf)], [(0.0, 5.0)]) == [math.inf]


def test_the_split_margin_scales_with_the_smaller_share() -> None:
    """At 10 % a router sending 13.6 % (36 % more Celery traffic than decided) must not pass, though it is
    within 10 points; 10.2 % of 2000 passes."""
    off = criterion(decide(replace(good(), split=SplitEvidence(10, 500, 68)), 10, 25, TH), "split accuracy")
    assert off.status != "PASS" and number(off, "margin") == pytest.approx(0.03)
    fine = criterion(decide(replace(good(), split=SplitEvidence(10, 2000, 204)), 10, 25, TH), "split accuracy")
    assert fine.status == "PASS"
