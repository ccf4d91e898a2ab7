"""The gate's decision on constructed evidence: every rule, the rendering, and the thresholds file."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from harness.errors import HarnessError
from harness.gate import (
    DEFAULT_THRESHOLDS,
    ChaosOutcome,
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

TH = load_thresholds()


def latency(shift_ms: float = 0.0, n: int = 500, legacy_ms: float = 200.0, errors: tuple[int, int] = (0, 0),
            seed: int = 0) -> LatencyEvidence:
    rng = np.random.default_rng(seed)
    legacy = rng.normal(legacy_ms, legacy_ms / 10, n)
    celery = rng.normal(legacy_ms, legacy_ms / 10, n) + shift_ms
    return LatencyEvidence({"legacy": legacy.tolist(), "celery": celery.tolist()},
                           {"legacy": ErrorCount(n, errors[0]), "celery": ErrorCount(n, errors[1])})


def good() -> Evidence:
    return Evidence(
        parity=ParityEvidence(n=700, mismatches=0, mismatches_by_field={}, wrong={"legacy": 0, "celery": 0}, noise=2),
        chaos=(ChaosOutcome("worker-kill", "held"), ChaosOutcome("broker-restart", "finding")),
        latency=latency(),
        split=SplitEvidence(50, 1000, 507),
    )


def by_name(verdict: Verdict) -> dict[str, str]:
    return {c.name: c.status for c in verdict.criteria}


def criterion(verdict: Verdict, name: str):  # type: ignore[no-untyped-def]
    return next(c for c in verdict.criteria if c.name == name)


# ---------------------------------------------------------------------------------------------
# the four required cases


def test_pass_when_every_criterion_holds() -> None:
    verdict = decide(good(), 50, 75, TH)
    assert (verdict.verdict, verdict.exit_code) == ("PASS", 0)
    assert set(by_name(verdict).values()) == {"PASS"}
    assert verdict.headline == "PASS: may move the split 50 % → 75 %: all 7 criteria hold"
    assert verdict.epsilon == 0.01


def test_fail_on_one_mismatch_at_a_critical_field() -> None:
    parity = ParityEvidence(700, 1, {"exit_code": 1}, {"legacy": 0, "celery": 0})
    verdict = decide(replace(good(), parity=parity), 50, 75, TH)
    assert (verdict.verdict, verdict.exit_code) == ("FAIL", 1)
    assert by_name(verdict)["critical fields"] == "FAIL"
    assert by_name(verdict)["parity mismatch rate"] == "PASS"  # 1 in 700 is within the rate budget
    assert verdict.headline == "FAIL: may not move the split 50 % → 75 %: 1 mismatch on exit_code"


def test_inconclusive_on_too_few_samples() -> None:
    parity = ParityEvidence(120, 0, {}, {"legacy": 0, "celery": 0})
    verdict = decide(replace(good(), parity=parity), 50, 75, TH)
    assert (verdict.verdict, verdict.exit_code) == ("INCONCLUSIVE", 2)
    rate = criterion(verdict, "parity mismatch rate")
    assert rate.status == "INCONCLUSIVE"
    assert "need >= 299" in rate.detail
    assert verdict.samples_needed["parity_pairs"] == 299


def test_fail_on_latency_regression() -> None:
    verdict = decide(replace(good(), latency=latency(shift_ms=60)), 50, 75, TH)
    assert verdict.verdict == "FAIL"
    lat = criterion(verdict, "latency (end-to-end)")
    assert lat.status == "FAIL"
    assert lat.values["tolerance_ms"] == pytest.approx(0.15 * lat.values["legacy_p50_ms"])  # type: ignore[operator]
    assert lat.values["lower_ms"] > lat.values["tolerance_ms"]  # type: ignore[operator]
    assert "latency regression" in verdict.headline


# ---------------------------------------------------------------------------------------------
# parity


def test_budget_shrinks_as_the_target_grows() -> None:
    parity = ParityEvidence(120, 0, {}, {"celery": 0})
    assert by_name(decide(replace(good(), parity=parity, split=SplitEvidence(10, 1000, 98)), 10, 25, TH))[
        "parity mismatch rate"] == "PASS"  # ε = 3 %: 99 pairs suffice
    assert by_name(decide(replace(good(), parity=parity), 25, 50, TH))["parity mismatch rate"] == "INCONCLUSIVE"
    assert [TH.epsilon(t) for t in (1, 10, 11, 25, 30, 50, 75, 76, 100)] == [
        0.05, 0.05, 0.03, 0.03, 0.02, 0.02, 0.01, 0.005, 0.005]


def test_mismatch_rate_over_budget_fails() -> None:
    parity = ParityEvidence(700, 30, {"output": 30}, {"celery": 0})
    verdict = decide(replace(good(), parity=parity), 50, 75, TH)
    rate = criterion(verdict, "parity mismatch rate")
    assert (verdict.verdict, rate.status) == ("FAIL", "FAIL")
    assert rate.values["k"] == 30
    assert "exceeds ε" in rate.detail


def test_mismatches_within_budget_but_a_bound_over_it_is_inconclusive() -> None:
    parity = ParityEvidence(700, 4, {"output": 4}, {"celery": 0})
    rate = criterion(decide(replace(good(), parity=parity), 50, 75, TH), "parity mismatch rate")
    assert rate.status == "INCONCLUSIVE"
    assert "straddles" in rate.detail


def test_a_few_non_critical_mismatches_can_pass() -> None:
    parity = ParityEvidence(2000, 3, {"output": 3}, {"celery": 0})
    assert decide(replace(good(), parity=parity), 50, 75, TH).verdict == "PASS"


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
# chaos, latency, error rate, split


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


def test_too_few_latency_samples_is_inconclusive() -> None:
    lat = criterion(decide(replace(good(), latency=latency(n=20)), 50, 75, TH), "latency (end-to-end)")
    assert lat.status == "INCONCLUSIVE"
    assert "need >= 30 per path" in lat.detail
    one_path = LatencyEvidence({"legacy": [100.0] * 50}, {})
    assert criterion(decide(replace(good(), latency=one_path), 50, 75, TH), "latency (end-to-end)"
                     ).status == "INCONCLUSIVE"


def test_latency_interval_straddling_the_tolerance_is_inconclusive() -> None:
    lat = criterion(decide(replace(good(), latency=latency(shift_ms=30, n=60, seed=4)), 50, 75, TH),
                    "latency (end-to-end)")
    assert lat.status == "INCONCLUSIVE"
    assert lat.values["lower_ms"] <= lat.values["tolerance_ms"] < lat.values["upper_ms"]  # type: ignore[operator]


def test_latency_tolerance_has_an_absolute_floor() -> None:
    lat = criterion(decide(replace(good(), latency=latency(shift_ms=4, legacy_ms=20)), 50, 75, TH),
                    "latency (end-to-end)")
    assert lat.values["tolerance_ms"] == 10.0
    assert lat.status == "PASS"


def test_a_queue_that_starves_part_of_its_work_cannot_pass_by_leaving_it_unfinished() -> None:
    """Survivor bias: 5 % of Celery's evaluations still in flight at the end of the load run, the
    finished ones as fast as legacy's. Dropping the unfinished would PASS; they count as errors (the
    platform did not answer in time) and in the latency shift as Celery's worst case."""
    finished = latency(n=500)
    starved = replace(finished, samples_ms={"legacy": finished.samples_ms["legacy"],
                                            "celery": finished.samples_ms["celery"][:475]},
                      errors={"legacy": ErrorCount(500, 0), "celery": ErrorCount(475, 0)},
                      unfinished_ms={"celery": [5000.0] * 25})
    clean = decide(replace(good(), latency=finished), 50, 75, TH)
    assert by_name(clean)["error rate"] == by_name(clean)["latency (end-to-end)"] == "PASS"
    verdict = decide(replace(good(), latency=starved), 50, 75, TH)
    assert verdict.verdict == "FAIL"
    err = criterion(verdict, "error rate")
    assert err.status == "FAIL"
    assert (err.values["celery_errors"], err.values["celery_n"], err.values["celery_unfinished"]) == (25, 500, 25)
    assert "of which unfinished at the end of the load run: legacy 0, celery 25" in err.observed
    lat = criterion(verdict, "latency (end-to-end)")
    assert lat.values["celery_unfinished"] == 25 and lat.sample_size == 500
    assert "unfinished legacy 0, celery 25" in lat.observed
    assert "25 Celery evaluation(s) still in flight" in lat.detail
    # The censored samples make the shift an upper bound: larger than with the starved work left out.
    left_out = replace(starved, unfinished_ms={})
    assert lat.values["shift_ms"] > criterion(decide(replace(good(), latency=left_out), 50, 75, TH),
                                              "latency (end-to-end)").values["shift_ms"]


