"""``pytest -m parity``: the same generated programs through both paths give the same results.

Order matters and is the order of this file: saved counterexamples are replayed first, then A/A
calibration shows that each path agrees with itself (so an A/B difference means something), then
the A/B search through dual-write and through forced routes. A failure prints one screen (see
``harness.parity.explain``) and saves the shrunk program in ``fixtures/parity/``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.generate.programs import ProgramSpec, program_specs
from harness.parity.compare import Observation, ParityConfig, compare
from harness.parity.dispatch import DUAL, FORCED, Dispatcher, Plan, Submission
from harness.parity.explain import (
    COUNTEREXAMPLES,
    explain,
    load_counterexample,
    save_counterexample,
    saved_counterexamples,
)
from harness.parity.suite import BATCH_SIZE, ParitySession, calibrate, search

pytestmark = pytest.mark.parity


@pytest.fixture(scope="module")
def parity_config() -> ParityConfig:
    return ParityConfig.load()


@pytest.fixture
def session_for(stack, parity_dispatcher: Dispatcher, parity_config: ParityConfig, parity_recorder):  # type: ignore[no-untyped-def]
    def make(plan: Plan) -> ParitySession:
        session = ParitySession(parity_dispatcher, parity_config, stack.config.executor_output_bytes, plan)
        parity_recorder.append(session)
        return session
    return make


@pytest.mark.parametrize("path", saved_counterexamples(), ids=lambda p: p.stem)
def test_saved_counterexamples_match(path: Path, session_for) -> None:  # type: ignore[no-untyped-def]
    """Every divergence ever found stays checked: it must match now (replayed before any search)."""
    spec, plan, _ = load_counterexample(path)
    check = session_for(plan).check([spec])[0]
    assert not check.failing, explain(check, saved=path, replay=f"pytest {__file__} -k {path.stem}")


def _saved_programs() -> list[Path]:
    folder = COUNTEREXAMPLES / "programs"
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


@pytest.mark.parametrize("path", _saved_programs(), ids=lambda p: p.stem)
def test_saved_programs_match(path: Path, parity_dispatcher: Dispatcher, parity_config: ParityConfig) -> None:
    """Programs kept as written (no spec: a background child, a limit of 1 ms; fixtures/parity/README.md)
    must match on both paths and give the expected result, every one of ``repeat`` times."""
    doc: dict[str, Any] = json.loads(path.read_text())
    sub, plan, expected = doc["submission"], tuple(doc.get("plan", ["both"])), doc["expected"]
    program = Submission(sub["code"], sub["language"], sub.get("timeout_s"))
    for out in parity_dispatcher.run([program] * int(doc.get("repeat", 1)), plan):
        legacy, celery = out.results["legacy"], out.results["celery"]
        comparison = compare(Observation.from_result(out.eval_ids[0], "legacy", legacy),
                             Observation.from_result(out.eval_ids[-1], "celery", celery), parity_config)
        assert comparison.cls == "matched", f"{path.name}: the paths differ on {comparison.differing}: {legacy} vs {celery}"
        wrong = {k: legacy.get(k) for k, v in expected.items() if legacy.get(k) != v}
        assert not wrong, f"{path.name}: expected {expected}, both paths gave {wrong}"


@pytest.mark.parametrize("path", ["legacy", "celery"])
def test_aa_calibration_each_path_agrees_with_itself(path: str, stack, parity_dispatcher: Dispatcher,  # type: ignore[no-untyped-def]
                                                     parity_config: ParityConfig, parity_profile: str) -> None:
    """A/A: an A/A run that finds "regressions" is a harness (or platform) bug, never a finding."""
    cap = stack.config.executor_output_bytes
    examples = {"dev": 2, "ci": 4, "thorough": 20}[parity_profile]

    @settings(max_examples=examples, database=None, deadline=None)
    @given(st.lists(program_specs(output_cap=cap), min_size=BATCH_SIZE[parity_profile],
                    max_size=BATCH_SIZE[parity_profile]))
    def aa(batch: list[ProgramSpec]) -> None:
        result = calibrate(parity_dispatcher, parity_config, batch, path)
        assert result.programs == len(batch)
        assert not result.noisy, (f"{path} disagreed with itself on {result.disagreements}; first pair: "
                                  f"{result.samples[0]}")

    aa()


def _search(session: ParitySession, profile: str, seed: int, budget: int | None = None) -> None:
    outcome = search(session, profile=profile, seed=seed, budget=budget)
    assert outcome.programs > 0, "the search checked no programs"
    if outcome.failure is not None:
        saved = save_counterexample(outcome.failure, COUNTEREXAMPLES, seed=seed)
        pytest.fail(explain(outcome.failure, seed=seed, saved=saved, profile=profile), pytrace=False)
    if outcome.flaky and outcome.first_failure is not None:
        pytest.fail("a divergence was seen once but did not reproduce (flaky):\n"
                    + explain(outcome.first_failure, seed=seed, profile=profile), pytrace=False)


def test_dual_write_parity(session_for, parity_profile: str, harness_seed: int) -> None:  # type: ignore[no-untyped-def]
    """One evaluation written to both queues: legacy and Celery report the same result."""
    _search(session_for(DUAL), parity_profile, harness_seed)


def test_forced_route_parity(session_for, parity_profile: str, harness_seed: int) -> None:  # type: ignore[no-untyped-def]
    """The same code submitted once per path (route override): the same result."""
    budget = {"dev": 16, "ci": 80, "thorough": 1000}[parity_profile]
    _search(session_for(FORCED), parity_profile, harness_seed + 1, budget=budget)
