"""Generative chaos: search the space of fault schedules, shrink each failure, confirm it, save it as a scenario.

Every hand-written scenario is one point of a large space: which fault, on which link or component,
when, for how long, overlapping or not, under which workload and configuration. ``schedules`` is a
Hypothesis strategy over that space that draws *scenario files* (TOML-shaped dicts that
``parse_scenario`` accepts whole): the knobs that matter (acks, visibility timeout, prefetch, retries
and their backoff, eviction policy, worker topology), a short workload and 1..K faults. A fault is drawn
by **family** first (a process stopped, a link faulted, a Redis filled: the mechanisms by which a queue
loses or repeats work), so each family gets its share of a short budget whatever the number of kinds in
it; then a process fault's kind and target, or a link fault's **effect** on a request (refused, its
reply lost, slowed: ``cell``), target and mechanism. Targets are the Celery path's components and
links: the property is the Celery path's, and a fault only the legacy path sees cannot break it (legacy
targets are drawn when ``--targets`` names them).

``explore`` draws each schedule with the strategy's code (``draw_schedule``) from ``random.Random(seed)``,
just before its run, and runs it once on a fresh stack. It looks where it has not looked: each fault is
drawn in a **cell** (a region, a link's split by effect) no earlier fault of the search was drawn in,
while the families leave one (then anywhere outside what it found), and a schedule has as many faults as the bound allows (shrinking drops
those a failure does not need). The property is the scenario files' own: the
Celery path's outcome is ``failed`` or ``known-failure`` (a bound of ``[expect.celery]`` broken; the
bounds are the derived allowances, or 0 for lost, duplicated and stuck with ``strict``). ``error`` (a run
that could not be carried out) is recorded and never counted. A failure is a **discovery** when it breaks
an invariant in a region where no earlier discovery of this search broke it (``is_new`` in ``explore``),
so one search can report several distinct hazards. A region is what a fault does and to what, and, where
it decides the cost, under which delivery guarantee (``region``, ``guarantee``): a worker killed under
early acks and one killed under late acks are two regions. Once a discovery covers a region, later
examples are drawn elsewhere while anything else is left (the search looks for what it has not found
yet; a schedule whose knobs left nothing outside is passed over). Each discovery is, in turn:

1. **named**: a discovery that breaks only invariants a hand-written scenario declares as its
   ``[known_failure]``, with a fault in the same region as one of that scenario's, is that known
   failure. Its file names and reproduces it, so it is not shrunk, confirmed or written; it still
   counts (a known defect is never held) and it covers its regions, nothing more;
2. **shrunk** by a shrinker that knows schedules (``shrink_candidates``): drop a fault, simplify the
   workload (Celery only, quick programs, a lower rate, shorter), halve a fault's duration, start it
   later, put a knob back to its default. It is greedy (the first smaller schedule that still fails with
   one of the same invariants is kept, and the candidates start again from it) and bounded
   (``shrink_runs`` runs per discovery), because a run costs 12-60 s on a fresh stack, where
   Hypothesis's own shrinker assumes cheap calls and would spend the budget on a few knobs. Results are
   cached by schedule, so a candidate already run costs nothing. A shrunk schedule may turn out to be a
   known failure (named then) or an earlier discovery's (dropped then);
3. **confirmed** by ``CONFIRM_RUNS`` runs with new seeds: it must fail again in ``CONFIRM_NEEDED``;
4. **written**, when confirmed, as ``scenarios/found/<hash>.toml`` (validated by reading it back; its
   ``finding`` text gives the seed and how often it reproduced), and replayed first by the next search.

Profiles: ``any`` draws every knob; ``safe`` fixes the knobs the scenario files say are safe (late acks
with reject_on_worker_lost, a visibility timeout longer than any backlog wait or retry countdown the
workloads can make, prefetch 1, noeviction, a short backoff) and leaves out the **region** of every
fault of a scenario that declares a known failure (``region``: Celery workers are one role; on a link
a partition and a connection-breaking toxic are one thing, a slowing toxic another): the configuration
and faults under which the scenario files say the invariants hold, where a search should find nothing.

The search is bounded by a time budget (and optionally an example count) and stops by itself: no new
example starts after the budget; shrinking stops early enough to leave time for the confirmation,
which always runs whole, so the search can overrun by at most ``CONFIRM_RUNS`` runs. Finding nothing
within a budget is no proof.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import itertools
import json
import math
import random
import re
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from hypothesis import strategies as st

from harness.chaos.allowances import SLOW_TOXICS
from harness.chaos.errors import ChaosError
from harness.chaos.runner import opener_for, run_scenario
from harness.chaos.scenario import KINDS, Scenario, ScenarioError, _targets, load_files, parse_scenario
from harness.run import RunFolder
from harness.stack.config import StackConfig

Schedule = dict[str, Any]
T = TypeVar("T")
CONFIRM_RUNS, CONFIRM_NEEDED = 3, 2
SHRINK_RUNS = 4  # per discovery
ERRORS_IN_A_ROW = 3  # the search stops: the stack, not the schedule, is the problem
FAILING = ("failed", "known-failure")  # Celery outcomes that break a bound

# Fault families, drawn first; kinds within a family simplest first.
FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("process", ("kill", "pause", "terminate", "restart", "component-down", "kill-pool-child")),
    ("link", ("disable", "toxic")),
    ("memory", ("memory-pressure",)),
)
KIND_ORDER: tuple[str, ...] = tuple(k for _, kinds in FAMILIES for k in kinds)
PROCESS_KINDS = dict(FAMILIES)["process"]
GUARANTEE_KNOBS = ("acks_late", "reject_on_worker_lost", "celery_redis_policy")  # what ``guarantee`` reads
assert sorted(KIND_ORDER) == sorted(KINDS), "every kind the nemesis supports is drawn"
# Components and links the Celery path uses, most relevant first; a fault on a link no client uses ends
# the run as an error ("the fault missed"), so legacy targets are drawn only when legacy traffic runs.
CELERY_TARGETS = ("celery-worker-1", "celery-worker-2", "executor-3", "celery-redis", "gateway", "main-redis",
                  "gateway-celery-redis", "celery-worker-celery-redis", "celery-executor-3", "gateway-main-redis")
LEGACY_TARGETS = ("legacy-worker-1", "legacy-worker-2", "executor-1", "executor-2", "legacy-main-redis",
                  "legacy-executor-1", "legacy-executor-2")
# (knob, choices with the default first): the shrinker moves each back to its default.
KNOBS: tuple[tuple[str, tuple[Any, ...]], ...] = (
    ("acks_late", (False, True)),
    ("reject_on_worker_lost", (False, True)),
    ("visibility_timeout_s", (4.0, 2.0, 8.0)),
    ("prefetch_multiplier", (4, 1, 8)),
    ("max_retries", (3, 1, 5)),
    ("retry_backoff_s", (0.5, 2.0)),
    ("celery_redis_policy", ("allkeys-lru", "noeviction")),
    ("celery_workers", (1, 2)),
    ("celery_concurrency", (2, 1, 4)),
)
FIXED = {"restore_interval_s": 1.0, "restore_throttle": 1}  # the hand-written files' sweep
# Toxics, connection-breaking first (an ambiguous write), then the ones that only slow a link.
TOXICS: tuple[tuple[str, dict[str, tuple[int, ...]]], ...] = (
    ("reset_peer", {"timeout": (0, 500)}),
    ("timeout", {"timeout": (0, 1000)}),
    ("limit_data", {"bytes": (2000, 200)}),
    ("latency", {"latency": (200, 1000, 3000)}),
    ("slow_close", {"delay": (500, 3000)}),
    ("bandwidth", {"rate": (1, 16)}),
    ("slicer", {"average_size": (64,), "size_variation": (16,), "delay": (100, 1000)}),
)
STREAMS = ("downstream", "upstream")
ROUTES = (("celery",), ("legacy", "celery"))
PROGRAMS = ("quick", "sleep", "mixed")
RATES = (4.0, 2.0, 6.0, 8.0)
SLEEPS = (0.5, 0.2, 1.0, 2.0)
DURATIONS = (6, 7, 8, 9, 10)
STRICT = {"lost": 0, "duplicated": 0, "stuck": 0}


class ExploreError(ChaosError):
    """The search cannot start (bad options) or the strategy drew a schedule ``parse_scenario`` refuses."""


Region = tuple[str, str]


def guarantee(kind: str, target: str, cfg: StackConfig) -> str:
    """The delivery guarantee that decides what this fault may cost, where one does ("" elsewhere): a
    Celery worker stopped loses its running tasks under early acks and redelivers them under late acks
    (with or without reject_on_worker_lost); a full broker evicts queues under allkeys-* and refuses
    writes under noeviction. Two losses under two guarantees are two hazards, not one."""
    if kind in PROCESS_KINDS and re.fullmatch(r"celery-worker-\d+", target):
        return ("late acks, reject on worker lost" if cfg.acks_late and cfg.reject_on_worker_lost
                else "late acks" if cfg.acks_late else "early acks")
    if kind == "memory-pressure" and target == "celery-redis":
        return cfg.celery_redis_policy
    return ""


def region(kind: str, target: str, toxic: str | None = None, cfg: StackConfig | None = None) -> Region:
    """What a fault does and to what, coarse enough to name a known failure's whole region: Celery (or
    legacy) workers are one role, and on a link a partition and a connection-breaking toxic are one
    thing ("break"), a slowing toxic another ("slow"); a component fault keeps its kind. Given the
    configuration, the role says the guarantee that decides the fault's cost (``guarantee``)."""
    role = re.sub(r"^(celery|legacy)-worker-\d+$", r"\1-worker-N", target)
    if cfg is not None and (g := guarantee(kind, target, cfg)):
        role = f"{role} ({g})"
    if kind == "disable" or (kind == "toxic" and toxic not in SLOW_TOXICS):
        return "break", role
    return ("slow" if kind == "toxic" else kind), role


