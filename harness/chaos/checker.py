"""The queue checker: a pure function of the history, the executors' ledger and the final records.

It extends Jepsen's ``total-queue`` to evaluations that run on two paths. Every evaluation is
classified once per path it was routed to, executed by or recorded on (under dual-write an
evaluation has one row for ``legacy`` and one for ``celery``). The inputs:

- the history (``harness.history``): ``submit`` invokes with their ``ok`` / ``fail`` /
  ``info`` completions. An ``ok`` names the evaluation and its routes. An ``info`` submission is
  recognised in the records by its ``marker`` (a unique string in its code) or its ``eval_id``;
- the ledger rows (``system_under_test/executor/ledger.py``): one row per execution an executor
  performed. Rows are deduplicated on (executor, attempt, start), so a ledger read twice does not
  make duplicates;
- the records at the deadline (``store.parse_record``): the state after quiesce, so "not terminal
  here" means "not terminal by the deadline";
- optionally the oracle (eval id -> an object with ``differences(result) -> list[str]``) and what
  the drain found still queued (path -> eval ids in a queue list, the unacked hash or held as ETA).

Classes, by precedence (the first that applies wins):

1. ``unexpected``: executed or recorded on this path, but no accepted submission sent it there
   (never submitted, routed to the other path only, or its submit *failed*). A failed submit that
   still ran is unexpected rather than recovered (Jepsen would call it recovered, because it counts
   every invoke as an attempt): our gateway answers a failure with "nothing was queued", so a
   client may resubmit, and the execution breaks that promise.
2. ``misrouted``: executed on an executor that is not one of its path's (``routing``, by default the
   platform's ``EXECUTORS``: legacy on executor-1/2, Celery on executor-3); the detail names it.
3. ``lost``: acknowledged (``ok``), never executed, not terminal, not found queued by the drain.
4. ``stuck``: accepted (``ok`` or a recognised ``info``), not terminal, and either executed (the
   detail says how often and what the record says) or still queued (the detail says so).
5. ``unknown``: a recognised ``info`` submission that never ran and never finished. Never lost:
   the client was never told it was accepted.
6. ``wrong``: terminal with status completed / failed / timeout, but no execution in the ledger, an
   exit code no execution produced, or a result that differs from the oracle.
7. ``error``: terminal with status ``error`` (dead-lettered after the retries, executor rejected
   it, ...): an explicit failure, counted on its own so a scenario can bound it separately from a
   silently wrong result (by default it is bounded by 0, like ``wrong``).
8. ``duplicated``: executed more than once on this path, or, for an evaluation that fell back (phase 2:
   the record's ``fallback``), executed on the path it no longer belongs to: a fallback must run
   exactly once overall (the record's routes say where it belongs; the other path has no row unless
   it ran it).
9. ``recovered``: a recognised ``info`` submission that completed.
10. ``ok``.

Zero-tolerance classes come before ``duplicated`` so a duplicate never hides a wrong result under
its allowance; ``stuck`` comes before ``duplicated`` because an unfinished evaluation is worse than
a repeated one (the ``executions`` column keeps the count in every case). ``info`` submissions
matched to no evaluation are counted in ``CheckResult.unmatched``: unknown, not lost.

The bounds a run is judged against (``Allowances``) come from ``harness/chaos/allowances.py``: rules
held as data, one documented claim per row. This module knows nothing of the stack or its
configuration: it classifies, counts and compares.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal, Protocol, cast

import pandas as pd

from harness.chaos.allowances import Allowances
from harness.chaos.errors import ChaosError
from harness.history import Op, pairs
from harness.vocabulary import EXECUTORS, INVARIANTS, PATHS, TERMINAL, CheckerClass, Path, Record

Cls = CheckerClass
PRECEDENCE: tuple[Cls, ...] = ("unexpected", "misrouted", "lost", "stuck", "unknown", "wrong", "error",
                               "duplicated", "recovered", "ok")
TABLE_COLUMNS = ("eval_id", "path", "cls", "submit", "executions", "status", "detail")
MEANING = {
    "lost": "acknowledged, never executed, never terminal",
    "duplicated": "executed more than once on this path",
    "stuck": "accepted but not terminal by the deadline",
    "wrong": "terminal result disagrees with the ledger or the oracle",
    "unexpected": "executed or recorded without an accepted submission",
    "error": "ended with status 'error' (an explicit failure)",
    "misrouted": "executed on an executor that does not serve its path",
    "executions": "one evaluation executed more often than the configuration allows",
    "liveness": "the path took no new work after every fault was healed",
    "legacy-after-decommission": "legacy accepted or ran work after it was decommissioned",
    # the platform's promises (promises.py)
    "retry-count": "a dead-lettered task did not run exactly 1 + max_retries attempts",
    "retry-spacing": "a retry started sooner than its exponential backoff allows",
    "dead-letter": "the dead-letter list does not hold exactly the exhausted tasks",
    "time-limit": "an attempt ran past the task time limit without being stopped",
    "priority-order": "urgent evaluations did not overtake the backlog as their priority promises",
}


class CheckerError(ChaosError):
    """The checker's inputs contradict themselves (e.g. an ok submit without an eval id)."""


