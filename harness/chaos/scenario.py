"""Chaos scenarios as data: ``scenarios/chaos/*.toml``, loaded into frozen objects and validated whole.

A scenario runs: check the steady state → start the workload → inject each fault at its time and
heal it after its duration (healing always runs) → quiesce → drain → check. ``load_scenario``
validates a file before anything starts and reports every problem at once; each line names the
file, the dotted path inside it and, where it can, the fix::

    scenarios/chaos/x.toml: faults[2].kind: 'kil' is not one of kill, terminate, ... (did you mean 'kill'?)

The schema (keys not listed are errors; defaults in brackets)::

    title = "..."                     # required
    description = "..."               # required: what the docs claim and what we expect
    finding = "..."                   # [none] what measuring showed, in words; copied into the findings
                                      #   notes (say there when a documented behaviour did not reproduce,
                                      #   or why an expectation is "report"); top-level, before any table
    [stack]                           # overrides of harness.stack.config.StackConfig fields [none]
    acks_late = true                  #   names and types are those of StackConfig
    [steady_state]                    # [paths the workload uses, timeout_s = 15]
    paths = ["legacy", "celery"]      #   each must complete a probe within timeout_s (0 < t <= 120)
    timeout_s = 15
    [workload]                        # required
    routes = ["legacy", "celery"]     #   forced routes, round robin; "dual" = both paths at once;
                                      #   "split" = no route: the gateway's split (and phase) decides
    rate = 8.0                        #   submissions per second, 0 < rate <= 200
    duration_s = 12                   #   0 < duration_s <= 60
    program = "sleep"                 #   "quick" | "sleep" | "mixed"
    sleep_s = 0.5                     #   [0.5] 0 <= sleep_s <= 30; only for "sleep" and "mixed"
    priority = 5                      #   [5] 0..9, or a table: { backlog = 1, high = 9, switch_at_s = 4 }
                                      #   (priority `backlog` before switch_at_s, `high` from then on)
    batch = false                     #   [false] submit with batch = true (Celery's batch queue), or a
                                      #   share 0 < s < 1: that share of submissions, drawn from the seed
    [[faults]]                        # [none]; names unique
    name = "kill worker"
    at_s = 3.0                        #   0 <= at_s <= workload.duration_s
    kind = "kill"                     #   see KINDS below
    target = "celery-worker-1"        #   a component or a link, depending on the kind
    duration_s = 6                    #   0 < d <= 120: required for pause, toxic, disable,
                                      #   memory-pressure, component-down (heal after d); optional for
                                      #   kill and terminate (down time before the start; [0]);
                                      #   not allowed for restart and kill-pool-child
    grace_s = 10                      #   0..60, only terminate, restart, component-down
    toxic = { type = "latency", stream = "downstream", toxicity = 1.0, attributes = { latency = 200 } }
                                      #   only and required for kind = "toxic"; types and attributes are
                                      #   Toxiproxy's (latency, bandwidth, slow_close, timeout, reset_peer,
                                      #   slicer, limit_data); stream [downstream]; missing attributes 0
    hot = false                       #   memory-pressure only [false]: touch the junk keys continuously, so an
                                      #   LRU policy sees them as hot as the platform's own keys (worst case)
    [known_failure]                   # [none] a known defect of the Celery path, tracked elsewhere: when
    invariants = ["unexpected"]       #   the run breaks only these invariants (names as in [expect],
    reason = "..."                    #   "executions" or "liveness"), its outcome is known-failure:
                                      #   pytest reports an xfail with this reason, junit.xml a skipped
                                      #   case of type pytest.xfail, `harness chaos` exits 1, and a gate
                                      #   blocks unless its thresholds accept it by name
    [[transitions]]                   # [none] migration moves while the workload runs (split, phase2,
                                      #   decommission, rollback): harness/chaos/transitions.py
    gate = ["celery"]                 # [["celery"]] the paths whose broken bounds fail the scenario; a
                                      #   transition scenario gates legacy too (its losses are the move's)
    [quiesce]                         # [timeout_s = 30]
    timeout_s = 30                    #   0 < t <= 300; with Celery traffic and faults it must cover
                                      #   visibility timeout + restore sweep + longest retry countdown
    [expect.celery]                   # required for every path the workload uses
    lost = 0                          #   an integer bound, "allowance" (derived from the configuration
    duplicated = "allowance"          #   and the faults: checker.allowances_for) or "report" (measured,
    stuck = 0                         #   never a failure: a known weakness). Defaults: lost, duplicated,
    wrong = 0                         #   stuck, error "allowance"; wrong, unexpected, misrouted 0.

Kinds: ``kill`` (SIGKILL), ``terminate`` (SIGTERM, warm shutdown), ``pause`` (SIGSTOP, SIGCONT on
heal), ``restart``, ``component-down`` (stop, start after duration_s) and ``kill-pool-child`` (one
prefork child of a Celery worker) act on components: main-redis, celery-redis, executor-1..3,
legacy-worker-N, celery-worker-N, gateway, flower, fault-proxy (N within the configured counts).
``toxic`` and ``disable`` act on links (``harness.stack.protocol.LINKS``) and need the fault proxy.
``memory-pressure`` fills main-redis or celery-redis up to its maxmemory (``hot = true``: and keeps the
junk as recently used as anything else, the worst case for an ``allkeys-*`` policy).

Targets, the fault proxy, maxmemory and the redelivery window are checked against
``StackConfig()`` with the file's ``[stack]`` applied: a runner that starts from another base
configuration should apply ``[stack]`` last (``Scenario.stack_config(base)``).
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness.chaos.allowances import Allowances, FaultEvent, allowances_for
from harness.chaos.errors import ChaosError
from harness.chaos.transitions import Transition, read_transitions, start_phase
from harness.errors import StackError
from harness.faultproxy.schema import ATTRIBUTES
from harness.stack.config import StackConfig
from harness.stack.protocol import LINKS
from harness.vocabulary import INVARIANTS, PATHS, PROMISES

Bound = int | Literal["allowance", "report"]
KINDS: tuple[str, ...] = ("kill", "terminate", "pause", "restart", "kill-pool-child", "toxic", "disable",
                          "memory-pressure", "component-down")
DURATION_REQUIRED = ("pause", "toxic", "disable", "memory-pressure", "component-down")
DURATION_FORBIDDEN = ("restart", "kill-pool-child")
GRACE_KINDS = ("terminate", "restart", "component-down")
TOXIC_TYPES: tuple[str, ...] = ("latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer",
                                "limit_data")
ROUTES = ("legacy", "celery", "dual", "split")
PROGRAMS = ("quick", "sleep", "mixed")
DEFAULT_BOUNDS: dict[str, Bound] = {"lost": "allowance", "duplicated": "allowance", "stuck": "allowance",
                                    "wrong": 0, "unexpected": 0, "error": "allowance", "misrouted": 0}


class ScenarioError(ChaosError):
    """One or more scenario files are invalid; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid scenario:\n  " + "\n  ".join(problems) if len(problems) > 1 else problems[0])
        self.problems = tuple(problems)


