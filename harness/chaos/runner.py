"""Run one chaos scenario end to end and write its findings.

``run_scenario`` does, in order:

1. start a stack (the launcher: processes or containers) with ``scenario.stack_config(base)``:
   ``base_config(seed)`` has short test timeouts (executor timeout 5 s, first retry after 0.5 s);
   the scenario's ``[stack]`` applies last;
2. steady state: one probe per path must complete with the right output within its timeout;
3. the workload (``workload.py``) and the nemesis (``nemesis.py``) run concurrently from one start
   time, both from one seed; every fault is healed, also when anything fails or on Ctrl-C;
4. quiesce: wait until every accepted evaluation is terminal, or until nothing can change any
   more (no message queued or unacked on either broker and no record changed for a while), or
   until the scenario's quiesce timeout;
5. a liveness probe per path after the heal (the stack must still take work);
6. inspect what is left: Celery queue lists (every priority), the ``unacked`` hash, the dead-letter
   list ``celery:dlq``, the legacy list ``queue:evaluations``;
7. read the ledger and the records, run the checker (``checker.check``) with the oracle, compare
   with the scenario's bounds, compute recovery time (last heal → first completion after it, per
   path), and write ``history.parquet``, ``executions.parquet``, ``evaluations.parquet``,
   ``findings.parquet`` and ``findings.md`` into ``<run>/chaos/<scenario>/``.

A scenario *fails* only when the Celery path breaks a bound of its ``[expect.celery]`` (or the run
itself could not be carried out: an unhealthy stack, a fault that could not be injected or healed).
The legacy path's weaknesses are findings: counted, shown, never a failure.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import redis as redis_lib
import requests

from harness.chaos.checker import (
    INVARIANTS,
    MEANING,
    SUPERVISOR,
    TERMINAL,
    Allowances,
    CheckResult,
    Violation,
    allowances_for,
    check,
)
from harness.chaos.history import PATHS, ChaosError, History, pairs
from harness.chaos.nemesis import Nemesis, start_again
from harness.chaos.scenario import Scenario
from harness.chaos.workload import Submission, WorkloadRunner, WorkloadStats, plan, threads_for
from harness.errors import StackError
from harness.run import PROJECT_ROOT, RunFolder
from harness.stack.config import StackConfig
from system_under_test.executor.ledger import read_ledger
from system_under_test.store import LEGACY_QUEUE, parse_record

Launcher = Callable[[StackConfig, RunFolder], Any]
Log = Callable[[str], None]
DLQ_KEY = "celery:dlq"
PRIORITY_STEPS = range(10)
FINDING_COLUMNS = ("scenario", "path", "config", "stack", "seed", "submitted", "acked", "failed", "info", "ok",
                   "recovered", "lost", "duplicated", "unexpected", "stuck", "wrong", "error", "unknown",
                   "max_executions", "dead_lettered", "still_queued", "recovery_s", "verdict", "violations",
                   "notes", "elapsed_s")


def base_config(seed: int) -> StackConfig:
    """The configuration every scenario starts from: the platform's defaults with short test timeouts."""
    return StackConfig(seed=seed, executor_timeout_s=5.0, retry_backoff_s=0.5)


def launcher_for(kind: str) -> Launcher:
    """The stack launcher for ``--stack``: ``processes`` (default) or ``containers``."""
    if kind == "processes":
        from harness.stack.processes import ProcessesStack
        return lambda config, run: ProcessesStack(config, run)
    if kind == "containers":
        from harness.stack.containers import ContainersStack
        return lambda config, run: ContainersStack(config, run)
    raise ChaosError(f"chaos needs a stack whose processes it controls: --stack processes or containers, "
                     f"not {kind!r} (faults kill, pause and restart components)")


def _relative(path: str) -> str:
    with contextlib.suppress(ValueError):
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    with contextlib.suppress(ValueError):
        return str(Path(path).resolve().relative_to(PROJECT_ROOT))
    return path


def replay_commands(scenario: Scenario, seed: int, stack_kind: str = "processes") -> list[str]:
    """The commands that run this scenario again with the same seed (CLI and pytest)."""
    extra = "" if stack_kind == "processes" else f" --stack {stack_kind}"
    return [f"harness chaos {_relative(scenario.file)} --seed {seed}{extra}",
            f"pytest 'tests/chaos/test_chaos_scenarios.py::test_scenario[{scenario.name}]' -m chaos "
            f"--seed {seed}{extra}"]


# -- result -----------------------------------------------------------------------------------------------