class Oracle(Protocol):
    def differences(self, result: dict[str, object]) -> list[str]: ...


# -- classification of one evaluation on one path ---------------------------------------------------------


@dataclass(frozen=True)
class Execution:
    executor_id: str
    attempt: int
    started_at: float
    exit_code: int | None


@dataclass(frozen=True)
class Facts:
    """What is known about one evaluation on one path; ``classify`` turns it into a class."""

    eval_id: str
    path: str
    accepted: Literal["ok", "info"] | None  # None: no accepted submission sent it to this path
    submission: str  # the submission, in words (used in the detail)
    executions: tuple[Execution, ...] = ()
    record: bool = False
    result: Mapping[str, Any] | None = None
    queued: bool = False
    differences: tuple[str, ...] = ()
    executors: frozenset[str] | None = None  # the executors this path may use; None: any
    fallback_other: bool = False  # it fell back, and this is the path it does not belong to any more


def _ran(executions: Sequence[Execution]) -> str:
    attempts = ", ".join(str(e.attempt) for e in executions)
    where = ", ".join(sorted({e.executor_id for e in executions}))
    return f"executed {len(executions)}x (attempts {attempts} on {where})"


def classify(facts: Facts) -> tuple[Cls, str]:
    """The class of one evaluation on one path and a one-line reason, by the module's precedence."""
    n = len(facts.executions)
    status = facts.result.get("status") if facts.result else None
    if facts.accepted is None:
        seen = _ran(facts.executions) if n else f"recorded with status {status!r}"
        return "unexpected", f"{seen}, but {facts.submission}"
    strays = sorted({e.executor_id for e in facts.executions} - facts.executors) if facts.executors else []
    if strays:
        return "misrouted", (f"{_ran(facts.executions)}: {', '.join(strays)} does not serve the {facts.path} path "
                             f"(its executors: {', '.join(sorted(facts.executors or ()))})")
    if facts.fallback_other:
        return "duplicated", (f"{facts.submission}, yet the {facts.path} path ran it too: {_ran(facts.executions)}; "
                              "an evaluation that fell back must run exactly once overall")
    if status not in TERMINAL:
        state = "its record is gone" if not facts.record else (
            "no result for this path" if status is None else f"the record says {status!r}")
        if n:
            return "stuck", f"{_ran(facts.executions)}, but {state} at the deadline"
        if facts.queued:
            return "stuck", f"never executed, still queued at the deadline ({state})"
        if facts.accepted == "ok":
            return "lost", f"acknowledged, never executed, not queued; {state}"
        return "unknown", f"{facts.submission}; a record exists but it never ran ({state})"
    assert facts.result is not None
    if status == "error":
        seen = _ran(facts.executions) if n else "never executed"
        return "error", f"{seen}; error: {str(facts.result.get('error'))[:160]}"
    if not n:
        return "wrong", f"status {status!r}, but the ledger has no execution of it"
    codes = sorted({e.exit_code for e in facts.executions}, key=str)
    if facts.result.get("exit_code") not in codes:
        return "wrong", f"exit code {facts.result.get('exit_code')!r}, but the ledger recorded {codes}"
    if facts.differences:
        return "wrong", f"differs from the oracle in {', '.join(facts.differences)}"
    if n > 1:
        return "duplicated", _ran(facts.executions)
    if facts.accepted == "info":
        return "recovered", f"{facts.submission}; completed with status {status!r}"
    return "ok", f"status {status!r}"


