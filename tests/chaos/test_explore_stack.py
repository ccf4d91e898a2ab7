"""``harness chaos explore`` on real stacks.

``test_a_bounded_search_finds_a_seeded_defect_...`` runs in ``make test``: a search narrowed to
executor-3 outages, with the switchable candidate defect ``no_dead_letter`` on (a task that exhausts
its retries is not pushed to the dead-letter list), must find it as a broken ``dead-letter`` promise,
shrink it, confirm it (2 of 3 new seeds) and write a scenario file of at most 2 faults that fails again
when run like ``harness chaos FILE``; so the search itself is tested against a defect, not only its
parts. The narrowing (one kind, one target, one retry) makes "must" hold in a CI budget: a search over
every kind finds this defect far less often (``benchmarks/results/chaos_explore_power.md``).

``test_the_generative_search_finds_nothing`` is the search a user asks for with ``pytest -m chaos
--explore [--explore-budget 5m] [--explore-profile any|safe] [--seed N]``: it is collected only with
``--explore``, saves each confirmed discovery in ``scenarios/found/`` (replayed first next time) and fails
naming them. Both leave nothing running.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from harness.chaos.cli import found_dir, scenarios_dir, transitions_dir
from harness.chaos.explore import CONFIRM_RUNS, PROFILES, Space, explore, stack_runner
from harness.chaos.explore_report import summary, write_report
from harness.chaos.runner import opener_for, run_scenario
from harness.chaos.scenario import load_all, load_scenario
from harness.run import RunFolder

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

BUDGET_S = 150.0
SEEDED = Space(kinds=frozenset({"component-down"}), targets=("executor-3",),
               stack={"candidate_defects": ["no_dead_letter"], "max_retries": 1})


def test_a_bounded_search_finds_a_seeded_defect_shrinks_confirms_and_writes_a_file_that_fails_again(
        tmp_path: Path, run_folder: RunFolder, harness_seed: int) -> None:
    mine = RunFolder.create(run_folder.path / "chaos-explore", "explore-seeded")
    started = time.monotonic()
    report = explore(run=stack_runner(mine), seed=harness_seed, max_time_s=BUDGET_S, found_dir=tmp_path / "found",
                     space=SEEDED, max_discoveries=1, shrink_runs=2, say=print)
    took = time.monotonic() - started
    write_report(report, mine.path)
    print(summary(report, harness_seed))
    runs = [s.trial for s in report.steps]
    assert report.discoveries, f"the seeded defect was not found in {len(report.examples)} example(s)"
    (discovery,) = report.discoveries
    assert "dead-letter" in discovery.invariants and discovery.confirmed and discovery.written is not None
    assert took <= BUDGET_S + (CONFIRM_RUNS + 1) * max(t.seconds for t in runs), f"took {took:.0f} s"
    scenario = load_scenario(discovery.written)
    assert 1 <= len(scenario.faults) <= 2 and scenario.stack["candidate_defects"] == ("no_dead_letter",)
    again = run_scenario(scenario, opener=opener_for("processes"), run_folder=mine, seed=harness_seed + 10,
                         stack_kind="processes", log=print, folder="replay-found")
    assert again.outcome == "failed" and "dead-letter" in {v.invariant for v in again.gate_violations}, \
        again.explain()
    assert not _descendants(os.getpid()), f"left running: {_descendants(os.getpid())}"


@pytest.mark.explore
def test_the_generative_search_finds_nothing(request: pytest.FixtureRequest, run_folder: RunFolder,
                                             harness_seed: int) -> None:
    budget = float(request.config.getoption("--explore-budget"))
    profile = PROFILES[request.config.getoption("--explore-profile")]
    known = [s for d in (scenarios_dir(), transitions_dir()) if d.is_dir() for s in load_all(d)]
    mine = RunFolder.create(run_folder.path / "chaos-explore", "explore")
    report = explore(run=stack_runner(mine), seed=harness_seed, max_time_s=budget, found_dir=found_dir(),
                     space=Space(profile), known=known, say=print)
    page = write_report(report, mine.path)
    assert not report.failed, f"{summary(report, harness_seed)}\nreport: {page}"


def _descendants(pid: int) -> list[str]:
    """Live (not zombie) processes below ``pid``, from /proc: ``pid command`` each."""
    parents: dict[int, list[tuple[int, str]]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, rest = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
        if rest[0] != "Z":
            parents.setdefault(int(rest[1]), []).append((int(stat.parent.name), name))
    out, todo = [], [pid]
    while todo:
        for child, name in parents.get(todo.pop(), []):
            out.append(f"{child} {name}")
            todo.append(child)
    return out
