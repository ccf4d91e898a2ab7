"""Run one chaos scenario end to end and write its findings.

``run_scenario`` does, in order:

1. start a stack (the launcher: processes or containers) with ``scenario.stack_config(base)``:
   ``base_config(seed)`` has short test timeouts (executor timeout 5 s, first retry after 0.5 s);
   the scenario's ``[stack]`` applies last;
2. steady state: one probe per path must complete with the right output within its timeout;
3. the workload (``workload.py``) and the nemesis (``nemesis.py``) run concurrently from one start
   time, both from one seed; every fault is healed, also when anything fails or on Ctrl-C;
4. quiesce (``observe.py``): wait until every accepted evaluation is terminal, or until nothing can
   change any more (no message queued or unacked on either broker and no record changed for a while),
   or until the scenario's quiesce timeout;
5. a liveness probe per path after the heal (the stack must still take work);
6. inspect what is left (``observe.py``): Celery queue lists (every priority), the ``unacked`` hash,
   the dead-letter list ``celery:dlq``, the legacy list ``queue:evaluations``;
7. read the ledger and the records (``observe.py``), then (``findings.py``) run the checker
   (``checker.check``) with the oracle, compare with the scenario's bounds, compute recovery time
   (last heal → first completion after it, per path), and write ``history.parquet``,
   ``executions.parquet``, ``evaluations.parquet``, ``findings.parquet`` and ``findings.md`` into
   ``<run>/chaos/<scenario>/``.

The outcome is a ``ScenarioResult`` (``result.py``), which also gives the commands that replay it.

A scenario *fails* only when the Celery path breaks a bound of its ``[expect.celery]`` (or the run
itself could not be carried out: an unhealthy stack, a fault that could not be injected or healed).
The legacy path's weaknesses are findings: counted, shown, never a failure.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import redis as redis_lib

from harness.chaos.allowances import SUPERVISOR
from harness.chaos.effective import differences, read_effective
from harness.chaos.errors import ChaosError
from harness.chaos.findings import evaluate, write
from harness.chaos.migration import Operator
from harness.chaos.nemesis import Nemesis, start_again
from harness.chaos.observe import (
    EventRecorder,
    inspect_queues,
    quiesce,
    read_admin_history,
    read_ledgers,
    read_records,
)
from harness.chaos.result import ScenarioResult
from harness.chaos.scenario import Scenario
from harness.chaos.transitions import phase_of, start_phase
from harness.chaos.workload import WorkloadRunner, plan, threads_for
from harness.client import ClientError, EvalRequest, GatewayClient, recorded
from harness.history import History
from harness.run import RunFolder
from harness.stack.cleanup import Terminated
from harness.stack.config import StackConfig
from harness.stack.opening import check_kind, open_stack
from harness.stack.protocol import Stack
from harness.vocabulary import Record

Log = Callable[[str], None]
# Opens a stack for one scenario run: a context manager yielding it healthy (tests give fakes).
Opener = Callable[[StackConfig, RunFolder, Log], AbstractContextManager[Any]]


def base_config(seed: int) -> StackConfig:
    """The configuration every scenario starts from: the platform's defaults with short test timeouts."""
    return StackConfig.for_tests(seed=seed)


def opener_for(kind: str) -> Opener:
    """How chaos opens its stacks for ``--stack``: ``processes`` (default) or ``containers``; raises
    StackError for ``external`` (faults kill, pause and restart components) or an unknown kind."""
    chosen = check_kind(kind, controllable=True)
    return lambda config, run, say: open_stack(chosen, config, run, controllable=True, say=say)


# -- the run ----------------------------------------------------------------------------------------------