# -- the whole run ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Counts:
    ok: int = 0
    recovered: int = 0
    lost: int = 0
    duplicated: int = 0
    unexpected: int = 0
    stuck: int = 0
    wrong: int = 0
    error: int = 0
    unknown: int = 0
    misrouted: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Violation:
    path: str
    invariant: str
    count: int
    bound: int
    eval_ids: tuple[str, ...]
    reasons: tuple[str, ...] = ()

    def __str__(self) -> str:
        shown = ", ".join(self.eval_ids[:5]) + (", ..." if len(self.eval_ids) > 5 else "")
        what = "evaluation(s) over" if self.invariant == "executions" else "allowed"
        label = "allowance" if self.eval_ids else "evidence"
        why = "".join(f"\n    {label}: {r}" for r in self.reasons)
        return (f"{self.path}: {self.invariant} {self.count} > {self.bound} {what}"
                + (f" ({shown})" if shown else "") + f": {MEANING[self.invariant]}{why}")


@dataclass(frozen=True, eq=False)
class CheckResult:
    table: pd.DataFrame  # one row per evaluation and path: TABLE_COLUMNS
    counts: Mapping[str, Counts]  # per path
    attempts: int  # submit invokes
    acknowledged: int  # ok submits
    failed: int  # fail submits
    indeterminate: int  # info submits (and invokes never completed)
    unmatched: tuple[Op, ...]  # info submits matched to no evaluation: unknown, not lost

    def ids(self, path: str, cls: str) -> list[str]:
        rows = self.table[(self.table["path"] == path) & (self.table["cls"] == cls)]
        return [str(x) for x in rows["eval_id"]]

    def violations(self, allowances: Mapping[str, Allowances]) -> list[Violation]:
        """Invariants broken per path. A path missing from ``allowances`` gets ``Allowances()``
        (everything 0): what is not allowed explicitly is not allowed."""
        out: list[Violation] = []
        for path, counts in self.counts.items():
            allow = allowances.get(path, Allowances())
            for name in INVARIANTS:
                bound, count = getattr(allow, name), getattr(counts, name)
                if bound is not None and count > bound:
                    out.append(Violation(path, name, count, bound, tuple(self.ids(path, name)), allow.reasons))
            if allow.executions is not None:
                rows = self.table[(self.table["path"] == path) & (self.table["executions"] > allow.executions)]
                if len(rows):
                    out.append(Violation(path, "executions", int(rows["executions"].max()), allow.executions,
                                         tuple(str(x) for x in rows["eval_id"]), allow.reasons))
        return out

    def valid(self, allowances: Mapping[str, Allowances]) -> bool:
        return not self.violations(allowances)


