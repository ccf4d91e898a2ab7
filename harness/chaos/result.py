"""What one chaos scenario's run came to: ``ScenarioResult`` (the checker's result, the violations,
errors, notes, timings, what was left in the queues, and the findings rows), its **outcome** on each
path and overall (``harness.vocabulary.Outcome``: the one place that judgement is made), and the
commands that replay it with the same seed.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.chaos.allowances import Allowances
from harness.chaos.checker import CheckResult, Violation
from harness.chaos.scenario import Scenario
from harness.chaos.workload import WorkloadStats
from harness.run import workspace
from harness.stack.config import StackConfig
from harness.vocabulary import CHECKER_CLASSES, INVARIANTS, Outcome, combine_outcomes

FINDING_COLUMNS = ("scenario", "path", "config", "stack", "seed", "submitted", "acked", "failed", "info",
                   *CHECKER_CLASSES, "max_executions", "dead_lettered", "still_queued", "recovery_s", "outcome",
                   "known_failure", "violations", "notes", "errors", "elapsed_s")


def _relative(path: str) -> str:
    with contextlib.suppress(ValueError):
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    with contextlib.suppress(ValueError):
        return str(Path(path).resolve().relative_to(workspace()))
    return path


def replay_commands(scenario: Scenario, seed: int, stack_kind: str = "processes") -> list[str]:
    """The commands that run this scenario again with the same seed (CLI and pytest)."""
    extra = "" if stack_kind == "processes" else f" --stack {stack_kind}"
    suite, marker = (("tests/transition/test_transition_scenarios.py", "transition")
                     if Path(scenario.file).parent.name == "transition" else ("tests/chaos/test_chaos_scenarios.py", "chaos"))
    return [f"harness chaos {_relative(scenario.file)} --seed {seed}{extra}",
            f"pytest '{suite}::test_scenario[{scenario.name}]' -m {marker} --seed {seed}{extra}"]


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
    liveness: dict[str, str] = field(default_factory=dict)  # path -> why it took no work after the heal
    effective: dict[str, dict[str, Any]] = field(default_factory=dict)  # worker -> settings it runs with
    events: list[dict[str, Any]] = field(default_factory=list)  # the event bus, as heard during the run
    event_gaps: list[tuple[float, float]] = field(default_factory=list)  # (lost, back) epoch seconds
    admin_history: list[dict[str, Any]] = field(default_factory=list)  # the gateway's settings changes, timed
    timings: dict[str, float] = field(default_factory=dict)
    recovery_s: dict[str, float | None] = field(default_factory=dict)
    workload: WorkloadStats | None = None
    queues: dict[str, Any] = field(default_factory=dict)
    submits: dict[str, dict[str, int]] = field(default_factory=dict)  # path -> submitted/acked/failed/info
    history_started_at: float = 0.0  # epoch seconds of the history's time 0
    findings: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(FINDING_COLUMNS)))

    @property
    def gate_violations(self) -> list[Violation]:
        """The violations that fail the scenario: those of its gated paths (``gate``; Celery by default)."""
        return [v for v in self.violations if v.path in self.scenario.gate]

    def outcome_on(self, path: str) -> Outcome:
        """The scenario's outcome on ``path`` (see ``harness.vocabulary``): ``error`` if the run could not
        be carried out; on Celery ``failed`` / ``known-failure`` for broken bounds; ``finding`` for a
        legacy violation or a ``"report"`` bound that measured something; else ``held``."""
        if self.errors or self.check is None:
            return "error"
        mine = [v for v in self.violations if v.path == path]
        if mine and path in self.scenario.gate:
            known = self.scenario.known_failure
            declared = known is not None and all(v.invariant in known.invariants for v in mine)
            return "known-failure" if declared else "failed"
        if mine:
            return "finding"  # an ungated path's (the control's) weaknesses are findings about the platform
        counts = self.check.counts.get(path)
        expectation = self.scenario.expect.get(path)
        if counts is not None and expectation is not None and any(
                getattr(expectation, n) == "report" and getattr(counts, n) for n in INVARIANTS):
            return "finding"
        return "held"

    @property
    def outcome(self) -> Outcome:
        """The scenario's outcome: the worst of its paths' (``error`` when it has none)."""
        if self.errors:
            return "error"
        return combine_outcomes(self.outcome_on(p) for p in self.scenario.expect)

    @property
    def passed(self) -> bool:
        """Every Celery bound held (findings allowed) and the run was carried out."""
        return self.outcome in ("held", "finding")

    @property
    def known(self) -> bool:
        """It failed only in ways the scenario's ``[known_failure]`` declares (a known defect)."""
        return self.outcome == "known-failure"

    @property
    def replay(self) -> list[str]:
        return replay_commands(self.scenario, self.seed, self.stack_kind)

    def explain(self) -> str:
        """A failure, on one screen: what broke, the evidence, and how to replay it."""
        lines = [f"chaos scenario {self.scenario.name}: {self.scenario.title}",
                 f"  outcome: {self.outcome} (" + ", ".join(f"{p} {self.outcome_on(p)}" for p in self.scenario.expect)
                 + ")"]
        if self.known and self.scenario.known_failure is not None:
            lines.append(f"  KNOWN FAILURE ({', '.join(self.scenario.known_failure.invariants)}): "
                         f"{self.scenario.known_failure.reason}")
        lines += [f"  ERROR: {e}" for e in self.errors]
        lines += [f"  VIOLATION {v}" for v in self.gate_violations]
        others = [v for v in self.violations if v.path not in self.scenario.gate]
        lines += [f"  finding (legacy, not a failure) {v}" for v in others]
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  findings: {self.folder / 'findings.md'}", "  replay:"]
        lines += [f"    {cmd}" for cmd in self.replay]
        return "\n".join(lines)
