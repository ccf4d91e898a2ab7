"""``harness chaos explore`` without a stack: the strategy, the profiles, shrinking, the cache, confirmation,
several discoveries, known failures, the budget and the report."""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings

from harness.chaos.cli import main
from harness.chaos.explore import (
    KNOBS,
    LEGACY_TARGETS,
    PROFILES,
    SAFE_KNOBS,
    Exploration,
    ExploreError,
    Space,
    Trial,
    cell,
    drain_s,
    explore,
    explore_space,
    key_of,
    region,
    schedule_regions,
    schedules,
    shrink_candidates,
    size,
    to_toml,
)
from harness.chaos.explore_report import summary, write_report
from harness.chaos.scenario import Scenario, load_all, load_scenario, parse_scenario
from harness.stack.config import StackConfig

SAFE = Space(PROFILES["safe"])


def _named(s: dict) -> dict:  # type: ignore[type-arg]
    return {**s, "title": "t", "description": "d"}


@settings(max_examples=200, database=None, deadline=None, suppress_health_check=list(HealthCheck))
@given(schedules(Space(max_faults=4, stack={"candidate_defects": ["no_dead_letter"]})))
def test_every_drawn_schedule_is_a_valid_scenario_file_and_survives_a_toml_round_trip(schedule: dict) -> None:  # type: ignore[type-arg]
    scenario = parse_scenario(_named(schedule), "x.toml")
    assert 1 <= len(scenario.faults) <= 4
    assert len({f.target for f in scenario.faults}) == len(scenario.faults)  # one fault per target
    assert scenario.stack["candidate_defects"] == ("no_dead_letter",)
    again = tomllib.loads(to_toml(_named(schedule)))
    assert key_of(again) == key_of(schedule)


@settings(max_examples=200, database=None, deadline=None, suppress_health_check=list(HealthCheck))
@given(schedules())
def test_the_quiesce_outlasts_the_backlog_the_drawn_workload_makes_at_the_drawn_concurrency(schedule: dict) -> None:  # type: ignore[type-arg]
    # A backlog still draining is slow, not stuck: the safe control once called 46 evaluations of a
    # sleep 8/s workload on one process "stuck" after a 59 s quiesce.
    wl, stack = schedule["workload"], schedule["stack"]
    processes = stack["celery_workers"] * stack["celery_concurrency"]
    each = {"quick": 0.1, "sleep": wl.get("sleep_s", 0) + 0.1, "mixed": (wl.get("sleep_s", 0) + 0.3) / 3}[wl["program"]]
    work = wl["rate"] * wl["duration_s"] * each / processes
    assert drain_s(wl, stack) == pytest.approx(work)
    assert schedule["quiesce"]["timeout_s"] >= 1.5 * work + 20
    assert schedule["quiesce"]["timeout_s"] >= stack["visibility_timeout_s"] + 20  # and the redelivery window


def test_a_heavy_workload_on_one_process_gets_a_quiesce_long_enough_to_drain_it() -> None:
    stack = {"celery_workers": 1, "celery_concurrency": 1}
    heavy = {"routes": ["celery"], "rate": 8.0, "duration_s": 10.0, "program": "sleep", "sleep_s": 2.0}
    assert drain_s(heavy, stack) == pytest.approx(168.0)
    assert drain_s({**heavy, "program": "quick"}, {"celery_workers": 2, "celery_concurrency": 4}) == pytest.approx(1.0)


@settings(max_examples=100, database=None, deadline=None, suppress_health_check=list(HealthCheck))
@given(schedules(SAFE))
def test_the_safe_profile_draws_only_the_safe_knobs(schedule: dict) -> None:  # type: ignore[type-arg]
    parse_scenario(_named(schedule), "x.toml")
    for knob, (value,) in SAFE_KNOBS.items():
        assert schedule["stack"][knob] == value


