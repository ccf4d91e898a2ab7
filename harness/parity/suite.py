"""The parity suite: generated programs through both paths, classified against each other and the oracle.

One *check* is one program: it is rendered from a ``ProgramSpec``, sent under the session's plan
(dual-write or forced routes, see ``dispatch``), and its two observations are compared (control =
legacy, candidate = celery) after the declared normalisers, and each against the oracle. A check
*fails* when the candidate differs from the control, or is wrong where the control is right. Before
a failure is believed, the program is run through legacy once more: if legacy disagrees with itself
the check is ``noise`` (counted and reported, never a failure), so the suite does not cry wolf.
Programs that passed are not sent again within a session (the shrinker re-checks a batch's passing
programs many times; the premise of parity is that a program's result is deterministic, and A/A
calibration checks that premise).

``search`` drives Hypothesis: one example is a *batch* of programs dispatched together, so the
executors stay busy, and a failure still shrinks to the single minimal program (the list shrinks to
one element, the spec to its smallest form). Only the final, shrunk failure is kept. ``calibrate``
is the A/A run: the same programs twice through one path; any disagreement there is noise that a
real A/B comparison would misread, and the A/A test fails on it.

Profiles (``dev``, ``ci``, ``thorough``) are Hypothesis settings profiles plus a batch size. The
example database lives under the project (``.hypothesis/parity``), so a failure found once is tried
first on the next run; every counterexample is also saved as a readable file (``counterexamples``).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.control import current_build_context
from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase
from hypothesis.errors import Flaky

from harness.errors import HarnessError
from harness.generate.programs import Expected, Language, ProgramSpec, Timeout, expect, program_specs, render
from harness.parity.compare import COMPARED_FIELDS, Comparison, Observation, ParityConfig, Path_, compare
from harness.parity.dispatch import DUAL, TIMEOUT_PROGRAM_S, Dispatched, Dispatcher, Plan, Submission
from harness.run import PROJECT_ROOT

EXAMPLE_DB = PROJECT_ROOT / ".hypothesis" / "parity"
# Programs per Hypothesis example at most. Each example ends at a barrier (its slowest program), so
# the executors idle at the end of every batch; 32 keeps parity within 1.25× of the executors' own
# limit (16: 1.56×; benchmarks/results/parity_throughput.md).
BATCH_SIZE = {"dev": 6, "ci": 32, "thorough": 32}
_MAX_EXAMPLES = {"dev": 12, "ci": 30, "thorough": 400}


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


@dataclass(frozen=True)
class Check:
    """One program, its results on each path, and their classification."""

    spec: ProgramSpec
    plan: Plan
    eval_ids: tuple[str, ...]
    results: dict[str, dict[str, Any]]
    comparison: Comparison
    oracle: Expected
    noise_checked: bool = False

    @property
    def code(self) -> str:
        return render(self.spec)

    @property
    def failing(self) -> bool:
        c = self.comparison
        if c.cls == "mismatched":
            return True
        return c.cls == "wrong" and bool(c.differing or set(c.candidate_wrong) - set(c.control_wrong))

    @property
    def headline(self) -> str:
        c = self.comparison
        fields = ", ".join(c.differing or c.candidate_wrong)
        what = "differs from legacy" if c.differing else "disagrees with the oracle"
        return f"celery {what} on {fields} ({self.spec.language}, {len(self.code.splitlines())} lines)"


@dataclass
class ParitySession:
    """Dispatches batches under one plan, classifies them and keeps every observation."""

    dispatcher: Dispatcher
    config: ParityConfig
    output_cap: int
    plan: Plan = DUAL
    checks: list[Check] = field(default_factory=list)
    elapsed_s: float = 0.0
    hits: Counter[str] = field(default_factory=Counter)
    passed: dict[ProgramSpec, Check] = field(default_factory=dict)
    failed: dict[ProgramSpec, Check] = field(default_factory=dict)

    def submission(self, spec: ProgramSpec) -> Submission:
        return Submission(render(spec), spec.language, TIMEOUT_PROGRAM_S if isinstance(spec.ending, Timeout) else None)

    def check(self, specs: Sequence[ProgramSpec], *, resend: bool = False) -> list[Check]:
        """Dispatch and classify ``specs``.

        A program checked before is not sent again: the shrinker re-checks a batch's programs many
        times, and only the programs it has changed are new. ``resend`` sends every one of them
        anyway: the search does so for the final, shrunk example, so that the failure it reports is
        a fresh execution that reproduced (a result that does not reproduce makes the search flaky).
        """
        started = time.monotonic()
        fresh = [s for s in dict.fromkeys(specs) if resend or (s not in self.passed and s not in self.failed)]
        outs = self.dispatcher.run([self.submission(s) for s in fresh], self.plan) if fresh else []
        checks = [self._classify(spec, out) for spec, out in zip(fresh, outs, strict=True)]
        for i in [i for i, c in enumerate(checks) if c.failing]:
            # Is legacy even consistent with itself on this program? One confirmed failure is enough
            # (it is the one reported); the batch's other failing programs stay unconfirmed.
            again = self.dispatcher.run([self.submission(checks[i].spec)], ("legacy",))[0]
            checks[i] = self._classify(checks[i].spec, outs[i], control_again=again.results.get("legacy", {}))
            if checks[i].failing:
                break
        self.elapsed_s += time.monotonic() - started
        self.checks.extend(checks)
        for c in checks:
            self.hits.update(c.comparison.hits)
            (self.failed if c.failing else self.passed)[c.spec] = c
            (self.passed if c.failing else self.failed).pop(c.spec, None)
        by_spec = {c.spec: c for c in checks}
        return [by_spec.get(s) or self.passed.get(s) or self.failed[s] for s in specs]

    def _classify(self, spec: ProgramSpec, out: Dispatched, control_again: dict[str, Any] | None = None) -> Check:
        oracle = expect(spec, output_cap=self.output_cap)
        eid = out.eval_ids[0]
        control = Observation.from_result(eid, "legacy", out.results.get("legacy", {}))
        candidate = Observation.from_result(eid, "celery", out.results.get("celery", {}))
        again = Observation.from_result(eid, "legacy", control_again) if control_again is not None else None
        comparison = compare(control, candidate, self.config, control_again=again, oracle=oracle)
        return Check(spec, self.plan, out.eval_ids, out.results, comparison, oracle, again is not None)

    # -- what the session saw ------------------------------------------------------------------

    def counts(self) -> Counter[str]:
        return Counter("failing" if c.failing else c.comparison.cls for c in self.checks)

    def frame(self) -> pd.DataFrame:
        return observations_frame(self.checks)


def observations_frame(checks: Sequence[Check]) -> pd.DataFrame:
    """One row per checked program: classification, both paths' compared fields and the oracle's."""
    rows = []
    for c in checks:
        cmp = c.comparison
        row: dict[str, Any] = {
            "eval_ids": ",".join(c.eval_ids), "plan": "+".join(c.plan), "language": c.spec.language,
            "lines": len(c.code.splitlines()), "code": c.code, "spec": json.dumps(c.spec.to_dict()),
            "cls": cmp.cls, "failing": c.failing, "noise_checked": c.noise_checked,
            "differing": ",".join(cmp.differing), "control_wrong": ",".join(cmp.control_wrong),
            "candidate_wrong": ",".join(cmp.candidate_wrong), "normaliser_hits": json.dumps(dict(cmp.hits)),
        }
        for path in ("legacy", "celery"):
            result = c.results.get(path, {})
            for f in COMPARED_FIELDS:
                row[f"{path}_{f}"] = result.get(f)
            row[f"{path}_duration_ms"] = result.get("duration_ms")
        for f in ("status", "output", "exit_code", "timed_out", "truncated"):
            row[f"oracle_{f}"] = getattr(c.oracle, f)
        rows.append(row)
    return pd.DataFrame(rows)


# -- search --------------------------------------------------------------------------------------


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


def search(session: ParitySession, *, profile: str = "ci", budget: int | None = None, seed: int | None = None,
           languages: tuple[Language, ...] = ("python", "bash"), database: ExampleDatabase | None | bool = True,
           batch_size: int | None = None) -> SearchOutcome:
    """Run Hypothesis until a failing program is found and shrunk, or the budget is spent.

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
    state: dict[str, Any] = {"examples": 0, "final": None, "first": None, "first_at": None}

    def parity_holds(batch: list[ProgramSpec]) -> None:
        if budget is not None and state["first"] is None and len(session.checks) - first_count >= budget:
            return  # the budget is spent; Hypothesis cannot be stopped early, but this costs nothing
        state["examples"] += 1
        final = current_build_context().is_final
        bad = sorted((c for c in session.check(batch, resend=final) if c.failing), key=lambda c: not c.noise_checked)
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
                         state["final"], state["first_at"], state["first"], flaky)


