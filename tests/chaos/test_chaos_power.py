"""The chaos suite's power: each promise of the Celery path, broken by a switchable candidate defect,
is caught by the scenario that exercises it (and the same scenario holds with the defect off, in
``test_chaos_scenarios.py``). A promise no scenario can catch would be a blind spot of every gate.

Each case runs one scenario file from ``scenarios/chaos/`` on a fresh stack with one change to the
configuration (a ``CELERY_CANDIDATE_DEFECTS`` defect, or a misconfiguration) and requires the
outcome ``failed`` with the promise's invariant among the Celery violations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.chaos.runner import base_config, opener_for, run_scenario
from harness.chaos.scenario import load_scenario
from harness.run import RunFolder

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios" / "chaos"

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

# (case, scenario, configuration change, the invariant that must catch it)
CASES: list[tuple[str, str, dict[str, Any], str]] = [
    ("retry_fixed_countdown", "executor-3-outage-dead-letter", {"candidate_defects": ("retry_fixed_countdown",)},
     "retry-spacing"),
    ("no_dead_letter", "executor-3-outage-dead-letter", {"candidate_defects": ("no_dead_letter",)}, "dead-letter"),
    ("swallow_soft_time_limit", "celery-task-time-limit", {"candidate_defects": ("swallow_soft_time_limit",)},
     "time-limit"),
    ("rabbitmq_priority", "celery-priority-ordering", {"candidate_defects": ("rabbitmq_priority",)},
     "priority-order"),
    ("celery_executor=executor-1", "celery-priority-ordering", {"celery_executor": "executor-1"}, "misrouted"),
]


@pytest.mark.parametrize(("case", "scenario", "change", "invariant"), CASES, ids=[c[0] for c in CASES])
def test_a_broken_promise_of_the_celery_path_fails_its_scenario(case: str, scenario: str, change: dict[str, Any],
                                                                invariant: str, run_folder: RunFolder,
                                                                harness_seed: int) -> None:
    kind = "processes"
    mine = RunFolder.create(run_folder.path / "chaos-power", case.replace("=", "-"))  # one folder per case
    result = run_scenario(load_scenario(SCENARIOS / f"{scenario}.toml"), run_folder=mine, seed=harness_seed,
                          stack_kind=kind, opener=opener_for(kind), base=base_config(harness_seed).replace(**change),
                          log=print)
    broken = {v.invariant for v in result.gate_violations}
    assert result.outcome == "failed" and invariant in broken, (
        f"{case}: {scenario} did not catch it as {invariant} (outcome {result.outcome}, violations "
        f"{sorted(broken)})\n{result.explain()}")


MISSED = """\
title = "a toxic on a link the Celery path does not use"
description = "the workload goes to Celery only, the fault to a legacy executor's link: it hits nothing"

[stack]
visibility_timeout_s = 4
restore_interval_s = 1
restore_throttle = 1
retry_backoff_s = 0.5

[workload]
routes = ["celery"]
rate = 4.0
duration_s = 4
program = "quick"

[[faults]]
name = "latency on a legacy link"
at_s = 0.5
kind = "toxic"
target = "legacy-executor-1"
duration_s = 2
toxic = { type = "latency", attributes = { latency = 500 } }

[expect.celery]
lost = 0
"""


def test_a_fault_on_a_link_the_path_does_not_use_ends_the_run_as_an_error(tmp_path: Path, run_folder: RunFolder,
                                                                           harness_seed: int) -> None:
    file = tmp_path / "missed-link.toml"
    file.write_text(MISSED)
    mine = RunFolder.create(run_folder.path / "chaos-power", "missed-link")
    result = run_scenario(load_scenario(file), run_folder=mine, seed=harness_seed, log=print)
    assert result.outcome == "error", result.explain()
    assert any("the fault missed: 'latency on a legacy link' on link legacy-executor-1" in e for e in result.errors)