@dataclass(frozen=True)
class SteadyState:
    paths: tuple[str, ...]
    timeout_s: float


@dataclass(frozen=True)
class PrioritySchedule:
    backlog: int
    high: int
    switch_at_s: float


@dataclass(frozen=True)
class Workload:
    routes: tuple[str, ...]
    rate: float
    duration_s: float
    program: str
    sleep_s: float
    priority: int | PrioritySchedule
    batch: bool | float = False  # every submission, none, or this share of them (drawn from the seed)

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(p for p in PATHS if p in self.routes or "dual" in self.routes or "split" in self.routes)

    def priority_at(self, t: float) -> int:
        """The priority of a submission made ``t`` seconds into the workload."""
        if isinstance(self.priority, int):
            return self.priority
        return self.priority.backlog if t < self.priority.switch_at_s else self.priority.high


@dataclass(frozen=True)
class Toxic:
    type: str
    stream: str
    toxicity: float
    attributes: Mapping[str, int] = field(hash=False)


@dataclass(frozen=True)
class Fault:
    name: str
    at_s: float
    kind: str
    target: str
    duration_s: float | None = None
    grace_s: float | None = None
    toxic: Toxic | None = None
    hot: bool = False  # memory-pressure only: keep the junk as recently used as the platform's keys

    @property
    def event(self) -> FaultEvent:
        """What the checker's allowances need to know about this fault."""
        return FaultEvent(self.kind, self.target, self.duration_s, self.toxic.type if self.toxic else None)


