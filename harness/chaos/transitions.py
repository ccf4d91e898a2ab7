"""Migration transitions as data: the plan's moves (seed 000, Q7), scheduled inside a scenario.

A chaos scenario may move the platform while its workload runs: raise the split, go to phase 2
(Celery primary with legacy as fallback), decommission legacy (phase 3), or roll back. Each move is a
``[[transitions]]`` entry, carried out by the operator (``harness/chaos/migration.py``) through the
gateway's admin endpoint and the stack's component handles, and recorded in the history like any op
(process ``operator``, ``f = "transition"``), so reports and checks line it up with the workload::

    [[transitions]]
    at_s = 4.0                 # 0 <= at_s < workload.duration_s: the workload runs across it
    kind = "phase2"            # split | phase2 | decommission | rollback
    percentage = 90            # split, phase2 [90], rollback [0]: CELERY_PERCENTAGE afterwards
    fallback = "naive"         # phase2 only: "naive" (the plan's try/except) | "safe" (with an idempotency key)
    drain = "safe"             # decommission only: "naive" (until the list is empty) | "safe" (also until no
                               #   legacy worker holds a job and every accepted legacy evaluation is terminal)
    stop_workers = true        # decommission [true]: stop the legacy workers after the drain;
                               #   rollback [false]: stop the Celery workers after it (their backlog strands)
    timeout_s = 20             # decommission [20]: the longest the drain may take (0 < t <= 120)

The plan's phases are checked in order (``phase_of``): a stack starts in phase 1 (or 2 when its
``fallback`` is set, 3 when ``accept_legacy`` is false); ``phase2`` needs phase 1 or 2;
``decommission`` needs phase 2 (the plan drains legacy only once Celery is primary); ``split`` is not
allowed in phase 3 (roll back first); ``rollback`` is allowed from any phase and brings legacy back
(the operator restarts workers a decommission stopped). Two moves at the same time are refused.

``check_decommission`` is the invariant a decommission adds: after it completed, no evaluation is
accepted for legacy and no legacy execution starts (``legacy-after-decommission``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from harness.chaos.checker import Violation
from harness.history import Op, pairs

TransitionKind = Literal["split", "phase2", "decommission", "rollback"]
TRANSITION_KINDS: tuple[TransitionKind, ...] = get_args(TransitionKind)
Procedure = Literal["naive", "safe"]
PROCEDURES: tuple[Procedure, ...] = get_args(Procedure)
OPERATOR = "operator"  # the history's process for transitions
KEYS = ("at_s", "kind", "percentage", "fallback", "drain", "stop_workers", "timeout_s")
LEGACY_EXECUTORS = ("executor-1", "executor-2")


@dataclass(frozen=True)
class Transition:
    at_s: float
    kind: TransitionKind
    percentage: float | None = None
    fallback: Procedure | None = None
    drain: Procedure | None = None
    stop_workers: bool = False
    timeout_s: float = 20.0

    @property
    def name(self) -> str:
        pct = f"{self.percentage:g} %" if self.percentage is not None else ""
        detail = {"split": f" {pct}", "phase2": f" {pct} {self.fallback} fallback",
                  "decommission": f" ({self.drain} drain)", "rollback": f" to {pct}"}[self.kind]
        return f"{self.kind}{detail} at {self.at_s:g}s"

    def value(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in KEYS if getattr(self, k) is not None}


def start_phase(fallback: str, accept_legacy: bool) -> int:
    """The plan's phase a stack starts in, from its gateway settings."""
    return 3 if not accept_legacy else 2 if fallback != "none" else 1


def phase_of(transitions: Iterable[Transition], start: int) -> list[tuple[int, str | None]]:
    """The phase after each transition and, where the move is out of order, why."""
    phase, out = start, []
    for t in transitions:
        problem = None
        if t.kind == "split" and phase == 3:
            problem = "a split change in phase 3 (legacy decommissioned) does nothing: roll back first"
        elif t.kind == "phase2" and phase == 3:
            problem = "phase 2 after a decommission: roll back first"
        elif t.kind == "decommission" and phase != 2:
            problem = (f"a decommission needs phase 2 first (Celery primary with legacy fallback), but the platform "
                       f"is in phase {phase}: add a phase2 transition before it, or start the stack with a fallback")
        phase = {"split": phase, "phase2": 2, "decommission": 3, "rollback": 1}[t.kind] if problem is None else phase
        out.append((phase, problem))
    return out


