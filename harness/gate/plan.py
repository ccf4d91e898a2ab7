"""The migration plan as rollout steps: parsing, order, and the evidence each move needs. Pure.

``harness rollout --plan 10,25,50,75,phase2@90,100,decommission`` walks the team's plan (seed 000,
Q7) with the gate between steps. A step is a state of the platform:

- ``P`` (0..100): Celery gets P % of the traffic (phase 1, or phase 2 after a ``phase2`` step);
- ``phase2@P`` (``phase2@P:naive``): phase 2, Celery primary at P % with legacy as the fallback for a
  failed Celery publish; ``safe`` (the default) with an idempotency key the workers claim, ``naive``
  the plan's literal ``try: submit_to_celery except CeleryError: submit_to_legacy``;
- ``decommission`` (``decommission:naive``): phase 3: legacy accepts nothing more, Celery takes 100 %,
  legacy is drained and its workers stopped; ``safe`` (the default) also waits for the jobs legacy
  workers hold, ``naive`` is the plan's ``while legacy_queue.size() > 0``.

Order (refused before anything starts, naming the step): at least two steps; the first is where the
platform is now; percentages rise strictly from step to step; ``phase2`` at most once;
``decommission`` only last and only after a ``phase2`` step (the plan drains legacy once Celery is
primary). Every step after ``phase2`` stays in phase 2.

A move from one step to the next is judged by the gate at the step it leaves (its split and phase),
plus, for a transition, the transition scenarios that exercise the move itself with the chosen
procedure (``TRANSITION_SCENARIOS``) and the criteria it adds (``transition_checks``):

- into phase 2: no evaluation runs twice (a fallback whose Celery publish did happen), and nothing
  is lost;
- into phase 3: nothing accepted is unaccounted for (lost or stuck on either path) and no legacy
  activity after the decommission (``legacy-after-decommission``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from harness.gate.decide import GateError, TransitionCheck
from harness.gate.evidence import cell_list

Kind = Literal["split", "phase2", "decommission"]

# The transition scenarios (scenarios/transition/) that exercise each move with each procedure.
TRANSITION_SCENARIOS: dict[tuple[str, str], tuple[str, ...]] = {
    ("phase2", "safe"): ("fallback-safe-reply-resets",),
    ("phase2", "naive"): ("fallback-naive-reply-resets", "fallback-naive-broker-partition"),
    ("decommission", "safe"): ("decommission-safe-drain", "decommission-then-legacy-submission"),
    ("decommission", "naive"): ("decommission-naive-drain", "decommission-then-legacy-submission"),
}
FORMS = "P (0..100), phase2@P[:safe|:naive], decommission[:safe|:naive]"
_STEP = re.compile(r"^(?:(?P<pct>\d+(?:\.\d+)?)|phase2@(?P<p2>\d+(?:\.\d+)?)(?::(?P<fb>\w+))?|"
                   r"decommission(?::(?P<drain>\w+))?)$")


@dataclass(frozen=True)
class Step:
    """One state of the platform in the plan."""

    text: str
    phase: int  # 1, 2 or 3
    percentage: float  # Celery's share in this state
    procedure: str | None = None  # phase 2's fallback / phase 3's drain: "safe" | "naive"
    kind: Kind = "split"  # the move that reaches this step

    def config(self) -> dict[str, Any]:
        """The stack settings of this state (``StackConfig`` fields)."""
        return {"celery_percentage": self.percentage, "fallback": self.procedure if self.phase == 2 else "none",
                "accept_legacy": self.phase < 3}

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "phase": self.phase, "percentage": self.percentage, "procedure": self.procedure,
                "kind": self.kind}


def parse_plan(text: str) -> list[Step]:
    """The plan's steps, in order; a ``GateError`` names the first step that is unknown or out of order."""
    tokens = [t.strip() for t in text.split(",") if t.strip()]
    if len(tokens) < 2:
        raise GateError(f"--plan needs at least two steps (the first is where the platform is now), e.g. "
                        f"10,25,50,75,phase2@90,100,decommission; got {text!r}")
    steps: list[Step] = []
    phase = 1
    procedure: str | None = None
    for i, token in enumerate(tokens):
        match = _STEP.match(token)
        if match is None:
            raise GateError(f"--plan: unknown step {token!r} (step {i + 1}); a step is one of {FORMS}")
        prev = steps[-1] if steps else None
        if match.group("pct") is not None or match.group("p2") is not None:
            pct = float(match.group("pct") or match.group("p2"))
            if not 0 <= pct <= 100:
                raise GateError(f"--plan: step {token!r}: the percentage must be within 0..100")
            if prev is not None and prev.phase == 3:
                raise GateError(f"--plan: step {token!r} comes after decommission: the decommission must be last")
            if prev is not None and pct <= prev.percentage:
                raise GateError(f"--plan: step {token!r}: the percentage must rise from the previous step's "
                                f"{prev.percentage:g} % (to lower it, roll back: harness rollout stops and rolls back "
                                "on FAIL)")
            kind: Kind = "split"
            if match.group("p2") is not None:
                if phase == 2:
                    raise GateError(f"--plan: step {token!r}: phase 2 is entered once; later steps are percentages")
                procedure = _procedure(match.group("fb"), token)
                phase, kind = 2, "phase2"
            steps.append(Step(token, phase, pct, procedure if phase == 2 else None,
                              kind if prev is not None else "split"))
        else:
            if prev is None:
                raise GateError("--plan: the first step is where the platform is now; it cannot be decommission")
            if prev.phase != 2:
                raise GateError(f"--plan: step {token!r} (step {i + 1}) comes before phase 2: the plan drains legacy "
                                "only once Celery is primary; add a phase2@P step before it")
            if i != len(tokens) - 1:
                raise GateError(f"--plan: step {token!r} must be the last step")
            steps.append(Step(token, 3, 100.0, _procedure(match.group("drain"), token), "decommission"))
    return steps