def _executions(ledger_rows: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], tuple[Execution, ...]]:
    seen: dict[tuple[str, str], dict[tuple[str, int, float], Execution]] = {}
    for row in ledger_rows:
        try:
            ex = Execution(str(row["executor_id"]), int(row["attempt"]), float(row["started_at"]),
                           None if row.get("exit_code") is None else int(row["exit_code"]))
            key = (str(row["eval_id"]), str(row["path"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckerError(f"ledger row {dict(row)!r} lacks eval_id/path/executor_id/attempt/started_at: "
                               f"{exc}") from exc
        seen.setdefault(key, {})[(ex.executor_id, ex.attempt, ex.started_at)] = ex
    return {k: tuple(sorted(v.values(), key=lambda e: e.started_at)) for k, v in seen.items()}


def check(history: Iterable[Op], ledger_rows: Iterable[Mapping[str, Any]],
          records: Mapping[str, Record], *, expected: Mapping[str, Oracle] | None = None,
          queued: Mapping[str, Iterable[str]] | None = None,
          routing: Mapping[Path, Iterable[str]] | None = EXECUTORS) -> CheckResult:
    """Classify every evaluation per path (see the module docstring). Pure: reads only its inputs.

    ``routing`` maps a path to the executors that may run it (None: do not check routing).

    Raises CheckerError for an ``ok`` submit without an eval id or an unreadable ledger row, and
    HistoryError for a history whose invokes and completions do not pair up.
    """
    ops = list(history)
    acked: dict[str, tuple[list[str], Op]] = {}  # eval id -> routes, ok op
    infos: list[tuple[Op, Op | None]] = []
    fails: list[tuple[Op, Op]] = []
    attempts = 0
    for invoke, done in pairs(ops):
        if invoke.f != "submit":
            continue
        attempts += 1
        if done is not None and done.type == "ok":
            eval_id = done.eval_id or (done.value or {}).get("eval_id")
            if not eval_id:
                raise CheckerError(f"op {done.index}: an ok submit needs an eval_id (on the op or in its value)")
            routes = (done.value or {}).get("routes") or ([invoke.path] if invoke.path else [])
            acked[str(eval_id)] = (list(routes), done)
        elif done is not None and done.type == "fail":
            fails.append((invoke, done))
        else:
            infos.append((invoke, done))

    def matching(invoke: Op, done: Op | None) -> str | None:
        known = invoke.eval_id or (done.eval_id if done else None)
        if known:
            return known
        marker = (invoke.value or {}).get("marker")
        if not marker:
            return None
        hits = [i for i, r in records.items() if marker in str(r.get("code") or "") and i not in acked]
        return hits[0] if hits else None

    recovered: dict[str, Op] = {}
    unmatched: list[Op] = []
    for invoke, done in infos:
        found = matching(invoke, done)
        if found is None:
            unmatched.append(invoke)
        else:
            recovered[found] = invoke
    failed_ids = {i: done for invoke, done in fails if (i := matching(invoke, done)) is not None}

    executions = _executions(ledger_rows)
    still_queued = {(str(i), p) for p, ids in (queued or {}).items() for i in ids}
    keys: set[tuple[str, str]] = set(executions) | still_queued
    for eval_id, (routes, _) in acked.items():
        keys |= {(eval_id, p) for p in routes}
    for eval_id in recovered:
        known = records.get(eval_id)
        keys |= {(eval_id, p) for p in (known["routes"] if known else [])}
    for eval_id, rec in records.items():
        keys |= {(eval_id, p) for p in (rec.get("results") or {})}

    rows = []
    for eval_id, path in sorted(keys, key=lambda k: (k[1], k[0])):
        record = records.get(eval_id)
        result = (record.get("results") or {}).get(path) if record else None
        accepted: Literal["ok", "info"] | None = None
        fell_back = cast(dict[str, Any] | None, dict(record).get("fallback") if record else None)
        other = bool(fell_back) and record is not None and path not in record["routes"]
        if other and not executions.get((eval_id, path)):
            continue  # the path it fell back from (or to) never ran it: as it should be
        if fell_back and (eval_id in acked or eval_id in recovered):
            # The platform moved it (a fallback, or a claim won by the other path): the record's routes say
            # where it belongs now; it must run exactly once overall.
            accepted = "ok" if eval_id in acked else "info"
            submission = (f"fell back from {fell_back.get('from')} ({fell_back.get('mode')}: "
                          f"{str(fell_back.get('reason'))[:80]})")
        elif eval_id in acked and path in acked[eval_id][0]:
            accepted, submission = "ok", f"acknowledged (op {acked[eval_id][1].index})"
        elif eval_id in acked:
            submission = f"it was routed to {'+'.join(acked[eval_id][0])} only"
        elif eval_id in recovered and record and path in record.get("routes", []):
            accepted, submission = "info", f"info submit (op {recovered[eval_id].index})"
        elif eval_id in recovered:
            routes = "+".join(record.get("routes", [])) if record else "nothing"
            submission = f"its info submit (op {recovered[eval_id].index}) was routed to {routes} only"
        elif eval_id in failed_ids:
            fail = failed_ids[eval_id]
            submission = f"its submit failed (op {fail.index}: {fail.error})"
        elif record is None and fails:
            submission = (f"no submission in the history matches it and it has no record: the trace of a "
                          f"submission answered with a failure ({len(fails)} in this history) whose record "
                          "was rolled back, yet it ran")
        else:
            submission = "no submission in the history matches it"
        oracle = (expected or {}).get(eval_id)
        differences = tuple(oracle.differences(dict(result))) if oracle is not None and result else ()
        facts = Facts(eval_id, path, accepted, submission, executions.get((eval_id, path), ()),
                      record is not None, result, (eval_id, path) in still_queued, differences,
                      frozenset(routing[path]) if routing and path in routing else None,  # type: ignore[index]
                      other)
        cls, detail = classify(facts)
        submit = accepted or ("fail" if eval_id in failed_ids else "none")
        rows.append({"eval_id": eval_id, "path": path, "cls": cls, "submit": submit,
                     "executions": len(facts.executions), "status": result.get("status") if result else None,
                     "detail": detail})
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS)).astype({"executions": "int64"})
    counts: dict[str, Counts] = {p: Counts(**{c: int(((table["path"] == p) & (table["cls"] == c)).sum()) for c in PRECEDENCE})
              for p in PATHS}
    return CheckResult(table, counts, attempts, len(acked), len(fails), len(infos), tuple(unmatched))
