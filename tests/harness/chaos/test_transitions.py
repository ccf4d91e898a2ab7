"""Migration transitions: the schema, the plan's phase order, and what a decommission adds."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from harness.chaos.scenario import ScenarioError, load_scenario
from harness.chaos.transitions import Transition, check_decommission, decommissioned_at, phase_of
from harness.history import History

BASE = """\
title = "t"
description = "d"
gate = ["legacy", "celery"]

[workload]
routes = ["dual"]
rate = 2.0
duration_s = 10
program = "quick"

[expect.legacy]
lost = 0

[expect.celery]
lost = 0
"""


def scenario(tmp_path: Path, transitions: str) -> Any:
    file = tmp_path / "t.toml"
    file.write_text(BASE + transitions)
    return load_scenario(file)


def test_transitions_load_in_time_order_with_their_defaults(tmp_path: Path) -> None:
    s = scenario(tmp_path, """
[[transitions]]
at_s = 6
kind = "decommission"
drain = "safe"

[[transitions]]
at_s = 2
kind = "phase2"
fallback = "naive"
""")
    assert [t.kind for t in s.transitions] == ["phase2", "decommission"]
    assert s.transitions[0] == Transition(2.0, "phase2", 90.0, "naive", None, False, 20.0)
    assert s.transitions[1].drain == "safe" and s.transitions[1].stop_workers
    assert s.gate == ("legacy", "celery")
    assert s.transitions[0].name == "phase2 90 % naive fallback at 2s"


@pytest.mark.parametrize(("transitions", "problem"), [
    ('[[transitions]]\nat_s = 2\nkind = "decommission"\ndrain = "safe"\n',
     "transitions[0].kind: a decommission needs phase 2 first"),
    ('[[transitions]]\nat_s = 12\nkind = "split"\npercentage = 75\n',
     "transitions[0].at_s: 12s is not before the workload's end (10s)"),
    ('[[transitions]]\nat_s = 2\nkind = "split"\npercentage = 75\n[[transitions]]\nat_s = 2\nkind = "rollback"\n',
     "transitions[1].at_s: another transition is already at 2s"),
    ('[[transitions]]\nat_s = 2\nkind = "phase3"\n', "transitions[0].kind: 'phase3' is not one of split, phase2"),
    ('[[transitions]]\nat_s = 2\nkind = "phase2"\nfallback = "clever"\n',
     "transitions[0].fallback: expected one of naive, safe, got 'clever'"),
    ('[[transitions]]\nat_s = 2\nkind = "split"\ndrain = "safe"\npercentage = 50\n',
     "transitions[0].drain: not a setting of a split transition"),
])
def test_an_impossible_or_out_of_order_schedule_is_refused_naming_the_problem(tmp_path: Path, transitions: str,
                                                                             problem: str) -> None:
    with pytest.raises(ScenarioError) as info:
        scenario(tmp_path, transitions)
    assert any(problem in p for p in info.value.problems), info.value.problems


def test_the_plans_phases_go_forward_and_rollback_is_allowed_from_any() -> None:
    moves = [Transition(1, "phase2", 90, "safe"), Transition(2, "decommission", drain="safe"),
             Transition(3, "rollback", 0.0), Transition(4, "split", 25.0)]
    assert phase_of(moves, 1) == [(2, None), (3, None), (1, None), (1, None)]
    assert phase_of([Transition(1, "split", 50.0)], 3)[0][1].startswith("a split change in phase 3")


def test_after_a_decommission_no_legacy_acceptance_or_execution_is_allowed() -> None:
    history = History(clock=iter([0.0, 0.5, 1.0, 2.0, 5.0, 5.5, 6.0, 6.5]).__next__)
    history._start = 0.0
    t = history.invoke("operator", "transition", value={"kind": "decommission", "drain": "naive"})
    history.complete(t, "ok")
    s = history.invoke(1, "submit", value={"marker": "m"})
    history.complete(s, "ok", eval_id="late", value={"eval_id": "late", "routes": ["legacy"]})
    assert decommissioned_at(history.ops) == 1.0
    ledger = [{"eval_id": "old", "executor_id": "executor-1", "started_at": 100.5},
              {"eval_id": "ran-late", "executor_id": "executor-2", "started_at": 103.0},
              {"eval_id": "c", "executor_id": "executor-3", "started_at": 104.0}]
    (v,) = check_decommission(history.ops, ledger, wall0=100.0)
    assert (v.path, v.invariant, v.count, v.eval_ids) == ("legacy", "legacy-after-decommission", 2,
                                                          ("late", "ran-late"))
    r = history.invoke("operator", "transition", value={"kind": "rollback"})
    history.complete(r, "ok")
    assert decommissioned_at(history.ops) is None and check_decommission(history.ops, ledger, 100.0) == []


def test_every_transition_scenario_file_loads(tmp_path: Path) -> None:
    folder = Path(__file__).resolve().parents[3] / "scenarios" / "transition"
    for file in sorted(folder.glob("*.toml")):
        tomllib.loads(file.read_text())
        s = load_scenario(file)
        assert s.transitions or s.stack, file
