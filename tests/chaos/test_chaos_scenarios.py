"""``pytest -m chaos``: every scenario file in ``scenarios/chaos/``, each on a fresh stack of its own.

One test per file (its id is the file's stem). A test fails only when the Celery path breaks a
bound of the scenario's ``[expect.celery]``, or when the run could not be carried out (the stack
did not start, the steady state did not hold, a fault could not be injected or healed). The legacy
path's weaknesses are findings: they are in the findings table, never a failure. A failure prints
the evidence and the commands that replay it with the same seed. A failure that breaks only the
invariants the scenario's ``[known_failure]`` declares (a known defect of the Celery path) is
reported as xfail with its reason: visible, but not red; any other violation still fails.

Options: ``--stack processes|containers`` (default processes) and ``--seed N`` (default 0), from
the harness's pytest plugin. Each scenario writes ``history.parquet``, ``executions.parquet``,
``evaluations.parquet``, ``findings.parquet`` and ``findings.md`` into
``<run folder>/chaos/<scenario>/``; at the end the combined ``findings.parquet`` and
``findings.md`` of every scenario that ran go into the run folder itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.chaos.findings import write_combined
from harness.chaos.result import ScenarioResult
from harness.chaos.runner import opener_for, run_scenario
from harness.chaos.scenario import ScenarioError, load_scenario
from harness.run import RunFolder

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios" / "chaos"
FILES = sorted(SCENARIOS.glob("*.toml"))

pytestmark = [pytest.mark.chaos, pytest.mark.slow]


@pytest.fixture(scope="module")
def chaos_stack(request: pytest.FixtureRequest) -> tuple[str, Any]:
    kind = str(request.config.getoption("--stack"))
    if kind not in ("processes", "containers"):
        pytest.fail(f"--stack={kind}: chaos scenarios kill, pause and restart components, so they need a stack "
                    "the harness controls: --stack=processes (default) or --stack=containers", pytrace=False)
    return kind, opener_for(kind)


@pytest.fixture(scope="module")
def chaos_results(run_folder: RunFolder) -> Iterator[list[ScenarioResult]]:
    """Every scenario result of the session; the combined findings table is written at the end."""
    results: list[ScenarioResult] = []
    yield results
    if results:
        written = write_combined(results, run_folder.path)
        print(f"\nchaos findings for {len(results)} scenario(s): {written}")


@pytest.mark.parametrize("file", FILES, ids=lambda p: p.stem)
def test_scenario(file: Path, chaos_stack: tuple[str, Any], run_folder: RunFolder, harness_seed: int,
                  chaos_results: list[ScenarioResult]) -> None:
    try:
        scenario = load_scenario(file)
    except ScenarioError as exc:
        pytest.fail(str(exc), pytrace=False)
    kind, launcher = chaos_stack
    result = run_scenario(scenario, opener=launcher, run_folder=run_folder, seed=harness_seed, stack_kind=kind,
                          log=print)
    chaos_results.append(result)
    # The scenario's outcome (harness.vocabulary), read as the report and junit.xml read it.
    if result.outcome == "known-failure" and scenario.known_failure is not None:
        broken = ", ".join(sorted({v.invariant for v in result.gate_violations}))
        pytest.xfail(f"known failure ({broken}): {scenario.known_failure.reason}\n{result.explain()}")
    if result.outcome not in ("held", "finding"):
        pytest.fail(result.explain(), pytrace=False)
