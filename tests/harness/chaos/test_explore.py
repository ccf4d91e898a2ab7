"""``harness chaos explore`` without a stack: the strategy, shrinking, the cache, confirmation, the budget."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings

from harness.chaos.cli import main
from harness.chaos.explore import (
    KNOBS,
    Exploration,
    Trial,
    explore,
    key_of,
    schedules,
    to_toml,
)
from harness.chaos.scenario import Scenario, load_scenario, parse_scenario


def _named(s: dict) -> dict:  # type: ignore[type-arg]
    return {**s, "title": "t", "description": "d"}


@settings(max_examples=200, database=None, deadline=None, suppress_health_check=list(HealthCheck))
@given(schedules(max_faults=4, stack={"candidate_defects": ["no_dead_letter"]}))
def test_every_drawn_schedule_is_a_valid_scenario_file_and_survives_a_toml_round_trip(schedule: dict) -> None:  # type: ignore[type-arg]
    scenario = parse_scenario(_named(schedule), "x.toml")
    assert 1 <= len(scenario.faults) <= 4
    assert scenario.stack["candidate_defects"] == ("no_dead_letter",)
    again = tomllib.loads(to_toml(_named(schedule)))
    assert key_of(again) == key_of(schedule)


def test_the_smallest_schedule_is_one_short_kill_late_in_the_simplest_workload_with_default_knobs() -> None:
    smallest = find(schedules(max_faults=3), lambda _: True,
                    settings=settings(database=None, phases=[Phase.generate, Phase.shrink]))
    (fault,) = smallest["faults"]
    assert (fault["kind"], fault["target"], "duration_s" in fault) == ("kill", "celery-worker-1", False)
    assert fault["at_s"] == smallest["workload"]["duration_s"] - 0.5  # the latest start
    assert smallest["workload"] == {"routes": ["celery"], "rate": 4.0, "duration_s": 6.0, "program": "quick"}
    assert all(smallest["stack"][name] == choices[0] for name, choices in KNOBS)


class FakeStack:
    """A RunFn that fails a schedule when ``breaks`` says so, except on the seeds in ``held_on``."""

    def __init__(self, breaks: Callable[[Scenario], bool], *, outcomes: dict[int, str] | None = None,
                 seconds: float = 1.0, clock: list[float] | None = None) -> None:
        self.breaks, self.outcomes, self.seconds, self.clock = breaks, outcomes or {}, seconds, clock
        self.calls: list[tuple[str, int, str]] = []

    def __call__(self, scenario: Scenario, seed: int, folder: str) -> Trial:
        self.calls.append((scenario.name, seed, folder))
        if self.clock is not None:
            self.clock[0] += self.seconds
        if seed in self.outcomes:
            return Trial(self.outcomes[seed], self.seconds, errors=("boom",) if self.outcomes[seed] == "error" else ())
        failed = self.breaks(scenario)
        return Trial("failed" if failed else "held", self.seconds,
                     ("celery: dead-letter 1 > 0 allowed",) if failed else ())


def _hits_executor_3(s: Scenario) -> bool:
    return any(f.target in ("executor-3", "celery-executor-3") for f in s.faults)


def _explore(tmp_path: Path, stack: FakeStack, **kwargs: object) -> Exploration:
    options: dict = {"examples": 30, "max_faults": 3, "seed": 4, "max_time_s": 10_000.0,  # type: ignore[type-arg]
                     "found_dir": tmp_path / "found", "say": lambda _m: None, **kwargs}
    return explore(run=stack, **options)


def test_a_failure_is_shrunk_confirmed_and_written_as_a_scenario_file_that_loads(tmp_path: Path) -> None:
    stack = FakeStack(_hits_executor_3)
    report = _explore(tmp_path, stack)
    assert report.found is not None and report.written is not None
    (fault,) = report.found["faults"]
    assert fault["kind"] == "kill" and fault["target"] == "executor-3" and "duration_s" not in fault
    assert report.confirmation is not None and report.confirmation.reproduced == 3
    scenario = load_scenario(report.written)
    assert len(scenario.faults) == 1 and scenario.expect["celery"].lost == "allowance"  # the default checker
    assert "seed 4" in scenario.finding and "reproduced 3 of 3" in scenario.finding
    assert report.failed


def test_the_cache_runs_each_schedule_once(tmp_path: Path) -> None:
    stack = FakeStack(_hits_executor_3)
    _explore(tmp_path, stack)
    searched = [(name, folder.split("-")[1]) for name, seed, folder in stack.calls if "confirm" not in folder]
    names = [name for name, _ in searched]
    assert len(names) == len(set(names)) and len(names) > 1
    assert sum("confirm" in folder for _, _, folder in stack.calls) == 3


@pytest.mark.parametrize(("outcomes", "written"), [
    ({5: "failed", 6: "held", 7: "failed"}, True),
    ({5: "held", 6: "failed", 7: "held"}, False),
    ({5: "error", 6: "error", 7: "failed"}, False),  # an error is never a reproduction
])
def test_a_failure_is_written_only_when_it_reproduces_in_2_of_3_new_seeds(tmp_path: Path, outcomes: dict[int, str],
                                                                           written: bool) -> None:
    report = _explore(tmp_path, FakeStack(_hits_executor_3, outcomes=outcomes))
    assert report.confirmation is not None and report.confirmation.seeds == (5, 6, 7)
    assert (report.written is not None) is written
    assert list((tmp_path / "found").glob("*.toml")) == ([report.written] if written else [])


def test_no_failure_within_the_examples_writes_nothing(tmp_path: Path) -> None:
    stack = FakeStack(lambda _s: False)
    report = _explore(tmp_path, stack, examples=5)
    assert report.found is None and not report.failed and len(report.examples) == 5
    assert not (tmp_path / "found").exists()


def test_the_time_budget_stops_the_search(tmp_path: Path) -> None:
    clock = [0.0]
    stack = FakeStack(lambda _s: False, seconds=100.0, clock=clock)
    report = _explore(tmp_path, stack, examples=50, max_time_s=250.0, clock=lambda: clock[0])
    assert len(stack.calls) == 3 and report.out_of_time  # started at 0, 100 and 200 s; none after 250 s


def test_runs_that_cannot_be_carried_out_stop_the_search_and_are_never_found(tmp_path: Path) -> None:
    stack = FakeStack(lambda _s: False, outcomes={4: "error"})
    report = _explore(tmp_path, stack)
    assert len(report.examples) == 3 and report.found is None and "could not be carried out" in report.stopped


def test_saved_failures_are_replayed_first(tmp_path: Path) -> None:
    _explore(tmp_path, FakeStack(_hits_executor_3))
    stack = FakeStack(_hits_executor_3)
    report = _explore(tmp_path, stack, examples=1)
    assert stack.calls[0][2].startswith("replay-") and [r.still_fails for r in report.replays] == [True]
    assert report.failed


@pytest.mark.parametrize("argv", [["explore", "--examples", "0"], ["--examples", "2"], ["explore", "x"],
                                  ["explore", "--stack-option", "candidate_defect=x"],
                                  ["explore", "--stack-option", "candidate_defects=nope"]])
def test_usage_errors_exit_3_before_anything_starts(argv: list[str]) -> None:
    assert main(argv) == 3