def test_unfinished_legacy_evaluations_count_at_the_time_they_waited() -> None:
    """A few legacy evaluations in flight at the end (at their lower bound) do not hide Celery's
    latency, and do not stop a comparison that Celery wins."""
    base = latency(n=500)
    legacy_left = replace(base, unfinished_ms={"legacy": [250.0] * 10})
    lat = criterion(decide(replace(good(), latency=legacy_left), 50, 75, TH), "latency (end-to-end)")
    assert lat.status == "PASS"
    assert lat.values["legacy_unfinished"] == 10 and lat.values["celery_unfinished"] == 0
    assert lat.sample_size == 500


def test_error_rate_regression_fails() -> None:
    verdict = decide(replace(good(), latency=latency(errors=(2, 40))), 50, 75, TH)
    err = criterion(verdict, "error rate")
    assert (verdict.verdict, err.status) == ("FAIL", "FAIL")


def test_error_rate_needs_enough_evaluations() -> None:
    err = criterion(decide(replace(good(), latency=latency(n=100)), 50, 75, TH), "error rate")
    assert err.status == "INCONCLUSIVE"
    assert "need >= 381" in err.detail
    no_counts = replace(latency(), errors={})
    assert criterion(decide(replace(good(), latency=no_counts), 50, 75, TH), "error rate").status == "INCONCLUSIVE"