@dataclass
class ScenarioResult:
    scenario: Scenario
    seed: int
    stack_kind: str
    folder: Path
    config: StackConfig
    check: CheckResult | None = None
    allowances: dict[str, Allowances] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # the run could not be carried out as planned
    notes: list[str] = field(default_factory=list)  # scenario-level notes
    path_notes: dict[str, list[str]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    recovery_s: dict[str, float | None] = field(default_factory=dict)
    workload: WorkloadStats | None = None
    queues: dict[str, Any] = field(default_factory=dict)
    submits: dict[str, dict[str, int]] = field(default_factory=dict)  # path -> submitted/acked/failed/info
    history_started_at: float = 0.0  # epoch seconds of the history's time 0
    findings: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(FINDING_COLUMNS)))

    @property
    def gate_violations(self) -> list[Violation]:
        """The violations that fail the scenario: the Celery path's."""
        return [v for v in self.violations if v.path == "celery"]

    @property
    def passed(self) -> bool:
        return not self.errors and not self.gate_violations

    @property
    def known(self) -> bool:
        """It failed only in ways the scenario's ``[known_failure]`` declares (a known defect)."""
        known = self.scenario.known_failure
        return (not self.passed and not self.errors and known is not None
                and all(v.invariant in known.invariants for v in self.gate_violations))

    @property
    def replay(self) -> list[str]:
        return replay_commands(self.scenario, self.seed, self.stack_kind)

    def explain(self) -> str:
        """A failure, on one screen: what broke, the evidence, and how to replay it."""
        lines = [f"chaos scenario {self.scenario.name}: {self.scenario.title}"]
        if self.known and self.scenario.known_failure is not None:
            lines.append(f"  KNOWN FAILURE ({', '.join(self.scenario.known_failure.invariants)}): "
                         f"{self.scenario.known_failure.reason}")
        lines += [f"  ERROR: {e}" for e in self.errors]
        lines += [f"  VIOLATION {v}" for v in self.gate_violations]
        others = [v for v in self.violations if v.path != "celery"]
        lines += [f"  finding (legacy, not a failure) {v}" for v in others]
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  findings: {self.folder / 'findings.md'}", "  replay:"]
        lines += [f"    {cmd}" for cmd in self.replay]
        return "\n".join(lines)


# -- the run ----------------------------------------------------------------------------------------------


def run_scenario(scenario: Scenario, *, launcher: Launcher, run_folder: RunFolder, seed: int,
                 stack_kind: str = "processes", base: StackConfig | None = None, log: Log | None = None) -> ScenarioResult:
    """Run ``scenario`` on a fresh stack and return its result (also written to its folder).

    Leaves nothing running: the nemesis heals before the stack stops, and the stack stops on any
    error and on Ctrl-C (KeyboardInterrupt is re-raised after both).
    """
    say = log or (lambda _msg: None)
    started = time.monotonic()
    base = base or base_config(seed)
    config = scenario.stack_config(base)
    # The scenario's folder is <run>/chaos/<scenario>; its run id also names the parent run, so two
    # runs of one scenario at once (containers are named after the run id) never collide.
    run = RunFolder(run_folder.path / "chaos" / scenario.name, f"{run_folder.run_id}-{scenario.name}")
    (run.path / "logs").mkdir(parents=True, exist_ok=True)
    run.ledger.mkdir(exist_ok=True)
    result = ScenarioResult(scenario, seed, stack_kind, run.path, config)
    token = hashlib.sha256(f"{scenario.name}/{seed}".encode()).hexdigest()[:8]
    submissions = plan(scenario.workload, seed=seed, token=token, output_cap=config.executor_output_bytes,
                       executor_timeout_s=config.executor_timeout_s)
    history = History()
    h0, wall0 = time.monotonic(), time.time()  # the history's clock starts (about) now
    result.history_started_at = wall0
    probes: set[str] = set()
    records: dict[str, dict[str, Any]] = {}
    ledger: list[dict[str, Any]] = []
    heal_times: list[float] = []
    say(f"chaos {scenario.name}: {scenario.title} (seed {seed}, {stack_kind})")
    try:
        t = time.monotonic()
        stack = start_stack(launcher, config, run, say)
        try:
            result.timings["stack_start_s"] = time.monotonic() - t
            endpoints = stack.endpoints
            main = redis_lib.Redis.from_url(endpoints.main_redis, socket_timeout=5, socket_connect_timeout=3)
            broker = redis_lib.Redis.from_url(endpoints.celery_redis, socket_timeout=5, socket_connect_timeout=3)
            t = time.monotonic()
            for path in scenario.steady_state.paths:
                problem = _probe(endpoints.gateway, history, path, f"before-{token}", scenario.steady_state.timeout_s,
                                 probes)
                if problem:
                    raise ChaosError(f"steady state does not hold before the faults: {problem}")
            result.timings["steady_state_s"] = time.monotonic() - t
            say(f"  steady state holds on {', '.join(scenario.steady_state.paths)} "
                f"(stack healthy in {result.timings['stack_start_s']:.1f}s)")

            runner = WorkloadRunner(endpoints.gateway, history, submissions, threads=threads_for(scenario.workload),
                                    duration_s=scenario.workload.duration_s)
            longest = max((f.at_s + (f.duration_s or 0) + (f.grace_s or 10) for f in scenario.faults), default=0)
            with Nemesis(stack, history, scenario.faults, seed=seed, config=config, log=say) as nemesis:
                t0 = time.monotonic()
                result.timings["workload_start_history_s"] = t0 - h0
                nemesis.start(t0)
                result.workload = runner.run(t0)
                say(f"  workload: {result.workload.submitted} submitted in {result.workload.elapsed_s:.1f}s "
                    f"(ok {result.workload.ok}, fail {result.workload.fail}, info {result.workload.info})")
                if not nemesis.wait(timeout_s=longest + 90):
                    result.errors.append("the nemesis did not finish its schedule in time; healing everything now")
            result.errors += nemesis.errors
            heal_times = list(nemesis.heal_times)
            result.timings["faults_done_s"] = time.monotonic() - t0
            restarted = supervise(stack, history, say)
            result.notes += restarted
            if restarted:
                heal_times.append(history.ops[-1].time)

            t = time.monotonic()
            reason = quiesce(main, broker, history, token, timeout_s=scenario.quiesce_timeout_s,
                             settle_s=config.executor_timeout_s + 3, queues=config.celery_queues)
            result.timings["quiesce_s"] = time.monotonic() - t
            result.notes.append(f"quiesce: {reason} after {result.timings['quiesce_s']:.1f}s "
                                f"(timeout {scenario.quiesce_timeout_s:g}s)")
            say(f"  quiesce: {reason} after {result.timings['quiesce_s']:.1f}s")

            result.queues = inspect_queues(main, broker, config.celery_queues)  # the state at the deadline
            records = read_records(main)
            for path in scenario.workload.paths:
                problem = _probe(endpoints.gateway, history, path, f"after-{token}", scenario.steady_state.timeout_s,
                                 probes)
                if problem:
                    result.notes.append(f"liveness after the heal: {problem}")
                    result.path_notes.setdefault(path, []).append(f"LIVENESS: {problem}")
                    if path == "celery":
                        result.errors.append(f"the Celery path does not take work after the heal: {problem}")
            main.close()
            broker.close()
        finally:
            stack.__exit__(None, None, None)

    except KeyboardInterrupt:
        result.errors.append("interrupted (Ctrl-C); every fault was healed and the stack stopped")
        _write(result, history, ledger, records, probes, submissions)
        raise
    except Exception as exc:
        result.errors.append(f"{type(exc).__name__}: {exc}")
    ledger = read_ledgers(run.ledger)
    result.timings["elapsed_s"] = time.monotonic() - started
    _evaluate(result, history, ledger, records, probes, submissions, token, base, wall0, heal_times)
    _write(result, history, ledger, records, probes, submissions)
    verdict = "PASS" if result.passed else "FAIL (known failure)" if result.known else "FAIL"
    say(f"  {verdict} in {result.timings['elapsed_s']:.1f}s -> {run.path}")
    return result