def sample(session: ParitySession, *, programs: int, seed: int | None = None, profile: str = "ci",
           languages: tuple[Language, ...] = ("python", "bash")) -> int:
    """Check at least ``programs`` generated programs without stopping at a failure (the gate's
    evidence: every program is an independent sample, none is a shrinking step). Returns how many."""
    base = settings.get_profile(check_profile(profile))
    size = BATCH_SIZE[profile]
    strategy = batches(program_specs(output_cap=session.output_cap, languages=languages), size)
    before = len(session.checks)

    def record(batch: list[ProgramSpec]) -> None:
        if len(session.checks) - before < programs:
            session.check(batch)

    # Hypothesis repeats simple programs (already checked ones are not sent again), so one round
    # may fall short of ``programs`` distinct ones: run more rounds, each with its own seed.
    for round_ in range(10):
        test = settings(base, max_examples=4 * programs // size + 20, phases=[Phase.generate], database=None)(
            given(strategy)(record))
        test = hypothesis_seed((seed or 0) * 1000 + round_)(test)
        test()
        if len(session.checks) - before >= programs:
            break
    return len(session.checks) - before


# -- A/A calibration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Calibration:
    path: str
    programs: int
    disagreements: dict[str, int]  # field -> programs on which the path disagreed with itself
    samples: tuple[tuple[ProgramSpec, dict[str, Any], dict[str, Any]], ...]  # a few disagreeing pairs

    @property
    def noisy(self) -> bool:
        return bool(self.disagreements)


