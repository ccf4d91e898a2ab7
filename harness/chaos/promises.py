"""The platform's promises about the Celery path, asserted from the signals a real deployment has.

The queue checker (``checker.py``) counts outcomes: lost, duplicated, stuck... A Celery path can keep
every count at zero and still break what the platform promises (seed 000): retries with exponential
backoff, a dead-letter list holding every exhausted task, time limits, priorities. Nothing but the
harness checks these on a real deployment, so each is an invariant here, checked on every run that
has the evidence, from:

- the **event bus** (``observe.EventRecorder``): every change of a result with its attempt and the
  writer's time, so the start of each attempt is known even when executor-3 refused the connection
  (a refused attempt never reaches the ledger);
- the **records** at the deadline (status, attempts, started_at / finished_at, error);
- the **dead-letter list** ``celery:dlq`` on celery-redis;
- the **configuration the workers run with** (``max_retries``, the backoff, the time limits).

Promises (``Promise``), each zero-tolerance unless a scenario marks it ``"report"``:

- ``retry-count``: a task that exhausted its retries (dead-lettered) ran exactly 1 + max_retries
  attempts;
- ``retry-spacing``: attempt a + 1 started at least backoff × 2^(a − 1) after attempt a (the
  countdown runs from the failure, so this is a lower bound; a fixed countdown breaks it from the
  second retry on). ``SPACING_TOLERANCE_S`` absorbs clock granularity;
- ``dead-letter``: every exhausted task is in ``celery:dlq`` exactly once, and nothing else is;
- ``time-limit``: no Celery attempt ran past the hard time limit, and none that ran past the soft
  limit ended as anything but ``error``;
- ``priority-order``: at least the scenario's share of its most urgent evaluations started before a
  less urgent one submitted earlier (only where the scenario states the share).

Pure functions of their inputs. ``check_promises`` returns, per promise, the evaluations that broke
it and why, and notes saying what was checked, so a promise with no evidence is visibly unchecked,
never held by silence; ``violations`` applies a scenario's bounds (``Violation``, path ``celery``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.chaos.checker import Violation
from harness.vocabulary import Promise

SPACING_TOLERANCE_S = 0.25
TIME_LIMIT_SLACK_S = 2.0
DEAD_LETTERED = "dead-lettered"  # how the platform's error says a task exhausted its retries


@dataclass(frozen=True)
class Promised:
    """What the Celery workers promise, as configured (read from the running workers when possible)."""

    max_retries: int
    retry_backoff_s: float
    time_limit_s: float
    soft_time_limit_s: float
    priority_overtake_min: float | None = None  # the scenario's claim; None: not checked


@dataclass
class Checked:
    """Per promise the evaluations that broke it and why; notes on what was checked."""

    broken: dict[Promise, tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, promise: Promise, ids: Sequence[str], bound: int, why: Iterable[str]) -> None:
        if len(ids) > bound:
            self.broken[promise] = (tuple(ids), tuple(why))

    def violations(self, bounds: Mapping[str, int | None]) -> list[Violation]:
        """The broken promises over their bound (a promise missing from ``bounds`` tolerates 0; None
        reports it without a violation)."""
        out = []
        for promise, (ids, why) in self.broken.items():
            bound = bounds.get(promise, 0)
            if bound is not None and len(ids) > bound:
                out.append(Violation("celery", promise, len(ids), bound, ids, why))
        return out


def attempt_starts(events: Iterable[Mapping[str, Any]], path: str = "celery") -> dict[str, dict[int, float]]:
    """Per evaluation: the time each attempt first said ``running`` (attempt number → epoch seconds)."""
    out: dict[str, dict[int, float]] = {}
    for e in events:
        if e.get("path") != path or e.get("status") != "running" or not e.get("attempts"):
            continue
        starts = out.setdefault(str(e["eval_id"]), {})
        attempt, at = int(e["attempts"]), float(e["at"])
        starts[attempt] = min(at, starts.get(attempt, at))
    return out


def _exhausted(records: Mapping[str, Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {i: r for i, rec in records.items() if (r := (rec.get("results") or {}).get("celery"))
            and r.get("status") == "error" and DEAD_LETTERED in str(r.get("error") or "")}


def check_retries(records: Mapping[str, Mapping[str, Any]], events: Sequence[Mapping[str, Any]],
                  dead_letters: Sequence[Mapping[str, Any]], promised: Promised, out: Checked) -> None:
    """``retry-count``, ``retry-spacing`` and ``dead-letter``."""
    exhausted = _exhausted(records)
    want = 1 + promised.max_retries
    wrong_count = sorted(i for i, r in exhausted.items() if int(r.get("attempts") or 0) != want)
    wrong_count += sorted(str(d.get("eval_id")) for d in dead_letters if int(d.get("attempts") or 0) != want
                          and str(d.get("eval_id")) not in wrong_count)
    out.add("retry-count", wrong_count, 0, [f"max_retries {promised.max_retries}: a dead-lettered task runs "
                                             f"{want} attempts"])

    starts = {i: s for i, s in attempt_starts(events).items() if i in records}
    early: list[str] = []
    gaps = 0
    for eval_id, by_attempt in starts.items():
        for a in sorted(by_attempt):
            if a + 1 in by_attempt:
                gaps += 1
                countdown = promised.retry_backoff_s * 2 ** (a - 1)
                if by_attempt[a + 1] - by_attempt[a] < countdown - SPACING_TOLERANCE_S:
                    early.append(eval_id)
                    break
    out.add("retry-spacing", early, 0, [f"backoff {promised.retry_backoff_s:g}s doubling: attempt a+1 starts "
                                        f">= {promised.retry_backoff_s:g}s x 2^(a-1) after attempt a"])
    if gaps:
        out.notes.append(f"retries: {gaps} retry gap(s) of {sum(len(s) > 1 for s in starts.values())} retried "
                         f"evaluation(s) checked against the backoff")

    listed = [str(d.get("eval_id")) for d in dead_letters]
    twice = sorted({i for i in listed if listed.count(i) > 1})
    stray = sorted({i for i in listed if i not in exhausted and i in records})
    missing = sorted(i for i in exhausted if i not in listed)
    out.add("dead-letter", [*twice, *stray, *missing], 0,
            [f"{len(missing)} exhausted task(s) not in celery:dlq, {len(stray)} entr(y/ies) for tasks that did not "
             f"exhaust their retries, {len(twice)} listed twice"])
    if exhausted or dead_letters:
        out.notes.append(f"dead letters: {len(exhausted)} exhausted task(s), {len(listed)} entr(y/ies) in "
                         "celery:dlq")


def check_time_limits(records: Mapping[str, Mapping[str, Any]], promised: Promised, out: Checked) -> None:
    """``time-limit``: attempts that outlived the hard limit, or the soft one without ending in error."""
    over = []
    for eval_id, rec in records.items():
        r = (rec.get("results") or {}).get("celery") or {}
        if not r.get("started_at") or not r.get("finished_at"):
            continue
        ran = float(r["finished_at"]) - float(r["started_at"])
        if ran > promised.time_limit_s + TIME_LIMIT_SLACK_S or (
                ran > promised.soft_time_limit_s + TIME_LIMIT_SLACK_S and r.get("status") != "error"):
            over.append(eval_id)
    out.add("time-limit", sorted(over), 0, [f"time limit {promised.time_limit_s:g}s (soft "
                                            f"{promised.soft_time_limit_s:g}s)"])


def check_priority(records: Mapping[str, Mapping[str, Any]], promised: Promised, out: Checked) -> None:
    """``priority-order``: the share of the most urgent evaluations that overtook the backlog."""
    if promised.priority_overtake_min is None:
        return
    waits: dict[int, list[tuple[float, float, str]]] = {}
    for eval_id, rec in records.items():
        r = (rec.get("results") or {}).get("celery") or {}
        if r.get("started_at") and r.get("queued_at"):
            waits.setdefault(int(rec.get("priority", 5)), []).append(
                (float(r["queued_at"]), float(r["started_at"]), eval_id))
    if len(waits) < 2:
        out.notes.append("priority-order: not checked (fewer than two priorities started)")
        return
    low, high = min(waits), max(waits)
    behind = [i for hq, hs, i in waits[high] if not any(lq < hq and ls > hs for lq, ls, _ in waits[low])]
    allowed = int(len(waits[high]) * (1 - promised.priority_overtake_min))
    out.add("priority-order", sorted(behind), allowed,
            [f"at least {promised.priority_overtake_min:.0%} of the {len(waits[high])} priority-{high} evaluations "
             f"start before a priority-{low} one submitted earlier"])


def check_promises(records: Mapping[str, Mapping[str, Any]], events: Sequence[Mapping[str, Any]],
                   dead_letters: Sequence[Mapping[str, Any]], promised: Promised,
                   event_gaps: Sequence[tuple[float, float]] = ()) -> Checked:
    """Every promise this run has evidence for (see the module docstring)."""
    out = Checked()
    check_retries(records, events, dead_letters, promised, out)
    check_time_limits(records, promised, out)
    check_priority(records, promised, out)
    if event_gaps:
        out.notes.append(f"the event bus was not heard for {sum(b - a for a, b in event_gaps):.1f}s "
                         f"({len(event_gaps)} gap(s)): retries in those gaps were not checked")
    return out
