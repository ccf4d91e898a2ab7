"""Chaos: faults under a workload, checked against the history.

A scenario (``scenario.py``, data in ``scenarios/chaos/*.toml``) says how to configure the stack,
what steady state to check first, what workload to run, which faults to inject and heal, how long
to quiesce and what each path must guarantee. The run records one history (``harness/history.py``:
client ops and nemesis start/stop ops, Jepsen's format); the checker (``checker.py``), a pure function of
that history, the executors' ledger and the final records, classifies every evaluation per path as
ok / recovered / lost / duplicated / unexpected / stuck / wrong / error / unknown, and compares the
counts with the allowances the configuration implies.

Running a scenario: ``workload.py`` (programs with an oracle, submitted at a bounded rate and
recorded in the history), ``nemesis.py`` (faults as inject/heal pairs on a schedule, healed
always; ``pool_children.py`` and ``memory_pressure.py`` for the two faults with most machinery), ``runner.py`` (``run_scenario``: stack, steady state, workload and faults), ``observe.py``
(quiesce, records, queues and ledgers read from the platform), ``findings.py`` (checker verdicts,
notes and the findings files), ``result.py`` (``ScenarioResult``) and ``cli.py`` (``harness chaos``).
"""

from harness.chaos.allowances import Allowances, FaultEvent, allowances_for, faults_in
from harness.chaos.checker import CheckerError, CheckResult, Counts, Violation, check
from harness.chaos.errors import ChaosError
from harness.chaos.scenario import Scenario, ScenarioError, load_all, load_scenario
from harness.history import History, HistoryError, Op, from_frame, to_frame

__all__ = [
    "Allowances",
    "ChaosError",
    "CheckResult",
    "CheckerError",
    "Counts",
    "FaultEvent",
    "History",
    "HistoryError",
    "Op",
    "Scenario",
    "ScenarioError",
    "Violation",
    "allowances_for",
    "check",
    "faults_in",
    "from_frame",
    "load_all",
    "load_scenario",
    "to_frame",
]
