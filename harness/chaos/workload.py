"""The chaos workload: programs with an oracle, submitted through the gateway at a bounded rate.

``plan`` turns a scenario's ``[workload]`` into the exact list of submissions, decided up front from
the seed: submission ``k`` is due ``k / rate`` seconds after the workload starts, for as many as
``rate x duration_s`` allows, and no more. Routes go round robin over the workload's routes
(``legacy`` / ``celery`` force a path, ``dual`` sends ``route: both``); the priority follows the
workload's priority or priority schedule; ``batch`` is passed through.

Every program carries a marker unique to its submission (fixed width, so no marker is a prefix
of another) and has an oracle (``harness.generate.programs.expect``):

- ``quick``: ``print('<marker>')``;
- ``sleep``: the same, then ``time.sleep(sleep_s)``;
- ``mixed``: quick, sleep, or a failing program (writes the marker to stdout and a line to stderr,
  exits 3), chosen from the seed.

``WorkloadRunner`` submits the plan from a fixed number of threads (never more requests in flight
than threads, never a submission before its slot) through the gateway client (``harness.client``)
and records each in the history as ``invoke`` then the client's answer: ``ok``, ``fail`` or
``info`` (unknown). After an ``info`` the thread continues as a new process, as in Jepsen.
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from harness.chaos.scenario import Workload
from harness.client import EvalRequest, GatewayClient, recorded
from harness.generate.programs import Exit, Expected, ProgramSpec, Write, expect, render
from harness.history import History

ROUTE_FOR = {"legacy": "legacy", "celery": "celery", "dual": "both", "split": "split"}
PATH_FOR = {"legacy": "legacy", "celery": "celery", "both": None, "split": None}
MAX_THREADS = 16


@dataclass(frozen=True)
class Submission:
    """One planned submission: what is sent, when, and what the platform must answer."""

    index: int
    at_s: float
    marker: str
    route: str  # legacy | celery | both | split (no route: the gateway decides)
    priority: int
    batch: bool
    program: str  # quick | sleep | fail
    code: str
    timeout_s: float | None
    expected: Expected = field(compare=False)

    @property
    def path(self) -> str | None:
        return PATH_FOR[self.route]

    def request(self) -> EvalRequest:
        route = None if self.route == "split" else self.route
        return EvalRequest(self.code, "python", route, self.priority, self.batch,  # type: ignore[arg-type]
                           self.timeout_s)

    def invoke_value(self) -> dict[str, Any]:
        return {"route": self.route, "program": self.program, "priority": self.priority, "batch": self.batch,
                "marker": self.marker, "slot": self.index, "at_s": round(self.at_s, 3)}


def marker(token: str, index: int) -> str:
    """A marker unique to one submission: fixed width and closed, so none is a substring of another."""
    return f"chaos-{token}-{index:06d}."


def program(kind: str, mark: str, *, sleep_s: float, output_cap: int) -> tuple[str, Expected]:
    """The code of one workload program and its oracle."""
    if kind == "fail":
        spec = ProgramSpec("python", (Write("stdout", mark + "\n"), Write("stderr", "failing on purpose\n")),
                           Exit(3))
    else:
        spec = ProgramSpec("python", (Write("stdout", mark + "\n"),), Exit(0))
    code = render(spec)
    if kind == "sleep" and sleep_s > 0:
        # Sleeping after the write changes neither output nor exit code, so the oracle still holds.
        code += f"import time\ntime.sleep({sleep_s!r})\n"
    return code, expect(spec, output_cap=output_cap)


def plan(workload: Workload, *, seed: int, token: str, output_cap: int,
         executor_timeout_s: float = 10.0) -> list[Submission]:
    """Every submission of the workload, decided from ``seed`` (the same seed gives the same plan)."""
    rng = random.Random(f"{seed}/{token}/workload")
    count = max(1, math.floor(workload.rate * workload.duration_s + 1e-9))
    out = []
    for k in range(count):
        at = k / workload.rate
        route = ROUTE_FOR[workload.routes[k % len(workload.routes)]]
        kind = rng.choice(("quick", "sleep", "fail")) if workload.program == "mixed" else workload.program
        sleep_s = workload.sleep_s if kind == "sleep" else 0.0
        mark = marker(token, k)
        code, expected = program(kind, mark, sleep_s=sleep_s, output_cap=output_cap)
        # A program that sleeps close to the executor's limit asks for more time, so it never times out.
        timeout = None if sleep_s + 2 <= executor_timeout_s else round(sleep_s + 5, 3)
        batch = rng.random() < workload.batch if isinstance(workload.batch, float) else workload.batch
        out.append(Submission(k, at, mark, route, workload.priority_at(at), batch, kind, code, timeout, expected))
    return out


@dataclass
class WorkloadStats:
    planned: int = 0
    submitted: int = 0
    ok: int = 0
    fail: int = 0
    info: int = 0
    skipped: int = 0  # slots not started before the workload's end (threads were all busy)
    max_in_flight: int = 0
    elapsed_s: float = 0.0
    eval_ids: dict[str, str] = field(default_factory=dict)  # marker -> eval id of ok submissions


class WorkloadRunner:
    """Submits a plan from ``threads`` threads; ``run`` blocks until it is done (or ``stop`` is set)."""

    def __init__(self, gateway: str, history: History, submissions: list[Submission], *, threads: int,
                 duration_s: float, request_timeout_s: float = 10.0, late_s: float = 2.0) -> None:
        self.client = GatewayClient(gateway, request_timeout_s=request_timeout_s)
        self.history = history
        self.submissions = submissions
        self.threads = max(1, min(threads, MAX_THREADS))
        self.duration_s = duration_s
        self.request_timeout_s = request_timeout_s
        self.late_s = late_s  # a slot may start this late after the workload's end, then it is skipped
        self.stats = WorkloadStats(planned=len(submissions))
        self._next = 0
        self._in_flight = 0
        self._lock = threading.Lock()

    def _take(self) -> Submission | None:
        with self._lock:
            if self._next >= len(self.submissions):
                return None
            sub = self.submissions[self._next]
            self._next += 1
            return sub

    def _worker(self, number: int, t0: float, stop: threading.Event) -> None:
        process = number
        try:
            while not stop.is_set():
                sub = self._take()
                if sub is None:
                    return
                delay = t0 + sub.at_s - time.monotonic()
                if delay > 0 and stop.wait(delay):
                    return
                if time.monotonic() - t0 > self.duration_s + self.late_s:
                    with self._lock:
                        self.stats.skipped += 1
                    continue
                with self._lock:
                    self._in_flight += 1
                    self.stats.max_in_flight = max(self.stats.max_in_flight, self._in_flight)
                    self.stats.submitted += 1
                try:
                    done, _ = recorded(self.history, process, "submit", lambda s=sub: self.client.submit(  # type: ignore[misc]
                        s.request()), path=sub.path, value=sub.invoke_value())
                finally:
                    with self._lock:
                        self._in_flight -= 1
                with self._lock:
                    setattr(self.stats, done.type, getattr(self.stats, done.type) + 1)
                    if done.type == "ok" and done.eval_id:
                        self.stats.eval_ids[sub.marker] = done.eval_id
                if done.type == "info":
                    process += self.threads  # Jepsen: the old process may still be in flight
        finally:
            self.client.close()

    def run(self, t0: float | None = None, stop: threading.Event | None = None) -> WorkloadStats:
        start = time.monotonic() if t0 is None else t0
        stop = stop or threading.Event()
        workers = [threading.Thread(target=self._worker, args=(i, start, stop), name=f"chaos-client-{i}",
                                    daemon=True) for i in range(self.threads)]
        for w in workers:
            w.start()
        try:
            for w in workers:
                while w.is_alive():
                    w.join(0.2)
        except BaseException:
            stop.set()
            for w in workers:
                w.join(self.request_timeout_s + 1)
            raise
        finally:
            self.stats.elapsed_s = time.monotonic() - start
        return self.stats


def threads_for(workload: Workload, *, request_s: float = 0.5) -> int:
    """Threads enough for the rate when a request takes up to ``request_s`` (at least 2, at most 16)."""
    return max(2, min(MAX_THREADS, math.ceil(workload.rate * request_s) + 1))
