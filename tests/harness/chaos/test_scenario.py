"""Scenario files: a valid one loads into typed objects; every kind of mistake names the file and the path."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.chaos.allowances import Allowances
from harness.chaos.scenario import (
    Expectation,
    PrioritySchedule,
    ScenarioError,
    component_names,
    load_all,
    load_scenario,
)
from harness.stack.config import StackConfig

SCENARIOS = Path(__file__).resolve().parents[3] / "scenarios" / "chaos"

VALID = """\
title = "Celery worker SIGKILL, default acks"
description = "Early ack loses the running task."

[stack]
acks_late = false
celery_workers = 2
visibility_timeout_s = 4
restore_interval_s = 1
restore_throttle = 1
retry_backoff_s = 0.5
candidate_defects = []

[steady_state]
paths = ["celery"]
timeout_s = 10

[workload]
routes = ["legacy", "celery"]
rate = 8.0
duration_s = 12
program = "sleep"
sleep_s = 0.5

[[faults]]
name = "kill worker"
at_s = 3.0
kind = "kill"
target = "celery-worker-2"
duration_s = 2

[[faults]]
name = "slow link"
at_s = 4
kind = "toxic"
target = "celery-worker-celery-redis"
duration_s = 6
toxic = { type = "latency", stream = "upstream", attributes = { latency = 200, jitter = 100 } }

[quiesce]
timeout_s = 30

[expect.celery]
lost = 0
duplicated = "allowance"
stuck = 3

