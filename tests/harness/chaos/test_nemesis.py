"""The nemesis: schedules, start/stop ops, healing that always runs, and each kind of fault on real things.

Process, proxy and Redis faults act on real processes, a real fault proxy and a real redis-server;
the schedule and the healing guarantees use recording fakes so they are checked exactly.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import redis as redis_lib
import requests

from harness.chaos.allowances import faults_in
from harness.chaos.fault_error import FaultError
from harness.chaos.memory_pressure import JUNK_PREFIX, MemoryPressure
from harness.chaos.nemesis import Nemesis, start_again
from harness.chaos.pool_children import children_of, kill_pool_child
from harness.chaos.scenario import Fault, Toxic
from harness.errors import StackError
from harness.faultproxy import FaultProxyServer
from harness.history import History


class Handle:
    """A component handle that records what was done to it."""

    def __init__(self, name: str, *, fail_heal: int = 0, fail_inject: bool = False) -> None:
        self.name = name
        self.calls: list[str] = []
        self.fail_heal = fail_heal
        self.fail_inject = fail_inject
        self.lines = [f"{name}@host ready."]
        self.pid = 4242

    def kill(self) -> None:
        if self.fail_inject:
            raise RuntimeError("cannot kill")
        self.calls.append("kill")

    def terminate(self, grace_s: float = 10.0) -> None:
        self.calls.append(f"terminate {grace_s:g}")

    def pause(self) -> None:
        self.calls.append("pause")

    def resume(self) -> None:
        self.calls.append("resume")

    def restart(self, grace_s: float = 3.0) -> float:
        if self.fail_heal:
            self.fail_heal -= 1
            raise RuntimeError("restart failed")
        self.calls.append("restart")
        self.lines.append(f"{self.name}@host ready.")
        return 0.0

    def logs(self, last: int | None = None) -> list[str]:
        return self.lines if last is None else self.lines[-last:]

    def alive(self) -> bool:
        return True


class Stack:
    def __init__(self, *handles: Handle, proxy_api: str | None = None, celery_redis: str = "") -> None:
        self.handles = {h.name: h for h in handles}
        self.endpoints = SimpleNamespace(proxy_api=proxy_api, celery_redis=celery_redis, main_redis="")

    def component(self, name: str) -> Handle:
        return self.handles[name]


def fault(name: str, kind: str, target: str, at_s: float = 0.0, duration_s: float | None = None,
          **extra: Any) -> Fault:
    return Fault(name, at_s, kind, target, duration_s, **extra)


def stops(history: History) -> list[dict[str, Any]]:
    return [op.value or {} for op in history.ops if op.is_nemesis and op.f == "stop"]


# -- the schedule and its guarantees --------------------------------------------------------------------


def test_faults_run_on_schedule_and_are_recorded_as_start_and_stop() -> None:
    worker = Handle("celery-worker-1")
    history = History()
    faults = [fault("pause it", "pause", "celery-worker-1", at_s=0.2, duration_s=0.3),
              fault("kill it", "kill", "celery-worker-1", at_s=0.6, duration_s=0.1)]
    with Nemesis(Stack(worker), history, faults, seed=1) as nemesis:
        t0 = time.monotonic()
        nemesis.start(t0)
        assert nemesis.wait(5)
    assert worker.calls == ["pause", "resume", "kill", "restart"]
    marks = [(op.f, op.value["fault"], round(op.time, 1)) for op in history.ops if op.value]
    assert [m[:2] for m in marks] == [("start", "pause it"), ("stop", "pause it"), ("start", "kill it"),
                                      ("stop", "kill it")]
    events = faults_in(history.ops)
    assert [(e.kind, e.target) for e in events] == [("pause", "celery-worker-1"), ("kill", "celery-worker-1")]
    assert events[0].duration_s == pytest.approx(0.3, abs=0.15)
    assert not nemesis.errors


def test_stopping_early_heals_what_was_injected_and_skips_what_was_not_due() -> None:
    """What the runner does on a failure or Ctrl-C: stop() cuts the wait short and heals at once."""
    worker = Handle("celery-worker-1")
    history = History()
    faults = [fault("long pause", "pause", "celery-worker-1", at_s=0.0, duration_s=60),
              fault("later kill", "kill", "celery-worker-1", at_s=30.0)]
    nemesis = Nemesis(Stack(worker), history, faults, seed=1)
    nemesis.start(time.monotonic())
    time.sleep(0.3)
    started = time.monotonic()
    nemesis.stop()
    assert time.monotonic() - started < 3
    assert worker.calls == ["pause", "resume"]
    assert [v["fault"] for v in stops(history)] == ["long pause"]


def test_an_exception_in_the_with_block_still_heals() -> None:
    worker = Handle("legacy-worker-1")
    with pytest.raises(KeyboardInterrupt), Nemesis(Stack(worker), History(), [
            fault("pause", "pause", "legacy-worker-1", duration_s=60)], seed=0) as nemesis:
        nemesis.start(time.monotonic())
        time.sleep(0.2)
        raise KeyboardInterrupt
    assert worker.calls == ["pause", "resume"]


def test_a_failed_inject_is_reported_and_still_recorded_as_stopped() -> None:
    worker = Handle("celery-worker-1", fail_inject=True)
    history = History()
    with Nemesis(Stack(worker), history, [fault("kill", "kill", "celery-worker-1")], seed=0) as nemesis:
        nemesis.start(time.monotonic())
        nemesis.wait(5)
    assert nemesis.errors and "inject failed" in nemesis.errors[0]
    assert worker.calls == ["restart"]  # healing a kill is a start, and it runs anyway
    assert stops(history)[0]["injected"]["inject_error"].startswith("RuntimeError")


def test_a_heal_is_retried_and_a_lasting_failure_is_reported() -> None:
    flaky = Handle("executor-3", fail_heal=2)
    history = History()
    with Nemesis(Stack(flaky), history, [fault("down", "component-down", "executor-3", duration_s=0.1)],
                 seed=0) as nemesis:
        nemesis.heal_backoff_s = 0.01
        nemesis.start(time.monotonic())
        nemesis.wait(10)
    assert flaky.calls[-1] == "restart" and not nemesis.errors
    broken = Handle("executor-3", fail_heal=99)
    history = History()
    with Nemesis(Stack(broken), history, [fault("down", "component-down", "executor-3", duration_s=0.1)],
                 seed=0) as nemesis:
        nemesis.heal_backoff_s = 0.01
        nemesis.start(time.monotonic())
        nemesis.wait(20)
    assert nemesis.errors and "heal failed after 5 attempts" in nemesis.errors[0]
    assert "restart failed" in stops(history)[0]["heal_error"]


def test_terminate_uses_the_grace_period_and_restart_is_a_stop_then_a_start() -> None:
    worker = Handle("celery-worker-2")
    with Nemesis(Stack(worker), History(), [fault("warm", "terminate", "celery-worker-2", grace_s=7),
                                            fault("bounce", "restart", "celery-worker-2", at_s=0.3)],
                 seed=0) as nemesis:
        nemesis.start(time.monotonic())
        nemesis.wait(5)
    assert worker.calls == ["terminate 7", "restart", "terminate 10", "restart"]


def test_start_again_relies_on_restart_and_reports_a_component_that_does_not_come_back() -> None:
    worker = Handle("celery-worker-1")
    start_again(worker)
    assert worker.calls == ["restart"]

    def restart_unhealthy(grace_s: float = 3.0) -> float:
        raise StackError("celery-worker-1 did not become healthy within 30.0s")

    worker.restart = restart_unhealthy  # type: ignore[method-assign]
    with pytest.raises(FaultError, match="celery-worker-1 did not come back after a restart"):
        start_again(worker)


# -- real faults ---------------------------------------------------------------------------------------------


def test_a_toxic_and_a_disable_are_added_and_removed_on_a_real_fault_proxy() -> None:
    with FaultProxyServer("127.0.0.1", 0) as server:
        api = server.url
        requests.post(f"{api}/proxies", json={"name": "celery-worker-celery-redis", "upstream": "127.0.0.1:1",
                                              "listen": "127.0.0.1:0"}, timeout=5).raise_for_status()
        toxic = Toxic("latency", "upstream", 1.0, {"latency": 100, "jitter": 10})
        faults = [fault("slow", "toxic", "celery-worker-celery-redis", duration_s=0.5, toxic=toxic),
                  fault("cut", "disable", "celery-worker-celery-redis", duration_s=0.5)]
        seen: dict[str, Any] = {}

        def look() -> None:
            proxy = requests.get(f"{api}/proxies/celery-worker-celery-redis", timeout=5).json()
            seen.update(enabled=proxy["enabled"], toxics=[t["type"] for t in proxy["toxics"]])

        history = History()
        with Nemesis(Stack(proxy_api=api), history, faults, seed=0) as nemesis:
            nemesis.start(time.monotonic())
            threading.Timer(0.25, look).start()
            nemesis.wait(5)
        assert seen == {"enabled": False, "toxics": ["latency"]}
        after = requests.get(f"{api}/proxies/celery-worker-celery-redis", timeout=5).json()
        assert after["enabled"] is True and after["toxics"] == []
        assert faults_in(history.ops)[0].toxic == "latency"


def test_a_network_fault_without_a_fault_proxy_is_an_error_not_a_crash() -> None:
    nemesis = Nemesis(Stack(), History(), [fault("cut", "disable", "gateway-celery-redis", duration_s=0.1)],
                      seed=0)
    nemesis.heal_backoff_s = 0.01
    with nemesis:
        nemesis.start(time.monotonic())
        nemesis.wait(5)
    assert "has no fault proxy" in nemesis.errors[0]


@pytest.fixture
def pool() -> Iterator[subprocess.Popen[bytes]]:
    """A parent with three children that sleep: a stand-in for a prefork pool."""
    code = ("import os, time\n"
            "for _ in range(3):\n"
            "    if os.fork() == 0:\n"
            "        time.sleep(60); os._exit(0)\n"
            "time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    deadline = time.monotonic() + 5
    while len(children_of(proc.pid)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    yield proc
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(5)


def test_kill_pool_child_kills_one_child_and_prefers_a_busy_one(pool: subprocess.Popen[bytes]) -> None:
    handle = SimpleNamespace(name="celery-worker-1", pid=pool.pid, proc=pool)
    kids = children_of(pool.pid)
    info = kill_pool_child(handle, random.Random(0), busy={kids[2]: "task-7"})
    assert info == {"pid": kids[2], "children": 3, "main_pid": pool.pid, "task": "task-7"}
    time.sleep(0.3)
    assert children_of(pool.pid) == kids[:2] and pool.poll() is None  # the parent lives on
    other = kill_pool_child(handle, random.Random(0))
    assert other["pid"] in kids[:2] and other["task"] is None


# -- memory pressure on a real redis-server ---------------------------------------------------------------


@pytest.fixture(params=["noeviction", "allkeys-lru"])
def small_redis(request: pytest.FixtureRequest, redis_server: Callable[..., str]) -> str:
    return redis_server(maxmemory="4mb", policy=request.param)


def test_memory_pressure_fills_to_maxmemory_reports_evictions_and_cleans_up(small_redis: str) -> None:
    client = redis_lib.Redis.from_url(small_redis, decode_responses=True)
    client.rpush("evaluation", *[f"job-{i}" for i in range(20)])
    policy = client.config_get("maxmemory-policy")["maxmemory-policy"]
    pressure = MemoryPressure(small_redis, seed=3)
    started = pressure.start()
    assert started["policy"] == policy
    assert started["used_after_fill"] >= 0.95 * started["maxmemory"]
    if policy == "noeviction":
        with pytest.raises(redis_lib.exceptions.OutOfMemoryError):
            client.set("one-more", "x" * 100_000)
    time.sleep(0.5)
    for i in range(40):  # writes from "the platform" under pressure
        with contextlib.suppress(redis_lib.ResponseError):
            client.set(f"celery-task-meta-{i}", "r" * 20_000)
    time.sleep(0.3)
    stopped = pressure.stop()
    assert client.keys(JUNK_PREFIX + "*") == []
    assert stopped["junk_deleted"] > 0
    assert client.config_get("notify-keyspace-events")["notify-keyspace-events"] == ""
    if policy == "noeviction":
        assert stopped["writes_refused"] >= 1 and stopped["evicted_total"] == 0
        assert client.llen("evaluation") == 20
    else:
        assert stopped["evicted_total"] > 0
        named = stopped["junk_evicted"] + sum(stopped["other_evicted"].values())
        assert named > 0 and stopped["evicted_unattributed"] == stopped["evicted_total"] - named >= 0
    client.close()