def run_scenario(scenario: Scenario, *, run_folder: RunFolder, seed: int, stack_kind: str = "processes",
                 opener: Opener | None = None, base: StackConfig | None = None, log: Log | None = None,
                 folder: str | None = None) -> ScenarioResult:
    """Run ``scenario`` on a fresh stack and return its result (also written to its folder).

    Leaves nothing running: the nemesis heals before the stack stops, and the stack stops on any
    error and on Ctrl-C (KeyboardInterrupt is re-raised after both).
    """
    say = log or (lambda _msg: None)
    opener = opener or opener_for(stack_kind)
    started = time.monotonic()
    base = base or base_config(seed)
    config = scenario.stack_config(base)
    # The scenario's folder is <run>/chaos/<scenario>; its run id also names the parent run, so two
    # runs of one scenario at once (containers are named after the run id) never collide.
    name = folder or scenario.name  # <run>/chaos/<name>: one folder per run of a scenario
    taken = 1
    while (run_folder.path / "chaos" / name).exists():  # never two runs' evidence in one folder (the ledger appends)
        taken += 1
        name = f"{folder or scenario.name}-{taken}"
    run = RunFolder(run_folder.path / "chaos" / name, f"{run_folder.run_id}-{name}")
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
    records: dict[str, Record] = {}
    ledger: list[dict[str, Any]] = []
    heal_times: list[float] = []
    say(f"chaos {scenario.name}: {scenario.title} (seed {seed}, {stack_kind})")
    try:
        t = time.monotonic()
        with opener(config, run, say) as stack, EventRecorder(stack.endpoints.main_redis) as recorder:
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
            _check_effective(result, stack.endpoints.celery_redis, config, say)
            say(f"  steady state holds on {', '.join(scenario.steady_state.paths)} "
                f"(stack healthy in {result.timings['stack_start_s']:.1f}s)")

            runner = WorkloadRunner(endpoints.gateway, history, submissions, threads=threads_for(scenario.workload),
                                    duration_s=scenario.workload.duration_s)
            longest = max((f.at_s + (f.duration_s or 0) + (f.grace_s or 10) for f in scenario.faults), default=0)
            operator = Operator(stack, history, scenario.transitions, admin_token=config.admin_token, log=say)
            with Nemesis(stack, history, scenario.faults, seed=seed, log=say) as nemesis:
                t0 = time.monotonic()
                result.timings["workload_start_history_s"] = t0 - h0
                nemesis.start(t0)
                operator.start(t0)
                try:
                    result.workload = runner.run(t0)
                    say(f"  workload: {result.workload.submitted} submitted in {result.workload.elapsed_s:.1f}s "
                        f"(ok {result.workload.ok}, fail {result.workload.fail}, info {result.workload.info})")
                    if not operator.wait(timeout_s=max((t.timeout_s for t in scenario.transitions), default=0) + 60):
                        result.errors.append("the operator did not finish its transitions in time")
                finally:
                    operator.stop()
                if not nemesis.wait(timeout_s=longest + 90):
                    result.errors.append("the nemesis did not finish its schedule in time; healing everything now")
            result.errors += nemesis.errors + [f"transition {e}" for e in operator.errors]
            if operator.done < len(scenario.transitions):
                result.errors.append(f"the operator carried out {operator.done} of {len(scenario.transitions)} "
                                     "transitions")
            heal_times = list(nemesis.heal_times)
            result.timings["faults_done_s"] = time.monotonic() - t0
            def supervise_now() -> bool:
                """Start again what died on its own. A supervisor watches the whole time, not once: a worker
                can take seconds to die after its fatal error (the Celery shutdown after a broker restart),
                and one restarted only if it was dead at the first look reads as 'stuck' work."""
                restarted = supervise(stack, history, say, skip=operator.stopped)
                result.notes.extend(restarted)
                if restarted:
                    heal_times.append(history.ops[-1].time)
                return bool(restarted)

            supervise_now()
            t = time.monotonic()
            reason = quiesce(main, broker, history, token, timeout_s=scenario.quiesce_timeout_s,
                             settle_s=config.executor_timeout_s + 3, queues=config.celery_queues,
                             tick=supervise_now)
            result.timings["quiesce_s"] = time.monotonic() - t
            result.notes.append(f"quiesce: {reason} after {result.timings['quiesce_s']:.1f}s "
                                f"(timeout {scenario.quiesce_timeout_s:g}s)")
            say(f"  quiesce: {reason} after {result.timings['quiesce_s']:.1f}s")

            result.queues = inspect_queues(main, broker, config.celery_queues)  # the state at the deadline
            records = read_records(main)
            result.admin_history = read_admin_history(main)
            for path in live_paths(scenario, config):
                problem = _probe(endpoints.gateway, history, path, f"after-{token}", scenario.steady_state.timeout_s,
                                 probes)
                if problem:
                    result.liveness[path] = problem
            main.close()
            broker.close()
            result.events, result.event_gaps = list(recorder.events), list(recorder.gaps)

    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (cleanup.Terminated)
        result.errors.append(f"interrupted ({'SIGTERM' if isinstance(exc, Terminated) else 'Ctrl-C'}); every fault "
                             "was healed and the stack stopped")
        write(result, history, ledger, probes)
        raise
    except Exception as exc:
        result.errors.append(f"{type(exc).__name__}: {exc}")
    ledger = read_ledgers(run.ledger)
    result.timings["elapsed_s"] = time.monotonic() - started
    evaluate(result, history, ledger, records, probes, submissions, base, wall0, heal_times)
    write(result, history, ledger, probes)
    say(f"  {result.outcome} in {result.timings['elapsed_s']:.1f}s -> {run.path}")
    return result


