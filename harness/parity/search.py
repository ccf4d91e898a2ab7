"""Hunting counterexamples (Hypothesis, zero tolerance) and sampling the declared mix (the gate's bound).

``search`` drives Hypothesis: one example is a *batch* of programs dispatched together, so the
executors stay busy, and a failure still shrinks to the single minimal program (the list shrinks to
one element, the spec to its smallest form). Only the final, shrunk failure is kept. A *missing*
result (a path that never produced one within the evaluation's deadline) stops the search at once:
there is nothing to shrink, and waiting for it again would only turn it into a "flaky" report.

``sample`` is the gate's evidence: programs drawn independently from the declared mix
(``harness.generate.mix``, ``parity-v1``), every one sent, duplicates included, none a shrinking
step. A rate bound is about that population, and the verdict names it.

Profiles (``dev``, ``ci``, ``thorough``) are Hypothesis settings profiles plus a batch size. The
example database lives under the project (``.hypothesis/parity``), so a failure found once is tried
first on the next run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.control import current_build_context
from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase
from hypothesis.errors import Flaky

from harness.errors import HarnessError
from harness.generate import mix
from harness.generate.spec import Language, ProgramSpec
from harness.generate.strategies import program_specs
from harness.parity.session import Check, ParitySession
from harness.run import PROJECT_ROOT

EXAMPLE_DB = PROJECT_ROOT / ".hypothesis" / "parity"
# Programs per Hypothesis example at most. Each example ends at a barrier (its slowest program), so
# the executors idle at the end of every batch; 32 keeps parity within 1.25× of the executors' own
# limit (16: 1.56×; benchmarks/results/parity_throughput.md).
BATCH_SIZE = {"dev": 6, "ci": 32, "thorough": 32}
_MAX_EXAMPLES = {"dev": 12, "ci": 30, "thorough": 400}
POPULATION = f"mix:{mix.MIX_NAME}"


def register_profiles() -> None:
    """Register the ``dev``/``ci``/``thorough`` Hypothesis profiles (idempotent)."""
    for name, examples in _MAX_EXAMPLES.items():
        settings.register_profile(
            name, max_examples=examples, deadline=None, database=DirectoryBasedExampleDatabase(str(EXAMPLE_DB)),
            suppress_health_check=list(HealthCheck), report_multiple_bugs=False, print_blob=False)


def check_profile(name: str) -> str:
    if name not in BATCH_SIZE:
        raise HarnessError(f"unknown parity profile {name!r}: use one of {', '.join(BATCH_SIZE)}")
    return name


class ParityFailure(AssertionError):
    """Raised inside a Hypothesis example so that it shrinks; carries the one-line headline."""


@st.composite
def batches(draw: st.DrawFn, programs: st.SearchStrategy[ProgramSpec], max_size: int) -> list[ProgramSpec]:
    """A batch of 1..max_size programs whose size is drawn first.

    ``st.lists`` starts small and stays small (about 2 programs per example over a short run), which
    leaves the executors idle between examples; drawing the size first averages about max_size / 2
    (fewer are sent: Hypothesis repeats simple programs, and a program that passed is not sent
    again) and still shrinks to a single program (``benchmarks/results/parity_throughput.md``).
    """
    n = draw(st.integers(1, max_size))
    return draw(st.lists(programs, min_size=n, max_size=n))


@dataclass
class SearchOutcome:
    profile: str
    examples: int
    programs: int
    elapsed_s: float
    failure: Check | None = None  # the shrunk counterexample
    first_failure_s: float | None = None  # seconds from start to the first failing check
    first_failure: Check | None = None  # before shrinking
    flaky: bool = False  # it failed once but not when replayed
    missing: Check | None = None  # a path's result never arrived (the search stopped there)


def search(session: ParitySession, *, profile: str = "ci", budget: int | None = None, seed: int | None = None,
           languages: tuple[Language, ...] = ("python", "bash"), database: ExampleDatabase | None | bool = True,
           batch_size: int | None = None) -> SearchOutcome:
    """Run Hypothesis until a failing program is found and shrunk, a result is missing, or the budget is spent.

    ``budget`` caps the number of programs checked (default: the profile's examples × batches);
    ``database=False`` keeps nothing (used by the power check, whose failures are deliberate).
    """
    base = settings.get_profile(check_profile(profile))
    size = batch_size or BATCH_SIZE[profile]
    # With a budget, enough examples to spend it (a batch averages about size / 2 programs); the
    # examples after the budget is spent return at once.
    max_examples = (2 * budget // size + 10) if budget is not None else base.max_examples
    strategy = batches(program_specs(output_cap=session.output_cap, languages=languages), size)
    started = time.monotonic()
    first_count = len(session.checks)
    state: dict[str, Any] = {"examples": 0, "final": None, "first": None, "first_at": None, "missing": None}

    def parity_holds(batch: list[ProgramSpec]) -> None:
        if state["missing"] is not None:
            return  # a result went missing: nothing more is sent (Hypothesis cannot be stopped early)
        if budget is not None and state["first"] is None and len(session.checks) - first_count >= budget:
            return  # the budget is spent; this costs nothing
        state["examples"] += 1
        final = current_build_context().is_final
        checks = session.check(batch, resend=final)
        missing = [c for c in checks if c.comparison.missing]
        if missing:
            state["missing"] = missing[0]
            if state["first_at"] is None:
                state["first_at"] = time.monotonic() - started
            return
        bad = sorted((c for c in checks if c.failing), key=lambda c: not c.noise_checked)
        if not bad:
            return
        if state["first"] is None:
            state["first"], state["first_at"] = bad[0], time.monotonic() - started
        if final:
            state["final"] = bad[0]
        raise ParityFailure(bad[0].headline)

    overrides: dict[str, Any] = {"max_examples": max_examples}
    if database is False:
        overrides["database"] = None
    elif database is not True:
        overrides["database"] = database
    test = settings(base, **overrides)(given(strategy)(parity_holds))
    if seed is not None:
        test = hypothesis_seed(seed)(test)
    flaky = False
    try:
        test()
    except ParityFailure:
        pass
    except Flaky:
        flaky = True
    return SearchOutcome(profile, state["examples"], len(session.checks) - first_count, time.monotonic() - started,
                         state["final"], state["first_at"], state["first"], flaky, state["missing"])


def sample(session: ParitySession, *, programs: int, seed: int | None = None, profile: str = "ci") -> int:
    """Check ``programs`` programs drawn independently from the declared mix (the gate's evidence), in
    batches of the profile's size, without stopping at a failure. Returns how many were checked."""
    drawn = mix.sample(programs, seed=seed or 0, output_cap=session.output_cap)
    size = BATCH_SIZE[check_profile(profile)]
    before = len(session.checks)
    for start in range(0, len(drawn), size):
        session.check([spec for _, spec in drawn[start:start + size]], population=POPULATION)
    return len(session.checks) - before
