"""The nemesis: faults as inject/heal pairs, run on a schedule, healed always.

Every fault of a scenario becomes an ``Action`` with ``inject`` and ``heal``. ``Nemesis`` runs the
schedule against wall-clock offsets from the workload's start (one thread per fault): it waits
until ``at_s``, records a nemesis ``start`` op and injects, waits ``duration_s``, then heals and
records ``stop``. Healing runs in ``finally``: when a fault's wait is cut short (the runner failed, a
test failed, Ctrl-C), when injecting failed halfway, and once more from ``Nemesis.__exit__`` /
``heal_all`` for anything still open. Healing is idempotent; a heal that fails is retried and then
reported (``errors``), never swallowed.

Kinds (``harness.chaos.scenario.KINDS``):

- ``toxic``: ``POST /proxies/<link>/toxics`` on the fault proxy (any Toxiproxy type, either
  stream); heal: ``DELETE`` it.
- ``disable``: ``POST /proxies/<link> {"enabled": false}``; heal: ``{"enabled": true}``.
- ``kill`` (SIGKILL), ``terminate`` (SIGTERM, SIGKILL after ``grace_s``), ``component-down``
  (a graceful stop) and ``restart``: the component handle does it; heal: start it again; the
  handle's ``restart`` returns once *this* start is healthy (never on a probe from before).
  ``restart`` is a stop immediately followed by that heal.
- ``pause`` / heal ``resume``: SIGSTOP / SIGCONT of the component's process group (processes), or
  the cgroup freezer (containers).
- ``kill-pool-child``: SIGKILL one prefork child of a Celery worker, preferably one running a task
  (``pool_children.py``). Celery replaces the child; nothing to heal.
- ``memory-pressure``: fill the Redis up to its ``maxmemory`` with junk keys and keep it full for
  ``duration_s``; heal: delete them. The stop op says which other keys were evicted
  (``memory_pressure.py``).

Clock faults are not provided: the processes launcher shares one kernel clock, so a skew cannot be
confined to one worker without a tool such as libfaketime.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import requests

from harness.chaos.fault_error import FaultError
from harness.chaos.memory_pressure import MemoryPressure
from harness.chaos.pool_children import busy_children, kill_pool_child
from harness.chaos.scenario import Fault
from harness.errors import StackError
from harness.history import History
from harness.stack.protocol import ComponentHandle

HEAL_ATTEMPTS = 5
READY_TIMEOUT_S = 30.0


def start_again(handle: ComponentHandle, grace_s: float = 3.0) -> float:
    """Start a stopped (or killed) component again; returns the seconds until it was healthy.

    The handle's ``restart`` returns only when this start is ready (``harness.stack.protocol``);
    a component that exits right after is a FaultError.
    """
    started = time.monotonic()
    try:
        handle.restart(grace_s=grace_s)
    except StackError as exc:
        raise FaultError(f"{handle.name} did not come back after a restart: {exc}") from exc
    if not handle.alive():
        raise FaultError(f"{handle.name} exited after a restart; last lines: {handle.logs(10)}")
    return time.monotonic() - started


# -- actions ----------------------------------------------------------------------------------------------


class Action:
    """One fault's inject and heal; ``heal`` is idempotent and safe before or after a failed inject."""

    def __init__(self, fault: Fault, stack: Any, rng: random.Random, seed: int) -> None:
        self.fault = fault
        self.stack = stack
        self.rng = rng
        self.seed = seed
        self.started = False  # its start op is recorded
        self.injected = False  # inject began acting on the stack (heal must undo it)
        self.healed = False
        self.info: dict[str, Any] = {}

    @property
    def grace_s(self) -> float:
        return self.fault.grace_s if self.fault.grace_s is not None else 10.0

    def handle(self) -> Any:
        return self.stack.component(self.fault.target)

    def inject(self) -> dict[str, Any]:
        raise NotImplementedError

    def heal(self) -> dict[str, Any]:
        return {}


def _proxy_api(stack: Any) -> str:
    api = stack.endpoints.proxy_api if stack.endpoints is not None else None
    if not api:
        raise FaultError("this stack has no fault proxy (stack.fault_proxy = false, or an external stack without "
                         "one); network faults need it")
    return str(api).rstrip("/")


def _http(method: str, url: str, body: dict[str, Any] | None = None, ok: tuple[int, ...] = (200, 201, 204)) -> Any:
    resp = requests.request(method, url, json=body, timeout=5)
    if resp.status_code not in ok:
        raise FaultError(f"{method} {url} answered {resp.status_code}: {resp.text[:300]}")
    return resp