CELL_SLOW = (*SLOW_TOXICS, "slow_close")  # toxics that only delay: the data and the close still arrive


def cell(kind: str, target: str, toxic: str | None = None, cfg: StackConfig | None = None,
         stream: str = "downstream") -> Region:
    """Where the search draws, a part of a ``region``: on a link, what the fault does to a request, the
    **effect**: ``refuse`` (a partition, or a connection-breaking toxic on the way in, ``upstream``: the
    request never reaches the server, a clean failure), ``lose reply`` (a connection-breaking toxic on
    the way back, ``downstream``: the server applies the request and its answer is lost, an
    indeterminate outcome) or ``slow`` (a toxic that only delays); elsewhere the region itself. The
    search draws every cell before any twice; a known failure's region stays whole (a partition that
    cuts a publish in flight makes the same ambiguous publish as a reset)."""
    where = region(kind, target, toxic, cfg)
    if kind == "disable":
        return "refuse", where[1]
    if kind == "toxic":
        return ("slow" if toxic in CELL_SLOW else "lose reply" if stream == "downstream" else "refuse"), where[1]
    return where


@dataclass(frozen=True)
class Profile:
    """Which knobs are drawn (choices, default first) and whether declared known failures are left out."""

    name: str
    knobs: tuple[tuple[str, tuple[Any, ...]], ...]
    leave_out_known: bool
    about: str


SAFE_KNOBS: dict[str, tuple[Any, ...]] = {
    "acks_late": (True,), "reject_on_worker_lost": (True,),
    # longer than any wait the workloads can make: prefetch 1 x a 2 s program + a 10 s pause, or the longest
    # countdown 0.5 x 2^4 = 8 s (celery-retry-countdown- and celery-prefetch-backlog-beyond-visibility)
    "visibility_timeout_s": (30.0,), "prefetch_multiplier": (1,), "retry_backoff_s": (0.5,),
    "celery_redis_policy": ("noeviction",),  # allkeys-lru evicts queues (celery-redis-memory-allkeys-lru)
}
PROFILES: dict[str, Profile] = {
    "any": Profile("any", KNOBS, False, "every knob drawn, every fault kind and target"),
    "safe": Profile("safe", tuple((k, SAFE_KNOBS.get(k, c)) for k, c in KNOBS), True,
                    "the knobs the scenario files call safe (acks_late, reject_on_worker_lost, visibility timeout "
                    "30 s, prefetch 1, backoff 0.5 s, noeviction), and no fault in the region of a declared "
                    "known failure"),
}


