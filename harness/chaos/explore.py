"""Generative chaos: search the space of fault schedules, shrink a failure, confirm it, save it as a scenario.

Every hand-written scenario is one point of a large space: which fault, on which link or component,
when, for how long, overlapping or not, under which workload and configuration. ``schedules`` is a
Hypothesis strategy over that space that draws *scenario files* (TOML-shaped dicts that
``parse_scenario`` accepts whole): the configuration knobs that matter (acks, visibility timeout,
prefetch, retries, eviction policy, worker topology), a short workload and 1..K faults of every kind
the nemesis supports. ``explore`` runs each drawn schedule once on a fresh stack; the property is the
scenario files' own: the Celery path's outcome is not ``failed`` (``error``, a run that could not be
carried out, is recorded and never reported as found). A failure is shrunk by Hypothesis's shrinker,
which the strategy's order steers toward fewer faults, shorter faults, later starts, simpler
workloads and default knobs; results are cached by the schedule, so a shrink step costs only new
schedules. Runs are not deterministic, so the shrunk schedule is re-run with ``CONFIRM_RUNS`` new
seeds and written to ``scenarios/found/<hash>.toml`` only when it failed in at least
``CONFIRM_NEEDED`` of them; the file says how often. ``explore`` replays every file already there
first. The search is bounded by an example count and a time budget and stops by itself; finding
nothing within them is no proof.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, find, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

from harness.chaos.errors import ChaosError
from harness.chaos.runner import opener_for, run_scenario
from harness.chaos.scenario import KINDS, Scenario, ScenarioError, _targets, load_files, parse_scenario
from harness.run import RunFolder
from harness.stack.config import StackConfig

Schedule = dict[str, Any]
CONFIRM_RUNS, CONFIRM_NEEDED = 3, 2
ERRORS_IN_A_ROW = 3  # the search stops: the stack, not the schedule, is the problem
# Kinds, simplest first: the shrinker moves a fault toward the front of this order.
KIND_ORDER: tuple[str, ...] = ("kill", "pause", "terminate", "restart", "component-down", "kill-pool-child",
                               "disable", "toxic", "memory-pressure")
assert sorted(KIND_ORDER) == sorted(KINDS), "every kind the nemesis supports is drawn"
# Components and links the Celery path uses, most relevant first; a fault on a link no client uses ends
# the run as an error ("the fault missed"), so legacy targets are drawn only when legacy traffic runs.
CELERY_TARGETS = ("celery-worker-1", "celery-worker-2", "executor-3", "celery-redis", "gateway", "main-redis",
                  "celery-worker-celery-redis", "celery-executor-3", "gateway-celery-redis", "gateway-main-redis")
LEGACY_TARGETS = ("legacy-worker-1", "legacy-worker-2", "executor-1", "executor-2", "legacy-main-redis",
                  "legacy-executor-1", "legacy-executor-2")
# (knob, choices with the default first): the shrinker moves each back to its default.
KNOBS: tuple[tuple[str, tuple[Any, ...]], ...] = (
    ("acks_late", (False, True)),
    ("reject_on_worker_lost", (False, True)),
    ("visibility_timeout_s", (4.0, 2.0, 8.0)),
    ("prefetch_multiplier", (4, 1, 8)),
    ("max_retries", (3, 1, 5)),
    ("celery_redis_policy", ("allkeys-lru", "noeviction")),
    ("celery_workers", (1, 2)),
    ("celery_concurrency", (2, 1, 4)),
)
FIXED = {"restore_interval_s": 1.0, "restore_throttle": 1, "retry_backoff_s": 0.5}  # the hand-written files'
TOXICS: tuple[tuple[str, dict[str, tuple[int, ...]]], ...] = (
    ("latency", {"latency": (200, 1000, 3000)}),
    ("timeout", {"timeout": (0, 1000)}),
    ("reset_peer", {"timeout": (0, 500)}),
    ("bandwidth", {"rate": (1, 16)}),
    ("slow_close", {"delay": (500, 3000)}),
    ("slicer", {"average_size": (64,), "size_variation": (16,), "delay": (100, 1000)}),
    ("limit_data", {"bytes": (2000, 200)}),
)


class ExploreError(ChaosError):
    """The search cannot start (bad options) or the strategy drew a schedule ``parse_scenario`` refuses."""


# -- the strategy ------------------------------------------------------------------------------------------


def _targets_for(kind: str, cfg: StackConfig, routes: Sequence[str]) -> list[str]:
    allowed = _targets(kind, cfg)
    wanted = CELERY_TARGETS + (LEGACY_TARGETS if "legacy" in routes else ())
    return [t for t in wanted if t in allowed]


@st.composite
def _faults(draw: st.DrawFn, cfg: StackConfig, routes: Sequence[str], workload_s: int) -> Schedule:
    kind = draw(st.sampled_from(KIND_ORDER))
    fault: Schedule = {"kind": kind, "target": draw(st.sampled_from(_targets_for(kind, cfg, routes)))}
    # Drawn as the delay before the workload's end, so shrinking moves the start later.
    fault["at_s"] = float(workload_s - draw(st.integers(1, 2 * workload_s)) / 2)
    if kind in ("pause", "toxic", "disable", "memory-pressure", "component-down"):
        fault["duration_s"] = float(draw(st.integers(1, 10)))
    elif kind in ("kill", "terminate") and (down := draw(st.integers(0, 6))):
        fault["duration_s"] = float(down)
    if kind == "toxic":
        name, attributes = draw(st.sampled_from(TOXICS))
        fault["toxic"] = {"type": name, "stream": draw(st.sampled_from(("downstream", "upstream"))),
                          "attributes": {a: draw(st.sampled_from(v)) for a, v in attributes.items()}}
    if kind == "memory-pressure":
        fault["hot"] = draw(st.booleans())
    return fault


@st.composite
def schedules(draw: st.DrawFn, *, max_faults: int = 3, stack: Mapping[str, Any] | None = None) -> Schedule:
    """Scenario dicts (``parse_scenario`` accepts each): knobs, a 6-10 s workload, 1..``max_faults`` faults.

    ``stack`` holds fixed ``[stack]`` overrides of every schedule (e.g. a candidate defect)."""
    knobs = {name: draw(st.sampled_from(choices)) for name, choices in KNOBS}
    if not knobs["acks_late"]:
        knobs["reject_on_worker_lost"] = False  # only meaningful with late acks: one schedule, not two
    overrides: Schedule = {**knobs, **FIXED, **dict(stack or {})}
    cfg = StackConfig.for_tests().replace(**overrides)
    routes = list(draw(st.sampled_from((("celery",), ("legacy", "celery")))))
    duration = draw(st.integers(6, 10))
    program = draw(st.sampled_from(("quick", "sleep", "mixed")))
    workload: Schedule = {"routes": routes, "rate": float(draw(st.sampled_from((4, 2, 6, 8)))),
                          "duration_s": float(duration), "program": program}
    if program != "quick":
        workload["sleep_s"] = draw(st.sampled_from((0.5, 0.2, 1.0, 2.0)))
    faults = draw(st.lists(_faults(cfg, routes, duration), min_size=1, max_size=max_faults))
    for i, f in enumerate(faults):
        f["name"] = f"{f['kind']} {f['target']} #{i + 1}"
        if f["kind"] == "memory-pressure":  # something to fill up to, small enough to fill in a second
            overrides[f"{f['target'].replace('-', '_')}_maxmemory"] = "8mb"
    window = (overrides["visibility_timeout_s"] + FIXED["restore_interval_s"] * FIXED["restore_throttle"]
              + FIXED["retry_backoff_s"] * 2 ** (overrides["max_retries"] - 1))
    return {"title": "", "description": "", "stack": overrides, "workload": workload,
            "faults": [{k: f[k] for k in ("name", "at_s", "kind", "target", *sorted(set(f) - FAULT_HEAD))}
                       for f in faults],
            "quiesce": {"timeout_s": float(max(30, math.ceil(window) + 20))},
            "expect": {path: {} for path in ("celery", "legacy") if path in routes}}


FAULT_HEAD = {"name", "at_s", "kind", "target"}


def key_of(schedule: Mapping[str, Any]) -> str:
    """The canonical form of a schedule (its words left out): the cache key and the file's hash."""
    return json.dumps({k: v for k, v in schedule.items() if k not in ("title", "description", "finding")},
                      sort_keys=True)


