"""``harness chaos explore`` on real stacks: one bounded search with a behaviour defect of the Celery path on.

A search of two examples does not find the defect reliably (the strategy draws from every fault kind
and target; the defect shows only under an outage of executor-3), so this asserts what a bounded run
must always do: it stops within its budget (plus the confirmation it reserves time for), records an
outcome for every run, writes a file only when the failure was confirmed (and the file loads), and
leaves no process running. ``benchmarks/chaos_explore_power.py`` measures how often it finds one.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from harness.chaos.explore import CONFIRM_RUNS, explore, stack_runner
from harness.chaos.scenario import load_scenario
from harness.run import RunFolder
from harness.vocabulary import OUTCOMES

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

MAX_TIME_S = 90.0


def test_a_bounded_search_with_a_defect_on_stops_in_time_records_every_run_and_leaves_nothing_running(
        tmp_path: Path, run_folder: RunFolder, harness_seed: int) -> None:
    mine = RunFolder.create(run_folder.path / "chaos-explore", "explore")
    started = time.monotonic()
    report = explore(run=stack_runner(mine), examples=2, max_faults=2, seed=harness_seed, max_time_s=MAX_TIME_S,
                     found_dir=tmp_path / "found", stack={"candidate_defects": ["retry_fixed_countdown"]}, say=print)
    took = time.monotonic() - started
    runs = [t for _, t in [*report.examples, *report.shrink_steps]]
    slowest = max(t.seconds for t in runs)
    assert 1 <= len(report.examples) <= 2 and all(t.outcome in OUTCOMES for t in runs)
    assert took <= MAX_TIME_S + (CONFIRM_RUNS + 1) * slowest, f"took {took:.0f} s"
    if report.written is not None:
        assert report.confirmation is not None and report.confirmation.confirmed
        assert len(load_scenario(report.written).faults) >= 1
    else:
        assert not list((tmp_path / "found").glob("*.toml"))
    assert not _descendants(os.getpid()), f"left running: {_descendants(os.getpid())}"


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