@dataclass(frozen=True)
class Space:
    """What may be drawn: the profile, faults per schedule, and the kinds, targets and regions left out."""

    profile: Profile = PROFILES["any"]
    max_faults: int = 2
    kinds: frozenset[str] = frozenset()  # only these kinds (empty: all)
    targets: tuple[str, ...] = ()  # only targets matching these shell patterns (empty: all)
    left_out: frozenset[Region] = frozenset()  # regions (``region``, with the guarantee) never drawn
    strict: bool = False
    stack: Mapping[str, Any] = field(default_factory=dict)  # fixed [stack] settings (e.g. a candidate defect)

    def allows(self, kind: str, target: str, cfg: StackConfig, toxic: str | None = None,
               avoid: AbstractSet[Region] = frozenset(), stream: str | None = None) -> bool:
        """May a fault of ``kind`` on ``target`` be drawn under ``cfg`` (for a toxic: of this type and
        stream, or of some), outside the regions left out and those to ``avoid``?"""
        if kind == "toxic" and (toxic is None or stream is None):
            return any(self.allows(kind, target, cfg, name, avoid, way) for name, _ in TOXICS
                       if toxic in (None, name) for way in STREAMS if stream in (None, way))
        where = region(kind, target, toxic, cfg)
        return ((not self.kinds or kind in self.kinds) and where not in self.left_out and where not in avoid
                and cell(kind, target, toxic, cfg, stream or "downstream") not in avoid
                and (not self.targets or any(fnmatch.fnmatchcase(target, p) for p in self.targets)))

    def narrowing(self) -> str:
        """How the draw is narrowed: kinds, targets, fixed [stack] settings, strict bounds ("" when it is not)."""
        parts = ([f"kinds {', '.join(sorted(self.kinds))}"] if self.kinds else []) + (
            [f"targets {', '.join(self.targets)}"] if self.targets else []) + (
            [f"[stack] {', '.join(f'{k}={v}' for k, v in self.stack.items())}"] if self.stack else []) + (
            ["strict bounds"] if self.strict else [])
        return f" (narrowed: {'; '.join(parts)})" if parts else ""

    def check(self) -> None:
        """Raises ExploreError when the kinds and targets leave nothing to draw."""
        cfg = _config({name: choices[0] for name, choices in self.profile.knobs}, self)
        if not any(_targets_for(k, cfg, routes, self) for k in KIND_ORDER for routes in ROUTES):
            left = (f" outside the {len(self.left_out)} region(s) the {self.profile.name} profile leaves out "
                    f"(where a scenario declares a known failure: {', '.join(sorted(' '.join(r) for r in self.left_out))})"
                    if self.left_out else "")
            raise ExploreError(f"nothing to draw: no fault of kinds {', '.join(sorted(self.kinds)) or 'any'} on "
                               f"targets {', '.join(self.targets) or 'any'}{left}; widen --kinds or --targets"
                               + (", or use --profile any" if self.left_out else ""))


# -- the strategy ------------------------------------------------------------------------------------------


class Pick(Protocol):
    """Makes one choice of a schedule's draw."""

    def one(self, options: Sequence[T]) -> T: ...
    def integer(self, low: int, high: int) -> int: ...


@dataclass(frozen=True)
class _HypothesisPick:
    draw: st.DrawFn

    def one(self, options: Sequence[T]) -> T:
        return self.draw(st.sampled_from(options))

    def integer(self, low: int, high: int) -> int:
        return self.draw(st.integers(low, high))


@dataclass(frozen=True)
class RandomPick:
    """Choices from a ``random.Random``: the search draws through it, because its choices depend on what
    it found and drew so far, which Hypothesis's record of earlier test cases does not allow."""

    rng: random.Random

    def one(self, options: Sequence[T]) -> T:
        return options[self.rng.randrange(len(options))]

    def integer(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)


def _targets_for(kind: str, cfg: StackConfig, routes: Sequence[str], space: Space,
                 avoid: AbstractSet[Region] = frozenset(), used: AbstractSet[str] = frozenset()) -> list[str]:
    """The targets a fault of ``kind`` may hit: the Celery path's components and links (the property is
    the Celery path's; a fault only legacy sees cannot break it), and legacy ones only when the space's
    targets ask for them and legacy traffic runs; none in ``used`` (one fault per target)."""
    allowed = _targets(kind, cfg)
    wanted = CELERY_TARGETS + (LEGACY_TARGETS if "legacy" in routes and space.targets else ())
    return [t for t in wanted if t in allowed and t not in used and space.allows(kind, t, cfg, avoid=avoid)]


def _open(cfg: StackConfig, routes: Sequence[str], space: Space, avoid: AbstractSet[Region],
          used: AbstractSet[str] = frozenset()) -> list[tuple[str, list[str]]]:
    """(family, its kinds with a target left) for the families with one."""
    out = [(name, [k for k in kinds if _targets_for(k, cfg, routes, space, avoid, used)]) for name, kinds in FAMILIES]
    return [(name, kinds) for name, kinds in out if kinds]


EFFECTS = ("refuse", "lose reply", "slow")  # what a link fault does to a request (``cell``), simplest first
Mechanism = tuple[str, tuple[str, str] | None]  # a link fault's kind and its toxic (type, stream)


def _link_options(cfg: StackConfig, routes: Sequence[str], space: Space, avoid: AbstractSet[Region],
                  used: AbstractSet[str]) -> dict[str, dict[str, list[Mechanism]]]:
    """effect -> target -> the mechanisms with that effect on that target, outside ``avoid``."""
    out: dict[str, dict[str, list[Mechanism]]] = {}
    for kind in ("disable", "toxic"):
        for target in _targets_for(kind, cfg, routes, space, avoid, used):
            toxics: list[tuple[str, str] | None] = [None] if kind == "disable" else [
                (name, way) for way in STREAMS for name, _ in TOXICS if space.allows(kind, target, cfg, name, avoid, way)]
            for toxic in toxics:
                name, way = toxic or (None, "downstream")
                effect = cell(kind, target, name, stream=way)[0]
                out.setdefault(effect, {}).setdefault(target, []).append((kind, toxic))
    return out


Tiers = Callable[[], Sequence[AbstractSet[Region]]]  # regions to draw elsewhere than, strictest first


def _fault(pick: Pick, cfg: StackConfig, routes: Sequence[str], workload_s: int, space: Space,
           tiers: Tiers, used: AbstractSet[str], drew: Callable[[Region], None]) -> Schedule | None:
    """One fault on a target not in ``used``, outside the strictest tier of regions that leaves anything
    to draw (None when every target is used)."""
    avoiding: AbstractSet[Region] = frozenset()
    open_ = []
    for avoiding in (*tiers(), frozenset()):
        if open_ := _open(cfg, routes, space, avoiding, used):
            break
    if not open_:
        return None
    family, kinds = pick.one(open_)
    toxic: tuple[str, str] | None = None
    if family == "link":  # what happens to a request first (``cell``), then the target, then how
        options = _link_options(cfg, routes, space, avoiding, used)
        effect = pick.one([e for e in EFFECTS if e in options])
        target = pick.one(list(options[effect]))
        kind, toxic = pick.one(options[effect][target])
    else:
        kind = pick.one(kinds)
        target = pick.one(_targets_for(kind, cfg, routes, space, avoiding, used))
    fault: Schedule = {"kind": kind, "target": target}
    # Drawn as the delay before the workload's end, so a smaller draw is a later start.
    fault["at_s"] = float(workload_s - pick.integer(1, 2 * workload_s) / 2)
    if kind in ("pause", "toxic", "disable", "memory-pressure", "component-down"):
        fault["duration_s"] = float(pick.integer(1, 10))
    elif kind in ("kill", "terminate") and (down := pick.integer(0, 6)):
        fault["duration_s"] = float(down)
    if toxic is not None:
        fault["toxic"] = {"type": toxic[0], "stream": toxic[1],
                          "attributes": {a: pick.one(v) for a, v in dict(TOXICS)[toxic[0]].items()}}
    if kind == "memory-pressure":
        fault["hot"] = pick.one((False, True))
    drew(cell(kind, target, toxic[0] if toxic else None, cfg, toxic[1] if toxic else "downstream"))
    return fault


