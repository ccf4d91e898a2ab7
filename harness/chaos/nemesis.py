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
  (a graceful stop) and ``restart``: the component handle does it; heal: start it again and wait
  until it is healthy *again* (for workers: a new "ready" line in its log, not an old one).
  ``restart`` is a stop immediately followed by that heal.
- ``pause`` / heal ``resume``: SIGSTOP / SIGCONT of the component's process group (processes), or
  the cgroup freezer (containers).
- ``kill-pool-child``: SIGKILL one prefork child of a Celery worker (processes: the children of the
  worker's main process in ``/proc``; containers: ``docker exec`` of a small Python script that does
  the same inside the container). A child that is running a task (``celery inspect active`` gives
  its pid) is preferred, chosen from the seed; the stop op names the pid and the task. Celery
  replaces the child; nothing to heal.
- ``memory-pressure``: fill the Redis up to its ``maxmemory`` with junk keys (``chaos:junk:*``) and
  keep it full for ``duration_s``; heal: delete them. While the pressure lasts the Redis reports
  every evicted key (keyspace notifications), so the stop op says which keys that were not junk
  were evicted (queue lists, ``unacked``, bindings, results) and how many writes were refused.
  With ``hot = true`` the junk is touched every 0.1 s, so an LRU policy sees it as recently used as
  the broker's own keys (the worst case: another hot tenant of the same Redis); without it, the junk
  is the coldest data there, as results written once would be.

Clock faults are not provided: the processes launcher shares one kernel clock, so a skew cannot be
confined to one worker without a tool such as libfaketime.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import redis as redis_lib
import requests

from harness.chaos.history import ChaosError, History
from harness.chaos.scenario import Fault
from harness.stack.config import StackConfig

HEAL_ATTEMPTS = 5
JUNK_PREFIX = "chaos:junk:"
JUNK_VALUE_BYTES = 32 * 1024
READY_TIMEOUT_S = 30.0


class FaultError(ChaosError):
    """A fault could not be injected or healed."""


def _ready_line(name: str) -> Callable[[str], bool] | None:
    """How a worker says it is ready again (its readiness probe may match a line from before)."""
    if name.startswith("celery-worker-"):
        return lambda line: f"{name}@" in line and "ready." in line
    if name.startswith("legacy-worker-"):
        return lambda line: f"{name} ready" in line
    return None


def start_again(handle: Any, grace_s: float = 3.0, timeout_s: float = READY_TIMEOUT_S) -> float:
    """Start a stopped (or killed) component again and wait until it is healthy; returns seconds."""
    started = time.monotonic()
    ready = _ready_line(handle.name)
    before = len(handle.logs()) if ready else 0
    handle.restart(grace_s=grace_s)
    if ready is not None:
        while not any(ready(line) for line in handle.logs()[before:]):
            if time.monotonic() - started > timeout_s:
                raise FaultError(f"{handle.name} did not log that it is ready within {timeout_s:g}s after a "
                                 f"restart; last lines: {handle.logs(5)}")
            if not handle.alive():
                raise FaultError(f"{handle.name} exited after a restart; last lines: {handle.logs(10)}")
            time.sleep(0.05)
    return time.monotonic() - started


# -- pool children -------------------------------------------------------------------------------------


def children_of(pid: int) -> list[int]:
    """Live direct children of ``pid`` (from /proc; zombies left out), sorted."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError, PermissionError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(name))
    return sorted(out)


# Runs inside a worker's container. The Celery processes are those whose command line is a Celery
# worker's, leaving out pid 1 (docker-init, whose command line repeats the worker's); the main process
# is the one whose parent is not one of them, and its children are the pool. Prints the victim and the
# number of children, after killing the given pid if it is a child, else the one at the given index.
_CONTAINER_KILL_CHILD = r"""
import os, signal, sys
def read(p, name):
    with open(f"/proc/{p}/{name}", "rb") as fh:
        return fh.read()
