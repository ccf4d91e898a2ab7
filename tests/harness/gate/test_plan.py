"""``harness.gate.plan``: the migration plan's steps, their order, the moves and the transition checks."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.gate.decide import (
    ChaosOutcome,
    Criterion,
    ErrorCount,
    Evidence,
    GateError,
    LatencyEvidence,
    ParityEvidence,
    SplitEvidence,
    TransitionCheck,
    TransitionEvidence,
    Verdict,
    check_step,
    decide,
    load_thresholds,
    render_text,
)
from harness.gate.evidence import chaos_evidence, chaos_findings
from harness.gate.plan import TRANSITION_SCENARIOS, Move, Step, moves, parse_plan, transition_checks
from harness.run import PROJECT_ROOT

PLAN = "10,25,50,75,phase2@90,100,decommission"


def shape(steps: list[Step]) -> list[tuple[str, int, float, str | None, str]]:
    return [(s.text, s.phase, s.percentage, s.procedure, s.kind) for s in steps]


def test_the_teams_plan_parses_into_its_phases_shares_procedures_and_kinds() -> None:
    assert shape(parse_plan(PLAN)) == [
        ("10", 1, 10.0, None, "split"),
        ("25", 1, 25.0, None, "split"),
        ("50", 1, 50.0, None, "split"),
        ("75", 1, 75.0, None, "split"),
        ("phase2@90", 2, 90.0, "safe", "phase2"),  # safe is the default fallback
        ("100", 2, 100.0, "safe", "split"),  # every step after phase2 stays in phase 2
        ("decommission", 3, 100.0, "safe", "decommission"),  # phase 3, Celery takes everything
    ]


def test_spaces_and_empty_items_are_ignored_and_fractions_are_allowed() -> None:
    assert shape(parse_plan(" 12.5 , phase2@80 ,, 100 ")) == [
        ("12.5", 1, 12.5, None, "split"), ("phase2@80", 2, 80.0, "safe", "phase2"), ("100", 2, 100.0, "safe", "split")]


def test_naive_procedures_are_kept_per_transition() -> None:
    steps = parse_plan("75,phase2@90:naive,100,decommission:naive")
    assert shape(steps) == [
        ("75", 1, 75.0, None, "split"),
        ("phase2@90:naive", 2, 90.0, "naive", "phase2"),
        ("100", 2, 100.0, "naive", "split"),
        ("decommission:naive", 3, 100.0, "naive", "decommission"),
    ]
    # each transition chooses its own procedure
    assert shape(parse_plan("phase2@90:naive,decommission:safe"))[1] == ("decommission:safe", 3, 100.0, "safe",
                                                                         "decommission")
    assert shape(parse_plan("75,phase2@90:safe,decommission:naive"))[1:] == [
        ("phase2@90:safe", 2, 90.0, "safe", "phase2"), ("decommission:naive", 3, 100.0, "naive", "decommission")]


def test_a_plan_that_starts_in_phase_2_starts_there_without_a_move_into_it() -> None:
    steps = parse_plan("phase2@50,75,decommission")
    assert shape(steps) == [("phase2@50", 2, 50.0, "safe", "split"), ("75", 2, 75.0, "safe", "split"),
                            ("decommission", 3, 100.0, "safe", "decommission")]
    assert [m.scenarios for m in moves(steps)] == [(), TRANSITION_SCENARIOS[("decommission", "safe")]]


@pytest.mark.parametrize("text, message", [
    ("10,bogus", "--plan: unknown step 'bogus' (step 2); a step is one of P (0..100), phase2@P[:safe|:naive], "
                 "decommission[:safe|:naive]"),
    ("10,-5", "unknown step '-5' (step 2)"),
    ("10,phase2@", "unknown step 'phase2@' (step 2)"),
    ("10,phase3@90", "unknown step 'phase3@90'"),
    ("10", "--plan needs at least two steps (the first is where the platform is now), e.g. "
           "10,25,50,75,phase2@90,100,decommission; got '10'"),
    ("", "--plan needs at least two steps"),
    (" , ,", "--plan needs at least two steps"),
    ("50,25", "--plan: step '25': the percentage must rise from the previous step's 50 % (to lower it, roll back"),
    ("10,10", "--plan: step '10': the percentage must rise from the previous step's 10 %"),
    ("75,phase2@75", "step 'phase2@75': the percentage must rise from the previous step's 75 %"),
    ("75,phase2@90,90", "step '90': the percentage must rise from the previous step's 90 %"),
    ("75,phase2@90,phase2@95", "--plan: step 'phase2@95': phase 2 is entered once; later steps are percentages"),
    ("75,phase2@90,decommission,100", "--plan: step 'decommission' must be the last step"),
    ("75,phase2@90,decommission,decommission", "step 'decommission' must be the last step"),
    ("75,decommission", "--plan: step 'decommission' (step 2) comes before phase 2: the plan drains legacy only "
                        "once Celery is primary; add a phase2@P step before it"),
    ("10,100,decommission", "step 'decommission' (step 3) comes before phase 2"),
    ("decommission,100", "--plan: the first step is where the platform is now; it cannot be decommission"),
    ("75,phase2@90:fast", "--plan: step 'phase2@90:fast': the procedure is 'safe' or 'naive', got 'fast'"),
    ("75,phase2@90,decommission:quick", "step 'decommission:quick': the procedure is 'safe' or 'naive', got 'quick'"),
    ("75,150", "--plan: step '150': the percentage must be within 0..100"),
    ("75,phase2@100.5", "step 'phase2@100.5': the percentage must be within 0..100"),
    ("120,130", "step '120': the percentage must be within 0..100"),
])
def test_every_refusal_names_the_step(text: str, message: str) -> None:
    with pytest.raises(GateError) as info:
        parse_plan(text)
    assert message in str(info.value)


def test_moves_pair_each_step_with_the_next_and_name_their_transition_scenarios() -> None:
    plan = moves(parse_plan(PLAN))
    assert [m.describe() for m in plan] == ["10 → 25", "25 → 50", "50 → 75", "75 → phase2@90", "phase2@90 → 100",
                                            "100 → decommission"]
    assert [m.kind for m in plan] == ["split", "split", "split", "phase2", "split", "decommission"]
    assert [m.scenarios for m in plan] == [(), (), (), ("fallback-safe-reply-resets",), (),
                                           ("decommission-safe-drain", "decommission-then-legacy-submission")]
    assert (plan[3].frm.text, plan[3].to.text) == ("75", "phase2@90")
    assert moves(parse_plan("10,25")) == [Move(Step("10", 1, 10.0), Step("25", 1, 25.0))]


@pytest.mark.parametrize("text, kind, procedure", [
    ("75,phase2@90", "phase2", "safe"),
    ("75,phase2@90:naive", "phase2", "naive"),
    ("phase2@90,decommission", "decommission", "safe"),
    ("phase2@90,decommission:naive", "decommission", "naive"),
])
def test_each_transition_maps_to_its_scenarios_and_each_scenario_file_exists(text: str, kind: str,
                                                                             procedure: str) -> None:
    (move,) = moves(parse_plan(text))
    assert move.kind == kind
    assert move.scenarios == TRANSITION_SCENARIOS[(kind, procedure)]
    assert move.scenarios
    for name in move.scenarios:
        assert (PROJECT_ROOT / "scenarios" / "transition" / f"{name}.toml").is_file(), name


def test_the_naive_and_safe_procedures_run_different_scenarios() -> None:
    assert TRANSITION_SCENARIOS[("phase2", "naive")] == ("fallback-naive-reply-resets",
                                                         "fallback-naive-broker-partition")
    assert TRANSITION_SCENARIOS[("decommission", "naive")] == ("decommission-naive-drain",
                                                               "decommission-then-legacy-submission")
    assert set(TRANSITION_SCENARIOS) == {(k, p) for k in ("phase2", "decommission") for p in ("safe", "naive")}
    for name in {n for names in TRANSITION_SCENARIOS.values() for n in names}:
        assert (PROJECT_ROOT / "scenarios" / "transition" / f"{name}.toml").is_file(), name


def test_step_config_is_the_stack_settings_of_each_phase() -> None:
    ten, _, _, _, p2, hundred, decom = parse_plan(PLAN)
    assert ten.config() == {"celery_percentage": 10.0, "fallback": "none", "accept_legacy": True}
    assert p2.config() == {"celery_percentage": 90.0, "fallback": "safe", "accept_legacy": True}
    assert hundred.config() == {"celery_percentage": 100.0, "fallback": "safe", "accept_legacy": True}
    assert decom.config() == {"celery_percentage": 100.0, "fallback": "none", "accept_legacy": False}
    naive = parse_plan("75,phase2@90:naive,decommission:naive")
    assert naive[1].config()["fallback"] == "naive"
    assert naive[2].config() == {"celery_percentage": 100.0, "fallback": "none", "accept_legacy": False}
    assert decom.to_dict() == {"text": "decommission", "phase": 3, "percentage": 100.0, "procedure": "safe",
                               "kind": "decommission"}


def row(scenario: str, path: str, outcome: str, **counts: object) -> dict[str, object]:
    return {"scenario": scenario, "path": path, "outcome": outcome, "duplicated": 0, "unexpected": 0, "lost": 0,
            "stuck": 0, "violations": "[]", **counts}


def test_transition_checks_sum_both_paths_and_take_the_worst_outcome() -> None:
    frame = pd.DataFrame([
        row("decommission-safe-drain", "legacy", "failed", lost=2, stuck=1, duplicated=1,
            violations=json.dumps(["lost 2 > 0", "legacy-after-decommission 3 > 0"])),
        row("decommission-safe-drain", "celery", "finding", unexpected=4, stuck=5),
        row("decommission-then-legacy-submission", "legacy", "finding",
            violations=json.dumps(["legacy-after-decommission 1 > 0"])),
        row("decommission-then-legacy-submission", "celery", "held"),
        row("some-other-scenario", "celery", "failed", lost=9),
    ])
    checks = transition_checks(frame, ("decommission-safe-drain", "decommission-then-legacy-submission",
                                       "decommission-naive-drain"))  # the last is not in the frame: skipped
    assert checks == [
        TransitionCheck("decommission-safe-drain", executed_twice=5, unaccounted=8, legacy_after=1, outcome="failed"),
        TransitionCheck("decommission-then-legacy-submission", 0, 0, 1, "finding"),
    ]


def test_transition_checks_read_list_cells_nans_and_rank_error_worst() -> None:
    frame = pd.DataFrame([
        row("fallback-safe-reply-resets", "legacy", "held", duplicated=float("nan"), violations=None),
        row("fallback-safe-reply-resets", "celery", "error", duplicated=1.0,
            violations=["legacy-after-decommission 1 > 0", "duplicated 1 > 0"]),
        row("fallback-naive-reply-resets", "legacy", "known-failure"),
        row("fallback-naive-reply-resets", "celery", "held"),
    ])
    a, b = transition_checks(frame, ("fallback-safe-reply-resets", "fallback-naive-reply-resets"))
    assert a == TransitionCheck("fallback-safe-reply-resets", 1, 0, 1, "error")
    assert b == TransitionCheck("fallback-naive-reply-resets", 0, 0, 0, "known-failure")


def test_transition_checks_of_no_findings_are_none() -> None:
    assert transition_checks(pd.DataFrame(), ("fallback-safe-reply-resets",)) == []
    frame = pd.DataFrame([row("celery-broker-latency", "celery", "held")])
    assert transition_checks(frame, ("fallback-safe-reply-resets",)) == []
    assert transition_checks(frame, ()) == []


# ---------------------------------------------------------------------------------------------
# the gate's transition criterion (harness.gate.decide)

TH = load_thresholds()


def latency(n: int = 500, seed: int = 0) -> LatencyEvidence:
    """Two paths alike: overhead about normal(12, 2) ms, execution normal(200, 20) ms, every stage measured."""
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {}
    stages: dict[str, dict[str, list[float]]] = {}
    resources: dict[str, dict[str, list[float]]] = {}
    for path in ("legacy", "celery"):
        submit, queue, delivery = rng.normal(2.0, 0.5, n), rng.normal(7.0, 1.5, n), rng.normal(3.0, 1.0, n)
        execution = rng.normal(200.0, 20.0, n)
        overhead = submit + queue + delivery
        stages[path] = {"submit": submit.tolist(), "queue": queue.tolist(), "execution": execution.tolist(),
                        "delivery": delivery.tolist(), "overhead": overhead.tolist()}
        samples[path] = (overhead + execution).tolist()
        resources[path] = {"cpu_ms": rng.normal(30.0, 3.0, n).tolist(),
                           "peak_rss_kb": rng.normal(9000.0, 300.0, n).tolist()}
    return LatencyEvidence(samples, {"legacy": ErrorCount(n, 0), "celery": ErrorCount(n, 0)}, {}, stages, resources)


def good(split_at: float = 75) -> Evidence:
    return Evidence(
        parity=ParityEvidence(n=900, mismatches=0, mismatches_by_field={}, wrong={"legacy": 0, "celery": 0}, noise=0),
        chaos=(ChaosOutcome("celery-worker-kill-acks-late", "held"), ChaosOutcome("fallback-safe-reply-resets", "held")),
        latency=latency(),
        split=SplitEvidence(split_at, 1000, round(10 * split_at)),
    )


def check(scenario: str = "fallback-safe-reply-resets", twice: int = 0, unaccounted: int = 0, legacy_after: int = 0,
          outcome: str = "held") -> TransitionCheck:
    return TransitionCheck(scenario, twice, unaccounted, legacy_after, outcome)


def into_phase2(*checks: TransitionCheck) -> Evidence:
    return replace(good(), transition=TransitionEvidence("75 → phase2@90", "phase2", checks))


def into_phase3(*checks: TransitionCheck) -> Evidence:
    return replace(good(100), transition=TransitionEvidence("100 → decommission", "decommission", checks))


def transition(verdict: Verdict) -> Criterion:
    (found,) = [c for c in verdict.criteria if c.name.startswith("transition")]
    return found


def test_a_plain_split_move_has_no_transition_criterion() -> None:
    verdict = decide(good(), 75, 90, TH)
    assert verdict.verdict == "PASS", verdict.headline
    assert not [c for c in verdict.criteria if c.name.startswith("transition")]
    assert len(verdict.criteria) == 9


def test_a_phase2_move_whose_scenarios_ran_everything_once_passes() -> None:
    verdict = decide(into_phase2(check()), 75, 90, TH)
    assert verdict.verdict == "PASS", verdict.headline
    c = transition(verdict)
    assert (c.name, c.status) == ("transition (phase2)", "PASS")
    assert c.values["move"] == "75 → phase2@90" and c.values["scenarios"] == 1
    assert verdict.headline.endswith("all 10 criteria hold")
    assert verdict.criteria[-1] is c


def test_a_phase2_move_that_ran_an_evaluation_twice_fails() -> None:
    verdict = decide(into_phase2(check(), check("fallback-naive-reply-resets", twice=2, outcome="failed")), 75, 90, TH)
    assert (verdict.verdict, verdict.exit_code) == ("FAIL", 1)
    c = transition(verdict)
    assert c.status == "FAIL" and c.values["executed_twice"] == 2
    assert "2 evaluation(s) executed twice in fallback-naive-reply-resets" in c.detail
    assert "executed twice" in verdict.headline


def test_a_phase2_move_that_lost_an_evaluation_fails() -> None:
    c = transition(decide(into_phase2(check(unaccounted=1)), 75, 90, TH))
    assert c.status == "FAIL" and "1 accepted evaluation(s) unaccounted for in fallback-safe-reply-resets" in c.detail


@pytest.mark.parametrize("bad, fragment", [
    (check("decommission-then-legacy-submission", legacy_after=1, outcome="failed"),
     "legacy activity after the decommission in decommission-then-legacy-submission"),
    (check("decommission-safe-drain", unaccounted=3, outcome="failed"),
     "3 accepted evaluation(s) unaccounted for in decommission-safe-drain"),
    (check("decommission-safe-drain", twice=1, outcome="failed"), "1 evaluation(s) executed twice"),
])
def test_a_decommission_that_leaves_legacy_active_or_loses_work_fails(bad: TransitionCheck, fragment: str) -> None:
    verdict = decide(into_phase3(check("decommission-safe-drain"), bad), 100, 100, TH)
    assert verdict.verdict == "FAIL"
    c = transition(verdict)
    assert (c.name, c.status) == ("transition (decommission)", "FAIL")
    assert fragment in c.detail and fragment in verdict.headline


def test_a_clean_decommission_passes_at_the_same_share() -> None:
    verdict = decide(into_phase3(check("decommission-safe-drain"), check("decommission-then-legacy-submission")),
                     100, 100, TH)
    assert verdict.verdict == "PASS", verdict.headline
    assert transition(verdict).status == "PASS"
    assert "100 % → 100 %" in verdict.headline


def test_a_transition_without_its_scenarios_is_inconclusive_never_pass() -> None:
    verdict = decide(into_phase2(), 75, 90, TH)
    assert (verdict.verdict, verdict.exit_code) == ("INCONCLUSIVE", 2)
    c = transition(verdict)
    assert c.status == "INCONCLUSIVE" and c.observed == "no transition scenario run"
    assert "the move 75 → phase2@90 needs its transition scenarios, and none was run" in verdict.headline


def test_a_transition_scenario_that_could_not_be_carried_out_is_inconclusive() -> None:
    verdict = decide(into_phase2(check(), check("fallback-naive-broker-partition", outcome="error")), 75, 90, TH)
    assert verdict.verdict == "INCONCLUSIVE"
    c = transition(verdict)
    assert c.status == "INCONCLUSIVE"
    assert "transition scenario(s) not carried out: fallback-naive-broker-partition" in c.detail


def test_an_error_does_not_hide_a_failure() -> None:
    c = transition(decide(into_phase2(check(twice=1), check("x", outcome="error")), 75, 90, TH))
    assert c.status == "FAIL"


def test_the_same_share_is_allowed_only_for_a_transition() -> None:
    with pytest.raises(GateError, match=r"--target \(100 %\) must be greater than --current \(100 %\)"):
        decide(good(100), 100, 100, TH)
    with pytest.raises(GateError):
        check_step(100, 100)
    check_step(100, 100, same_allowed=True)
    with pytest.raises(GateError):  # lowering is never judged, transition or not
        decide(replace(into_phase3(check()), split=SplitEvidence(90, 1000, 900)), 90, 80, TH)
    with pytest.raises(GateError):
        check_step(90, 80, same_allowed=True)


def test_the_transition_criterion_reaches_the_verdicts_json_and_text() -> None:
    verdict = decide(into_phase3(check("decommission-safe-drain", legacy_after=1)), 100, 100, TH)
    doc = json.loads(json.dumps(verdict.to_dict(), allow_nan=False))
    names = [c["name"] for c in doc["criteria"]]
    assert "transition (decommission)" in names
    assert "transition (decommission)" in render_text(verdict)


# ---------------------------------------------------------------------------------------------
# chaos evidence with a transition scenario: every path's row counts


def test_a_failed_legacy_row_fails_a_transition_scenario_in_the_gate() -> None:
    frame = pd.DataFrame([
        row("decommission-then-legacy-submission", "legacy", "failed",
            violations=json.dumps(["legacy-after-decommission 1 > 0"])),
        row("decommission-then-legacy-submission", "celery", "held"),
    ])
    (outcome,) = chaos_evidence(frame) or []
    assert outcome.scenario == "decommission-then-legacy-submission"
    assert outcome.outcome == "failed"
    assert outcome.violations == ("legacy-after-decommission 1 > 0",)
    chaos = next(c for c in decide(replace(good(), chaos=(outcome,)), 75, 90, TH).criteria
                 if c.name == "chaos invariants")
    assert chaos.status == "FAIL" and "legacy-after-decommission" in chaos.detail


def test_a_legacy_finding_with_violations_next_to_a_held_celery_is_held_not_a_contradiction() -> None:
    frame = pd.DataFrame([
        row("celery-worker-kill-acks-late", "legacy", "finding", lost=1, violations=json.dumps(["lost 1 > 0"])),
        row("celery-worker-kill-acks-late", "celery", "held"),
    ])
    (outcome,) = chaos_evidence(frame) or []  # no GateError: violations come only from failed rows
    assert outcome.outcome == "finding" and outcome.violations == ()
    chaos = next(c for c in decide(replace(good(), chaos=(outcome,)), 75, 90, TH).criteria
                 if c.name == "chaos invariants")
    assert chaos.status == "PASS" and chaos.observed.startswith("1/1 scenarios held")


def test_a_known_failure_on_any_path_keeps_its_violations() -> None:
    frame = pd.DataFrame([
        row("fallback-naive-reply-resets", "legacy", "held"),
        {**row("fallback-naive-reply-resets", "celery", "known-failure", duplicated=1,
               violations=json.dumps(["duplicated 1 > 0"])), "known_failure": "the plan's naive fallback"},
    ])
    (outcome,) = chaos_evidence(frame) or []
    assert (outcome.outcome, outcome.violations) == ("known-failure", ("duplicated 1 > 0",))
    assert outcome.reason == "the plan's naive fallback"


def test_chaos_findings_reads_every_scenarios_folder(tmp_path: Path) -> None:
    for name, outcome in (("fallback-safe-reply-resets", "held"), ("celery-broker-latency", "finding")):
        part = tmp_path / "chaos" / name
        part.mkdir(parents=True)
        pd.DataFrame([row(name, "celery", outcome), row(name, "legacy", "held")]).to_parquet(
            part / "findings.parquet")
    frame = chaos_findings([tmp_path])
    assert sorted(set(frame["scenario"])) == ["celery-broker-latency", "fallback-safe-reply-resets"]
    assert len(frame) == 4
    assert transition_checks(frame, ("fallback-safe-reply-resets",)) == [check()]
    assert chaos_findings([tmp_path / "chaos" / "nothing-here"]).empty


def test_a_decommission_missing_one_of_its_scenarios_is_inconclusive() -> None:
    """Only the drain ran: whether legacy stays quiet after the decommission is unchecked, so no PASS."""
    evidence = replace(good(100), transition=TransitionEvidence(
        "100 → decommission", "decommission", (check("decommission-safe-drain"),),
        ("decommission-safe-drain", "decommission-then-legacy-submission")))
    verdict = decide(evidence, 100, 100, TH)
    assert verdict.verdict == "INCONCLUSIVE"
    assert "needs decommission-then-legacy-submission, which did not run" in transition(verdict).detail


def test_transition_checks_need_the_scenario_column() -> None:
    frame = pd.DataFrame([{"path": "celery", "outcome": "held", "lost": 3}])
    assert transition_checks(frame, ("a", "b")) == []
