"""``pytest -m transition``: every scenario file in ``scenarios/transition/``, each on a fresh stack.

The migration's moves (seed 000 Q7): phase 2's fallback under broker faults, phase 3's naive and safe
drains, rollbacks with Celery work queued or retrying, the split raised during a restart, and the
plan's worker topology. Each scenario says which paths it gates (``gate``); a transition scenario
gates legacy too, since a loss there is the move's. Outcomes are read as in ``pytest -m chaos``: a
known failure is an xfail with its reason; ``failed`` and ``error`` fail; ``held`` and ``finding``
pass (a naive procedure's hazard is a measured finding: the scenario's ``finding`` text gives its
counts over several seeds).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.chaos.findings import write_combined
from harness.chaos.result import ScenarioResult
from harness.chaos.runner import opener_for, run_scenario
from harness.chaos.scenario import ScenarioError, load_scenario
from harness.run import RunFolder

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios" / "transition"
FILES = sorted(SCENARIOS.glob("*.toml"))

pytestmark = [pytest.mark.transition, pytest.mark.slow]


@pytest.fixture(scope="module")
def transition_results(run_folder: RunFolder) -> Iterator[list[ScenarioResult]]:
    """Every transition scenario's result; the combined findings are written at the end."""
    results: list[ScenarioResult] = []
    yield results
    if results:
        written = write_combined(results, run_folder.path / "transition")
        print(f"\ntransition findings for {len(results)} scenario(s): {written}")


@pytest.mark.parametrize("file", FILES, ids=lambda p: p.stem)
def test_scenario(file: Path, run_folder: RunFolder, harness_seed: int,
                  transition_results: list[ScenarioResult], request: pytest.FixtureRequest) -> None:
    try:
        scenario = load_scenario(file)
    except ScenarioError as exc:
        pytest.fail(str(exc), pytrace=False)
    kind = str(request.config.getoption("--stack"))
    try:
        opener = opener_for(kind)
    except Exception as exc:
        pytest.fail(f"--stack={kind}: {exc}", pytrace=False)
    result = run_scenario(scenario, opener=opener, run_folder=run_folder, seed=harness_seed, stack_kind=kind,
                          log=print, folder=f"transition-{scenario.name}")
    transition_results.append(result)
    if result.outcome == "known-failure" and scenario.known_failure is not None:
        pytest.xfail(f"known failure: {scenario.known_failure.reason}\n{result.explain()}")
    if result.outcome not in ("held", "finding"):
        pytest.fail(result.explain(), pytrace=False)
