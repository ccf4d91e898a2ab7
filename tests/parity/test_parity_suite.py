"""``pytest -m parity``: the same generated programs through both paths give the same results.

Order matters and is the order of this file: saved counterexamples and programs are replayed first, then A/A
calibration shows that each path agrees with itself (so an A/B difference means something) and that
a genuinely nondeterministic program is classed as noise, then the environment family through both
paths, then the A/B search through dual-write and through forced routes, and last the coverage of
the parity surface those searches reached. A failure prints one screen (see ``harness.parity.explain``)
and saves the shrunk program in ``fixtures/parity/``; the coverage table is in the terminal summary.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.generate.programs import ASPECTS, Exit, ProgramSpec, RawProgram, Report, program_specs
from harness.parity import coverage
from harness.parity.compare import Observation, ParityConfig, compare
from harness.parity.dispatch import DUAL, FORCED, Dispatcher, Plan, Submission
from harness.parity.explain import (
    COUNTEREXAMPLES,
    explain,
    load_counterexample,
    save_counterexample,
    saved_counterexamples,
)
from harness.parity.suite import BATCH_SIZE, ParitySession, calibrate, observations_frame, search

pytestmark = pytest.mark.parity

ENVIRONMENT = [ProgramSpec(language, (Report(aspect),), Exit(0)) for language in ("python", "bash")  # type: ignore[arg-type]
               for aspect in ASPECTS]
NONDETERMINISTIC = RawProgram("python", "import time\nprint(time.time_ns())\n")


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
    program, plan, _ = load_counterexample(path)
    check = session_for(plan).check([program])[0]
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
    examples = {"dev": 2, "ci": 3, "thorough": 14}[parity_profile]

    @settings(max_examples=examples, database=None, deadline=None)
    @given(st.lists(program_specs(output_cap=cap), min_size=BATCH_SIZE[parity_profile],
                    max_size=BATCH_SIZE[parity_profile]))
    def aa(batch: list[ProgramSpec]) -> None:
        result = calibrate(parity_dispatcher, parity_config, batch, path)  # type: ignore[arg-type]
        assert result.programs == len(batch)
        assert not result.noisy, (f"{path} disagreed with itself on {result.disagreements}; first pair: "
                                  f"{result.samples[0]}")

    aa()


@pytest.mark.parametrize("path", ["legacy", "celery"])
def test_aa_the_environment_family_is_quiet(path: str, parity_dispatcher: Dispatcher,
                                            parity_config: ParityConfig) -> None:
    """Every aspect of the environment, in both languages, twice through one path: no difference after the
    declared normalisers (legacy's two runs land on different executors and slots)."""
    result = calibrate(parity_dispatcher, parity_config, ENVIRONMENT, path)  # type: ignore[arg-type]
    assert not result.noisy, f"{path} disagreed with itself on {result.disagreements}: {result.samples[:2]}"


def test_the_environment_is_the_same_on_both_paths(session_for) -> None:  # type: ignore[no-untyped-def]
    """The environment family through dual-write: every aspect matches, and the normalisers it needed (the
    per-run working directory, the per-slot uid) are counted."""
    session = session_for(DUAL)
    checks = session.check(ENVIRONMENT)
    failing = [c for c in checks if c.failing]
    assert not failing, explain(failing[0])
    assert session.hits["temp-path"] > 0 and session.hits["slot-uid"] > 0, dict(session.hits)


def test_a_nondeterministic_program_is_noise_not_a_mismatch(session_for, parity_dispatcher: Dispatcher,  # type: ignore[no-untyped-def]
                                                             parity_config: ParityConfig) -> None:
    """A/A calibration sees a program that prints the time disagree with itself, and a comparison classes
    it as noise (legacy re-run disagreed with itself): never a failure of the candidate."""
    aa = calibrate(parity_dispatcher, parity_config, [NONDETERMINISTIC], "legacy")
    assert aa.disagreements == {"output": 1}
    check = session_for(DUAL).check([NONDETERMINISTIC])[0]
    assert check.comparison.cls == "noise" and check.noise_checked and not check.failing


def _search(session: ParitySession, profile: str, seed: int, budget: int | None = None) -> None:
    outcome = search(session, profile=profile, seed=seed, budget=budget)
    assert outcome.programs > 0, "the search checked no programs"
    if outcome.missing is not None:
        saved = save_counterexample(outcome.missing, COUNTEREXAMPLES, seed=seed)
        pytest.fail(explain(outcome.missing, seed=seed, saved=saved, profile=profile), pytrace=False)
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


def test_the_searches_reached_every_edge_of_the_parity_surface(parity_recorder, parity_profile: str) -> None:  # type: ignore[no-untyped-def]
    """On the ``ci`` and ``thorough`` profiles every declared edge is reached; the short ``dev`` look reaches
    most. The table itself is in the terminal summary and in ``parity.md``."""
    checks = [c for s in parity_recorder for c in s.checks if c.population == "search"]
    assert checks, "no search ran in this session: run this test after the searches (pytest -m parity)"
    table = coverage.coverage_frame(observations_frame(checks))
    missing = coverage.missing(table)
    if parity_profile == "dev":
        assert len(missing) <= len(table) // 3, f"the dev search reached too little: missing {missing}"
    else:
        assert not missing, f"no program reached: {missing}"