@dataclass(frozen=True)
class Expectation:
    lost: Bound = "allowance"
    duplicated: Bound = "allowance"
    stuck: Bound = "allowance"
    wrong: Bound = 0
    unexpected: Bound = 0
    error: Bound = "allowance"
    misrouted: Bound = 0
    # the platform's promises (harness/chaos/promises.py): an integer bound or "report"; default 0
    promises: Mapping[str, int | Literal["report"]] = field(default_factory=dict, hash=False)
    priority_overtake: float | None = None  # share of the most urgent that must overtake the backlog

    def promise_bounds(self) -> dict[str, int | None]:
        """Per promise: its bound (0 unless the scenario says otherwise), None when only reported."""
        return {p: (None if (b := self.promises.get(p, 0)) == "report" else int(b)) for p in PROMISES}

    def resolve(self, derived: Allowances) -> Allowances:
        """Concrete bounds: an integer stays, "allowance" takes ``derived``'s, "report" is None."""
        def pick(name: str) -> int | None:
            bound = getattr(self, name)
            return getattr(derived, name) if bound == "allowance" else None if bound == "report" else bound
        return Allowances(**{n: pick(n) for n in INVARIANTS},
                          executions=None if self.duplicated == "report" else derived.executions,
                          reasons=derived.reasons)


@dataclass(frozen=True)
class KnownFailure:
    invariants: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class Scenario:
    file: str
    title: str
    description: str
    stack: Mapping[str, Any] = field(hash=False)
    steady_state: SteadyState
    workload: Workload
    faults: tuple[Fault, ...]
    quiesce_timeout_s: float
    expect: Mapping[str, Expectation] = field(hash=False)
    finding: str = ""
    known_failure: KnownFailure | None = None
    transitions: tuple[Transition, ...] = ()
    gate: tuple[str, ...] = ("celery",)  # the paths whose broken bounds fail the scenario

    @property
    def name(self) -> str:
        return Path(self.file).stem

    def stack_config(self, base: StackConfig | None = None) -> StackConfig:
        """``base`` (default: StackConfig()) with this scenario's ``[stack]`` overrides."""
        return (base or StackConfig()).replace(**self.stack)

    def allowances(self, base: StackConfig | None = None) -> dict[str, Allowances]:
        """The bounds to check per path: the expectations resolved against the derived allowances."""
        derived = allowances_for(self.stack_config(base), [f.event for f in self.faults])
        return {path: exp.resolve(derived[path]) for path, exp in self.expect.items()}


def component_names(config: StackConfig) -> tuple[str, ...]:
    names = ["main-redis", "celery-redis", "executor-1", "executor-2", "executor-3", "gateway"]
    names += [f"legacy-worker-{i}" for i in range(1, config.legacy_workers + 1)]
    names += [name for name, _, _ in config.celery_worker_specs()]
    names += ["flower"] * config.flower + ["fault-proxy"] * config.fault_proxy
    return tuple(names)


# -- validation ---------------------------------------------------------------------------------------------