# -- steps -----------------------------------------------------------------------------------------------


def start_stack(launcher: Launcher, config: StackConfig, run: RunFolder, say: Log, attempts: int = 3) -> Any:
    """Start a stack and return it entered; a start lost to a port race (another stack on this
    machine took a port between its choice and its bind) is retried with fresh ports."""
    for attempt in range(1, attempts + 1):
        try:
            return launcher(config, run).__enter__()
        except StackError as exc:
            if attempt == attempts or "already in use" not in str(exc):
                raise
            say(f"  the stack lost a port race ({str(exc).splitlines()[0][:120]}); starting it again")
    raise AssertionError("unreachable")


def supervise(stack: Any, history: History, say: Log) -> list[str]:
    """After every fault is healed, start again any component that died on its own, as a supervisor
    (systemd, Kubernetes) would; each restart is recorded as a nemesis op of kind ``supervisor-restart``
    and returned as a note with the component's last log line, because dying is itself a finding."""
    notes = []
    for row in stack.describe():
        handle = stack.component(row["component"])
        with contextlib.suppress(Exception):
            if handle.alive():
                continue
        last = next((ln for ln in reversed(handle.logs(40)) if "CRITICAL" in ln or "Error" in ln),
                    (handle.logs(1) or [""])[0])
        history.nemesis_start(f"supervisor restarts {handle.name}", SUPERVISOR, handle.name, last_log=last[:300])
        problem = None
        try:
            start_again(handle)
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
        history.nemesis_stop(f"supervisor restarts {handle.name}", SUPERVISOR, handle.name,
                             **({"heal_error": problem} if problem else {}))
        note = (f"{handle.name} died during the run on its own (last log: {last.strip()[:200]!r}); the runner "
                f"started it again after the heal, as a supervisor would" + (f", but: {problem}" if problem else ""))
        say(f"  {note}")
        notes.append(note)
    return notes