def short_hash(schedule: Mapping[str, Any]) -> str:
    return hashlib.sha256(key_of(schedule).encode()).hexdigest()[:10]


def compact(schedule: Mapping[str, Any]) -> str:
    """One line: the faults (kind target @start +duration) and the knobs that differ from their default."""
    faults = [f"{f['kind']} {f['target']}" + (f" {f['toxic']['type']}" if "toxic" in f else "")
              + f" @{f['at_s']:g}" + (f" +{f['duration_s']:g}s" if "duration_s" in f else "")
              for f in schedule["faults"]]
    knobs = [f"{k}={schedule['stack'][k]}" for k, choices in KNOBS if schedule["stack"].get(k) != choices[0]]
    w = schedule["workload"]
    return (f"{'; '.join(faults)} | {'+'.join(w['routes'])} {w['program']} {w['rate']:g}/s {w['duration_s']:g}s"
            + (f" | {' '.join(knobs)}" if knobs else ""))


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
    """One run of one schedule: the Celery path's outcome and what broke."""

    outcome: str  # harness.vocabulary.Outcome on the Celery path
    seconds: float
    violations: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    folder: str = ""


# Runs one scenario on a fresh stack with a seed, in a named folder (tests give fakes).
RunFn = Callable[[Scenario, int, str], Trial]