class _Reader:
    """Reads typed values out of the TOML data, collecting problems instead of stopping at the first."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[str] = []

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{self.file}: {where}: {message}")

    def table(self, data: Any, where: str, keys: tuple[str, ...], required: tuple[str, ...] = ()) -> dict[str, Any]:
        if not isinstance(data, dict):
            self.problem(where, f"expected a table, got {_kind(data)}")
            return {}
        for key in data:
            if key not in keys:
                self.problem(_join(where, key), f"unknown key; expected one of {', '.join(keys)}{_near(key, keys)}")
        for key in required:
            if key not in data:
                self.problem(_join(where, key), "missing (required)")
        return data

    def number(self, data: dict[str, Any], key: str, where: str, *, lo: float, hi: float, default: Any = None,
               lo_open: bool = False, integer: bool = False) -> Any:
        at = _join(where, key)
        if key not in data:
            return default
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
            self.problem(at, f"expected {'an integer' if integer else 'a number'}, got {_kind(value)}")
            return default
        if value < lo or value > hi or (lo_open and value == lo):
            self.problem(at, f"{value} is out of bounds: expected {lo} {'<' if lo_open else '<='} {key} <= {hi}")
            return default
        return value if integer else float(value)

    def choice(self, data: dict[str, Any], key: str, where: str, options: tuple[str, ...],
               default: str | None = None) -> str | None:
        at = _join(where, key)
        if key not in data:
            return default
        value = data[key]
        if not isinstance(value, str):
            self.problem(at, f"expected a string (one of {', '.join(options)}), got {_kind(value)}")
            return default
        if value not in options:
            self.problem(at, f"{value!r} is not one of {', '.join(options)}{_near(value, options)}")
            return default
        return value

    def text(self, data: dict[str, Any], key: str, where: str) -> str:
        value = data.get(key, "")
        if not isinstance(value, str):
            self.problem(_join(where, key), f"expected a string, got {_kind(value)}")
            return ""
        if key in data and not value.strip():
            self.problem(_join(where, key), "must not be empty")
        return value

    def choices(self, data: dict[str, Any], key: str, where: str, options: tuple[str, ...]) -> tuple[str, ...]:
        at = _join(where, key)
        value = data.get(key)
        if not isinstance(value, list) or not value:
            self.problem(at, f"expected a non-empty list of {', '.join(options)}, got {_kind(value)}")
            return ()
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or item not in options:
                self.problem(f"{at}[{i}]", f"{item!r} is not one of {', '.join(options)}"
                                           f"{_near(item, options) if isinstance(item, str) else ''}")
            else:
                out.append(item)
        return tuple(out)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _kind(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
             dict: "a table"}
    shown = repr(value) if not isinstance(value, dict | list) else ""
    return f"{names.get(type(value), type(value).__name__)} {shown}".strip() if value is not None else "nothing"


def _near(word: str, options: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


_STACK_HINTS = typing.get_type_hints(StackConfig)


def _stack_value(value: Any, hint: Any) -> tuple[bool, Any]:
    """Whether a TOML value fits a StackConfig field's type, and the value converted to it."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):  # X | None: TOML has no null, so the value must be an X
        for arg in args:
            if arg is not type(None) and _stack_value(value, arg)[0]:
                return _stack_value(value, arg)
        return False, None
    if origin is Literal:
        return value in args, value
    if origin in (tuple, list):
        ok = isinstance(value, list) and all(isinstance(x, str) for x in value)
        return ok, tuple(value) if ok and origin is tuple else value
    if origin is dict:
        return isinstance(value, dict) and all(isinstance(x, str) for x in value.values()), value
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool), value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    return isinstance(hint, type) and isinstance(value, hint), value


def _type_name(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args if a is not type(None))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    names = {bool: "a boolean (true or false)", int: "an integer", float: "a number", str: "a string",
             tuple: "a list of strings", dict: "a table of strings"}
    return names.get(origin or hint, str(hint))


def _read_stack(r: _Reader, data: Any) -> tuple[dict[str, Any], StackConfig]:
    known = tuple(f.name for f in dataclasses.fields(StackConfig))
    raw = r.table(data, "stack", known) if data is not None else {}
    overrides: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            continue
        ok, converted = _stack_value(value, _STACK_HINTS[key])
        if not ok:
            r.problem(f"stack.{key}", f"expected {_type_name(_STACK_HINTS[key])}, got {_kind(value)}")
        else:
            overrides[key] = converted
    try:
        return overrides, StackConfig.from_options(**overrides)
    except StackError as exc:
        r.problem("stack", str(exc))
        return overrides, StackConfig()


def _read_workload(r: _Reader, data: Any) -> Workload:
    if data is None:  # reported as missing at the top level
        return Workload((), 1.0, 1.0, "quick", 0.5, 5)
    w = r.table(data, "workload", ("routes", "rate", "duration_s", "program", "sleep_s", "priority", "batch"),
                ("routes", "rate", "duration_s", "program"))
    program = r.choice(w, "program", "workload", PROGRAMS, "quick")
    if "sleep_s" in w and program == "quick":
        r.problem("workload.sleep_s", "only program 'sleep' or 'mixed' sleeps; remove sleep_s or change program")
    duration = r.number(w, "duration_s", "workload", lo=0, hi=60, lo_open=True, default=1.0)
    priority: int | PrioritySchedule = 5
    if isinstance(w.get("priority"), dict):
        t = r.table(w["priority"], "workload.priority", ("backlog", "high", "switch_at_s"),
                    ("backlog", "high", "switch_at_s"))
        priority = PrioritySchedule(r.number(t, "backlog", "workload.priority", lo=0, hi=9, integer=True, default=5),
                                    r.number(t, "high", "workload.priority", lo=0, hi=9, integer=True, default=5),
                                    r.number(t, "switch_at_s", "workload.priority", lo=0, hi=duration, default=0.0))
    else:
        priority = r.number(w, "priority", "workload", lo=0, hi=9, integer=True, default=5)
    batch = w.get("batch", False)
    if not isinstance(batch, bool) and not (isinstance(batch, float) and 0 < batch < 1):
        r.problem("workload.batch", f"expected true, false or a share between 0 and 1, got {_kind(batch)}")
        batch = False
    return Workload(r.choices(w, "routes", "workload", ROUTES) if "routes" in w else (),
                    r.number(w, "rate", "workload", lo=0, hi=200, lo_open=True, default=1.0), duration,
                    program or "quick", r.number(w, "sleep_s", "workload", lo=0, hi=30, default=0.5), priority,
                    batch)