@settings(max_examples=100, database=None, deadline=None, suppress_health_check=list(HealthCheck))
@given(schedules(Space(kinds=frozenset({"toxic", "kill"}), targets=("celery-*",), strict=True)))
def test_kinds_and_targets_narrow_the_draw_and_strict_bounds_are_zero(schedule: dict) -> None:  # type: ignore[type-arg]
    scenario = parse_scenario(_named(schedule), "x.toml")
    assert all(f.kind in ("toxic", "kill") and fnmatch.fnmatchcase(f.target, "celery-*") for f in scenario.faults)
    celery = scenario.expect["celery"]
    assert (celery.lost, celery.duplicated, celery.stuck) == (0, 0, 0)


def test_the_smallest_schedule_is_one_short_kill_late_in_the_simplest_workload_with_default_knobs() -> None:
    smallest = find(schedules(Space(max_faults=3)), lambda _: True,
                    settings=settings(database=None, phases=[Phase.generate, Phase.shrink]))
    (fault,) = smallest["faults"]
    assert (fault["kind"], fault["target"], "duration_s" in fault) == ("kill", "celery-worker-1", False)
    assert fault["at_s"] == smallest["workload"]["duration_s"] - 0.5  # the latest start
    assert smallest["workload"] == {"routes": ["celery"], "rate": 4.0, "duration_s": 6.0, "program": "quick"}
    assert all(smallest["stack"][name] == choices[0] for name, choices in KNOBS)


@settings(max_examples=60, database=None, deadline=None, suppress_health_check=list(HealthCheck))
@given(schedules(Space(max_faults=3)))
def test_every_shrink_candidate_is_smaller_than_the_schedule_it_comes_from(schedule: dict) -> None:  # type: ignore[type-arg]
    for candidate in shrink_candidates(schedule, Space()):
        assert size(candidate, Space()) < size(schedule, Space()) or (
            # a later start keeps the size: it is simpler by being shorter in the run
            [f["at_s"] for f in candidate["faults"]] > [f["at_s"] for f in schedule["faults"]])


class FakeStack:
    """A RunFn: a schedule breaks what ``breaks`` returns (invariants), except on the seeds in ``outcomes``."""

    def __init__(self, breaks: Callable[[Scenario], tuple[str, ...]], *, outcomes: dict[int, str] | None = None,
                 seconds: float = 1.0, clock: list[float] | None = None) -> None:
        self.breaks, self.outcomes, self.seconds, self.clock = breaks, outcomes or {}, seconds, clock
        self.calls: list[tuple[str, int, str]] = []

    def __call__(self, scenario: Scenario, seed: int, folder: str) -> Trial:
        self.calls.append((scenario.name, seed, folder))
        if self.clock is not None:
            self.clock[0] += self.seconds
        broken = self.breaks(scenario)
        if seed in self.outcomes:
            return Trial(self.outcomes[seed], self.seconds, errors=("boom",) if self.outcomes[seed] == "error" else (),
                         invariants=broken if self.outcomes[seed] == "failed" else ())
        return Trial("failed" if broken else "held", self.seconds,
                     tuple(f"celery: {i} 1 > 0 allowed" for i in broken), invariants=broken)


def _hits_executor_3(s: Scenario) -> tuple[str, ...]:
    return ("dead-letter",) if any(f.target in ("executor-3", "celery-executor-3") for f in s.faults) else ()


def _two_hazards(s: Scenario) -> tuple[str, ...]:
    out = set(_hits_executor_3(s))
    if any(f.kind == "memory-pressure" for f in s.faults):
        out.add("lost")
    return tuple(sorted(out))


def _explore(tmp_path: Path, stack: FakeStack, **kwargs: object) -> Exploration:
    options: dict = {"examples": 40, "seed": 4, "max_time_s": 10_000.0, "shrink_runs": 50,  # type: ignore[type-arg]
                     "found_dir": tmp_path / "found", "say": lambda _m: None, "space": Space(max_faults=3), **kwargs}
    return explore(run=stack, **options)