def _probe(gateway: str, history: History, path: str, tag: str, timeout_s: float, probes: set[str]) -> str | None:
    """Submit one probe on ``path`` and wait for it; None when it completed right, else the problem."""
    text = f"probe-{tag}-{path}"
    code = f"print({text!r})\n"
    invoke = history.invoke(f"probe-{path}", "probe", path=path, value={"route": path, "probe": tag})
    deadline = time.monotonic() + timeout_s
    try:
        resp = requests.post(f"{gateway}/api/eval", json={"code": code, "language": "python", "route": path},
                             timeout=min(10.0, timeout_s))
    except requests.RequestException as exc:
        history.complete(invoke, "info", error=str(exc)[:300])
        return f"{path} probe: the gateway did not answer: {exc}"
    if resp.status_code != 201:
        history.complete(invoke, "fail", error=f"{resp.status_code} {resp.text[:300]}")
        return f"{path} probe: the gateway answered {resp.status_code}: {resp.text[:200]}"
    eval_id = resp.json()["eval_id"]
    probes.add(eval_id)
    history.complete(invoke, "ok", eval_id=eval_id, value=resp.json())
    record: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            got = requests.get(f"{gateway}/api/eval/{eval_id}",
                               params={"wait": max(0.1, min(5.0, deadline - time.monotonic()))}, timeout=10)
            record = got.json() if got.status_code == 200 else record
        except requests.RequestException:
            time.sleep(0.2)
            continue
        if record.get("done"):
            break
    result = (record.get("results") or {}).get(path) or {}
    if result.get("status") != "completed" or result.get("output") != text + "\n":
        return (f"{path} probe {eval_id} did not complete within {timeout_s:g}s "
                f"(status {result.get('status')!r}, output {result.get('output')!r})")
    return None


def _scan_records(main: redis_lib.Redis) -> dict[str, dict[str, Any]]:
    keys = list(main.scan_iter(match="eval:*", count=1000))
    pipe = main.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(key)
    out = {}
    for raw in pipe.execute():
        if raw:
            rec = parse_record(raw)
            if rec.get("eval_id"):
                out[str(rec["eval_id"])] = rec
    return out


def read_records(main: redis_lib.Redis) -> dict[str, dict[str, Any]]:
    """Every evaluation record on the main Redis (``eval:*``), parsed as the gateway serves it."""
    return _scan_records(main)


def _queue_keys(queues: Sequence[str]) -> list[str]:
    return [q if pri == 0 else f"{q}:{pri}" for q in queues for pri in PRIORITY_STEPS]


def _backlog(main: redis_lib.Redis, broker: redis_lib.Redis, queues: Sequence[str]) -> int | None:
    """Messages still queued or unacked on either broker; None if a broker cannot be read."""
    try:
        pipe = broker.pipeline(transaction=False)
        for key in _queue_keys(queues):
            pipe.llen(key)
        pipe.hlen("unacked")
        celery = sum(int(x) for x in pipe.execute())
        return celery + int(main.llen(LEGACY_QUEUE))
    except redis_lib.RedisError:
        return None


def quiesce(main: redis_lib.Redis, broker: redis_lib.Redis, history: History, token: str, *, timeout_s: float,
            settle_s: float, queues: Sequence[str], poll_s: float = 0.25) -> str:
    """Wait until every accepted evaluation is terminal on every route it has; returns why it stopped.

    Stops early ("settled") when nothing can change any more: no message is queued or unacked on
    either broker and no record of the workload changed for ``settle_s`` (longer than any execution
    can run), so waiting longer would only add time.
    """
    deadline = time.monotonic() + timeout_s
    last_change = time.monotonic()
    last: tuple[Any, ...] | None = None
    mark = f"chaos-{token}-"
    quiet = 0  # consecutive polls with everything terminal and nothing queued or unacked
    pending: list[str] = []
    backlog: int | None = None
    while True:
        acked = {op.eval_id for op in history.ops if op.f == "submit" and op.type == "ok" and op.eval_id}
        try:
            records = _scan_records(main)
        except redis_lib.RedisError:
            records = None
        if records is not None:
            mine = {i: r for i, r in records.items() if mark in str(r.get("code") or "")}
            pending = sorted(i for i in acked if i not in mine)
            pending += sorted(i for i, r in mine.items()
                              if any((r.get("results") or {}).get(p, {}).get("status") not in TERMINAL
                                     for p in r.get("routes", [])))
            state = tuple(sorted((i, p, r.get("status"), r.get("attempts")) for i, rec in mine.items()
                                 for p, r in (rec.get("results") or {}).items()))
            if state != last:
                last, last_change = state, time.monotonic()
            backlog = _backlog(main, broker, queues)
            # Terminal is not enough: a restored or re-published copy may still be queued or unacked,
            # and running it turns a terminal result back into 'running'. Wait until the brokers are
            # empty too, on two polls in a row (a message between its ack and its 'running' write).
            quiet = quiet + 1 if not pending and backlog == 0 else 0
            if quiet >= 2:
                return "every accepted evaluation terminal, nothing queued or unacked"
            if pending and backlog == 0 and time.monotonic() - last_change >= settle_s:
                return (f"settled with {len(pending)} evaluation(s) not terminal (nothing queued or unacked, "
                        f"no record changed for {settle_s:g}s)")
        if time.monotonic() >= deadline:
            if records is None:
                return "timed out (the main Redis could not be read)"
            if not pending:
                return (f"timed out with every accepted evaluation terminal but {backlog if backlog is not None else 'an unknown number of'} "
                        "message(s) still queued or unacked")
            return f"timed out with {len(pending)} evaluation(s) not terminal"
        time.sleep(poll_s)