procs = {}
for n in os.listdir("/proc"):
    if not n.isdigit() or int(n) in (1, os.getpid()):
        continue
    try:
        cmd = read(n, "cmdline").replace(b"\0", b" ").decode(errors="replace")
        ppid = int(read(n, "stat").decode().rsplit(")", 1)[1].split()[1])
    except Exception:
        continue
    if "celery" in cmd and "worker" in cmd and "docker-init" not in cmd:
        procs[int(n)] = ppid
mains = [p for p, pp in procs.items() if pp not in procs]
kids = sorted(p for p, pp in procs.items() if mains and pp == mains[0])
if not kids:
    print("none"); sys.exit(0)
wanted = int(sys.argv[2]) if len(sys.argv) > 2 else -1
victim = wanted if wanted in kids else kids[int(sys.argv[1]) % len(kids)]
os.kill(victim, signal.SIGKILL)
print(victim, len(kids))
"""


def busy_children(broker_url: str, worker: str, timeout_s: float = 0.5) -> dict[int, str]:
    """Pool child pid -> id of the task it runs now, from ``celery inspect active`` (empty if unknown).

    The pids are as the worker sees them (inside its container, for the containers launcher).
    """
    from celery import Celery

    app = Celery("chaos-inspect", broker=broker_url, set_as_current=False)
    app.conf.broker_transport_options = {"priority_steps": list(range(10)), "sep": ":",
                                         "queue_order_strategy": "priority"}
    try:
        # Only this worker, and stop at its reply: the answer must still be true when the kill lands.
        replies = app.control.inspect(timeout=timeout_s, limit=1, pattern=f"{worker}@*", matcher="glob").active() or {}
    except Exception:
        return {}
    finally:
        with contextlib.suppress(Exception):
            app.close()
    out: dict[int, str] = {}
    for name, tasks in replies.items():
        if not str(name).startswith(f"{worker}@"):
            continue
        for task in tasks or []:
            if task.get("worker_pid"):
                out[int(task["worker_pid"])] = str(task.get("id"))
    return out


def kill_pool_child(handle: Any, rng: random.Random, busy: dict[int, str] | None = None) -> dict[str, Any]:
    """SIGKILL one prefork child of a Celery worker; returns what was killed.

    A child running a task (``busy``: pid -> task id) is preferred, chosen by ``rng``; without one,
    any child.
    """
    busy = busy or {}
    container = getattr(handle, "container", None)
    if container is not None and getattr(handle, "proc", None) is None:
        wrapped = handle._require()
        choice = rng.choice(sorted(busy)) if busy else None
        argv = ["python", "-c", _CONTAINER_KILL_CHILD, str(rng.randrange(1 << 16))]
        if choice is not None:
            argv.append(str(choice))
        code, output = wrapped.exec_run(argv)
        text = (output or b"").decode(errors="replace").strip()
        if code != 0 or not text or text == "none":
            raise FaultError(f"{handle.name}: no pool child to kill in its container ({code}: {text})")
        victim, count = (int(x) for x in text.split()[:2])
        return {"pid": victim, "children": count, "task": busy.get(victim), "via": "docker exec"}
    pid = getattr(handle, "pid", None)
    if not pid:
        raise FaultError(f"{handle.name} has no process (is it running?)")
    kids = children_of(int(pid))
    if not kids:
        raise FaultError(f"{handle.name} (pid {pid}) has no pool children to kill")
    running = sorted(set(kids) & set(busy))
    victim = rng.choice(running) if running else rng.choice(kids)
    os.kill(victim, signal.SIGKILL)
    return {"pid": victim, "children": len(kids), "main_pid": int(pid), "task": busy.get(victim)}


# -- memory pressure ----------------------------------------------------------------------------------------


class MemoryPressure:
    """Fill a Redis up to maxmemory with junk and keep it full until ``stop``; then delete the junk."""

    def __init__(self, url: str, *, seed: int, hot: bool = False) -> None:
        self.hot = hot
        self.client = redis_lib.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3, decode_responses=True)
        self.value = random.Random(seed).randbytes(JUNK_VALUE_BYTES)
        self.written = 0
        self.refused = 0
        self.evicted: Counter[str] = Counter()
        self.evicted_names: list[str] = []
        self.junk_evicted = 0
        self._stop = threading.Event()
        self._stop_listening = threading.Event()
        self._threads: list[threading.Thread] = []
        self._notify_before: str | None = None
        self._pubsub: Any = None
        self.maxmemory = 0
        self.policy = ""
        self.evicted_before = 0
        self.errors: list[str] = []

    def _used(self) -> int:
        return int(self.client.info("memory")["used_memory"])

    def _evicted(self) -> int:
        return int(self.client.info("stats").get("evicted_keys", 0))

    def _top_up(self) -> None:
        """Write junk until the Redis is full: a write is refused (noeviction) or makes it evict (LRU).

        Large values until within two of them of maxmemory, then 1 KB values, so no headroom is left
        for a platform write to slip into.
        """
        evicted = self._evicted()
        for _ in range(100_000):
            if self._stop.is_set():
                return
            big = self._used() < self.maxmemory - 2 * JUNK_VALUE_BYTES
            try:
                self.client.set(f"{JUNK_PREFIX}{self.written:07d}", self.value if big else self.value[:1024])
                self.written += 1
            except redis_lib.ResponseError as exc:
                if not _oom(exc):
                    raise
                self.refused += 1
                return
            if not big and (self._evicted() > evicted or self._used() >= self.maxmemory):
                return

    def _listen(self) -> None:
        pubsub = self._pubsub
        idle = 0
        while True:
            try:
                msg = pubsub.get_message(timeout=0.25)
            except Exception as exc:  # the Redis went away: nothing more to learn
                self.errors.append(f"eviction listener: {exc}")
                return
            if not msg:
                idle += 1
                if self._stop_listening.is_set() and idle >= 3:
                    return  # stopped, and nothing more has arrived for a while
                continue
            idle = 0
            if msg.get("type") != "message":
                continue
            key = msg["data"].decode(errors="replace") if isinstance(msg["data"], bytes) else str(msg["data"])
            if key.startswith(JUNK_PREFIX):
                self.junk_evicted += 1
                continue
            self.evicted[_key_kind(key)] += 1
            if len(self.evicted_names) < 50:
                self.evicted_names.append(key)

    def _touch(self) -> None:
        """Mark every junk key as just used (TOUCH moves no data), so LRU has no reason to prefer it."""
        keys = [f"{JUNK_PREFIX}{i:07d}" for i in range(self.written)]
        for start in range(0, len(keys), 500):
            self.client.touch(*keys[start:start + 500])

    def _hold(self) -> None:
        while not self._stop.wait(0.1):
            try:
                if self.hot:
                    self._touch()
                self._top_up()
            except Exception as exc:
                self.errors.append(f"top-up: {exc}")
                return

    def start(self) -> dict[str, Any]:
        cfg: dict[Any, Any] = dict(self.client.config_get("maxmemory*"))
        self.maxmemory = int(cfg.get("maxmemory") or 0)
        self.policy = str(cfg.get("maxmemory-policy", ""))
        if not self.maxmemory:
            raise FaultError("memory pressure needs a maxmemory on the Redis; it has none")
        self._notify_before = str(self.client.config_get("notify-keyspace-events").get("notify-keyspace-events", ""))
        self.client.config_set("notify-keyspace-events", "Ee")
        self._pubsub = self.client.pubsub()
        self._pubsub.subscribe("__keyevent@0__:evicted")
        deadline = time.monotonic() + 5  # subscribed for real before the first write can evict
        while time.monotonic() < deadline:
            confirmation = self._pubsub.get_message(timeout=0.5)
            if confirmation and confirmation.get("type") == "subscribe":
                break
        self.evicted_before = int(self.client.info("stats").get("evicted_keys", 0))
        listener = threading.Thread(target=self._listen, name="chaos-evictions", daemon=True)
        listener.start()
        self._threads.append(listener)
        used_before = self._used()
        self._top_up()
        holder = threading.Thread(target=self._hold, name="chaos-memory-pressure", daemon=True)
        holder.start()
        self._threads.append(holder)
        return {"maxmemory": self.maxmemory, "policy": self.policy, "used_before": used_before,
                "used_after_fill": self._used(), "junk_keys": self.written, "hot": self.hot}

    def stop(self) -> dict[str, Any]:
        self._stop.set()  # the holder first; the listener drains what Redis already sent, then ends
        for t in self._threads[1:]:
            t.join(5)
        self._stop_listening.set()
        for t in self._threads[:1]:
            t.join(5)
        deleted = 0
        for key_batch in _batched(self.client.scan_iter(match=JUNK_PREFIX + "*", count=500), 500):
            deleted += int(self.client.unlink(*key_batch))
        with contextlib.suppress(Exception):
            self._pubsub.close()
        if self._notify_before is not None:
            self.client.config_set("notify-keyspace-events", self._notify_before)
        evicted_total = int(self.client.info("stats").get("evicted_keys", 0)) - self.evicted_before
        self.client.close()
        # Keyspace notifications are pub/sub, fire and forget: what INFO counts but no notification
        # named is reported as such rather than guessed.
        unattributed = evicted_total - self.junk_evicted - sum(self.evicted.values())
        return {"junk_written": self.written, "junk_deleted": deleted, "writes_refused": self.refused,
                "evicted_total": evicted_total, "junk_evicted": self.junk_evicted,
                "evicted_unattributed": unattributed,
                "other_evicted": dict(self.evicted), "other_evicted_keys": self.evicted_names,
                "errors": self.errors}


def _oom(exc: Exception) -> bool:
    """A write refused because the Redis is full (redis-py drops the "OOM" prefix from the message)."""
    return isinstance(exc, redis_lib.exceptions.OutOfMemoryError) or "maxmemory" in str(exc) or "OOM" in str(exc)


def _key_kind(key: str) -> str:
    """Group evicted keys by what they are to Celery / the platform."""
    if key.startswith("celery-task-meta-"):
        return "result (celery-task-meta-*)"
    if key.startswith("_kombu.binding."):
        return "binding (_kombu.binding.*)"
    if key in ("unacked", "unacked_index", "unacked_mutex"):
        return key
    if key.startswith("eval:"):
        return "record (eval:*)"
    base = key.split(":", 1)[0]
    if base in ("high_priority", "evaluation", "batch", "maintenance", "queue"):
        return f"queue list ({base}*)"
    return key if len(key) < 40 else key[:40] + "..."


def _batched(items: Iterable[Any], size: int) -> Iterable[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


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


class ToxicAction(Action):
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
        self.injected = True  # even a failed POST may have added it: heal removes it if it exists
        _http("POST", f"{_proxy_api(self.stack)}/proxies/{self.fault.target}/toxics", body)
        return {"toxic": body}

    def heal(self) -> dict[str, Any]:
        _http("DELETE", f"{_proxy_api(self.stack)}/proxies/{self.fault.target}/toxics/{self.name}", ok=(204, 404))
        return {}


class DisableAction(Action):
    def inject(self) -> dict[str, Any]:
        self.injected = True
        _http("POST", f"{_proxy_api(self.stack)}/proxies/{self.fault.target}", {"enabled": False})
        return {}

    def heal(self) -> dict[str, Any]:
        _http("POST", f"{_proxy_api(self.stack)}/proxies/{self.fault.target}", {"enabled": True})
        return {}


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
                 config: StackConfig | None = None, log: Callable[[str], None] | None = None) -> None:
        self.stack = stack
        self.history = history
        self.config = config
        self.seed = seed
        self.rng = random.Random(f"{seed}/nemesis")
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
                            time.sleep(0.5 * attempt)
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