def test_a_failure_is_shrunk_confirmed_and_written_as_a_scenario_file_that_loads(tmp_path: Path) -> None:
    report = _explore(tmp_path, FakeStack(_hits_executor_3), max_discoveries=1)
    (discovery,) = report.discoveries
    (fault,) = discovery.shrunk["faults"]
    assert fault["target"] in ("executor-3", "celery-executor-3")
    assert discovery.shrunk["workload"]["routes"] == ["celery"] and discovery.shrunk["workload"]["program"] == "quick"
    assert discovery.confirmation is not None and discovery.confirmation.reproduced == 3 and not discovery.known
    assert discovery.written is not None
    scenario = load_scenario(discovery.written)
    assert len(scenario.faults) == 1 and scenario.expect["celery"].lost == "allowance"  # the default checker
    assert "seed 4" in scenario.finding and "reproduced 3 of 3" in scenario.finding
    assert report.failed


def test_a_bounded_shrink_stops_after_its_runs_and_still_confirms(tmp_path: Path) -> None:
    stack = FakeStack(_hits_executor_3)
    report = _explore(tmp_path, stack, shrink_runs=2, max_discoveries=1)
    (discovery,) = report.discoveries
    assert len(discovery.shrink_steps) == 2 and "shrink runs" in discovery.shrink_stopped
    assert discovery.confirmed and discovery.written is not None


def test_each_invariant_is_a_finding(tmp_path: Path) -> None:
    report = _explore(tmp_path, FakeStack(_two_hazards), examples=150)
    broke = sorted(tuple(f.invariants) for f in report.discoveries)
    assert ("dead-letter",) in broke and ("lost",) in broke, broke
    assert all(f.confirmed and f.written is not None for f in report.discoveries)
    assert len(list((tmp_path / "found").glob("*.toml"))) == len(report.discoveries)


def test_a_second_finding_of_an_invariant_comes_only_from_another_region_and_there_is_no_third(
        tmp_path: Path) -> None:
    def lost(s: Scenario) -> tuple[str, ...]:
        return ("lost",) if any(f.kind in ("memory-pressure", "kill", "pause") for f in s.faults) else ()
    report = _explore(tmp_path, FakeStack(lost), examples=200, max_discoveries=10)
    assert 1 <= len(report.discoveries) <= 2
    if len(report.discoveries) == 2:
        first, second = report.discoveries
        assert not first.regions & schedule_regions(second.first.schedule)


def test_the_cache_runs_each_schedule_once(tmp_path: Path) -> None:
    stack = FakeStack(_hits_executor_3)
    _explore(tmp_path, stack, max_discoveries=1)
    searched = [name for name, _, folder in stack.calls if "confirm" not in folder]
    assert len(searched) == len(set(searched)) and len(searched) > 1
    assert sum("confirm" in folder for _, _, folder in stack.calls) == 3


@pytest.mark.parametrize(("outcomes", "written"), [
    ({5: "failed", 6: "held", 7: "failed"}, True),
    ({5: "held", 6: "failed", 7: "held"}, False),
    ({5: "error", 6: "error", 7: "failed"}, False),  # an error is never a reproduction
])
def test_a_failure_is_written_only_when_it_reproduces_in_2_of_3_new_seeds(tmp_path: Path, outcomes: dict[int, str],
                                                                           written: bool) -> None:
    report = _explore(tmp_path, FakeStack(_hits_executor_3, outcomes=outcomes), examples=200, max_discoveries=1)
    discovery = report.discoveries[0]
    assert discovery.confirmation is not None and discovery.confirmation.seeds == (5, 6, 7)
    assert (discovery.written is not None) is written
    assert list((tmp_path / "found").glob("*.toml")) == ([discovery.written] if written else [])
    assert report.failed is written