def _task_id(message: Any) -> str | None:
    """The Celery task id (= eval id) of a kombu message stored in Redis."""
    try:
        data = json.loads(message)
    except (TypeError, ValueError):
        return None
    if isinstance(data, list) and data:  # an unacked entry: [message, exchange, routing_key]
        data = data[0] if isinstance(data[0], dict) else json.loads(data[0])
    headers = data.get("headers") or {} if isinstance(data, dict) else {}
    task_id = headers.get("id") or (data.get("properties") or {}).get("correlation_id")
    return str(task_id) if task_id else None


def inspect_queues(main: redis_lib.Redis, broker: redis_lib.Redis, queues: Sequence[str]) -> dict[str, Any]:
    """What is left after quiesce on both brokers (nothing is removed)."""
    out: dict[str, Any] = {"celery_queued": {}, "celery_unacked": [], "dead_letters": [], "legacy_queued": [],
                           "problems": []}
    try:
        for key in _queue_keys(queues):
            ids = [_task_id(m) for m in broker.lrange(key, 0, -1)]
            if ids:
                out["celery_queued"][key] = [i for i in ids if i]
        out["celery_unacked"] = [i for i in (_task_id(m) for m in broker.hvals("unacked")) if i]
        for entry in broker.lrange(DLQ_KEY, 0, -1):
            with contextlib.suppress(ValueError):
                out["dead_letters"].append(json.loads(entry))
    except redis_lib.RedisError as exc:
        out["problems"].append(f"celery-redis: {exc}")
    try:
        for job in main.lrange(LEGACY_QUEUE, 0, -1):
            with contextlib.suppress(ValueError, KeyError):
                out["legacy_queued"].append(json.loads(job)["eval_id"])
    except redis_lib.RedisError as exc:
        out["problems"].append(f"main redis: {exc}")
    return out


def read_ledgers(folder: Path) -> list[dict[str, Any]]:
    """Every row of every executor's ledger in ``folder`` (``*.jsonl``)."""
    rows: list[dict[str, Any]] = []
    for file in sorted(Path(folder).glob("*.jsonl")):
        rows += [dict(r) for r in read_ledger(str(file))]
    return rows


# -- evaluation ------------------------------------------------------------------------------------------


MARKER = re.compile(r"chaos-[0-9a-f]{8}-\d{6}\.")


def _oracles(records: Mapping[str, Mapping[str, Any]], submissions: Iterable[Submission]) -> dict[str, Any]:
    by_marker = {s.marker: s for s in submissions}
    out = {}
    for eval_id, rec in records.items():
        found = MARKER.search(str(rec.get("code") or ""))
        if found and found.group(0) in by_marker:
            out[eval_id] = by_marker[found.group(0)].expected
    return out


def config_summary(config: StackConfig, path: str) -> str:
    """The configuration that matters for a path, in a few words."""
    if path == "legacy":
        return f"{config.legacy_workers} legacy workers, no ack, no retry"
    ack = "acks_late" + ("+reject_on_worker_lost" if config.reject_on_worker_lost else "") if config.acks_late \
        else "early ack" + ("+reject_on_worker_lost" if config.reject_on_worker_lost else "")
    redis_mem = f"{config.celery_redis_policy} {config.celery_redis_maxmemory}" if config.celery_redis_maxmemory \
        else "no maxmemory"
    return (f"{ack}, vt {config.visibility_timeout_s:g}s, prefetch {config.prefetch_multiplier}x"
            f"{config.celery_concurrency}, {config.celery_workers} worker(s), retries {config.max_retries}x"
            f"{config.retry_backoff_s:g}s, {redis_mem}")


def _recovery(records: Mapping[str, Mapping[str, Any]], path: str, heal_wall: float) -> float | None:
    finished = [float(r["finished_at"]) for rec in records.values()
                if (r := (rec.get("results") or {}).get(path)) and r.get("status") == "completed"
                and r.get("finished_at") and float(r["finished_at"]) > heal_wall]
    return round(min(finished) - heal_wall, 3) if finished else None


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _priority_notes(records: Mapping[str, Mapping[str, Any]], path: str) -> list[str]:
    """Queue wait (start of the last attempt minus submission) per priority, and overtaking."""
    waits: dict[int, list[tuple[float, float]]] = {}
    for rec in records.values():
        r = (rec.get("results") or {}).get(path) or {}
        if r.get("started_at") and r.get("queued_at"):
            waits.setdefault(int(rec.get("priority", 5)), []).append((float(r["queued_at"]), float(r["started_at"])))
    if len(waits) < 2:
        return []
    notes = []
    for pri in sorted(waits):
        w = [s - q for q, s in waits[pri]]
        notes.append(f"priority {pri}: {len(w)} evaluations, queue wait p50 {_percentile(w, 0.5):.2f}s, "
                     f"p95 {_percentile(w, 0.95):.2f}s")
    low, high = min(waits), max(waits)
    overtook = sum(1 for hq, hs in waits[high] if any(lq < hq and ls > hs for lq, ls in waits[low]))
    notes.append(f"{overtook} of {len(waits[high])} priority-{high} evaluations started before a priority-{low} "
                 f"evaluation submitted earlier (overtaking the backlog)")
    return notes