def _config(knobs: Mapping[str, Any], space: Space) -> StackConfig:
    return StackConfig.for_tests().replace(**{**knobs, **FIXED, **dict(space.stack)})


def _nowhere() -> Sequence[AbstractSet[Region]]:
    return ()


def _forget(_: Region) -> None:
    pass


def draw_schedule(pick: Pick, space: Space | None = None, avoid: Tiers = _nowhere,
                  drew: Callable[[Region], None] = _forget, faults: int | None = None) -> Schedule:
    """A scenario dict (``parse_scenario`` accepts it): knobs, a 6-10 s workload, ``faults`` faults (drawn
    in 1..max_faults when None; fewer when the targets run out), each choice made by ``pick``
    (``schedules`` for Hypothesis; the search's seeded random source).

    ``avoid``, read at each fault's draw, gives sets of regions and cells to draw elsewhere than,
    strictest first: a fault is drawn outside the first set that leaves anything to draw (the search's:
    first the cells it drew and the regions it found, then the regions it found). ``drew`` is told each
    fault's cell."""
    space = space or Space()
    knobs = {name: pick.one(choices) for name, choices in space.profile.knobs}
    cfg = _config(knobs, space)
    routes = [r for r in ROUTES if any(_targets_for(k, cfg, r, space) for k in KIND_ORDER)]
    workload: Schedule = {"routes": list(pick.one(routes)), "rate": pick.one(RATES),
                          "duration_s": float(pick.one(DURATIONS)), "program": pick.one(PROGRAMS)}
    if workload["program"] != "quick":
        workload["sleep_s"] = pick.one(SLEEPS)
    # One fault per target: the nemesis gives each component or link one fault at a time (two overlapping
    # terminates of one worker had each heal restart it, a restart that SIGTERMed the other's running tasks).
    drawn: list[Schedule] = []
    for _ in range(faults if faults is not None else pick.integer(1, space.max_faults)):
        fault = _fault(pick, cfg, workload["routes"], int(workload["duration_s"]), space, avoid,
                       frozenset(f["target"] for f in drawn), drew)
        if fault is None:
            break
        drawn.append(fault)
    return assemble(knobs, workload, drawn, space)


@st.composite
def schedules(draw: st.DrawFn, space: Space | None = None) -> Schedule:
    """The Hypothesis strategy of fault schedules (``draw_schedule``): Hypothesis makes every choice, so
    it generates, replays and shrinks them like any strategy's."""
    return draw_schedule(_HypothesisPick(draw), space)


def assemble(knobs: Mapping[str, Any], workload: Schedule, faults: Sequence[Schedule], space: Space) -> Schedule:
    """A whole schedule from its parts: fault names, the maxmemory a memory fault needs, the quiesce
    timeout that covers the redelivery window, and the expectations of the paths the workload uses."""
    if not knobs.get("acks_late", False):
        knobs = {**knobs, "reject_on_worker_lost": False}  # only meaningful with late acks: one schedule, not two
    overrides: Schedule = {**knobs, **FIXED, **dict(space.stack)}
    named = []
    for i, f in enumerate(faults):
        named.append({"name": f"{f['kind']} {f['target']} #{i + 1}", "at_s": f["at_s"], "kind": f["kind"],
                      "target": f["target"], **{k: f[k] for k in sorted(set(f) - FAULT_HEAD)}})
        if f["kind"] == "memory-pressure":  # something to fill up to, small enough to fill in a second
            overrides[f"{f['target'].replace('-', '_')}_maxmemory"] = "8mb"
    window = (overrides["visibility_timeout_s"] + FIXED["restore_interval_s"] * FIXED["restore_throttle"]
              + overrides.get("retry_backoff_s", 0.5) * 2 ** (overrides["max_retries"] - 1))
    bounds = dict(STRICT) if space.strict else {}
    timeout = max(30, math.ceil(window) + 20, math.ceil(1.5 * drain_s(workload, overrides)) + 20)
    return {"title": "", "description": "", "stack": overrides, "workload": dict(workload), "faults": named,
            "quiesce": {"timeout_s": float(timeout)},
            "expect": {path: dict(bounds) if path == "celery" else {} for path in ("celery", "legacy")
                       if path in workload["routes"]}}


FAULT_HEAD = {"name", "at_s", "kind", "target"}
QUICK_S = 0.1  # a quick program, start to stored result, on this stack (a generous estimate)


def drain_s(workload: Mapping[str, Any], stack: Mapping[str, Any]) -> float:
    """How long the workload's Celery work takes at the schedule's concurrency, counting every submission as
    Celery's: the quiesce must outlast a backlog that is still draining, or a slow queue reads as stuck
    (a drawn sleep 2 s workload at 8/s on one process is 160 s of work). The quiesce ends as soon as
    everything settles, so a bound that is too long costs a run that holds nothing."""
    sleep = float(workload.get("sleep_s", 0.0))
    each = {"quick": QUICK_S, "sleep": sleep + QUICK_S, "mixed": (sleep + 3 * QUICK_S) / 3}[workload["program"]]
    processes = (int(stack.get("celery_workers", StackConfig.celery_workers))
                 * int(stack.get("celery_concurrency", StackConfig.celery_concurrency)))
    return float(workload["rate"]) * float(workload["duration_s"]) * each / max(1, processes)


def key_of(schedule: Mapping[str, Any]) -> str:
    """The canonical form of a schedule (its words left out): the cache key and the file's hash."""
    return json.dumps({k: v for k, v in schedule.items() if k not in ("title", "description", "finding")},
                      sort_keys=True)


def short_hash(schedule: Mapping[str, Any]) -> str:
    return hashlib.sha256(key_of(schedule).encode()).hexdigest()[:10]


def fault_words(f: Mapping[str, Any]) -> str:
    """``kind target [toxic] @start [+duration s]``."""
    return (f"{f['kind']} {f['target']}" + (f" {f['toxic']['type']}" if "toxic" in f else "")
            + f" @{f['at_s']:g}" + (f" +{f['duration_s']:g}s" if "duration_s" in f else ""))


def compact(schedule: Mapping[str, Any]) -> str:
    """One line: the faults, the workload and the knobs that differ from their default."""
    knobs = [f"{k}={schedule['stack'][k]}" for k, choices in KNOBS if schedule["stack"].get(k, choices[0]) != choices[0]]
    w = schedule["workload"]
    return (f"{'; '.join(fault_words(f) for f in schedule['faults'])} | {'+'.join(w['routes'])} {w['program']} "
            f"{w['rate']:g}/s {w['duration_s']:g}s" + (f" | {' '.join(knobs)}" if knobs else ""))