def read_transitions(r: Any, raw: Any, *, duration_s: float, start: int) -> tuple[Transition, ...]:
    """``[[transitions]]`` from parsed TOML, every problem reported through the scenario reader ``r``."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        r.problem("transitions", "expected an array of tables ([[transitions]])")
        return ()
    out: list[Transition] = []
    for i, entry in enumerate(raw):
        where = f"transitions[{i}]"
        t = r.table(entry, where, KEYS, ("at_s", "kind"))
        kind = t.get("kind")
        if kind not in TRANSITION_KINDS:
            r.problem(f"{where}.kind", f"{kind!r} is not one of {', '.join(TRANSITION_KINDS)}")
            continue
        at = r.number(t, "at_s", where, lo=0, hi=math.inf, default=0.0)
        if at >= duration_s:
            r.problem(f"{where}.at_s", f"{at:g}s is not before the workload's end ({duration_s:g}s): the workload must "
                                       "run across the transition")
        allowed = {"split": {"percentage"}, "phase2": {"percentage", "fallback"},
                   "decommission": {"drain", "stop_workers", "timeout_s"}, "rollback": {"percentage", "stop_workers"}}
        for key in set(t) - {"at_s", "kind"} - allowed[kind]:
            r.problem(f"{where}.{key}", f"not a setting of a {kind} transition (it takes: "
                                        f"{', '.join(sorted(allowed[kind])) or 'nothing'})")
        default_pct = {"split": None, "phase2": 90.0, "rollback": 0.0}.get(kind)
        pct = r.number(t, "percentage", where, lo=0, hi=100, default=default_pct) if kind != "decommission" else None
        if kind == "split" and pct is None:
            r.problem(f"{where}.percentage", "missing: a split transition sets CELERY_PERCENTAGE")
        procedure = {"phase2": "fallback", "decommission": "drain"}.get(kind)
        chosen = t.get(procedure) if procedure else None
        if procedure and chosen not in PROCEDURES:
            r.problem(f"{where}.{procedure}", f"expected one of {', '.join(PROCEDURES)}, got {chosen!r}")
        stop = t.get("stop_workers", kind == "decommission")
        if not isinstance(stop, bool):
            r.problem(f"{where}.stop_workers", f"expected true or false, got {stop!r}")
        timeout = r.number(t, "timeout_s", where, lo=0, hi=120, lo_open=True, default=20.0)
        out.append(Transition(float(at), kind, None if pct is None else float(pct),
                              chosen if kind == "phase2" else None, chosen if kind == "decommission" else None,
                              bool(stop), float(timeout)))
    times = [t.at_s for t in out]
    for i, at in enumerate(times):
        if at in times[:i]:
            r.problem(f"transitions[{i}].at_s", f"another transition is already at {at:g}s: one move at a time")
    ordered = sorted(out, key=lambda t: t.at_s)
    for t, (_, problem) in zip(ordered, phase_of(ordered, start), strict=True):
        if problem:
            r.problem(f"transitions[{out.index(t)}].kind", problem)
    return tuple(ordered)


# -- what a decommission adds ------------------------------------------------------------------------------


def decommissioned_at(history: Iterable[Op]) -> float | None:
    """History time at which a decommission completed (the last one not followed by a rollback)."""
    at: float | None = None
    for invoke, done in pairs(history):
        if invoke.f != "transition" or done is None or done.type != "ok":
            continue
        kind = (invoke.value or {}).get("kind")
        if kind == "decommission":
            at = done.time
        elif kind == "rollback":
            at = None
    return at


def check_decommission(history: Iterable[Op], ledger_rows: Iterable[Mapping[str, Any]], wall0: float
                       ) -> list[Violation]:
    """``legacy-after-decommission``: an evaluation accepted for legacy, or a legacy execution started,
    after the decommission completed (``wall0``: the epoch time of the history's time 0)."""
    ops = list(history)
    at = decommissioned_at(ops)
    if at is None:
        return []
    accepted = sorted({str(done.eval_id) for invoke, done in pairs(ops)
                       if invoke.f == "submit" and done is not None and done.type == "ok" and done.time > at
                       and "legacy" in ((done.value or {}).get("routes") or [])})
    ran = sorted({str(row["eval_id"]) for row in ledger_rows
                  if row.get("executor_id") in LEGACY_EXECUTORS and float(row["started_at"]) > wall0 + at})
    ids = tuple(dict.fromkeys([*accepted, *ran]))
    if not ids:
        return []
    return [Violation("legacy", "legacy-after-decommission", len(ids), 0, ids,
                      (f"{len(accepted)} accepted for legacy and {len(ran)} legacy execution(s) started after the "
                       f"decommission completed at {at:.1f}s",))]