def _late_notes(records: Mapping[str, Mapping[str, Any]], vt: float) -> list[str]:
    """Evidence of redelivery: Celery evaluations whose last attempt began a visibility timeout or
    more after they were queued (restored by the sweep, or retried after a countdown)."""
    late = [float(r["started_at"]) - float(r["queued_at"]) for rec in records.values()
            if (r := (rec.get("results") or {}).get("celery")) and r.get("started_at") and r.get("queued_at")
            and float(r["started_at"]) - float(r["queued_at"]) >= vt]
    if not late:
        return []
    return [f"{len(late)} evaluation(s) waited the visibility timeout ({vt:g}s) or longer before their last "
            f"attempt started (queued behind the fault, restored, or retried; longest {max(late):.1f}s)"]


def _fault_notes(history: History) -> list[str]:
    notes = []
    for op in history.ops:
        if not op.is_nemesis or op.f != "stop" or not op.value:
            continue
        v = op.value
        injected = v.get("injected") or {}
        if v.get("kind") == "memory-pressure":
            other = v.get("other_evicted") or {}
            notes.append(f"{v['fault']}: {injected.get('policy')} maxmemory {injected.get('maxmemory')} B; "
                         f"{v.get('junk_written')} junk keys written, {v.get('writes_refused')} junk writes refused "
                         f"(OOM), {v.get('evicted_total')} keys evicted, of which not junk: "
                         + (", ".join(f"{k} x{n}" for k, n in sorted(other.items())) or "none")
                         + (f" ({v['evicted_unattributed']} evictions without a notification)"
                            if v.get("evicted_unattributed") else ""))
        elif v.get("kind") == "kill-pool-child":
            task = injected.get("task")
            notes.append(f"{v['fault']}: SIGKILL pool child pid {injected.get('pid')} (one of "
                         f"{injected.get('children')}), " + (f"which was running evaluation {task}" if task
                                                             else "no task known to be running on it"))
        if v.get("heal_error"):
            notes.append(f"{v['fault']}: HEAL FAILED: {v['heal_error']}")
        if injected.get("inject_error"):
            notes.append(f"{v['fault']}: INJECT FAILED: {injected['inject_error']}")
    return notes


def _evaluate(result: ScenarioResult, history: History, ledger: list[dict[str, Any]],
              records: dict[str, dict[str, Any]], probes: set[str], submissions: list[Submission], token: str,
              base: StackConfig, wall0: float, heal_times: list[float]) -> None:
    scenario = result.scenario
    mine = {i: r for i, r in records.items() if i not in probes}
    rows = [r for r in ledger if r.get("eval_id") not in probes]
    queues = result.queues
    queued: dict[str, list[str]] = {
        "celery": [i for ids in (queues.get("celery_queued") or {}).values() for i in ids if i not in probes]
        + [i for i in queues.get("celery_unacked") or [] if i not in probes],
        "legacy": [i for i in queues.get("legacy_queued") or [] if i not in probes],
    }
    try:
        result.check = check(history.ops, rows, mine, expected=_oracles(mine, submissions), queued=queued)
    except ChaosError as exc:
        result.errors.append(f"checker: {exc}")
        return
    for path in PATHS:
        mine_ops = [(i, d) for i, d in pairs(history.ops) if i.f == "submit" and i.path in (path, None)]
        result.submits[path] = {"submitted": len(mine_ops),
                                "acked": sum(1 for _, d in mine_ops if d is not None and d.type == "ok"),
                                "failed": sum(1 for _, d in mine_ops if d is not None and d.type == "fail"),
                                "info": sum(1 for _, d in mine_ops if d is None or d.type == "info")}
    result.allowances = scenario.allowances(base)
    result.violations = result.check.violations(result.allowances)
    heal_wall = wall0 + max(heal_times) if heal_times else None
    for path in PATHS:
        result.recovery_s[path] = _recovery(mine, path, heal_wall) if heal_wall is not None else None
    if scenario.finding:
        result.notes.insert(0, " ".join(scenario.finding.split()))
    result.notes += _fault_notes(history)
    if queues.get("problems"):
        result.notes += [f"inspecting the queues: {p}" for p in queues["problems"]]
    for path in scenario.expect:
        result.path_notes.setdefault(path, []).extend(_path_notes(result, path))
        if not isinstance(scenario.workload.priority, int):
            result.path_notes[path] += _priority_notes(mine, path)
        if path == "celery" and scenario.faults:
            result.path_notes[path] += _late_notes(mine, result.config.visibility_timeout_s)
    result.findings = _findings(result)