@dataclass(frozen=True)
class Confirmation:
    seeds: tuple[int, ...]
    outcomes: tuple[str, ...]

    @property
    def reproduced(self) -> int:
        return sum(o == "failed" for o in self.outcomes)  # an error never counts as a reproduction

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
        return self.outcome == "failed"


@dataclass
class Exploration:
    """What a search did: examples, shrink steps, the found schedule, its confirmation, the file."""

    seed: int
    replays: list[Replay] = field(default_factory=list)
    examples: list[tuple[str, Trial]] = field(default_factory=list)  # (compact schedule, trial)
    shrink_steps: list[tuple[str, Trial]] = field(default_factory=list)
    invalid: int = 0  # draws past the example count or the time budget, not run
    out_of_time: bool = False
    stopped: str = ""  # why the search stopped before its bounds, if it did
    first_failure_example: int | None = None
    first_failure_s: float | None = None
    found: Schedule | None = None
    confirmation: Confirmation | None = None
    written: Path | None = None
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        """A confirmed failure was found, or a saved one still fails."""
        return (self.confirmation is not None and self.confirmation.confirmed) or any(
            r.still_fails for r in self.replays)


def _line(n: str, sched: str, trial: Trial) -> str:
    why = f" ({trial.violations[0].splitlines()[0]})" if trial.violations else (
        f" ({trial.errors[0][:100]})" if trial.errors else "")
    return f"  {n} {sched} -> {trial.outcome}{why} [{trial.seconds:.0f} s]"


def replay_found(folder: Path, run: RunFn, seed: int, say: Callable[[str], None]) -> list[Replay]:
    """Run every saved schedule in ``folder`` once (validated first: a broken file raises ScenarioError)."""
    files = sorted(folder.glob("*.toml")) if folder.is_dir() else []
    out = []
    for scenario in load_files(files):
        trial = run(scenario, seed, f"replay-{scenario.name}")
        out.append(Replay(scenario.file, trial.outcome))
        verdict = {"failed": "still fails", "held": "holds now", "finding": "holds now"}.get(
            trial.outcome, "could not be carried out")
        say(f"  replay {scenario.file}: {trial.outcome} ({verdict}) [{trial.seconds:.0f} s]")
    return out