def _procedure(word: str | None, token: str) -> str:
    if word is None:
        return "safe"
    if word not in ("safe", "naive"):
        raise GateError(f"--plan: step {token!r}: the procedure is 'safe' or 'naive', got {word!r}")
    return word


@dataclass(frozen=True)
class Move:
    """From one step to the next: the gate judges ``current`` → ``target`` percent at ``frm``'s state."""

    frm: Step
    to: Step

    @property
    def kind(self) -> Kind:
        return self.to.kind

    @property
    def scenarios(self) -> tuple[str, ...]:
        """The transition scenarios this move needs (none for a split step)."""
        if self.kind == "split":
            return ()
        return TRANSITION_SCENARIOS[(self.kind, self.to.procedure or "safe")]

    def describe(self) -> str:
        return f"{self.frm.text} → {self.to.text}"


def moves(steps: Sequence[Step]) -> list[Move]:
    return [Move(a, b) for a, b in zip(steps, steps[1:], strict=False)]


def transition_checks(findings: pd.DataFrame, scenarios: Sequence[str]) -> list[TransitionCheck]:
    """One check per scenario of ``scenarios`` found in the chaos findings rows (both paths summed)."""
    out = []
    for name in scenarios:
        if findings.empty or "scenario" not in findings:
            break
        rows = findings[findings["scenario"] == name]
        if rows.empty:
            continue

        def total(*columns: str, rows: pd.DataFrame = rows) -> int:
            return int(sum(_count(v) for c in columns if c in rows for v in rows[c]))

        legacy_after = sum(1 for cell in rows.get("violations", pd.Series(dtype=object)) for v in cell_list(cell)
                           if "legacy-after-decommission" in v)
        order = ("held", "finding", "known-failure", "failed", "error")
        worst = max((str(o) for o in rows["outcome"]), key=lambda o: order.index(o) if o in order else len(order))
        out.append(TransitionCheck(name, total("duplicated", "unexpected"), total("lost", "stuck"), legacy_after,
                                   worst))
    return out


def _count(value: Any) -> int:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 0
    return int(value)