# -- steps -----------------------------------------------------------------------------------------------


def live_paths(scenario: Scenario, config: StackConfig) -> tuple[str, ...]:
    """The paths that must still take work after the run: not legacy once it was decommissioned, not
    Celery once a rollback stopped its workers."""
    moves = phase_of(scenario.transitions, start_phase(config.fallback, config.accept_legacy))
    final = moves[-1][0] if moves else start_phase(config.fallback, config.accept_legacy)
    celery_stopped = any(t.kind == "rollback" and t.stop_workers for t in scenario.transitions)
    return tuple(p for p in scenario.workload.paths
                 if not (p == "legacy" and final == 3) and not (p == "celery" and celery_stopped))


def _check_effective(result: ScenarioResult, broker_url: str, config: StackConfig, say: Log) -> None:
    """Read the configuration the Celery workers run with; a setting that differs from the scenario's
    ends the run as an error naming it (what it would measure is not about the configuration it names)."""
    if not config.celery_worker_specs():
        return
    try:
        result.effective = read_effective(broker_url)
    except Exception as exc:  # the remote control is an observed signal; its absence is a note
        result.notes.append(f"effective configuration unknown: {type(exc).__name__}: {exc}")
        return
    if not result.effective:
        result.notes.append("effective configuration unknown: no Celery worker answered `inspect conf`")
        return
    found = differences(config, result.effective)
    if found:
        raise ChaosError("the Celery workers do not run the scenario's configuration: " + "; ".join(found))
    say(f"  effective configuration of {len(result.effective)} Celery worker(s) matches the scenario's")


def supervise(stack: Stack, history: History, say: Log, skip: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """After every fault is healed, start again any component that died on its own, as a supervisor
    (systemd, Kubernetes) would; each restart is recorded as a nemesis op of kind ``supervisor-restart``
    and returned as a note with the component's last log line, because dying is itself a finding."""
    notes = []
    for row in stack.describe():
        if row["component"] in skip:  # stopped on purpose (a decommission): not a crash
            continue
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
    deadline = time.monotonic() + timeout_s
    with GatewayClient(gateway, request_timeout_s=min(10.0, timeout_s)) as client:
        _, answer = recorded(history, f"probe-{path}", "probe",
                             lambda: client.submit(EvalRequest(f"print({text!r})\n", "python", path)),  # type: ignore[arg-type]
                             path=path, value={"route": path, "probe": tag})
        if answer.type != "ok" or answer.eval_id is None:
            return f"{path} probe: the gateway did not accept it: {answer.error}"
        probes.add(answer.eval_id)
        record = None
        while time.monotonic() < deadline:
            try:
                record = client.await_record(answer.eval_id, timeout_s=max(0.1, deadline - time.monotonic()),
                                             poll_s=5.0)
                break
            except ClientError:
                time.sleep(0.2)
    result = (record["results"].get(path) if record else None) or {}
    if result.get("status") != "completed" or result.get("output") != text + "\n":
        return (f"{path} probe {answer.eval_id} did not complete within {timeout_s:g}s "
                f"(status {result.get('status')!r}, output {result.get('output')!r})")
    return None