def _traffic(stack: Any, link: str) -> dict[str, int] | None:
    """The link's traffic counters (our fault proxy's ``/stats`` extension); None where the proxy has
    none (a real Toxiproxy) or cannot answer: then nobody can tell whether a fault hit anything."""
    try:
        resp = requests.get(f"{_proxy_api(stack)}/proxies/{link}/stats", timeout=5)
    except (requests.RequestException, FaultError):
        return None
    if resp.status_code != 200:
        return None
    doc = resp.json()
    return {k: int(doc[k]) for k in ("connections_open", "connections_accepted", "bytes_upstream",
                                     "bytes_downstream") if isinstance(doc.get(k), int)}


class LinkAction(Action):
    """A fault on a network link: it notes the link's traffic when injected and when healed, so the run
    can tell a fault that hit traffic from one on a link no client used (``missed``)."""

    def traffic_before(self) -> dict[str, Any]:
        before = _traffic(self.stack, self.fault.target)
        self.info["traffic_before"] = before
        return {"traffic_before": before} if before is not None else {}

    def traffic_after(self) -> dict[str, Any]:
        before, after = self.info.get("traffic_before"), _traffic(self.stack, self.fault.target)
        if before is None or after is None:
            return {"traffic": None}
        return {"traffic": {"open_at_inject": before.get("connections_open", 0),
                            "accepted": after.get("connections_accepted", 0) - before.get("connections_accepted", 0),
                            "bytes": sum(after.get(k, 0) - before.get(k, 0)
                                         for k in ("bytes_upstream", "bytes_downstream"))}}