def _read_toxic(r: _Reader, data: Any, where: str) -> Toxic:
    t = r.table(data, where, ("type", "stream", "toxicity", "attributes"), ("type",))
    kind = r.choice(t, "type", where, TOXIC_TYPES)
    attributes: dict[str, int] = {}
    if "attributes" in t and kind:
        names = ATTRIBUTES[kind]
        for name in r.table(t["attributes"], f"{where}.attributes", names):
            if name in names:
                attributes[name] = r.number(t["attributes"], name, f"{where}.attributes", lo=0, hi=2**31,
                                            integer=True, default=0)
        if kind == "slicer" and not (attributes.get("average_size", 0) >= 1
                                     and attributes.get("size_variation", 0) < attributes.get("average_size", 0)):
            r.problem(f"{where}.attributes", "slicer needs average_size >= 1 and size_variation < average_size")
    return Toxic(kind or "", r.choice(t, "stream", where, ("upstream", "downstream"), "downstream") or "downstream",
                 r.number(t, "toxicity", where, lo=0, hi=1, default=1.0), attributes)


def _targets(kind: str, cfg: StackConfig) -> tuple[str, ...]:
    if kind in ("toxic", "disable"):
        return tuple(LINKS)
    if kind == "kill-pool-child":
        return tuple(name for name, _, _ in cfg.celery_worker_specs())
    if kind == "memory-pressure":
        return ("main-redis", "celery-redis")
    return component_names(cfg)


def _span(f: Fault) -> str:
    return f"at {f.at_s:g} s" + (f" for {f.duration_s:g} s" if f.duration_s else "")


def _overlap(f: Fault, g: Fault) -> bool:
    """Do the two faults' windows (from at_s to its heal; an instant for a fault without a duration) meet?"""
    return max(f.at_s, g.at_s) <= min(f.at_s + (f.duration_s or 0), g.at_s + (g.duration_s or 0))