def test_an_unconfirmed_finding_leaves_its_invariant_open_for_a_later_one(tmp_path: Path) -> None:
    report = _explore(tmp_path, FakeStack(_hits_executor_3, outcomes={5: "held", 6: "held"}), examples=60)
    assert len(report.discoveries) >= 2 and all(f.invariants == ("dead-letter",) for f in report.discoveries)


def _known(invariants: list[str], *faults: tuple[str, str], **stack: object) -> Scenario:
    """A hand-written scenario declaring a known failure of ``invariants`` with faults (kind, target)."""
    return parse_scenario({
        "title": "k", "description": "d", "known_failure": {"invariants": invariants, "reason": "r"},
        "stack": {"visibility_timeout_s": 4, "restore_interval_s": 1, "restore_throttle": 1, "retry_backoff_s": 0.5,
                  "main_redis_maxmemory": "8mb", "celery_redis_maxmemory": "8mb", **stack},
        "workload": {"routes": ["celery"], "rate": 2, "duration_s": 6, "program": "quick"},
        "faults": [{"name": f"f{i}", "at_s": 1, "kind": k, "target": t, "duration_s": 3} for i, (k, t) in enumerate(faults)],
        "quiesce": {"timeout_s": 30}, "expect": {"celery": {}}}, "k.toml")


def test_a_finding_a_scenario_declares_as_known_is_named_and_the_safe_profile_leaves_its_region_out(
        tmp_path: Path) -> None:
    known = _known(["dead-letter"], ("component-down", "executor-3"))
    stack = FakeStack(lambda s: ("dead-letter",) if any(
        (f.kind, f.target) == ("component-down", "executor-3") for f in s.faults) else ())
    report = _explore(tmp_path, stack, known=[known], examples=200,
                      space=Space(kinds=frozenset({"component-down", "kill"}), targets=("executor-3",)))
    assert [f.known for f in report.discoveries] == ["k.toml"] and report.failed
    assert "known failure of k.toml" in summary(report, 4)
    safe = _explore(tmp_path / "safe", stack, known=[known], examples=30,
                    space=Space(PROFILES["safe"], kinds=frozenset({"component-down", "kill"}), targets=("executor-3",)))
    assert not safe.discoveries and not safe.failed and len(safe.examples) >= 1
    assert all(("component-down", "executor-3") not in {(f["kind"], f["target"]) for f in s.schedule["faults"]}
               for s in safe.steps)


def test_nothing_left_to_draw_is_an_error_before_anything_runs() -> None:
    known = _known(["lost"], ("memory-pressure", "celery-redis"), ("memory-pressure", "main-redis"),
                   celery_redis_policy="noeviction")  # the safe profile's: the same region, guarantee included
    with pytest.raises(ExploreError, match="nothing to draw"):
        explore_space(Space(PROFILES["safe"], kinds=frozenset({"memory-pressure"})), [known])


def test_no_failure_within_the_examples_writes_nothing(tmp_path: Path) -> None:
    report = _explore(tmp_path, FakeStack(lambda _s: ()), examples=5)
    assert not report.discoveries and not report.failed and len(report.examples) == 5
    assert not (tmp_path / "found").exists()
    assert "FOUND NOTHING" in summary(report, 4)


def test_the_time_budget_stops_the_search(tmp_path: Path) -> None:
    clock = [0.0]
    stack = FakeStack(lambda _s: (), seconds=100.0, clock=clock)
    report = _explore(tmp_path, stack, examples=None, max_time_s=250.0, clock=lambda: clock[0])
    assert len(stack.calls) == 3 and report.out_of_time  # started at 0, 100 and 200 s; none after 250 s


def test_runs_that_cannot_be_carried_out_stop_the_search_and_are_never_found(tmp_path: Path) -> None:
    report = _explore(tmp_path, FakeStack(lambda _s: (), outcomes={4: "error"}))
    assert len(report.examples) == 3 and not report.discoveries and "could not be carried out" in report.stopped