# -- shrinking ---------------------------------------------------------------------------------------------


def _parts(schedule: Schedule, space: Space) -> tuple[dict[str, Any], Schedule, list[Schedule]]:
    knobs = {k: schedule["stack"][k] for k, _ in space.profile.knobs if k in schedule["stack"]}
    faults = [{k: v for k, v in f.items() if k != "name"} for f in schedule["faults"]]
    return knobs, dict(schedule["workload"]), faults


def shrink_candidates(schedule: Schedule, space: Space) -> Iterator[Schedule]:
    """Smaller schedules, most valuable first: one fault fewer; a simpler workload (Celery only, a quick
    program, a lower rate, shorter); a shorter fault (half its duration, no down time after a kill); a
    later start (half-way to the workload's end); a knob back to its default. Some may be invalid (the
    caller validates them)."""
    knobs, w, faults = _parts(schedule, space)

    def make(k: Mapping[str, Any] = knobs, wl: Schedule = w, fs: Sequence[Schedule] = faults) -> Schedule:
        return assemble(k, wl, fs, space)

    for i in range(len(faults) if len(faults) > 1 else 0):
        yield make(fs=faults[:i] + faults[i + 1:])
    if w["routes"] != ["celery"] and not any(f["target"] in LEGACY_TARGETS for f in faults):
        yield make(wl={**w, "routes": ["celery"]})
    if w["program"] != "quick":
        yield make(wl={k: v for k, v in {**w, "program": "quick"}.items() if k != "sleep_s"})
    if lower := [r for r in RATES if r < w["rate"]]:
        yield make(wl={**w, "rate": max(lower)})
    if w["duration_s"] > DURATIONS[0] and all(f["at_s"] <= DURATIONS[0] for f in faults):
        yield make(wl={**w, "duration_s": float(DURATIONS[0])})
    for i, f in enumerate(faults):
        d = f.get("duration_s")
        if d is not None and f["kind"] in ("kill", "terminate"):
            yield make(fs=[*faults[:i], {k: v for k, v in f.items() if k != "duration_s"}, *faults[i + 1:]])
        elif d is not None and d > 1:
            yield make(fs=[*faults[:i], {**f, "duration_s": float(max(1, d // 2))}, *faults[i + 1:]])
    for i, f in enumerate(faults):
        later = math.ceil(f["at_s"] + w["duration_s"]) / 2  # half-way to the end, in half seconds
        if later > f["at_s"]:
            yield make(fs=[*faults[:i], {**f, "at_s": float(later)}, *faults[i + 1:]])
    for name, choices in space.profile.knobs:
        if name not in space.stack and knobs.get(name, choices[0]) != choices[0]:
            yield make(k={**knobs, name: choices[0]})


def size(schedule: Schedule, space: Space) -> tuple[Any, ...]:
    """How big a schedule is, for ordering (smaller is simpler): faults, their total time, knobs off default."""
    knobs, w, faults = _parts(schedule, space)
    return (len(faults), sum(f.get("duration_s", 0) for f in faults), w["routes"] != ["celery"],
            w["program"] != "quick", w["rate"], w["duration_s"],
            sum(knobs.get(k, c[0]) != c[0] for k, c in space.profile.knobs))


# -- TOML, by hand for this small shape --------------------------------------------------------------------


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a TOML basic string
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{k} = {_value(x)}" for k, x in v.items()) + " }"
    raise ExploreError(f"cannot write {v!r} ({type(v).__name__}) as TOML")


def _text(v: str) -> str:
    return f'"""\n{v.strip()}\n"""' if '"""' not in v and "\\" not in v else _value(v)


def to_toml(schedule: Mapping[str, Any]) -> str:
    """A scenario file for ``schedule``: title, description, finding, [stack], [workload], [[faults]], ..."""
    lines = [f"{k} = {_text(schedule[k]) if k != 'title' else _value(schedule[k])}"
             for k in ("title", "description", "finding") if schedule.get(k)]
    for table in ("stack", "workload"):
        lines += ["", f"[{table}]"] + [f"{k} = {_value(v)}" for k, v in schedule[table].items()]
    for f in schedule["faults"]:
        lines += ["", "[[faults]]"] + [f"{k} = {_value(v)}" for k, v in f.items()]
    lines += ["", "[quiesce]", f"timeout_s = {_value(schedule['quiesce']['timeout_s'])}"]
    for path, bounds in schedule["expect"].items():
        lines += ["", f"[expect.{path}]"] + [f"{k} = {_value(v)}" for k, v in bounds.items()]
    return "\n".join(lines) + "\n"


# -- the search ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trial:
    """One run of one schedule: the Celery path's outcome, the invariants it broke and why."""

    outcome: str  # harness.vocabulary.Outcome on the Celery path
    seconds: float
    violations: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    folder: str = ""
    invariants: tuple[str, ...] = ()  # of the Celery path's broken bounds

    @property
    def failing(self) -> bool:
        return self.outcome in FAILING


# Runs one scenario on a fresh stack with a seed, in a named folder (tests give fakes).
RunFn = Callable[[Scenario, int, str], Trial]


@dataclass(frozen=True)
class Confirmation:
    seeds: tuple[int, ...]
    outcomes: tuple[str, ...]

    @property
    def reproduced(self) -> int:
        return sum(o in FAILING for o in self.outcomes)  # an error never counts as a reproduction

    @property
    def confirmed(self) -> bool:
        return self.reproduced >= CONFIRM_NEEDED

    def __str__(self) -> str:
        return f"reproduced {self.reproduced} of {len(self.outcomes)} (seeds {', '.join(map(str, self.seeds))}: " \
               f"{', '.join(self.outcomes)})"


@dataclass(frozen=True)
class Replay:
    file: str
    outcome: str

    @property
    def still_fails(self) -> bool:
        return self.outcome in FAILING


@dataclass(frozen=True)
class Step:
    """One run of the search: an example, a shrink candidate or a confirmation."""

    stage: str  # example | shrink | confirm
    schedule: Schedule
    trial: Trial
    at_s: float  # seconds into the search when it ended

    @property
    def words(self) -> str:
        return compact(self.schedule)


@dataclass
class Discovery:
    """A failure that broke an invariant no earlier discovery broke: first seen, shrunk, confirmed, named."""

    first: Step
    example: int  # the example number it was found at
    shrunk: Schedule
    shrink_steps: list[Step] = field(default_factory=list)
    confirmation: Confirmation | None = None
    known: str = ""  # the file of the hand-written scenario whose [known_failure] this is
    known_regions: set[Region] = field(default_factory=set)  # the regions it shares with that file
    written: Path | None = None
    shrink_stopped: str = ""  # why shrinking stopped before it ran out of candidates
    accepted: list[Schedule] = field(default_factory=list)  # the schedules shrinking kept, in order

    @property
    def invariants(self) -> tuple[str, ...]:
        failing = [s.trial for s in self.shrink_steps if s.trial.failing and key_of(s.schedule) == key_of(self.shrunk)]
        return tuple(sorted(set((failing[-1] if failing else self.first.trial).invariants)))

    @property
    def confirmed(self) -> bool:
        return self.confirmation is not None and self.confirmation.confirmed

    @property
    def broke(self) -> set[str]:
        """Every invariant its first failing run or its shrunk schedule broke."""
        return set(self.first.trial.invariants) | set(self.invariants)

    @property
    def regions(self) -> set[Region]:
        """The regions of its first failing schedule's faults and of its shrunk schedule's."""
        return schedule_regions(self.first.schedule) | schedule_regions(self.shrunk)

    @property
    def covers(self) -> set[Region]:
        """Where later examples look elsewhere: a known failure's regions in common with its file, else
        the shrunk schedule's (the first one's while it is shrunk)."""
        return self.known_regions or schedule_regions(self.shrunk)


@dataclass
class Exploration:
    """What a search did: every run, the discoveries, why it stopped."""

    seed: int
    space: Space
    budget_s: float
    replays: list[Replay] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    discoveries: list[Discovery] = field(default_factory=list)
    out_of_time: bool = False
    passed_over: int = 0  # drawn schedules not run: inside a covered region (nothing else under their knobs)
    stopped: str = ""  # why the search stopped before its bounds, if it did
    seconds: float = 0.0

    @property
    def examples(self) -> list[Step]:
        return [s for s in self.steps if s.stage == "example"]

    @property
    def confirmed(self) -> list[Discovery]:
        return [f for f in self.discoveries if f.confirmed]

    @property
    def failed(self) -> bool:
        """A confirmed discovery, a known failure seen (a known defect is never held), or a saved discovery
        that still fails."""
        return bool(self.confirmed) or any(f.known for f in self.discoveries) or any(
            r.still_fails for r in self.replays)

    def progress(self) -> str:
        shrinks = sum(s.stage == "shrink" for s in self.steps)
        return (f"{len(self.steps)} run(s): {len(self.examples)} example(s), {shrinks} shrink step(s), "
                f"{len(self.discoveries)} found")


def _line(label: str, step: Step) -> str:
    t = step.trial
    why = f" ({t.violations[0].splitlines()[0]})" if t.violations else (
        f" ({t.errors[0].splitlines()[0][:100]})" if t.errors else "")
    return f"  {label} {step.words} -> {t.outcome}{why} [{t.seconds:.0f} s]"


def replay_found(folder: Path, run: RunFn, seed: int, say: Callable[[str], None]) -> list[Replay]:
    """Run every saved schedule in ``folder`` once (validated first: a broken file raises ScenarioError)."""
    files = sorted(folder.glob("*.toml")) if folder.is_dir() else []
    out = []
    for scenario in load_files(files):
        trial = run(scenario, seed, f"replay-{scenario.name}")
        out.append(Replay(scenario.file, trial.outcome))
        verdict = "still fails" if trial.failing else "holds now" if trial.outcome in ("held", "finding") else \
            "could not be carried out"
        say(f"  replay {scenario.file}: {trial.outcome} ({verdict}) [{trial.seconds:.0f} s]")
    return out


def schedule_regions(schedule: Mapping[str, Any]) -> set[Region]:
    """The regions of a schedule's faults, under its configuration."""
    cfg = StackConfig.for_tests().replace(**schedule["stack"])
    return {region(f["kind"], f["target"], f.get("toxic", {}).get("type"), cfg) for f in schedule["faults"]}


def scenario_regions(scenario: Scenario) -> set[Region]:
    """The regions of a scenario file's faults, under its configuration."""
    cfg = scenario.stack_config(StackConfig.for_tests())
    return {region(f.kind, f.target, f.toxic.type if f.toxic else None, cfg) for f in scenario.faults}


def known_failure_of(schedule: Schedule, invariants: Sequence[str], known: Sequence[Scenario]) -> tuple[str, set[Region]]:
    """The file of a hand-written scenario whose ``[known_failure]`` declares every one of ``invariants``
    and which has a fault in the same region (``region``, guarantee included) as one of ``schedule``'s,
    and the regions they share; ("", set()) when none does."""
    mine = schedule_regions(schedule)
    for s in known:
        if (s.known_failure is not None and invariants and set(invariants) <= set(s.known_failure.invariants)
                and (shared := mine & scenario_regions(s))):
            return s.file, shared
    return "", set()


def known_regions(known: Sequence[Scenario]) -> frozenset[Region]:
    """The regions (``region``) of every fault of a scenario that declares a known failure."""
    return frozenset(r for s in known if s.known_failure is not None for r in scenario_regions(s))


def _anything_left(space: Space, avoid: AbstractSet[Region]) -> bool:
    """Can a fault be drawn outside ``avoid`` under some drawn configuration (knobs at their choices)?"""
    choices = [[(name, c) for c in cs] for name, cs in space.profile.knobs if name in GUARANTEE_KNOBS]
    for combo in itertools.product(*choices):
        cfg = _config({**{n: cs[0] for n, cs in space.profile.knobs}, **dict(combo)}, space)
        if any(_targets_for(k, cfg, routes, space, avoid) for k in KIND_ORDER for routes in ROUTES):
            return True
    return False


def explore_space(space: Space, known: Sequence[Scenario]) -> Space:
    """``space`` with the known failures' regions left out when its profile says so; raises ExploreError
    when nothing is left to draw."""
    if space.profile.leave_out_known:
        space = dataclasses.replace(space, left_out=space.left_out | known_regions(known))
    space.check()
    return space


class _Search:
    """The state of one search: the cache, the clock, the steps; runs schedules and shrinks discoveries."""

    def __init__(self, run: RunFn, report: Exploration, found_dir: Path, shrink_runs: int,
                 clock: Callable[[], float], say: Callable[[str], None]) -> None:
        self.run_fn, self.report, self.found_dir, self.shrink_runs = run, report, found_dir, shrink_runs
        self.clock, self.say, self.started = clock, say, clock()
        self.cache: dict[str, Trial] = {}

    def elapsed(self) -> float:
        return self.clock() - self.started

    def left(self) -> float:
        return self.report.budget_s - self.elapsed()

    def scenario(self, schedule: Schedule) -> Scenario:
        named = {**schedule, "title": f"explored {short_hash(schedule)}", "description": "drawn by explore"}
        return parse_scenario(named, str(self.found_dir / f"{short_hash(schedule)}.toml"))

    def run(self, schedule: Schedule, stage: str, seed: int, label: str) -> Step:
        key = key_of(schedule)
        if stage != "confirm" and key in self.cache:
            return Step(stage, schedule, self.cache[key], self.elapsed())
        n = sum(s.stage == stage for s in self.report.steps) + 1
        trial = self.run_fn(self.scenario(schedule), seed, f"explore-{stage}-{n:03d}-{short_hash(schedule)}"
                            + (f"-seed{seed}" if stage == "confirm" else ""))
        if stage != "confirm":
            self.cache[key] = trial
        step = Step(stage, schedule, trial, self.elapsed())
        self.report.steps.append(step)
        self.say(_line(f"{label}", step) + f"  [{self.report.progress()}, {max(self.left(), 0):.0f} s left]")
        return step

    def shrink(self, discovery: Discovery, space: Space, seed: int) -> None:
        """Greedy: keep the first candidate that still fails with one of the same invariants; bounded."""
        wanted = set(discovery.first.trial.invariants)
        current, improved = discovery.shrunk, True
        while improved:
            improved = False
            for candidate in unique_candidates(shrink_candidates(current, space), current):
                try:
                    self.scenario(candidate)
                except ScenarioError:
                    continue
                cached = self.cache.get(key_of(candidate))
                if cached is None:
                    if len(discovery.shrink_steps) >= self.shrink_runs:
                        discovery.shrink_stopped = f"the {self.shrink_runs} shrink runs of a discovery were spent"
                        break
                    own = max(s.trial.seconds for s in [discovery.first, *discovery.shrink_steps])
                    if self.left() < (CONFIRM_RUNS + 1) * own:  # this candidate, then the confirmation
                        discovery.shrink_stopped = "the time budget (the confirmation's share is kept for it)"
                        break
                    step = self.run(candidate, "shrink", seed, f"shrink {len(discovery.shrink_steps) + 1}")
                    discovery.shrink_steps.append(step)
                    cached = step.trial
                if cached.failing and wanted & set(cached.invariants):
                    current, improved = candidate, True
                    discovery.accepted.append(candidate)
                    break
        discovery.shrunk = current

    def earlier(self, discovery: Discovery) -> Iterator[Schedule]:
        """The schedules shrinking passed through, last first, down to the first failing one, each while
        there is time for its confirmation: a shrink step is kept on one failing run, and a smaller
        schedule can fail more rarely (a shorter outage that fewer tasks meet)."""
        own = max(s.trial.seconds for s in [discovery.first, *discovery.shrink_steps])
        for schedule in [*reversed(discovery.accepted[:-1]), discovery.first.schedule] if discovery.accepted else []:
            if self.left() < CONFIRM_RUNS * own:
                return
            yield schedule

    def confirm(self, schedule: Schedule, seed: int) -> Confirmation:
        seeds = tuple(seed + i for i in range(1, CONFIRM_RUNS + 1))
        outcomes = [self.run(schedule, "confirm", s, f"confirm seed {s}").trial.outcome for s in seeds]
        return Confirmation(seeds, tuple(outcomes))


def unique_candidates(candidates: Iterator[Schedule], current: Schedule) -> list[Schedule]:
    """Candidates in the shrinker's order, each once, none the same as ``current``."""
    seen: set[str] = {key_of(current)}
    out = []
    for c in candidates:
        if (k := key_of(c)) not in seen:
            seen.add(k)
            out.append(c)
    return out


def explore(*, run: RunFn, seed: int, max_time_s: float, found_dir: Path, space: Space | None = None,
            examples: int | None = None, max_discoveries: int = 5, shrink_runs: int = SHRINK_RUNS,
            known: Sequence[Scenario] = (), clock: Callable[[], float] = time.monotonic,
            say: Callable[[str], None] = print) -> Exploration:
    """Replay ``found_dir``, then draw schedules of ``space`` and run each on a fresh stack until
    ``max_time_s`` (or ``examples``, or ``max_discoveries``); shrink, confirm, name and write every discovery.

    ``known``: hand-written scenarios, whose ``[known_failure]`` names a discovery (and, with the safe
    profile, whose fault regions are left out). Raises ExploreError when the strategy draws a schedule
    ``parse_scenario`` refuses (a bug in the strategy)."""
    space = explore_space(space or Space(), known)
    report = Exploration(seed, space, max_time_s)
    search = _Search(run, report, found_dir, shrink_runs, clock, say)
    if found_dir.is_dir() and any(found_dir.glob("*.toml")):
        say(f"replaying the saved failures in {found_dir}:")
        report.replays = replay_found(found_dir, run, seed, say)

    def is_new(schedule: Schedule, trial: Trial) -> bool:
        """Breaks an invariant in a region where no discovery (known, confirmed, or being handled) broke it,
        while fewer than two new discoveries broke it anywhere: a loss under memory pressure and a loss on a
        kill are two hazards; a backlog's duplicates that appear whatever the fault are one (two at most).
        A known failure only covers its own regions: it takes no share of what is left to discover."""
        mine = schedule_regions(schedule)
        for i in trial.invariants:
            if any(i in f.broke and mine & f.regions for f in active()):
                continue
            if sum(i in f.broke and not f.known for f in active()) < 2:
                return True
        return False

    def active() -> list[Discovery]:
        """Discoveries that stand for their hazard: known, being handled, or confirmed (not a flake)."""
        return [f for f in report.discoveries if f.known or f.confirmation is None or f.confirmed]

    def avoiding() -> frozenset[Region]:
        """The regions an active discovery covers, while anything is left to draw outside them: the search
        looks for what it has not found yet (``draw_schedule`` draws elsewhere; a schedule whose knobs left
        nothing else, drawn inside, is passed over)."""
        covered = frozenset(r for f in active() for r in f.covers)
        if covered not in left_outside:  # asked at every fault drawn; the covered set changes rarely
            left_outside[covered] = bool(covered) and _anything_left(space, covered)
        return covered if left_outside[covered] else frozenset()

    left_outside: dict[frozenset[Region], bool] = {}
    drawn: set[Region] = set()  # the cell of every fault drawn so far

    def tiers() -> tuple[AbstractSet[Region], ...]:
        """Where a fault is drawn: first outside the regions covered and the cells drawn (a cell not looked
        at yet, whichever family still has one), else outside the regions covered."""
        covered = avoiding()
        return covered | drawn, covered

    looked_past: set[Region] = set()

    def done() -> bool:
        if report.stopped or sum(not f.known for f in report.discoveries) >= max_discoveries:
            return True
        if examples is not None and len(report.examples) >= examples:
            return True
        report.out_of_time |= search.left() <= 0
        return report.out_of_time

    def property_(schedule: Schedule) -> None:
        try:
            search.scenario(schedule)
        except ScenarioError as exc:
            raise ExploreError(f"the strategy drew a schedule the scenario format refuses (a bug in "
                               f"harness/chaos/explore.py):\n{exc}\n{key_of(schedule)}") from None
        if (now := avoiding()) != looked_past:
            looked_past.clear()
            looked_past.update(now)
            if now:
                say(f"  later examples look elsewhere than: {', '.join(sorted(' '.join(r) for r in now))}")
        if schedule_regions(schedule) & now:
            report.passed_over += 1  # drawn inside a covered region (nothing else was left under its knobs)
            return
        step = search.run(schedule, "example", seed, f"example {len(report.examples) + 1}")
        last = [s.trial for s in report.examples[-ERRORS_IN_A_ROW:]]
        if len(last) == ERRORS_IN_A_ROW and all(t.outcome == "error" for t in last):
            report.stopped = (f"{ERRORS_IN_A_ROW} runs in a row could not be carried out (error); the last: "
                              f"{(step.trial.errors or ('?',))[0].splitlines()[0][:200]}")
            say(f"  stopping: {report.stopped}")
        if step.trial.failing and is_new(schedule, step.trial):
            handle(Discovery(step, len(report.examples), schedule))

    def handle(discovery: Discovery) -> None:
        report.discoveries.append(discovery)
        broke = ", ".join(discovery.invariants)
        discovery.known, discovery.known_regions = known_failure_of(discovery.first.schedule, discovery.invariants, known)
        if discovery.known:  # its hand-written scenario reproduces it already: seen is enough, it counts
            say(f"  discovery {len(report.discoveries)} ({broke}): the known failure of {discovery.known} (not "
                f"shrunk, confirmed or written: replay it with harness chaos {discovery.known})")
            return
        say(f"  discovery {len(report.discoveries)} ({broke}): shrinking (fewer faults, simpler workload, shorter "
            "faults, later starts, default knobs)")
        search.shrink(discovery, space, seed)
        say(f"  smallest failing schedule: {compact(discovery.shrunk)}"
            + (f" (shrinking stopped: {discovery.shrink_stopped})" if discovery.shrink_stopped else ""))
        discovery.known, discovery.known_regions = known_failure_of(discovery.shrunk, discovery.invariants, known)
        if discovery.known:
            say(f"  shrunk, it is the known failure of {discovery.known}: not confirmed or written")
            return
        same = [i for i, f in enumerate(report.discoveries[:-1], 1) if key_of(f.shrunk) == key_of(discovery.shrunk)]
        if same:  # one hazard reached twice: the earlier discovery stands for it
            report.discoveries.pop()
            say(f"  the same schedule as discovery {same[0]} after shrinking: not a new discovery")
            return
        discovery.confirmation = search.confirm(discovery.shrunk, seed)
        say(f"  confirmation: {discovery.confirmation}")
        for back in search.earlier(discovery):
            if discovery.confirmed:
                break
            say(f"  below {CONFIRM_NEEDED} of {CONFIRM_RUNS}: confirming the schedule it was shrunk from: {compact(back)}")
            discovery.shrunk = back
            discovery.confirmation = search.confirm(back, seed)
            say(f"  confirmation: {discovery.confirmation}")
        if discovery.confirmed:
            discovery.written = write_found(discovery, found_dir, seed=seed)
            say(f"  written: {discovery.written}")
        else:  # unless known, no longer counted by is_new: a more reproducible instance may still be found
            say(f"  not written: below {CONFIRM_NEEDED} of {CONFIRM_RUNS} (a flake, or a race too rare to replay)")

    say(f"exploring ({space.profile.name} profile: {space.profile.about}){space.narrowing()}: {space.max_faults} "
        f"fault(s) per schedule (fewer once shrunk), each in a cell not drawn yet while any is left, seed {seed}, "
        f"{max_time_s:g} s budget" + (f", at most {examples} example(s)" if examples else ""))
    # The search draws with the strategy's own code (``draw_schedule``) from ``random.Random(seed)``, one
    # schedule at a time, each just before its run, so each draw sees what the runs before it found and drew
    # (``tiers``). It draws as many faults as the bound allows: a run looks at more regions, and shrinking
    # drops the faults a failure does not need (its first candidates). Hypothesis's engine cannot be the source: it refuses a strategy whose choices depend on
    # such state (its record of earlier test cases says the same choices led elsewhere), and its first test
    # case is the same for every seed.
    rng = RandomPick(random.Random(seed))
    cap = examples if examples is not None else max(10, int(max_time_s))  # runs take well over a second each
    for _ in range(20 * cap):  # a draw passed over is not an example: bounded all the same
        if done():
            break
        property_(draw_schedule(rng, space, tiers, drawn.add, faults=space.max_faults))
    report.seconds = search.elapsed()
    return report


def write_found(discovery: Discovery, found_dir: Path, *, seed: int) -> Path:
    """``found_dir/<hash>.toml``, validated by reading it back; its discovery says the seed and the rate."""
    schedule = discovery.shrunk
    failing = next((s.trial for s in [*reversed(discovery.shrink_steps), discovery.first]
                    if key_of(s.schedule) == key_of(schedule) and s.trial.failing), discovery.first.trial)
    data = {**schedule, "title": f"Found by explore: {compact(schedule).split(' | ')[0]}",
            "description": f"A fault schedule drawn by `harness chaos explore --seed {seed}` that breaks the Celery "
                           f"path's invariants, shrunk to: {compact(schedule)}. The expectations are the "
                           + ("strict ones (nothing lost, duplicated or stuck, whatever the configuration allows)."
                              if schedule["expect"].get("celery") else
                              "defaults (the same checker and allowances as every scenario file)."),
            "finding": f"Found in example {discovery.example} with seed {seed}, from {compact(discovery.first.schedule)}; "
                       f"shrunk in {len(discovery.shrink_steps)} run(s); {discovery.confirmation}. "
                       + (f"It is the known failure declared in {discovery.known}. " if discovery.known else "")
                       + f"Violations: {'; '.join(v.splitlines()[0] for v in failing.violations)}."}
    found_dir.mkdir(parents=True, exist_ok=True)
    path = found_dir / f"{short_hash(schedule)}.toml"
    text = to_toml(data)
    parse_scenario(tomllib.loads(text), str(path))  # never write a file the loader would refuse
    path.write_text(text)
    return path


def stack_runner(run_folder: RunFolder, stack_kind: str = "processes",
                 log: Callable[[str], None] | None = None) -> RunFn:
    """The real ``RunFn``: ``run_scenario`` on a fresh stack of ``stack_kind``, in ``run_folder``/chaos/<name>."""
    opener = opener_for(stack_kind)

    def run(scenario: Scenario, seed: int, folder: str) -> Trial:
        t = time.monotonic()
        result = run_scenario(scenario, opener=opener, run_folder=run_folder, seed=seed, stack_kind=stack_kind,
                              log=log, folder=folder)
        violations = result.gate_violations
        return Trial(result.outcome_on("celery"), time.monotonic() - t, tuple(str(v) for v in violations),
                     tuple(result.errors), str(result.folder),
                     tuple(sorted({v.invariant for v in violations if v.path == "celery"})))
    return run
