"""A parity session: programs sent under one plan, each classified against the other path and the oracle.

One *check* is one program: it is rendered (or taken as it is, for a ``RawProgram``), sent under the
session's plan (dual-write or forced routes, see ``dispatch``), and its two observations are compared
(control = legacy, candidate = celery) after the declared normalisers, and each against the oracle.
A check *fails* when the candidate differs from the control, or is wrong where the control is right,
or when a path's result is missing. Before a difference is believed, the program is run through
legacy once more: if legacy disagrees with itself the check is ``noise`` (counted and reported, never
a failure), so the suite does not cry wolf. A missing result is not re-run: it is reported at once.

Programs that passed are not sent again within a session (the shrinker re-checks a batch's passing
programs many times; the premise of parity is that a program's result is deterministic, and A/A
calibration checks that premise). A sample (``population`` other than ``search``) sends every program
it is given, duplicates included: each is an independent draw.

Every check keeps the edges its program reaches (``harness.generate.edges``) and the population it
was drawn from; ``observations_frame`` stores both.
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

from harness.generate.edges import Edge, edges_of, edges_text
from harness.generate.oracle import Expected, expect
from harness.generate.spec import Program
from harness.parity.compare import COMPARED_FIELDS, Comparison, Observation, ParityConfig, compare
from harness.parity.dispatch import DUAL, Dispatched, Dispatcher, Plan, Submission

SEARCH = "search"  # the population of the Hypothesis search's checks (not a sample of anything)


@dataclass(frozen=True)
class Check:
    """One program, its results on each path, and their classification."""

    program: Program
    plan: Plan
    eval_ids: tuple[str, ...]
    results: dict[str, dict[str, Any]]
    comparison: Comparison
    oracle: Expected | None
    noise_checked: bool = False
    edges: frozenset[Edge] = frozenset()
    population: str = SEARCH

    @property
    def spec(self) -> Program:
        return self.program

    @property
    def code(self) -> str:
        return self.program.code

    @property
    def failing(self) -> bool:
        c = self.comparison
        if c.cls in ("mismatched", "missing"):
            return True
        return c.cls == "wrong" and bool(c.differing or set(c.candidate_wrong) - set(c.control_wrong))

    @property
    def headline(self) -> str:
        c = self.comparison
        shape = f"({self.program.language}, {len(self.code.splitlines())} lines)"
        if c.missing:
            return (f"{' and '.join(c.missing)} result missing: no terminal result within the evaluation's "
                    f"deadline {shape}")
        wrong = c.wrong_paths()
        fields = ", ".join(c.differing or c.candidate_wrong or c.control_wrong)
        if not wrong:
            return f"the paths differ on {fields} (no oracle: neither is known to be right) {shape}"
        blamed = " and ".join(wrong)
        if c.differing:
            return f"{blamed} {'is' if len(wrong) == 1 else 'are'} wrong: the paths differ on {fields} {shape}"
        return f"{blamed} disagree{'s' if len(wrong) == 1 else ''} with the oracle on {fields} {shape}"


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
    passed: dict[Program, Check] = field(default_factory=dict)
    failed: dict[Program, Check] = field(default_factory=dict)
    # Where every batch's observations are written as soon as it is checked (``observations.parquet``
    # there), so an interrupted or killed run keeps what it checked; None: only at the end.
    journal: Path | None = None

    def _write_journal(self) -> None:
        assert self.journal is not None
        self.journal.mkdir(parents=True, exist_ok=True)
        part = self.journal / "observations.parquet.part"
        self.frame().to_parquet(part, index=False)
        part.replace(self.journal / "observations.parquet")  # whole or not at all, even if killed mid-write

    @staticmethod
    def submission(program: Program) -> Submission:
        return Submission(program.code, program.language, program.timeout_s)

    def check(self, programs: Sequence[Program], *, resend: bool = False, population: str = SEARCH,
              confirm: bool = True) -> list[Check]:
        """Dispatch and classify ``programs``; returns one check per program, in order.

        In the search, a program checked before is not sent again: the shrinker re-checks a batch's
        programs many times, and only the programs it has changed are new. ``resend`` sends every
        one of them anyway: the search does so for the final, shrunk example, so that the failure it
        reports is a fresh execution that reproduced. A sample (``population`` not ``search``) sends
        every program, duplicates included. ``confirm=False`` skips the legacy re-run that rules out
        noise (the shrinker's steps: only the failure it reports needs it).
        """
        started = time.monotonic()
        sample = population != SEARCH
        fresh = list(programs) if sample else [p for p in dict.fromkeys(programs)
                                               if resend or (p not in self.passed and p not in self.failed)]
        outs = self.dispatcher.run([self.submission(p) for p in fresh], self.plan) if fresh else []
        checks = [self._classify(p, out, population=population) for p, out in zip(fresh, outs, strict=True)]
        for i in [i for i, c in enumerate(checks) if confirm and c.failing and not c.comparison.missing]:
            # Is legacy even consistent with itself on this program? One confirmed failure is enough
            # (it is the one reported); the batch's other failing programs stay unconfirmed.
            again = self.dispatcher.run([self.submission(checks[i].program)], ("legacy",))[0]
            checks[i] = self._classify(checks[i].program, outs[i], control_again=again.results.get("legacy", {}),
                                       population=population)
            if checks[i].failing:
                break
        self.elapsed_s += time.monotonic() - started
        self.checks.extend(checks)
        if self.journal is not None and checks:
            self._write_journal()
        for c in checks:
            self.hits.update(c.comparison.hits)
            if not sample:
                (self.failed if c.failing else self.passed)[c.program] = c
                (self.passed if c.failing else self.failed).pop(c.program, None)
        if sample:
            return checks
        by_program = {c.program: c for c in checks}
        return [by_program.get(p) or self.passed.get(p) or self.failed[p] for p in programs]

    def _classify(self, program: Program, out: Dispatched, control_again: dict[str, Any] | None = None,
                  population: str = SEARCH) -> Check:
        oracle = expect(program, output_cap=self.output_cap)
        eid = out.eval_ids[0]
        control = Observation.from_result(eid, "legacy", out.results.get("legacy", {}))
        candidate = Observation.from_result(out.eval_ids[-1], "celery", out.results.get("celery", {}))
        again = Observation.from_result(eid, "legacy", control_again) if control_again is not None else None
        comparison = compare(control, candidate, self.config, control_again=again, oracle=oracle)
        return Check(program, self.plan, out.eval_ids, out.results, comparison, oracle, again is not None,
                     edges_of(program, self.output_cap), population)

    # -- what the session saw ------------------------------------------------------------------

    def counts(self) -> Counter[str]:
        return Counter("failing" if c.failing else c.comparison.cls for c in self.checks)

    def frame(self) -> pd.DataFrame:
        return observations_frame(self.checks)


def observations_frame(checks: Sequence[Check]) -> pd.DataFrame:
    """One row per checked program: its population, class, edges, both paths' compared fields and the oracle's."""
    rows = []
    for c in checks:
        cmp = c.comparison
        row: dict[str, Any] = {
            "eval_ids": ",".join(c.eval_ids), "plan": "+".join(c.plan), "population": c.population,
            "language": c.program.language, "lines": len(c.code.splitlines()), "code": c.code,
            "spec": json.dumps(c.program.to_dict()), "cls": cmp.cls, "failing": c.failing,
            "noise_checked": c.noise_checked, "differing": ",".join(cmp.differing),
            "control_wrong": ",".join(cmp.control_wrong), "candidate_wrong": ",".join(cmp.candidate_wrong),
            "missing": ",".join(cmp.missing), "normaliser_hits": json.dumps(dict(cmp.hits)),
            "edges": edges_text(c.edges),
        }
        for path in ("legacy", "celery"):
            result = c.results.get(path, {})
            for f in COMPARED_FIELDS:
                row[f"{path}_{f}"] = result.get(f)
            row[f"{path}_duration_ms"] = result.get("duration_ms")
        for f in ("status", "output", "exit_code", "timed_out", "truncated"):
            row[f"oracle_{f}"] = None if c.oracle is None or f in c.oracle.unknown else getattr(c.oracle, f)
        rows.append(row)
    return pd.DataFrame(rows)
