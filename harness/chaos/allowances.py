"""What the configuration allows a fault to do to each path: the allowance rules, held as data.

A scenario's bounds default to ``"allowance"``: how many evaluations each path may lose, duplicate,
leave stuck or end in ``error`` given the platform's configuration and the faults that happened.
Each rule in ``RULES`` is one documented claim about the platform, one row of a table:

- **which faults** it covers (``kinds``, and ``targets`` as shell patterns over component and
  link names) and **when** (``when``: names of conditions on the configuration and the fault, all
  of which must hold; see ``CONDITIONS``);
- **what it allows** on which ``paths``: ``lost``, ``duplicated``, ``stuck``, ``error``, each an
  integer, ``None`` (unbounded: reported, never a violation) or the name of a quantity derived
  from the configuration (``QUANTITIES``: the concurrency, the reserved messages, the legacy
  workers); ``retries`` (an evaluation may run up to 1 + max_retries times) and ``redelivery``
  (it may be delivered once more);
- **why** (``reason``, a template over the same facts), printed with every violation.

The first row that matches a fault applies; a fault no row matches is refused (``AllowanceError``),
so a new kind of fault needs a new claim. ``allowances_for`` sums the effects per path: without
faults everything is 0; ``wrong``, ``unexpected`` and ``misrouted`` are always 0. ``executions``
caps the executions of one evaluation: (1 + max_retries if retries) × (1 + redeliveries), which
also catches a poison task that loops forever.

Pure: the configuration is read through the ``Settings`` protocol (any object with those fields,
``StackConfig`` among them); nothing here starts or reads a stack.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from harness.chaos.errors import ChaosError
from harness.history import Op
from harness.vocabulary import PATHS

SLOW_TOXICS = ("latency", "bandwidth", "slicer")
SUPERVISOR = "supervisor-restart"  # the runner's restart of a component that died on its own (not a fault)
_DOWN = ("kill", "terminate", "restart", "component-down")
_WORKER = "celery-worker-[0-9]*"
_LEGACY_WORKER = "legacy-worker-[0-9]*"


class AllowanceError(ChaosError):
    """A fault that no allowance rule covers."""


class Settings(Protocol):
    """The configuration the rules read (``harness.stack.config.StackConfig`` has these fields)."""

    @property
    def celery_concurrency(self) -> int: ...
    @property
    def prefetch_multiplier(self) -> int: ...
    @property
    def visibility_timeout_s(self) -> float: ...
    @property
    def acks_late(self) -> bool: ...
    @property
    def reject_on_worker_lost(self) -> bool: ...
    @property
    def max_retries(self) -> int: ...
    @property
    def retry_backoff_s(self) -> float: ...
    @property
    def celery_redis_policy(self) -> str: ...
    @property
    def main_redis_policy(self) -> str: ...
    @property
    def legacy_workers(self) -> int: ...
    def celery_worker_specs(self) -> list[tuple[str, tuple[str, ...], int]]: ...


@dataclass(frozen=True)
class FaultEvent:
    """A fault that happened: its kind, target, how long it lasted (None: unknown) and toxic type."""

    kind: str
    target: str
    duration_s: float | None = None
    toxic: str | None = None

    @property
    def name(self) -> str:
        return f"{self.kind} {self.target}" + (f" ({self.toxic})" if self.toxic else "")


def faults_in(history: Iterable[Op]) -> list[FaultEvent]:
    """The faults of a history: each nemesis ``start`` with the next ``stop`` of the same fault."""
    out: list[FaultEvent] = []
    open_: dict[str, tuple[Op, int]] = {}
    for op in history:
        if not op.is_nemesis or not op.value:
            continue
        name = str(op.value.get("fault"))
        if op.f == "start":
            toxic = op.value.get("toxic")
            out.append(FaultEvent(str(op.value.get("kind")), str(op.value.get("target")), None,
                                  toxic.get("type") if isinstance(toxic, dict) else toxic))
            open_[name] = (op, len(out) - 1)
        elif op.f == "stop" and name in open_:
            start, i = open_.pop(name)
            ev = out[i]
            out[i] = FaultEvent(ev.kind, ev.target, op.time - start.time, ev.toxic)
    return out


@dataclass(frozen=True)
class Allowances:
    """Upper bounds for one path; None means "report only, never a violation"."""

    lost: int | None = 0
    duplicated: int | None = 0
    stuck: int | None = 0
    wrong: int | None = 0
    unexpected: int | None = 0
    error: int | None = 0
    misrouted: int | None = 0
    executions: int | None = None  # most executions of any one evaluation; None: no cap
    reasons: tuple[str, ...] = ()


# -- the facts the rules read ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Facts:
    cfg: Settings
    fault: FaultEvent

    @property
    def concurrency(self) -> int:
        """The faulted Celery worker's concurrency (the largest of the topology's for any other target)."""
        specs = {name: c for name, _, c in self.cfg.celery_worker_specs()}
        return specs.get(self.fault.target, max(specs.values(), default=self.cfg.celery_concurrency))

    @property
    def reserved(self) -> int | None:
        """Messages a worker holds unacked: prefetch multiplier × concurrency (0: unbounded)."""
        c = self.cfg
        return c.prefetch_multiplier * self.concurrency if c.prefetch_multiplier > 0 else None

    @property
    def retry_budget_s(self) -> float:
        return float(sum(self.cfg.retry_backoff_s * 2**i for i in range(self.cfg.max_retries)))

    def text(self) -> dict[str, object]:
        c, r = self.cfg, self.reserved
        return {
            "name": self.fault.name, "toxic": self.fault.toxic, "c": self.concurrency,
            "vt": f"{c.visibility_timeout_s:g}", "d": f"{self.fault.duration_s or 0:g}",
            "unacked": (f"unacked tasks (prefetch_multiplier {c.prefetch_multiplier} x concurrency "
                        f"{self.concurrency} = {r if r is not None else 'unbounded'})"),
            "budget": f"{self.retry_budget_s:g}", "max_retries": c.max_retries, "w": c.legacy_workers,
            "celery_policy": c.celery_redis_policy, "main_policy": c.main_redis_policy,
        }


CONDITIONS: Mapping[str, Callable[[_Facts], bool]] = {
    "slow toxic": lambda f: f.fault.toxic in SLOW_TOXICS,
    "acks_late": lambda f: f.cfg.acks_late,
    "early ack": lambda f: not f.cfg.acks_late,
    "reject_on_worker_lost": lambda f: f.cfg.acks_late and f.cfg.reject_on_worker_lost,
    "within visibility": lambda f: f.fault.duration_s is not None and f.fault.duration_s <= f.cfg.visibility_timeout_s,
    "beyond visibility": lambda f: not (f.fault.duration_s is not None
                                        and f.fault.duration_s <= f.cfg.visibility_timeout_s),
    "outlasts retries": lambda f: f.fault.duration_s is None or f.fault.duration_s > f.retry_budget_s,
    "within retries": lambda f: f.fault.duration_s is not None and f.fault.duration_s <= f.retry_budget_s,
    "celery allkeys": lambda f: f.cfg.celery_redis_policy.startswith("allkeys"),
    "main not allkeys": lambda f: not f.cfg.main_redis_policy.startswith("allkeys"),
}

QUANTITIES: Mapping[str, Callable[[_Facts], int | None]] = {
    "concurrency": lambda f: f.concurrency,
    "reserved": lambda f: f.reserved,
    "legacy workers": lambda f: f.cfg.legacy_workers,
}

Bound = int | str | None  # an integer, a QUANTITIES name, or None (unbounded)


@dataclass(frozen=True)
class Rule:
    """One claim: for these faults, when these conditions hold, each of ``paths`` may see this much."""

    kinds: tuple[str, ...]
    targets: tuple[str, ...]
    paths: tuple[str, ...]
    reason: str
    when: tuple[str, ...] = ()
    lost: Bound = 0
    duplicated: Bound = 0
    stuck: Bound = 0
    error: Bound = 0
    retries: bool = False
    redelivery: bool = False

    def matches(self, facts: _Facts) -> bool:
        f = facts.fault
        return ((not self.kinds or f.kind in self.kinds)
                and any(fnmatch.fnmatchcase(f.target, t) for t in self.targets)
                and all(CONDITIONS[c](facts) for c in self.when))


ANY = ("*",)
BOTH = PATHS
RULES: tuple[Rule, ...] = (
    Rule(("toxic",), ANY, BOTH, "{name}: a {toxic} toxic only slows the link down", when=("slow toxic",)),
    Rule(("pause",), (_LEGACY_WORKER,), ("legacy",), "{name}: a paused legacy worker only delays its job in hand"),
    Rule(_DOWN, (_LEGACY_WORKER,), ("legacy",), "{name}: the job in hand (popped, not yet stored) is lost, or stuck "
         "if it reached the executor: the legacy queue has no ack", lost=1, stuck=1),
    Rule(("terminate", "restart", "component-down"), (_WORKER,), ("celery",),
         "{name}: a warm shutdown finishes running tasks and restores reserved ones (if its grace period runs out "
         "it becomes a kill)"),
    Rule(("kill",), (_WORKER,), ("celery",), "{name} (acks_late): {unacked} are redelivered after the visibility "
         "timeout and may run twice; none may be lost", when=("acks_late",), duplicated="reserved", redelivery=True),
    Rule(("kill",), (_WORKER,), ("celery",), "{name} (early ack): up to concurrency {c} running tasks were acked "
         "before they ran: each is lost, or stuck if it reached the executor", lost="concurrency",
         stuck="concurrency"),
    Rule(("kill-pool-child",), (_WORKER,), ("celery",), "{name}: reject_on_worker_lost requeues the child's task, "
         "which runs again", when=("reject_on_worker_lost",), duplicated=1, redelivery=True),
    Rule(("kill-pool-child",), (_WORKER,), ("celery",), "{name}: the child's task is acked (WorkerLostError) and "
         "never rerun: lost, or stuck if it reached the executor", lost=1, stuck=1),
    Rule(("pause",), (_WORKER, "celery-redis"), ("celery",), "{name}: {d}s is within the visibility timeout {vt}s: "
         "only delay", when=("within visibility",)),
    Rule(("pause",), (_WORKER, "celery-redis"), ("celery",), "{name}: longer than the visibility timeout {vt}s: "
         "{unacked} are restored and run elsewhere, then again on resume", duplicated="reserved", redelivery=True),
    Rule(_DOWN, ("celery-redis",), ("celery",), "{name}: celery-redis keeps nothing across a restart (no "
         "persistence): every queued, reserved or unacked message may be lost", lost=None),
    Rule(("memory-pressure",), ("celery-redis",), ("celery",), "{name}: {celery_policy} may evict any key (queue "
         "lists, the unacked hash, bindings)", when=("celery allkeys",), lost=None),
    Rule(("memory-pressure",), ("celery-redis",), ("celery",), "{name}: under {celery_policy} a full broker refuses "
         "writes; submissions must fail explicitly, nothing may be lost"),
    Rule(("memory-pressure",), ("main-redis",), BOTH, "{name}: under {main_policy} writes fail explicitly",
         when=("main not allkeys",)),
    Rule((), ("main-redis",), BOTH, "{name}: the main Redis holds the records, the event bus and the legacy queue",
         lost=None, stuck=None),
    Rule((), ("executor-1", "executor-2", "legacy-executor-1", "legacy-executor-2"), ("legacy",),
         "{name}: the legacy path does not retry: evaluations it sends meanwhile end as 'error'", error=None),
    Rule((), ("executor-3",), ("celery",), "{name}: transient failures are retried (max_retries {max_retries}, "
         "backoff budget {budget}s); an outage longer than that dead-letters ('error')", when=("outlasts retries",),
         error=None, retries=True),
    Rule((), ("executor-3",), ("celery",), "{name}: transient failures are retried (max_retries {max_retries}, "
         "backoff budget {budget}s); the outage is shorter, so nothing may end as 'error'", retries=True),
    # Through the link a lost response means a retry re-runs an execution that happened.
    Rule((), ("celery-executor-3",), ("celery",), "{name}: transient failures are retried (max_retries "
         "{max_retries}, backoff budget {budget}s); an outage longer than that dead-letters ('error')",
         when=("outlasts retries",), duplicated=None, error=None, retries=True),
    Rule((), ("celery-executor-3",), ("celery",), "{name}: transient failures are retried (max_retries "
         "{max_retries}, backoff budget {budget}s); the outage is shorter, so nothing may end as 'error'",
         duplicated=None, retries=True),
    Rule((), ("gateway-celery-redis",), ("celery",), "{name}: a publish retry after an LPUSH whose reply was lost "
         "queues the same task id twice", duplicated=None, redelivery=True),
    Rule((), ("gateway-main-redis",), BOTH, "{name}: record and legacy job are one transaction; a failure is an "
         "explicit 503"),
    Rule((), ("legacy-main-redis",), ("legacy",), "{name}: per worker ({w}), a BRPOP reply lost in flight loses the "
         "job and a failed result write strands it", lost="legacy workers", stuck="legacy workers"),
    Rule((), ("celery-worker-celery-redis",), ("celery",), "{name}: after a connection loss {unacked} are restored "
         "after the visibility timeout while the worker may still run its copies", duplicated="reserved",
         redelivery=True),
    Rule((), ("gateway", "flower"), BOTH, "{name}: clients see timeouts (info submits); queued work is unaffected"),
    Rule((), ("fault-proxy",), BOTH, "{name}: every proxied link breaks at once", lost=None, duplicated=None,
         stuck=None, error=None, redelivery=True),
)


@dataclass(frozen=True)
class Effect:
    """What one fault may do to one path (a rule applied to a fault)."""

    path: str
    reason: str
    lost: int | None = 0
    duplicated: int | None = 0
    stuck: int | None = 0
    error: int | None = 0
    retries: bool = False
    redelivery: bool = False
    rule: int = field(default=-1, compare=False)  # the index of the rule in RULES


def effects(cfg: Settings, fault: FaultEvent) -> list[Effect]:
    """What one fault may do to each path: the first matching rule, applied. Raises AllowanceError."""
    if fault.kind == SUPERVISOR:  # a repair (a component that died is started again), not a fault
        return []
    facts = _Facts(cfg, fault)
    for i, rule in enumerate(RULES):
        if rule.matches(facts):
            def bound(value: Bound) -> int | None:
                return QUANTITIES[value](facts) if isinstance(value, str) else value
            reason = rule.reason.format(**facts.text())
            return [Effect(path, reason, bound(rule.lost), bound(rule.duplicated), bound(rule.stuck),
                           bound(rule.error), rule.retries, rule.redelivery, i) for path in rule.paths]
    raise AllowanceError(f"no allowance rule for a {fault.kind!r} fault on {fault.target!r}: add a claim to "
                         "harness/chaos/allowances.py RULES (its kinds, targets, conditions, bounds and reason)")


def _total(values: Iterable[int | None]) -> int | None:
    total = 0
    for v in values:
        if v is None:
            return None
        total += v
    return total


def allowances_for(config: Settings, faults: Iterable[FaultEvent]) -> dict[str, Allowances]:
    """Per path: the bounds the configuration allows for these faults (sums over the faults).

    Without faults everything is 0. ``wrong``, ``unexpected`` and ``misrouted`` are always 0.
    Raises AllowanceError for a fault no rule covers.
    """
    found = [e for fault in faults for e in effects(config, fault)]
    out: dict[str, Allowances] = {}
    for path in PATHS:
        mine = [e for e in found if e.path == path]
        retries = config.max_retries if path == "celery" and any(e.retries for e in mine) else 0
        redeliveries = sum(e.redelivery for e in mine)
        out[path] = Allowances(
            lost=_total(e.lost for e in mine), duplicated=_total(e.duplicated for e in mine),
            stuck=_total(e.stuck for e in mine), error=_total(e.error for e in mine),
            executions=(1 + retries) * (1 + redeliveries),
            reasons=tuple(e.reason for e in mine) or ("no fault: nothing may be lost, duplicated or stuck",))
    return out