def calibrate(dispatcher: Dispatcher, config: ParityConfig, specs: Sequence[ProgramSpec], path: str) -> Calibration:
    """A/A: every program twice through ``path``; count, per field, how often the two runs disagree."""
    plan: Plan = ("legacy", "legacy") if path == "legacy" else ("celery", "celery")
    subs = [Submission(render(s), s.language, TIMEOUT_PROGRAM_S if isinstance(s.ending, Timeout) else None)
            for s in specs]
    disagreements: Counter[str] = Counter()
    samples: list[tuple[ProgramSpec, dict[str, Any], dict[str, Any]]] = []
    for spec, out in zip(specs, dispatcher.run(subs, plan), strict=True):
        side: Path_ = "legacy" if path == "legacy" else "celery"
        first = Observation.from_result(out.eval_ids[0], side, out.results.get(path, {}))
        second = Observation.from_result(out.eval_ids[1], side, out.results.get(f"{path}#2", {}))
        differing = compare(first, second, config).differing
        disagreements.update(differing)
        if differing and len(samples) < 5:
            samples.append((spec, dict(first.values), dict(second.values)))
    return Calibration(path, len(specs), dict(disagreements), tuple(samples))


def write_outputs(session: ParitySession, folder: Path, *, title: str, extra: list[str] | None = None) -> Path:
    """``observations.parquet`` and a short ``parity.md`` summary in ``folder``; returns the summary."""
    folder.mkdir(parents=True, exist_ok=True)
    frame = session.frame()
    if not frame.empty:
        frame.to_parquet(folder / "observations.parquet", index=False)
    counts = session.counts()
    lines = [f"# {title}", "", f"- programs checked: {len(session.checks)} in {session.elapsed_s:.1f} s "
             f"({len(session.checks) / session.elapsed_s if session.elapsed_s else 0:.1f} per second)",
             f"- plan: {'+'.join(session.plan)}", "", "| class | programs |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(counts.items())]
    lines += ["", "Normaliser hits: " + (", ".join(f"{k} ×{v}" for k, v in sorted(session.hits.items()))
                                        or "none")]
    lines += extra or []
    path = folder / "parity.md"
    path.write_text("\n".join(lines) + "\n")
    return path
