"""Hunting counterexamples (Hypothesis, zero tolerance) and sampling the declared mix (the gate's bound).

``search`` drives Hypothesis: one example is a *batch* of programs dispatched together, so the
executors stay busy. The first failing program stops the generation; it is shrunk alone (``shrink``:
simplifications of its spec, each one program through the stack) to the smallest that still fails,
sent again and confirmed. A *missing* result (a path that never produced one within the
evaluation's deadline) stops the search at once: there is nothing to shrink, and waiting for it
again would only turn it into a "flaky" report.

``sample`` is the gate's evidence: programs drawn independently from the declared mix
(``harness.generate.mix``, ``parity-v1``), every one sent, duplicates included, none a shrinking
step. A rate bound is about that population, and the verdict names it.

Profiles (``dev``, ``ci``, ``thorough``) are Hypothesis settings profiles plus a batch size. The
example database lives under the project (``.hypothesis/parity``), so a failure found once is tried
first on the next run.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase
from hypothesis.errors import Flaky

from harness.errors import HarnessError
from harness.generate import mix
from harness.generate.spec import Language, ProgramSpec
from harness.generate.strategies import program_specs
from harness.parity.session import Check, ParitySession
from harness.parity.shrink import shrink
from harness.run import workspace

EXAMPLE_DB = workspace() / ".hypothesis" / "parity"  # the working directory's (harness.run.workspace)
# Programs per Hypothesis example at most. Each example ends at a barrier (its slowest program), so
# the executors idle at the end of every batch. With the edge-covering generator (about one program
# in six ends near its 1 s deadline) 48 keeps parity within about 1.2× of the executors' own limit
# (32: 1.35×; benchmarks/results/parity_throughput.md); the batch size no longer slows shrinking,
# which works on the failing program alone.
BATCH_SIZE = {"dev": 6, "ci": 48, "thorough": 48}
_MAX_EXAMPLES = {"dev": 12, "ci": 30, "thorough": 400}
POPULATION = f"mix:{mix.MIX_NAME}"
SHRINK_S = 40.0  # seconds of shrinking at most, after the first failure


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
           batch_size: int | None = None, shrink_s: float = SHRINK_S,
           on_progress: Callable[[str, int], None] | None = None) -> SearchOutcome:
    """Generate batches until a program fails (then shrink it), a result is missing, or the budget is spent.

    Hypothesis generates (its example database replays a failing batch first next time); the failing
    program is known by the batch's check, so it is shrunk alone (``shrink``: spec simplifications,
    at most ``shrink_s`` seconds), then sent again and confirmed (legacy re-run to rule out noise):
    that fresh execution is the failure reported. If it no longer fails, the outcome is ``flaky``.
    ``budget`` caps the number of programs checked, exactly (the last batch is cut to what is left;
    default: the profile's examples × batches); ``database=False`` keeps nothing (used by the power
    check, whose failures are deliberate). ``on_progress(step, count)`` is told the programs checked
    after each batch (``"search"``) and the programs tried while shrinking (``"shrink"``).
    """
    tell = on_progress or (lambda _step, _count: None)
    base = settings.get_profile(check_profile(profile))
    size = batch_size or BATCH_SIZE[profile]
    # With a budget, enough examples to spend it (a batch averages about size / 2 programs); the
    # examples after the budget is spent return at once.
    max_examples = (2 * budget // size + 10) if budget is not None else base.max_examples
    strategy = batches(program_specs(output_cap=session.output_cap, languages=languages), size)
    started = time.monotonic()
    first_count = len(session.checks)
    state: dict[str, Any] = {"examples": 0, "first": None, "first_at": None, "missing": None}

    def parity_holds(batch: list[ProgramSpec]) -> None:
        if state["first"] is not None:
            raise ParityFailure(state["first"].headline)  # Hypothesis replays the failing batch: it still fails
        if state["missing"] is not None:
            return  # a result went missing: nothing more is sent (Hypothesis cannot be stopped early)
        if budget is not None and len(session.checks) - first_count >= budget:
            return  # the budget is spent; this costs nothing
        state["examples"] += 1
        if budget is not None:
            batch = batch[:budget - (len(session.checks) - first_count)]
        checks = session.check(batch)
        tell("search", len(session.checks) - first_count)
        missing = [c for c in checks if c.comparison.missing]
        if missing:
            state["missing"], state["first_at"] = missing[0], time.monotonic() - started
            return
        bad = sorted((c for c in checks if c.failing), key=lambda c: not c.noise_checked)
        if bad:
            state["first"], state["first_at"] = bad[0], time.monotonic() - started
            raise ParityFailure(bad[0].headline)

    overrides: dict[str, Any] = {"max_examples": max_examples,
                                 "phases": [Phase.explicit, Phase.reuse, Phase.generate]}
    if database is False:
        overrides["database"] = None
    elif database is not True:
        overrides["database"] = database
    test = settings(base, **overrides)(given(strategy)(parity_holds))
    if seed is not None:
        test = hypothesis_seed(seed)(test)
    with contextlib.suppress(ParityFailure, Flaky):
        test()
    first: Check | None = state["first"]
    failure, flaky = None, False
    if first is not None and isinstance(first.program, ProgramSpec):
        tried = [0]

        def still_fails(program: ProgramSpec) -> bool:
            tried[0] += 1
            tell("shrink", tried[0])
            return session.check([program], confirm=False)[0].failing

        smallest, _ = shrink(first.program, still_fails, budget_s=shrink_s, output_cap=session.output_cap)
        final = session.check([smallest], resend=True)[0]  # a fresh execution, noise ruled out
        failure, flaky = (final, False) if final.failing else (None, True)
    elif first is not None:
        failure = first
    return SearchOutcome(profile, state["examples"], len(session.checks) - first_count, time.monotonic() - started,
                         failure, state["first_at"], first, flaky, state["missing"])


def sample(session: ParitySession, *, programs: int, seed: int | None = None, profile: str = "ci") -> int:
    """Check ``programs`` programs drawn independently from the declared mix (the gate's evidence), in
    batches of the profile's size, without stopping at a failure. Returns how many were checked."""
    drawn = mix.sample(programs, seed=seed or 0, output_cap=session.output_cap)
    size = BATCH_SIZE[check_profile(profile)]
    before = len(session.checks)
    for start in range(0, len(drawn), size):
        session.check([spec for _, spec in drawn[start:start + size]], population=POPULATION)
    return len(session.checks) - before