def test_saved_failures_are_replayed_first(tmp_path: Path) -> None:
    _explore(tmp_path, FakeStack(_hits_executor_3), max_discoveries=1)
    stack = FakeStack(_hits_executor_3)
    report = _explore(tmp_path, stack, examples=1)
    assert stack.calls[0][2].startswith("replay-") and [r.still_fails for r in report.replays] == [True]
    assert report.failed


def test_the_report_puts_the_first_failing_schedule_beside_the_shrunk_one(tmp_path: Path) -> None:
    report = _explore(tmp_path, FakeStack(_two_hazards), examples=80)
    page = write_report(report, tmp_path).read_text()
    assert page.count("<svg") == 2 * len(report.discoveries) >= 4
    assert page.count("First failing (example") == len(report.discoveries)
    shrunk = sum(bool(f.shrink_steps) for f in report.discoveries)
    assert shrunk and page.count("<h4>Shrunk (") == shrunk  # a side that was not shrunk does not say it was
    assert page.count("<h4>Not shrunk") == len(report.discoveries) - shrunk
    assert (tmp_path / "explore.md").read_text().count("| example |") == len(report.examples)


@pytest.mark.parametrize("argv", [["explore", "--examples", "0"], ["--examples", "2"], ["--budget", "1m"],
                                  ["explore", "x"], ["explore", "--budget", "soon"], ["explore", "--budget", "0"],
                                  ["explore", "--kinds", "kil"], ["explore", "--profile", "careful"],
                                  ["explore", "--profile", "safe", "--kinds", "memory-pressure"],
                                  ["explore", "--stack-option", "candidate_defect=x"],
                                  ["explore", "--stack-option", "candidate_defects=nope"]])
def test_usage_errors_exit_3_before_anything_starts(argv: list[str]) -> None:
    assert main(argv) == 3


def test_a_region_joins_the_workers_and_the_ways_of_breaking_a_link() -> None:
    assert region("toxic", "gateway-celery-redis", "reset_peer") == region("disable", "gateway-celery-redis") \
        == ("break", "gateway-celery-redis")
    assert region("toxic", "gateway-celery-redis", "latency") == ("slow", "gateway-celery-redis")
    assert region("kill", "celery-worker-2") == region("kill", "celery-worker-1") == ("kill", "celery-worker-N")
    assert region("kill", "executor-3") == ("kill", "executor-3")


def test_a_cell_splits_a_link_by_what_the_fault_does_to_a_request() -> None:
    link = "gateway-celery-redis"
    # refused: the request never reaches the server (a partition, or a connection-breaking toxic on the way in)
    assert {cell("disable", link), *(cell("toxic", link, t, stream="upstream")
                                     for t in ("reset_peer", "timeout", "limit_data"))} == {("refuse", link)}
    # the reply lost: the server applied the request, the client cannot know (on the way back)
    assert {cell("toxic", link, t, stream="downstream") for t in ("reset_peer", "timeout", "limit_data")} \
        == {("lose reply", link)}
    assert {cell("toxic", link, t, stream=w) for t in ("latency", "bandwidth", "slicer", "slow_close")
            for w in ("upstream", "downstream")} == {("slow", link)}
    early = StackConfig.for_tests()
    assert cell("kill", "celery-worker-2", cfg=early) == region("kill", "celery-worker-2", cfg=early)


def test_a_region_says_the_guarantee_that_decides_what_a_fault_costs() -> None:
    early, late = StackConfig.for_tests(), StackConfig.for_tests(acks_late=True)
    safe = StackConfig.for_tests(acks_late=True, reject_on_worker_lost=True, celery_redis_policy="noeviction")
    kills = {region("kill", "celery-worker-2", cfg=c) for c in (early, late, safe)}
    assert kills == {("kill", "celery-worker-N (early acks)"), ("kill", "celery-worker-N (late acks)"),
                     ("kill", "celery-worker-N (late acks, reject on worker lost)")}
    assert region("memory-pressure", "celery-redis", cfg=early) == ("memory-pressure", "celery-redis (allkeys-lru)")
    assert region("memory-pressure", "celery-redis", cfg=safe) == ("memory-pressure", "celery-redis (noeviction)")
    # where no guarantee decides the cost, the configuration changes nothing
    assert region("memory-pressure", "main-redis", cfg=early) == region("memory-pressure", "main-redis", cfg=safe)
    assert region("toxic", "gateway-celery-redis", "reset_peer", early) == ("break", "gateway-celery-redis")