def _path_notes(result: ScenarioResult, path: str) -> list[str]:
    assert result.check is not None
    scenario = result.scenario
    counts = result.check.counts[path].as_dict()
    expectation = scenario.expect[path]
    derived = allowances_for(result.config, [f.event for f in scenario.faults])  # before "report"/integers
    notes = []
    for name in ("lost", "duplicated", "stuck", "error"):
        bound = getattr(expectation, name)
        allowed = getattr(derived[path], name)
        count = counts[name]
        if bound == "report" and count:
            notes.append(f"reported, not gated: {name} {count} ({MEANING[name]})")
        if bound in ("allowance", "report") and count == 0 and (allowed is None or allowed > 0):
            shown = "unbounded" if allowed is None else f"up to {allowed}"
            notes.append(f"did not reproduce: the configuration allows {name} {shown}, measured 0")
    if path == "celery":
        dl = result.queues.get("dead_letters") or []
        if dl:
            attempts = sorted({int(e.get("attempts", 0)) for e in dl})
            notes.append(f"dead-lettered {len(dl)} (celery:dlq), after {'/'.join(map(str, attempts))} attempts")
    left = _still_queued(result, path)
    if left:
        notes.append(f"{left} message(s) still queued or unacked at the deadline")
    if result.check.unmatched and path in scenario.workload.paths:
        notes.append(f"{len(result.check.unmatched)} indeterminate submission(s) never seen (not lost: never "
                     "acknowledged)")
    return notes


def _still_queued(result: ScenarioResult, path: str) -> int:
    q = result.queues
    if path == "celery":
        return sum(len(v) for v in (q.get("celery_queued") or {}).values()) + len(q.get("celery_unacked") or [])
    return len(q.get("legacy_queued") or [])


def _verdict(result: ScenarioResult, path: str, violations: list[Violation]) -> str:
    if result.errors:
        return "ERROR"
    if violations:
        if path != "celery":
            return "finding"
        return "FAIL (known)" if result.known else "FAIL"
    assert result.check is not None
    counts = result.check.counts[path]
    expectation = result.scenario.expect.get(path)
    if expectation is not None and any(getattr(expectation, n) == "report" and getattr(counts, n)
                                       for n in INVARIANTS):
        return "finding"
    return "pass"


def _findings(result: ScenarioResult) -> pd.DataFrame:
    rows = []
    for path in result.scenario.expect:
        mine = [v for v in result.violations if v.path == path]
        row: dict[str, Any] = {
            "scenario": result.scenario.name, "path": path, "config": config_summary(result.config, path),
            "stack": result.stack_kind, "seed": result.seed,
            "elapsed_s": round(result.timings.get("elapsed_s", 0.0), 1),
        }
        check_ = result.check
        if check_ is not None:
            table = check_.table[check_.table["path"] == path]
            row.update(check_.counts[path].as_dict())
            row["max_executions"] = int(table["executions"].max()) if len(table) else 0
        row.update(result.submits.get(path, {}))
        row["dead_lettered"] = len(result.queues.get("dead_letters") or []) if path == "celery" else 0
        row["still_queued"] = _still_queued(result, path)
        row["recovery_s"] = result.recovery_s.get(path)
        row["verdict"] = _verdict(result, path, mine)
        row["violations"] = "; ".join(f"{v.invariant} {v.count} > {v.bound}" for v in mine)
        row["notes"] = "; ".join(result.path_notes.get(path, []))
        rows.append(row)
    frame = pd.DataFrame(rows)
    for col in FINDING_COLUMNS:
        if col not in frame.columns:
            frame[col] = None
    return frame[list(FINDING_COLUMNS)]


# -- writing -----------------------------------------------------------------------------------------------


def _write(result: ScenarioResult, history: History, ledger: list[dict[str, Any]],
           records: dict[str, dict[str, Any]], probes: set[str], submissions: list[Submission]) -> None:
    folder = result.folder
    folder.mkdir(parents=True, exist_ok=True)
    history.to_frame().to_parquet(folder / "history.parquet", index=False)
    execs = pd.DataFrame(ledger)
    if not execs.empty:
        execs["probe"] = execs["eval_id"].isin(probes)
    execs.to_parquet(folder / "executions.parquet", index=False)
    if result.check is not None:
        result.check.table.to_parquet(folder / "evaluations.parquet", index=False)
    result.findings.to_parquet(folder / "findings.parquet", index=False)
    (folder / "findings.md").write_text(findings_markdown([result], title=f"Chaos: {result.scenario.name}"))
    summary = {
        "scenario": result.scenario.name, "file": result.scenario.file, "seed": result.seed,
        "history_started_at": result.history_started_at,
        "stack": result.stack_kind, "passed": result.passed, "known_failure": result.known, "errors": result.errors,
        "violations": [str(v) for v in result.violations], "notes": result.notes, "timings": result.timings,
        "recovery_s": result.recovery_s, "queues": result.queues, "replay": result.replay,
        "workload": None if result.workload is None else {
            k: v for k, v in vars(result.workload).items() if k != "eval_ids"},
    }
    (folder / "result.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")