class ToxicAction(LinkAction):
    def __init__(self, *args: Any, index: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        toxic = self.fault.toxic
        assert toxic is not None
        self.name = f"chaos-{index}-{toxic.type}-{toxic.stream}"

    def inject(self) -> dict[str, Any]:
        toxic = self.fault.toxic
        assert toxic is not None
        body = {"name": self.name, "type": toxic.type, "stream": toxic.stream, "toxicity": toxic.toxicity,
                "attributes": dict(toxic.attributes)}
        before = self.traffic_before()
        self.injected = True  # even a failed POST may have added it: heal removes it if it exists
        _http("POST", f"{_proxy_api(self.stack)}/proxies/{self.fault.target}/toxics", body)
        return {"toxic": body, **before}

    def heal(self) -> dict[str, Any]:
        after = self.traffic_after()
        _http("DELETE", f"{_proxy_api(self.stack)}/proxies/{self.fault.target}/toxics/{self.name}", ok=(204, 404))
        return after


class DisableAction(LinkAction):
    def inject(self) -> dict[str, Any]:
        before = self.traffic_before()
        self.injected = True
        _http("POST", f"{_proxy_api(self.stack)}/proxies/{self.fault.target}", {"enabled": False})
        return before

    def heal(self) -> dict[str, Any]:
        after = self.traffic_after()
        _http("POST", f"{_proxy_api(self.stack)}/proxies/{self.fault.target}", {"enabled": True})
        return after


class KillAction(Action):
    """kill / terminate / component-down / restart: stop the component now, start it again on heal."""

    def inject(self) -> dict[str, Any]:
        handle = self.handle()
        pid = getattr(handle, "pid", None)
        self.injected = True
        started = time.monotonic()
        if self.fault.kind == "kill":
            handle.kill()
        else:  # terminate, component-down, restart: SIGTERM, SIGKILL after the grace period
            handle.terminate(grace_s=self.grace_s)
        return {"pid": pid, "stopped_after_s": round(time.monotonic() - started, 3)}

    def heal(self) -> dict[str, Any]:
        seconds = start_again(self.handle(), grace_s=min(self.grace_s, 3.0))
        return {"healthy_after_s": round(seconds, 3), "pid": getattr(self.handle(), "pid", None)}


class PauseAction(Action):
    def inject(self) -> dict[str, Any]:
        self.injected = True
        self.handle().pause()
        return {"pid": getattr(self.handle(), "pid", None)}

    def heal(self) -> dict[str, Any]:
        self.handle().resume()
        return {}


class PoolChildAction(Action):
    def inject(self) -> dict[str, Any]:
        busy = busy_children(self.stack.endpoints.celery_redis, self.fault.target)
        self.injected = True
        return kill_pool_child(self.handle(), self.rng, busy)


class MemoryAction(Action):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pressure: MemoryPressure | None = None

    def inject(self) -> dict[str, Any]:
        endpoints = self.stack.endpoints
        url = endpoints.celery_redis if self.fault.target == "celery-redis" else endpoints.main_redis
        self.pressure = MemoryPressure(url, seed=self.seed, hot=self.fault.hot)
        self.injected = True
        return self.pressure.start()

    def heal(self) -> dict[str, Any]:
        return self.pressure.stop() if self.pressure is not None else {}


def action_for(fault: Fault, index: int, stack: Any, rng: random.Random, seed: int) -> Action:
    kinds: dict[str, type[Action]] = {
        "disable": DisableAction, "kill": KillAction, "terminate": KillAction, "component-down": KillAction,
        "restart": KillAction, "pause": PauseAction, "kill-pool-child": PoolChildAction,
        "memory-pressure": MemoryAction,
    }
    if fault.kind == "toxic":
        return ToxicAction(fault, stack, rng, seed, index=index)
    if fault.kind not in kinds:
        raise FaultError(f"no action for fault kind {fault.kind!r}")
    return kinds[fault.kind](fault, stack, rng, seed)


# -- the schedule -----------------------------------------------------------------------------------------


class Nemesis:
    """Runs faults on a schedule; ``with Nemesis(...) as n: n.start(t0); ...`` heals all on exit.

    ``errors`` collects every inject or heal problem (each also recorded in its stop op).
    """

    def __init__(self, stack: Any, history: History, faults: Iterable[Fault], *, seed: int,
                 log: Callable[[str], None] | None = None) -> None:
        self.stack = stack
        self.history = history
        self.seed = seed
        self.heal_backoff_s = 0.5  # a failed heal is retried after 0.5 s, 1 s, 1.5 s, ... (tests shorten it)
        self.faults = list(faults)
        self.actions = [action_for(f, i, stack, random.Random(f"{seed}/nemesis/{i}"), seed + i)
                        for i, f in enumerate(self.faults)]
        self.log = log or (lambda _msg: None)
        self.errors: list[str] = []
        self.heal_times: list[float] = []  # history times of every stop op
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._heal_locks = [threading.Lock() for _ in self.actions]
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Nemesis:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, t0: float) -> None:
        for i, action in enumerate(self.actions):
            t = threading.Thread(target=self._run, args=(i, action, t0), name=f"chaos-nemesis-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait until every fault has been injected and healed; False if ``timeout_s`` ran out."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        for t in self._threads:
            while t.is_alive():
                if deadline is not None and time.monotonic() > deadline:
                    return False
                t.join(0.2)
        return True

    def stop(self) -> None:
        """Cut every wait short, heal everything still open, and wait for the fault threads."""
        self._stop.set()
        try:
            for t in self._threads:
                t.join(0.5)
        finally:
            self.heal_all()
            for t in self._threads:
                t.join(READY_TIMEOUT_S + 70)

    def heal_all(self) -> None:
        for i in range(len(self.actions)):
            self._heal(i)

    def _value(self, action: Action, **extra: Any) -> dict[str, Any]:
        f = action.fault
        value: dict[str, Any] = {"at_s": f.at_s}
        if f.duration_s is not None:
            value["duration_s"] = f.duration_s
        if f.toxic is not None:
            value["toxic"] = {"type": f.toxic.type, "stream": f.toxic.stream, "toxicity": f.toxic.toxicity,
                              "attributes": dict(f.toxic.attributes)}
        return {**value, **extra}

    def _run(self, i: int, action: Action, t0: float) -> None:
        fault = action.fault
        if self._stop.wait(max(0.0, t0 + fault.at_s - time.monotonic())):
            return  # stopped before it was due: never injected, nothing to heal
        try:
            with self._heal_locks[i]:
                if action.healed or self._stop.is_set():
                    return
                op = self.history.nemesis_start(fault.name, fault.kind, fault.target, **self._value(action))
                action.started = True
                self.log(f"  fault  {op.time:6.2f}s  start {fault.name} ({fault.kind} {fault.target})")
                try:
                    action.info = action.inject()
                except Exception as exc:
                    self._error(f"{fault.name}: inject failed: {type(exc).__name__}: {exc}")
                    action.info = {"inject_error": f"{type(exc).__name__}: {exc}"}
            end = t0 + fault.at_s + (fault.duration_s or 0.0)
            self._stop.wait(max(0.0, end - time.monotonic()))
        finally:
            self._heal(i)

    def _heal(self, i: int) -> None:
        """Heal fault ``i`` once (if it was started) and record its stop op."""
        action = self.actions[i]
        with self._heal_locks[i]:
            if action.healed or not action.started:
                return
            action.healed = True
            info: dict[str, Any] = {}
            problem = None
            if action.injected:
                for attempt in range(1, HEAL_ATTEMPTS + 1):
                    try:
                        info = action.heal()
                        problem = None
                        break
                    except Exception as exc:
                        problem = f"{type(exc).__name__}: {exc}"
                        if attempt < HEAL_ATTEMPTS:
                            time.sleep(self.heal_backoff_s * attempt)
            if problem:
                self._error(f"{action.fault.name}: heal failed after {HEAL_ATTEMPTS} attempts: {problem}")
                info = {**info, "heal_error": problem}
            f = action.fault
            op = self.history.nemesis_stop(f.name, f.kind, f.target,
                                           **self._value(action, injected=action.info, **info))
            with self._lock:
                self.heal_times.append(op.time)
            self.log(f"  fault  {op.time:6.2f}s  stop  {f.name}")

    def _error(self, message: str) -> None:
        with self._lock:
            self.errors.append(message)
        self.log(f"  fault  ERROR {message}")