def _read_fault(r: _Reader, data: Any, where: str, cfg: StackConfig, workload_s: float) -> Fault:
    f = r.table(data, where, ("name", "at_s", "kind", "target", "duration_s", "grace_s", "toxic", "hot"),
                ("name", "at_s", "kind", "target"))
    kind = r.choice(f, "kind", where, KINDS) or ""
    target = ""
    if kind and "target" in f:
        targets = _targets(kind, cfg)
        if not isinstance(f["target"], str) or f["target"] not in targets:
            shown = f["target"] if isinstance(f["target"], str) else ""
            r.problem(f"{where}.target", f"{f['target']!r} is not a valid target for kind {kind!r}; expected one of "
                                         f"{', '.join(targets)}{_near(shown, targets)}")
        else:
            target = f["target"]
    duration = r.number(f, "duration_s", where, lo=0, hi=120, lo_open=True)
    if kind in DURATION_REQUIRED and "duration_s" not in f:
        r.problem(f"{where}.duration_s", f"missing: kind {kind!r} needs a duration_s (seconds until it is healed)")
    if kind in DURATION_FORBIDDEN and "duration_s" in f:
        r.problem(f"{where}.duration_s", f"kind {kind!r} is instantaneous; remove duration_s")
    if "grace_s" in f and kind not in GRACE_KINDS:
        r.problem(f"{where}.grace_s", f"only kinds {', '.join(GRACE_KINDS)} take a grace period; remove it")
    toxic = None
    if kind == "toxic" and "toxic" not in f:
        r.problem(f"{where}.toxic", 'missing: kind "toxic" needs a toxic table, e.g. toxic = { type = "latency", '
                                    "attributes = { latency = 200 } }")
    elif "toxic" in f and kind and kind != "toxic":
        r.problem(f"{where}.toxic", f"only kind = 'toxic' takes a toxic table; remove it or set kind = 'toxic' "
                                    f"(kind is {kind!r})")
    elif "toxic" in f:
        toxic = _read_toxic(r, f["toxic"], f"{where}.toxic")
    if kind in ("toxic", "disable") and not cfg.fault_proxy:
        r.problem(f"{where}.kind", f"{kind!r} needs the fault proxy; remove stack.fault_proxy = false")
    hot = f.get("hot", False)
    if "hot" in f and kind != "memory-pressure":
        r.problem(f"{where}.hot", f"only kind 'memory-pressure' takes hot; remove it (kind is {kind!r})")
    elif not isinstance(hot, bool):
        r.problem(f"{where}.hot", f"expected a boolean (true or false), got {_kind(hot)}")
        hot = False
    if kind == "memory-pressure" and target:
        maxmemory = cfg.main_redis_maxmemory if target == "main-redis" else cfg.celery_redis_maxmemory
        if not maxmemory:
            option = target.replace("-", "_") + "_maxmemory"
            r.problem(f"{where}.target", f"{target} has no maxmemory to fill up to; set stack.{option}, e.g. '16mb'")
    return Fault(r.text(f, "name", where), r.number(f, "at_s", where, lo=0, hi=workload_s, default=0.0), kind,
                 target, duration, r.number(f, "grace_s", where, lo=0, hi=60), toxic, bool(hot))


def _read_expect(r: _Reader, data: Any, paths: tuple[str, ...]) -> dict[str, Expectation]:
    if data is None:  # reported as missing at the top level
        return {}
    e = r.table(data, "expect", PATHS)
    out: dict[str, Expectation] = {}
    for path in PATHS:
        if path not in e:
            if path in paths:
                r.problem(f"expect.{path}", f"missing: the workload routes to {path}, so say what it must "
                                            f'guarantee (use "report" for a known weakness)')
            continue
        if path not in paths:
            r.problem(f"expect.{path}", f"the workload never routes to {path}; remove this table or add the route")
        t = r.table(e[path], f"expect.{path}", (*INVARIANTS, *PROMISES, "priority-overtake"))
        bounds: dict[str, Any] = dict(DEFAULT_BOUNDS)
        promises: dict[str, Any] = {}
        overtake = None
        for name, value in t.items():
            where = f"expect.{path}.{name}"
            natural = isinstance(value, int) and not isinstance(value, bool) and value >= 0
            if name in INVARIANTS:
                if value in ("allowance", "report") or natural:
                    bounds[name] = value
                else:
                    r.problem(where, f'expected an integer >= 0, "allowance" or "report", got {_kind(value)}')
            elif path != "celery":
                r.problem(where, "the platform's promises are the Celery path's; remove it from this table")
            elif name in PROMISES:
                if value == "report" or natural:
                    promises[name] = value
                else:
                    r.problem(where, f'expected an integer >= 0 or "report", got {_kind(value)}')
            elif isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= 1:
                overtake = float(value)
            else:
                r.problem(where, f"expected the share (0 < share <= 1) of the most urgent evaluations that start "
                                 f"before a less urgent one submitted earlier, got {_kind(value)}")
        out[path] = Expectation(**bounds, promises=promises, priority_overtake=overtake)
    return out


def _longest_countdown(cfg: StackConfig) -> float:
    return cfg.retry_backoff_s * 2 ** (cfg.max_retries - 1) if cfg.max_retries else 0.0