[expect.legacy]
lost = "report"
"""


def write(tmp_path: Path, text: str, name: str = "x.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert all(p.startswith(f"{path}: ") for p in info.value.problems), info.value.problems
    return [p.removeprefix(f"{path}: ") for p in info.value.problems]


def test_a_valid_file_loads_into_typed_objects(tmp_path: Path) -> None:
    s = load_scenario(write(tmp_path, VALID, "kill.toml"))
    assert (s.name, s.title) == ("kill", "Celery worker SIGKILL, default acks")
    assert dict(s.stack)["celery_workers"] == 2 and dict(s.stack)["candidate_defects"] == ()
    cfg = s.stack_config(StackConfig(executor_timeout_s=5.0))
    assert (cfg.celery_workers, cfg.visibility_timeout_s, cfg.executor_timeout_s) == (2, 4, 5.0)
    assert s.steady_state.paths == ("celery",) and s.steady_state.timeout_s == 10
    assert s.workload.paths == ("legacy", "celery") and s.workload.priority_at(1.0) == 5
    kill, slow = s.faults
    assert (kill.kind, kill.target, kill.duration_s, kill.toxic) == ("kill", "celery-worker-2", 2.0, None)
    assert slow.toxic is not None and (slow.toxic.type, slow.toxic.stream, slow.toxic.toxicity) == (
        "latency", "upstream", 1.0)
    assert dict(slow.toxic.attributes) == {"latency": 200, "jitter": 100}
    assert s.quiesce_timeout_s == 30
    assert s.expect["celery"] == Expectation(lost=0, duplicated="allowance", stuck=3)
    assert s.expect["legacy"].lost == "report" and s.expect["legacy"].wrong == 0


def test_expectations_resolve_against_the_derived_allowances(tmp_path: Path) -> None:
    limits = load_scenario(write(tmp_path, VALID)).allowances()
    celery, legacy = limits["celery"], limits["legacy"]
    # early-ack kill of one worker: derived lost 2 / stuck 2; the file overrides lost to 0 and stuck to 3
    assert (celery.lost, celery.duplicated, celery.stuck, celery.wrong, celery.error) == (0, 0, 3, 0, 0)
    assert legacy.lost is None and legacy.duplicated == 0
    assert any("early ack" in r for r in celery.reasons)
    derived = Allowances(duplicated=8, executions=2)
    assert Expectation(duplicated="report").resolve(derived).executions is None
    assert Expectation(duplicated="allowance").resolve(derived).executions == 2


def test_a_priority_table_switches_from_backlog_to_high(tmp_path: Path) -> None:
    text = VALID.replace('sleep_s = 0.5\n', 'sleep_s = 0.5\npriority = { backlog = 1, high = 9, switch_at_s = 5 }\n')
    w = load_scenario(write(tmp_path, text)).workload
    assert w.priority == PrioritySchedule(1, 9, 5.0)
    assert (w.priority_at(4.9), w.priority_at(5.0)) == (1, 9)


# -- each kind of error names the file and the path inside it ------------------------------------------------


def test_a_missing_key_is_named(tmp_path: Path) -> None:
    assert problems(tmp_path, VALID.replace("rate = 8.0\n", "")) == ["workload.rate: missing (required)"]


def test_a_wrong_type_is_named_with_what_was_expected(tmp_path: Path) -> None:
    assert problems(tmp_path, VALID.replace("rate = 8.0", 'rate = "fast"')) == [
        "workload.rate: expected a number, got a string 'fast'"]
    assert problems(tmp_path, VALID.replace("acks_late = false", 'acks_late = "no"')) == [
        "stack.acks_late: expected a boolean (true or false), got a string 'no'"]
    assert problems(tmp_path, VALID.replace("acks_late = false", "celery_redis_policy = 3")) == [
        "stack.celery_redis_policy: expected one of 'noeviction', 'allkeys-lru', 'volatile-lru', 'allkeys-random', "
        "'volatile-ttl', got an integer 3"]


def test_an_unknown_key_is_named_with_a_suggestion(tmp_path: Path) -> None:
    found = problems(tmp_path, VALID.replace("duration_s = 12", "duraton_s = 12"))
    assert found[0].startswith("workload.duraton_s: unknown key; expected one of routes, rate, duration_s")
    assert "(did you mean 'duration_s'?)" in found[0]
    assert "workload.duration_s: missing (required)" in found


def test_an_unknown_stack_option_is_rejected_with_the_known_ones(tmp_path: Path) -> None:
    found = problems(tmp_path, VALID.replace("acks_late = false", "acks_lat = false"))
    assert found == [found[0]] and found[0].startswith("stack.acks_lat: unknown key; expected one of celery_enabled")
    assert "(did you mean 'acks_late'?)" in found[0]


def test_an_unknown_fault_kind_lists_the_kinds(tmp_path: Path) -> None:
    assert problems(tmp_path, VALID.replace('kind = "kill"', 'kind = "kil"')) == [
        "faults[0].kind: 'kil' is not one of kill, terminate, pause, restart, kill-pool-child, toxic, disable, "
        "memory-pressure, component-down (did you mean 'kill'?)"]


def test_an_unknown_target_is_checked_against_the_configured_counts(tmp_path: Path) -> None:
    found = problems(tmp_path, VALID.replace('target = "celery-worker-2"', 'target = "celery-worker-3"'))
    assert len(found) == 1
    assert found[0].startswith("faults[0].target: 'celery-worker-3' is not a valid target for kind 'kill'; "
                               "expected one of main-redis, celery-redis")
    assert "celery-worker-2" in found[0] and "celery-worker-3," not in found[0]
    link = problems(tmp_path, VALID.replace('target = "celery-worker-celery-redis"', 'target = "celery-worker-1"'))
    assert link[0].startswith("faults[1].target: 'celery-worker-1' is not a valid target for kind 'toxic'; "
                              "expected one of gateway-main-redis")


def test_a_bound_exceeded_says_the_bounds(tmp_path: Path) -> None:
    assert problems(tmp_path, VALID.replace("rate = 8.0", "rate = 500")) == [
        "workload.rate: 500 is out of bounds: expected 0 < rate <= 200"]
    assert problems(tmp_path, VALID.replace("at_s = 3.0", "at_s = 13")) == [
        "faults[0].at_s: 13 is out of bounds: expected 0 <= at_s <= 12.0"]


def test_a_toxic_on_a_kind_that_is_not_toxic_is_rejected(tmp_path: Path) -> None:
    text = VALID.replace('duration_s = 2\n', 'duration_s = 2\ntoxic = { type = "latency" }\n')
    assert problems(tmp_path, text) == [
        "faults[0].toxic: only kind = 'toxic' takes a toxic table; remove it or set kind = 'toxic' (kind is 'kill')"]


def test_toxic_types_and_attributes_are_checked(tmp_path: Path) -> None:
    text = VALID.replace('type = "latency"', 'type = "latncy"').replace("jitter = 100", "jiter = 100")
    assert problems(tmp_path, text) == [
        "faults[1].toxic.type: 'latncy' is not one of latency, bandwidth, slow_close, timeout, reset_peer, slicer, "
        "limit_data (did you mean 'latency'?)"]
    found = problems(tmp_path, VALID.replace("jitter = 100", "jiter = 100"))
    assert found[0].startswith("faults[1].toxic.attributes.jiter: unknown key; expected one of latency, jitter")


def test_bad_toml_syntax_gives_the_line(tmp_path: Path) -> None:
    found = problems(tmp_path, VALID.replace("rate = 8.0", "rate = = 8.0"))
    assert len(found) == 1 and found[0].startswith("invalid TOML: ") and "line 19" in found[0]


def test_durations_grace_and_redelivery_window_are_checked(tmp_path: Path) -> None:
    assert problems(tmp_path, VALID.replace("duration_s = 6\n", "")) == [
        "faults[1].duration_s: missing: kind 'toxic' needs a duration_s (seconds until it is healed)"]
    restart = VALID.replace('kind = "kill"', 'kind = "restart"')
    assert problems(tmp_path, restart) == ["faults[0].duration_s: kind 'restart' is instantaneous; remove duration_s"]
    grace = VALID.replace('duration_s = 2\n', 'duration_s = 2\ngrace_s = 5\n')
    assert problems(tmp_path, grace) == [
        "faults[0].grace_s: only kinds terminate, restart, component-down take a grace period; remove it"]
    slow = problems(tmp_path, VALID.replace("visibility_timeout_s = 4", "visibility_timeout_s = 60"))
    assert slow == ["quiesce.timeout_s: 30s is shorter than Celery's redelivery window 63s (visibility_timeout_s 60 "
                    "+ restore sweep 1 x 1 + longest retry countdown 2): lower those in [stack] or raise "
                    "quiesce.timeout_s"]


def test_memory_pressure_needs_a_maxmemory_and_names_the_option(tmp_path: Path) -> None:
    text = VALID.replace('kind = "kill"\ntarget = "celery-worker-2"', 'kind = "memory-pressure"\ntarget = "main-redis"')
    assert problems(tmp_path, text) == [
        "faults[0].target: main-redis has no maxmemory to fill up to; set stack.main_redis_maxmemory, e.g. '16mb'"]


def test_expectations_must_cover_exactly_the_paths_the_workload_uses(tmp_path: Path) -> None:
    only_celery = VALID.replace('routes = ["legacy", "celery"]', 'routes = ["celery"]')
    assert problems(tmp_path, only_celery) == [
        "expect.legacy: the workload never routes to legacy; remove this table or add the route"]
    no_legacy = VALID.replace('[expect.legacy]\nlost = "report"\n', "")
    assert problems(tmp_path, no_legacy) == [
        'expect.legacy: missing: the workload routes to legacy, so say what it must guarantee (use "report" for '
        "a known weakness)"]
    bad = VALID.replace('lost = "report"', 'lost = "some"')
    assert problems(tmp_path, bad) == [
        "expect.legacy.lost: expected an integer >= 0, \"allowance\" or \"report\", got a string 'some'"]


def test_every_problem_in_a_file_is_reported_at_once(tmp_path: Path) -> None:
    text = VALID.replace("rate = 8.0", "rate = -1").replace('kind = "kill"', 'kind = "kil"').replace(
        'title = "Celery worker SIGKILL, default acks"\n', "")
    text = text.replace('description = "Early ack loses the running task."', 'description = " "')
    found = problems(tmp_path, text)
    assert [p.split(":")[0] for p in found] == ["title", "workload.rate", "faults[0].kind", "description"]


def test_load_all_reports_every_broken_file_at_once(tmp_path: Path) -> None:
    write(tmp_path, VALID, "a-good.toml")
    write(tmp_path, VALID.replace("rate = 8.0", "rate = 0"), "b-bad.toml")
    write(tmp_path, "title = ", "c-worse.toml")
    with pytest.raises(ScenarioError) as info:
        load_all(tmp_path)
    assert [p.split(": ")[0] for p in info.value.problems] == [str(tmp_path / "b-bad.toml"),
                                                              str(tmp_path / "c-worse.toml")]
    assert "invalid scenario:" in str(info.value)
    with pytest.raises(ScenarioError, match="no scenario files"):
        load_all(tmp_path / "empty")


def test_component_names_follow_the_configured_counts() -> None:
    names = component_names(StackConfig(legacy_workers=1, celery_workers=2, flower=False))
    assert names == ("main-redis", "celery-redis", "executor-1", "executor-2", "executor-3", "gateway",
                     "legacy-worker-1", "celery-worker-1", "celery-worker-2", "fault-proxy")


# -- the shipped scenarios ---------------------------------------------------------------------------------------


def test_every_shipped_scenario_loads_and_validates() -> None:
    scenarios = load_all(SCENARIOS)
    assert len(scenarios) >= 12
    assert len({s.name for s in scenarios}) == len(scenarios)
    for s in scenarios:
        assert s.description.strip() and s.workload.duration_s <= 15, s.name
        assert set(s.expect) == set(s.workload.paths), s.name
        limits = s.allowances()  # every fault has an allowance rule
        assert set(limits) == set(s.expect), s.name


def test_the_celery_path_never_only_reports_on_correctness_in_shipped_scenarios() -> None:
    for s in load_all(SCENARIOS):
        if "celery" in s.expect:
            assert s.expect["celery"].wrong == 0 and s.expect["celery"].unexpected == 0 \
                and s.expect["celery"].misrouted == 0, s.name


# -- the keys added with the runner: batch, hot, finding, known_failure -----------------------------------------


def test_batch_hot_finding_and_known_failure_load(tmp_path: Path) -> None:
    text = VALID.replace('description = "Early ack loses the running task."',
                         'description = "Early ack loses the running task."\nfinding = "measured: one lost"')
    text = text.replace('sleep_s = 0.5\n', 'sleep_s = 0.5\nbatch = true\n', 1)
    text += '\n[known_failure]\ninvariants = ["lost", "executions"]\nreason = "kombu#000"\n'
    text = text.replace('celery_workers = 2\n', 'celery_workers = 2\ncelery_redis_maxmemory = "8mb"\n')
    text += ('\n[[faults]]\nname = "fill"\nat_s = 1\nkind = "memory-pressure"\ntarget = "celery-redis"\n'
             'duration_s = 2\nhot = true\n')
    s = load_scenario(write(tmp_path, text))
    assert s.workload.batch is True and s.finding == "measured: one lost"
    assert s.known_failure is not None and s.known_failure.invariants == ("lost", "executions")
    assert s.known_failure.reason == "kombu#000"
    assert [f.hot for f in s.faults] == [False, False, True]


def test_hot_only_for_memory_pressure_and_known_failure_names_invariants(tmp_path: Path) -> None:
    text = VALID.replace('duration_s = 2\n', 'duration_s = 2\nhot = true\n', 1)
    text += '\n[known_failure]\ninvariants = ["slow"]\nreason = ""\n'
    found = problems(tmp_path, text)
    assert any(p.startswith("faults[0].hot: only kind 'memory-pressure' takes hot") for p in found), found
    assert any(p.startswith("known_failure.invariants[0]: 'slow' is not one of lost") for p in found), found
    assert any(p.startswith("known_failure.reason: must not be empty") for p in found), found


def test_two_faults_on_one_target_may_not_overlap_except_toxics(tmp_path: Path) -> None:
    pause = VALID.replace('[quiesce]', '[[faults]]\nname = "pause worker"\nat_s = 4.5\nkind = "pause"\n'
                                       'target = "celery-worker-2"\nduration_s = 3\n\n[quiesce]')
    assert problems(tmp_path, pause) == [
        "faults[2]: 'pause worker' (pause at 4.5 s for 3 s) overlaps 'kill worker' (faults[0], kill at 3 s for 2 s) "
        "on celery-worker-2: a component or link takes one fault at a time (healing one would undo the other; only "
        "toxics stack); start it after 5 s, or give it another target"]
    load_scenario(write(tmp_path, pause.replace("at_s = 4.5", "at_s = 5.5")))  # after the heal: fine
    load_scenario(write(tmp_path, pause.replace('target = "celery-worker-2"\nduration_s = 3',
                                                'target = "celery-worker-1"\nduration_s = 3')))  # another target
    instants = VALID.replace('kind = "kill"\ntarget = "celery-worker-2"\nduration_s = 2',
                             'kind = "kill-pool-child"\ntarget = "celery-worker-2"').replace(
        '[quiesce]', '[[faults]]\nname = "again"\nat_s = 3.0\nkind = "kill"\ntarget = "celery-worker-2"\n\n[quiesce]')
    assert len(problems(tmp_path, instants)) == 1  # two instants at one time on one target
    load_scenario(write(tmp_path, instants.replace('name = "again"\nat_s = 3.0', 'name = "again"\nat_s = 3.5')))
    toxics = VALID.replace('[quiesce]', '[[faults]]\nname = "slow back"\nat_s = 5\nkind = "toxic"\n'
                                        'target = "celery-worker-celery-redis"\nduration_s = 2\n'
                                        'toxic = { type = "latency", stream = "downstream", attributes = { latency = 100 } }'
                                        '\n\n[quiesce]')
    load_scenario(write(tmp_path, toxics))  # toxics stack on one link (Toxiproxy names each)