def _loses_on_kills(s: Scenario) -> tuple[str, ...]:
    return ("lost",) if any(f.kind == "kill" for f in s.faults) else ()


def test_a_known_failure_names_a_loss_only_under_its_own_guarantee(tmp_path: Path) -> None:
    known = _known(["lost"], ("kill", "celery-worker-1"), acks_late=True, reject_on_worker_lost=True)
    space = Space(kinds=frozenset({"kill"}), targets=("celery-worker-*",), strict=True)
    report = _explore(tmp_path, FakeStack(_loses_on_kills), known=[known], examples=60, space=space,
                      max_discoveries=5)
    by_guarantee = {next(iter(schedule_regions(f.shrunk)))[1]: f for f in report.discoveries}
    assert by_guarantee["celery-worker-N (late acks, reject on worker lost)"].known == "k.toml"
    early = by_guarantee["celery-worker-N (early acks)"]  # the documented at-most-once loss: another hazard
    assert not early.known and early.confirmed and early.written is not None


def test_after_a_discovery_the_search_looks_elsewhere_while_anything_else_is_left(tmp_path: Path) -> None:
    space = Space(kinds=frozenset({"kill", "pause"}), targets=("executor-3", "celery-redis"), max_faults=1)
    stack = FakeStack(lambda s: ("lost",) if any(f.target == "executor-3" for f in s.faults) else ())
    report = _explore(tmp_path, stack, space=space, examples=20, max_discoveries=5)
    first = report.discoveries[0]
    later = [s for s in report.examples if s.at_s > first.first.at_s]
    assert later and all(not schedule_regions(s.schedule) & first.covers for s in later)
    # with nothing else left to draw, the search draws inside the covered region again
    narrow = _explore(tmp_path / "narrow", stack, examples=6,
                      space=Space(kinds=frozenset({"kill"}), targets=("executor-3",), max_faults=1))
    assert len(narrow.discoveries) == 1 and len(narrow.examples) == 6


KNOWN = [s for d in ("chaos", "transition") for s in load_all(Path(__file__).parents[3] / "scenarios" / d)]
SAFE_HERE = explore_space(SAFE, KNOWN)


@settings(max_examples=150, database=None, deadline=None, suppress_health_check=list(HealthCheck))
@given(schedules(SAFE_HERE))
def test_the_safe_profile_never_draws_where_a_scenario_file_declares_a_known_failure(schedule: dict) -> None:  # type: ignore[type-arg]
    assert SAFE_HERE.left_out  # the files declare some
    assert not schedule_regions(schedule) & SAFE_HERE.left_out


def test_a_knob_fixed_by_the_stack_is_never_shrunk_so_shrinking_ends(tmp_path: Path) -> None:
    space = Space(max_faults=2, stack={"max_retries": 1, "candidate_defects": ["no_dead_letter"]})
    report = _explore(tmp_path, FakeStack(_hits_executor_3), space=space, max_discoveries=1)
    (discovery,) = report.discoveries
    assert discovery.shrunk["stack"]["max_retries"] == 1 and discovery.confirmed
    for candidate in shrink_candidates(discovery.shrunk, space):
        assert candidate["stack"]["max_retries"] == 1