def explore(*, run: RunFn, examples: int, max_faults: int, seed: int, max_time_s: float, found_dir: Path,
            stack: Mapping[str, Any] | None = None, clock: Callable[[], float] = time.monotonic,
            say: Callable[[str], None] = print) -> Exploration:
    """Replay ``found_dir``, search up to ``examples`` schedules within ``max_time_s``, shrink the first
    failure, confirm it with new seeds and write it to ``found_dir`` when confirmed.

    Shrinking stops early enough to leave time for the confirmation runs (estimated from the slowest run
    so far); the confirmation itself may overrun the budget by less than that estimate. Raises
    ExploreError when the strategy draws a schedule ``parse_scenario`` refuses (a bug in the strategy)."""
    started = clock()
    report = Exploration(seed)
    cache: dict[str, Trial] = {}
    if found_dir.is_dir() and any(found_dir.glob("*.toml")):
        say(f"replaying the saved failures in {found_dir}:")
        report.replays = replay_found(found_dir, run, seed, say)
    slowest = 0.0

    def time_left() -> float:
        reserve = CONFIRM_RUNS * max(slowest, 1.0) if report.first_failure_example is not None else 0.0
        return max_time_s - (clock() - started) - reserve

    def fails(schedule: Schedule) -> bool:
        nonlocal slowest
        key = key_of(schedule)
        if key in cache:
            return cache[key].outcome == "failed"
        shrinking = report.first_failure_example is not None
        if (not shrinking and len(report.examples) >= examples) or time_left() <= 0 or report.stopped:
            report.out_of_time |= time_left() <= 0
            report.invalid += 1
            return False
        named = {**schedule, "title": f"explored {short_hash(schedule)}", "description": "drawn by explore"}
        try:
            scenario = parse_scenario(named, str(found_dir / f"{short_hash(schedule)}.toml"))
        except ScenarioError as exc:
            raise ExploreError(f"the strategy drew a schedule the scenario format refuses (a bug in "
                               f"harness/chaos/explore.py):\n{exc}\n{key}") from None
        steps = report.shrink_steps if shrinking else report.examples
        trial = run(scenario, seed, f"explore-{'shrink' if shrinking else 'example'}-{len(steps) + 1:03d}-"
                                    f"{short_hash(schedule)}")
        cache[key] = trial
        slowest = max(slowest, trial.seconds)
        steps.append((compact(schedule), trial))
        say(_line(f"{'shrink' if shrinking else 'example'} {len(steps)}", compact(schedule), trial))
        last = [t for _, t in report.examples[-ERRORS_IN_A_ROW:]]
        if not shrinking and len(last) == ERRORS_IN_A_ROW and all(t.outcome == "error" for t in last):
            report.stopped = (f"{ERRORS_IN_A_ROW} runs in a row could not be carried out (error); the last: "
                              f"{(trial.errors or ('?',))[0].splitlines()[0][:200]}")
            say(f"  stopping: {report.stopped}")
        if trial.outcome == "failed" and not shrinking:
            report.first_failure_example, report.first_failure_s = len(steps), clock() - started
            say("  shrinking (fewer faults, shorter faults, later starts, simpler workloads, default knobs):")
        return trial.outcome == "failed"

    say(f"exploring: up to {examples} example(s) of 1-{max_faults} fault(s), seed {seed}, "
        f"{max_time_s:g} s budget")
    try:
        found = find(schedules(max_faults=max_faults, stack=stack), fails,
                     settings=settings(max_examples=examples, phases=[Phase.generate, Phase.shrink], database=None,
                                       deadline=None, report_multiple_bugs=False,
                                       suppress_health_check=list(HealthCheck)),
                     random=random.Random(seed))
    except NoSuchExample:
        found = None
    if found is not None:
        report.found = found
        say(f"smallest failing schedule: {compact(found)}" + (" (shrinking stopped by the time budget)"
                                                                 if report.out_of_time else ""))
        report.confirmation = confirm(found, run=run, seed=seed, found_dir=found_dir, say=say)
        if report.confirmation.confirmed:
            report.written = write_found(found, found_dir, seed=seed, report=report)
            say(f"written: {report.written}")
        else:
            say(f"not written: {report.confirmation} is below {CONFIRM_NEEDED} of {CONFIRM_RUNS} (a flake, or a "
                f"race too rare to replay)")
    report.seconds = clock() - started
    return report


def confirm(schedule: Schedule, *, run: RunFn, seed: int, found_dir: Path,
            say: Callable[[str], None] = print) -> Confirmation:
    """Re-run ``schedule`` with ``CONFIRM_RUNS`` new seeds (seed + 1, ...): how often it fails again."""
    named = {**schedule, "title": f"explored {short_hash(schedule)}", "description": "drawn by explore"}
    scenario = parse_scenario(named, str(found_dir / f"{short_hash(schedule)}.toml"))
    seeds = tuple(seed + i for i in range(1, CONFIRM_RUNS + 1))
    outcomes = []
    for s in seeds:
        trial = run(scenario, s, f"explore-confirm-{short_hash(schedule)}-seed{s}")
        outcomes.append(trial.outcome)
        say(_line(f"confirm seed {s}", "", trial))
    result = Confirmation(seeds, tuple(outcomes))
    say(f"confirmation: {result}")
    return result


def write_found(schedule: Schedule, found_dir: Path, *, seed: int, report: Exploration) -> Path:
    """``found_dir/<hash>.toml``, validated by reading it back; its finding says the seed and the rate."""
    c = report.confirmation
    failing = next((t for s, t in [*report.shrink_steps, *report.examples] if s == compact(schedule)
                    and t.outcome == "failed"), None)
    data = {**schedule, "title": f"Found by explore: {compact(schedule).split(' | ')[0]}",
            "description": f"A fault schedule drawn by `harness chaos explore --seed {seed}` that breaks the Celery "
                           f"path's invariants, shrunk to: {compact(schedule)}. The expectations are the defaults "
                           f"(the same checker and allowances as every scenario file).",
            "finding": f"Found in example {report.first_failure_example} with seed {seed}, shrunk in "
                       f"{len(report.shrink_steps)} step(s); {c}. "
                       + (f"Violations: {'; '.join(v.splitlines()[0] for v in failing.violations)}." if failing
                          else "")}
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
        return Trial(result.outcome_on("celery"), time.monotonic() - t,
                     tuple(str(v) for v in result.gate_violations), tuple(result.errors), str(result.folder))
    return run