# -- the findings table --------------------------------------------------------------------------------------

SHORT = (("scenario", "scenario"), ("path", "path"), ("config", "configuration"), ("acked", "acked"),
         ("failed", "refused"), ("ok", "ok"), ("recovered", "recov"), ("lost", "lost"), ("duplicated", "dup"),
         ("stuck", "stuck"), ("wrong", "wrong"), ("error", "error"), ("unexpected", "unexp"),
         ("unknown", "unkn"), ("max_executions", "max exec"), ("recovery_s", "recovery s"), ("verdict", "verdict"))


def combine(results: Iterable[ScenarioResult]) -> pd.DataFrame:
    frames = [r.findings for r in results if not r.findings.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(FINDING_COLUMNS))


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value).replace("|", "\\|")


def findings_table(frame: pd.DataFrame) -> str:
    """The findings as a Markdown table (the short columns)."""
    lines = ["| " + " | ".join(h for _, h in SHORT) + " |", "|" + "---|" * len(SHORT)]
    for row in frame.to_dict("records"):
        lines.append("| " + " | ".join(_cell(row.get(k)) for k, _ in SHORT) + " |")
    return "\n".join(lines)


def findings_markdown(results: Sequence[ScenarioResult], *, title: str = "Chaos findings") -> str:
    frame = combine(results)
    passed = sum(r.passed for r in results)
    total_s = sum(r.timings.get("elapsed_s", 0.0) for r in results)
    lines = [f"# {title}", "",
             f"{len(results)} scenario(s), {passed} pass the Celery gate, {len(results) - passed} do not; "
             f"{total_s:.0f} s of scenario time.", "",
             "`acked`: submissions the gateway accepted; `refused`: answered with a failure (4xx, or 503 "
             "\"nothing was queued\"). Classes per evaluation and path (checker.py): ok, recov(ered: an "
             "indeterminate submission that ran), lost, dup(licated), stuck, wrong, error (explicit failure, "
             "e.g. dead-lettered), unexp(ected: ran without an accepted submission), unkn(own: indeterminate, "
             "never ran). `max exec` is the most executions of one evaluation; recovery is "
             "the time from the last heal to the first completion after it. Verdict: `pass`, `FAIL` (the "
             "Celery path broke a bound of its [expect.celery]), `FAIL (known)` (only in ways the scenario's "
             "[known_failure] declares: a known defect, xfail under pytest), `finding` (a legacy weakness or a "
             "bound marked \"report\"), `ERROR` (the run could not be carried out).", "",
             findings_table(frame), ""]
    for r in results:
        lines += [f"## {r.scenario.name}: {r.scenario.title}", ""]
        for e in r.errors:
            lines.append(f"- **ERROR** {e}")
        if r.known and r.scenario.known_failure is not None:
            lines.append(f"- **known failure** ({', '.join(r.scenario.known_failure.invariants)}): "
                         f"{' '.join(r.scenario.known_failure.reason.split())}")
        for v in r.violations:
            gate = "**violation**" if v.path == "celery" else "finding (legacy, not gated)"
            lines.append(f"- {gate}: {v.path} {v.invariant} {v.count} > {v.bound}: {MEANING[v.invariant]}; "
                         f"e.g. {', '.join(v.eval_ids[:3])}")
        for n in r.notes:
            lines.append(f"- {n}")
        for path, notes in r.path_notes.items():
            for n in notes:
                lines.append(f"- {path}: {n}")
        if r.check is not None:
            bad = r.check.table[~r.check.table["cls"].isin(["ok"])]
            if len(bad):
                lines += ["", "<details><summary>evaluations not ok</summary>", "",
                          "| eval | path | class | executions | status | detail |", "|---|---|---|---|---|---|"]
                for row in bad.head(40).to_dict("records"):
                    lines.append(f"| {row['eval_id'][:12]} | {row['path']} | {row['cls']} | {row['executions']} | "
                                 f"{_cell(row['status'])} | {_cell(row['detail'])} |")
                lines += ["", "</details>"]
        if not r.passed:
            lines += ["", "replay:", ""] + [f"    {c}" for c in r.replay]
        lines.append("")
    return "\n".join(lines) + "\n"


def write_combined(results: Sequence[ScenarioResult], folder: Path) -> Path:
    """``findings.parquet`` and ``findings.md`` for several scenarios in ``folder``; returns the .md."""
    folder.mkdir(parents=True, exist_ok=True)
    combine(results).to_parquet(folder / "findings.parquet", index=False)
    path = folder / "findings.md"
    path.write_text(findings_markdown(list(results)))
    return path