def test_a_known_failure_is_seen_once_counted_and_not_searched_for_again(tmp_path: Path) -> None:
    known = _known(["dead-letter"], ("component-down", "executor-3"))
    stack = FakeStack(_hits_executor_3)
    report = _explore(tmp_path, stack, known=[known], examples=100,
                      space=Space(kinds=frozenset({"component-down"}), targets=("executor-3",)))
    (discovery,) = report.discoveries
    assert discovery.known == "k.toml" and discovery.confirmation is None and report.failed
    assert not any("confirm" in folder for _, _, folder in stack.calls)  # seen once is enough: it counts


def test_a_shrunk_schedule_that_does_not_reproduce_gives_way_to_the_one_it_was_shrunk_from(tmp_path: Path) -> None:
    def rare_when_short(s: Scenario) -> tuple[str, ...]:
        return ("dead-letter",) if any(f.target == "executor-3" and (f.duration_s or 0) >= 2 for f in s.faults) else ()

    class LuckyOnce(FakeStack):  # a shrink step fails whatever the duration: one lucky run
        def __call__(self, scenario: Scenario, seed: int, folder: str) -> Trial:
            if "shrink" in folder and any(f.target == "executor-3" for f in scenario.faults):
                self.calls.append((scenario.name, seed, folder))
                return Trial("failed", 1.0, ("celery: dead-letter 1 > 0 allowed",), invariants=("dead-letter",))
            return super().__call__(scenario, seed, folder)

    space = Space(kinds=frozenset({"component-down"}), targets=("executor-3",), max_faults=1)
    report = _explore(tmp_path, LuckyOnce(rare_when_short), space=space, max_discoveries=1, examples=20)
    (discovery,) = report.discoveries
    assert discovery.confirmed and discovery.written is not None
    assert discovery.shrunk["faults"][0]["duration_s"] >= 2  # the 1-second outages failed only on lucky runs
    # last first: the schedules shrinking kept are confirmed in reverse order until one reproduces, the
    # latest one that still had a 2-second outage
    tried = [s.schedule for s in report.steps if s.stage == "confirm"][::3]
    kept = [*reversed(discovery.accepted), discovery.first.schedule]
    assert [key_of(s) for s in tried] == [key_of(s) for s in kept[:len(tried)]]
    assert all(s["faults"][0]["duration_s"] < 2 for s in tried[:-1]) and len(tried) >= 2


def test_the_search_draws_a_cell_it_has_not_drawn_yet_while_any_is_left(tmp_path: Path) -> None:
    space = Space(kinds=frozenset({"disable", "toxic"}), targets=("gateway-*", "celery-executor-3"), max_faults=1)
    report = _explore(tmp_path, FakeStack(lambda s: ()), space=space, examples=12)
    cells = [cell(f["kind"], f["target"], f.get("toxic", {}).get("type"), stream=f.get("toxic", {}).get("stream", "downstream"))
             for s in report.examples for f in s.schedule["faults"]]
    # three links, three things a link fault does to a request: nine cells, each once before any twice
    assert len(set(cells[:9])) == 9 and {effect for effect, _ in cells} == {"refuse", "lose reply", "slow"}
    assert len(cells) == 12  # then it goes on drawing among them


@settings(max_examples=100, database=None, deadline=None, suppress_health_check=list(HealthCheck))
@given(schedules(Space()))
def test_faults_only_the_legacy_path_sees_are_drawn_only_when_the_targets_ask_for_them(schedule: dict) -> None:  # type: ignore[type-arg]
    assert not {f["target"] for f in schedule["faults"]} & set(LEGACY_TARGETS)


@settings(max_examples=50, database=None, deadline=None, suppress_health_check=list(HealthCheck))
@given(schedules(Space(targets=("legacy-*", "executor-[12]"))))
def test_legacy_targets_drawn_when_asked_come_with_legacy_traffic(schedule: dict) -> None:  # type: ignore[type-arg]
    assert {f["target"] for f in schedule["faults"]} <= set(LEGACY_TARGETS)
    assert "legacy" in schedule["workload"]["routes"]