def parse_scenario(data: dict[str, Any], file: str) -> Scenario:
    """Validate already-parsed TOML data; raises ScenarioError listing every problem."""
    r = _Reader(file)
    top = r.table(data, "", ("title", "description", "stack", "steady_state", "workload", "faults", "quiesce",
                             "expect", "finding", "known_failure", "transitions", "gate"),
                  ("title", "description", "workload", "expect"))
    overrides, cfg = _read_stack(r, top.get("stack"))
    workload = _read_workload(r, top.get("workload"))
    s = r.table(top.get("steady_state", {}), "steady_state", ("paths", "timeout_s"))
    steady = SteadyState(r.choices(s, "paths", "steady_state", PATHS) if "paths" in s else workload.paths,
                         r.number(s, "timeout_s", "steady_state", lo=0, hi=120, lo_open=True, default=15.0))
    raw_faults = top.get("faults", [])
    if not isinstance(raw_faults, list):
        r.problem("faults", f"expected an array of tables ([[faults]]), got {_kind(raw_faults)}")
        raw_faults = []
    faults = tuple(_read_fault(r, f, f"faults[{i}]", cfg, workload.duration_s) for i, f in enumerate(raw_faults))
    names = [f.name for f in faults]
    for i, name in enumerate(names):
        if name and name in names[:i]:
            r.problem(f"faults[{i}].name", f"{name!r} is used twice; fault names must be unique (start/stop pair by name)")
    for i, f in enumerate(faults):
        for j, g in enumerate(faults[:i]):
            if f.target and f.target == g.target and not f.kind == g.kind == "toxic" and _overlap(f, g):
                r.problem(f"faults[{i}]", f"{f.name!r} ({f.kind} {_span(f)}) overlaps {g.name!r} (faults[{j}], {g.kind} "
                                          f"{_span(g)}) on {f.target}: a component or link takes one fault at a time "
                                          "(healing one would undo the other; only toxics stack); start it after "
                                          f"{g.at_s + (g.duration_s or 0):g} s, or give it another target")
    transitions = read_transitions(r, top.get("transitions"), duration_s=workload.duration_s,
                                   start=start_phase(cfg.fallback, cfg.accept_legacy))
    gate = r.choices(top, "gate", "", PATHS) if "gate" in top else ("celery",)
    q = r.table(top.get("quiesce", {}), "quiesce", ("timeout_s",))
    quiesce = r.number(q, "timeout_s", "quiesce", lo=0, hi=300, lo_open=True, default=30.0)
    countdown = _longest_countdown(cfg)
    window = cfg.visibility_timeout_s + cfg.restore_interval_s * cfg.restore_throttle + countdown
    if faults and "celery" in workload.paths and quiesce < window:
        r.problem("quiesce.timeout_s", f"{quiesce:g}s is shorter than Celery's redelivery window {window:g}s "
                                       f"(visibility_timeout_s {cfg.visibility_timeout_s:g} + restore sweep "
                                       f"{cfg.restore_interval_s:g} x {cfg.restore_throttle} + longest retry countdown "
                                       f"{countdown:g}): lower those in [stack] or raise quiesce.timeout_s")
    expect = _read_expect(r, top.get("expect"), workload.paths)
    title, description = r.text(top, "title", ""), r.text(top, "description", "")
    finding = r.text(top, "finding", "")
    known = None
    if "known_failure" in top:
        k = r.table(top["known_failure"], "known_failure", ("invariants", "reason"), ("invariants", "reason"))
        allowed = (*INVARIANTS, *PROMISES, "executions", "liveness")
        known = KnownFailure(r.choices(k, "invariants", "known_failure", allowed) if "invariants" in k else (),
                             r.text(k, "reason", "known_failure").strip())
    if r.problems:
        raise ScenarioError(r.problems)
    return Scenario(file, title, description, types.MappingProxyType(overrides), steady, workload, faults, quiesce,
                    types.MappingProxyType(expect), finding.strip(), known, transitions, tuple(gate))


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate one scenario file; raises ScenarioError naming the file and the path inside it."""
    file = str(path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ScenarioError([f"{file}: no such file"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError([f"{file}: invalid TOML: {exc}"]) from None
    return parse_scenario(data, file)


def load_all(directory: str | Path) -> list[Scenario]:
    """Every ``*.toml`` in ``directory``, validated; raises one ScenarioError with every broken file's problems."""
    files = sorted(Path(directory).glob("*.toml"))
    if not files:
        raise ScenarioError([f"{directory}: no scenario files (*.toml) found"])
    return load_files(files)


def load_files(files: list[Path], problems: list[str] | None = None) -> list[Scenario]:
    """Each file, validated; raises one ScenarioError with ``problems`` and every broken file's."""
    scenarios: list[Scenario] = []
    problems = list(problems or [])
    for file in files:
        try:
            scenarios.append(load_scenario(file))
        except ScenarioError as exc:
            problems += exc.problems
    if problems:
        raise ScenarioError(problems)
    return scenarios