def test_split_inaccuracy_fails() -> None:
    verdict = decide(replace(good(), split=SplitEvidence(50, 1000, 600)), 50, 75, TH)
    split = criterion(verdict, "split accuracy")
    assert (verdict.verdict, split.status) == ("FAIL", "FAIL")
    assert split.values["p_value"] < 0.001  # type: ignore[operator]
    assert "split inaccurate" in verdict.headline


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
    bad = LatencyEvidence({"legacy": [1.0] * 40, "celery": [1.0] * 39 + [float("nan")]})
    with pytest.raises(GateError, match="non-finite"):
        decide(replace(good(), latency=bad), 50, 75, TH)
    assert issubclass(GateError, HarnessError)


def test_render_text_puts_the_verdict_first() -> None:
    parity = ParityEvidence(700, 1, {"exit_code": 1}, {"celery": 0})
    verdict = decide(replace(good(), parity=parity), 50, 75, TH)
    text = render_text(verdict)
    lines = text.splitlines()
    assert lines[0] == "FAIL: may not move the split 50 % → 75 %: 1 mismatch on exit_code"
    assert lines[2].split() == ["criterion", "status", "observed", "threshold", "n", "bound", "detail"]
    for c in verdict.criteria:
        assert any(line.startswith(c.name) and c.status in line for line in lines)
    assert "299  paired comparisons with zero mismatches (parity, ε = 1 %)" in text
    assert "381  evaluations per path with zero errors" in text


def test_verdict_to_dict_is_strict_json() -> None:
    verdict = decide(good(), 50, 75, TH)
    doc = json.loads(json.dumps(verdict.to_dict(), allow_nan=False))
    assert (doc["verdict"], doc["exit_code"], doc["samples_needed"]["parity_pairs"]) == ("PASS", 0, 299)
    assert [c["name"] for c in doc["criteria"]][0] == "parity mismatch rate"
    assert doc["criteria"][4]["values"]["n_legacy"] == 500
    tiny = replace(verdict, criteria=(replace(verdict.criteria[0], values={"upper": float("inf")}),))
    assert json.loads(json.dumps(tiny.to_dict(), allow_nan=False))["criteria"][0]["values"]["upper"] is None


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
    assert (TH.error_rate_max_increase, TH.split_p_value_floor, TH.split_min_samples) == (0.01, 0.001, 400)


def write(tmp_path: Path, old: str, new: str) -> Path:
    text = DEFAULT_THRESHOLDS.read_text()
    assert old in text
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
