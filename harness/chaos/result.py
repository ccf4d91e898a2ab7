"""What one chaos scenario's run came to: ``ScenarioResult`` (the checker's result, the violations,
errors, notes, timings, what was left in the queues, and the findings rows), whether it passed or
failed only as its ``[known_failure]`` declares, and the commands that replay it with the same seed.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.chaos.checker import Allowances, CheckResult, Violation
from harness.chaos.scenario import Scenario
from harness.chaos.workload import WorkloadStats
from harness.run import PROJECT_ROOT
from harness.stack.config import StackConfig

FINDING_COLUMNS = ("scenario", "path", "config", "stack", "seed", "submitted", "acked", "failed", "info", "ok",
                   "recovered", "lost", "duplicated", "unexpected", "stuck", "wrong", "error", "unknown",
                   "max_executions", "dead_lettered", "still_queued", "recovery_s", "verdict", "violations",
                   "notes", "elapsed_s")


def _relative(path: str) -> str:
    with contextlib.suppress(ValueError):
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    with contextlib.suppress(ValueError):
        return str(Path(path).resolve().relative_to(PROJECT_ROOT))
    return path


def replay_commands(scenario: Scenario, seed: int, stack_kind: str = "processes") -> list[str]:
    """The commands that run this scenario again with the same seed (CLI and pytest)."""
    extra = "" if stack_kind == "processes" else f" --stack {stack_kind}"
    return [f"harness chaos {_relative(scenario.file)} --seed {seed}{extra}",
            f"pytest 'tests/chaos/test_chaos_scenarios.py::test_scenario[{scenario.name}]' -m chaos "
            f"--seed {seed}{extra}"]


@dataclass
class ScenarioResult:
    scenario: Scenario
    seed: int
    stack_kind: str
    folder: Path
    config: StackConfig
    check: CheckResult | None = None
    allowances: dict[str, Allowances] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # the run could not be carried out as planned
    notes: list[str] = field(default_factory=list)  # scenario-level notes
    path_notes: dict[str, list[str]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    recovery_s: dict[str, float | None] = field(default_factory=dict)
    workload: WorkloadStats | None = None
    queues: dict[str, Any] = field(default_factory=dict)
    submits: dict[str, dict[str, int]] = field(default_factory=dict)  # path -> submitted/acked/failed/info
    history_started_at: float = 0.0  # epoch seconds of the history's time 0
    findings: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(FINDING_COLUMNS)))

    @property
    def gate_violations(self) -> list[Violation]:
        """The violations that fail the scenario: the Celery path's."""
        return [v for v in self.violations if v.path == "celery"]

    @property
    def passed(self) -> bool:
        return not self.errors and not self.gate_violations

    @property
    def known(self) -> bool:
        """It failed only in ways the scenario's ``[known_failure]`` declares (a known defect)."""
        known = self.scenario.known_failure
        return (not self.passed and not self.errors and known is not None
                and all(v.invariant in known.invariants for v in self.gate_violations))

    @property
    def replay(self) -> list[str]:
        return replay_commands(self.scenario, self.seed, self.stack_kind)

    def explain(self) -> str:
        """A failure, on one screen: what broke, the evidence, and how to replay it."""
        lines = [f"chaos scenario {self.scenario.name}: {self.scenario.title}"]
        if self.known and self.scenario.known_failure is not None:
            lines.append(f"  KNOWN FAILURE ({', '.join(self.scenario.known_failure.invariants)}): "
                         f"{self.scenario.known_failure.reason}")
        lines += [f"  ERROR: {e}" for e in self.errors]
        lines += [f"  VIOLATION {v}" for v in self.gate_violations]
        others = [v for v in self.violations if v.path != "celery"]
        lines += [f"  finding (legacy, not a failure) {v}" for v in others]
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  findings: {self.folder / 'findings.md'}", "  replay:"]
        lines += [f"    {cmd}" for cmd in self.replay]
        return "\n".join(lines)
