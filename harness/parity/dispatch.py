"""Send programs through the gateway, many at once, and collect every path's result.

A ``Dispatcher`` submits a whole batch of programs concurrently and waits for all of them, so the
parity suite is limited by the executors rather than by one request at a time. What a program is
sent as is a *plan*: a tuple of gateway routes, one submission each.

- ``("both",)`` dual-write: one evaluation, the gateway writes it to both queues; its record
  holds the control (legacy) and the candidate (celery) result;
- ``("legacy", "celery")`` forced routes: two evaluations of the same code, one per path;
- ``("legacy", "legacy")`` / ``("celery", "celery")`` A/A: the same code twice through one path.

Results are keyed by path; a path's second result is ``"<path>#2"``. A program whose spec ends in
a timeout is submitted with a short ``timeout_s`` (``TIMEOUT_PROGRAM_S``) so that it costs about a
second, and is queued ahead of the batch's quick programs; every other program gets the stack's
default timeout, so a slow machine does not turn a quick program into a timeout.

Errors a user can act on: the gateway refusing a submission (its status and problems are quoted)
and a gateway that cannot be reached (``DispatchError`` names the URL).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import requests

from harness.errors import HarnessError

Route = Literal["legacy", "celery", "both"]
Plan = tuple[Route, ...]
DUAL: Plan = ("both",)
FORCED: Plan = ("legacy", "celery")
TIMEOUT_PROGRAM_S = 1.0


class DispatchError(HarnessError):
    """The gateway refused or could not take a submission."""


@dataclass(frozen=True)
class Submission:
    code: str
    language: str
    timeout_s: float | None = None


@dataclass(frozen=True)
class Dispatched:
    """One program's outcome under a plan: the evaluations it became and each path's result."""

    eval_ids: tuple[str, ...]
    results: dict[str, dict[str, Any]]
    done: bool
    elapsed_s: float


class Dispatcher:
    def __init__(self, gateway: str, *, max_in_flight: int = 32, wait_s: float = 60.0) -> None:
        self.gateway = gateway.rstrip("/")
        self.wait_s = wait_s
        self._pool = ThreadPoolExecutor(max_in_flight, thread_name_prefix="parity-dispatch")
        self._local = threading.local()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, submissions: Sequence[Submission], plan: Plan) -> list[Dispatched]:
        """Submit every program under ``plan`` at once; return their outcomes in order."""
        started = time.monotonic()
        # Longest first: programs that will run into their timeout are queued ahead of quick ones, so
        # a batch's makespan is not a timeout started last (LPT scheduling).
        order = sorted(range(len(submissions)), key=lambda i: submissions[i].timeout_s is None)
        jobs = [(i, route) for i in order for route in plan]
        records = list(self._pool.map(lambda job: self._one(submissions[job[0]], job[1]), jobs))
        elapsed = time.monotonic() - started
        out: list[Dispatched] = []
        for i in range(len(submissions)):
            mine = [records[j] for j, (k, _) in enumerate(jobs) if k == i]
            results: dict[str, dict[str, Any]] = {}
            for record in mine:
                for path in record["routes"]:
                    key = path if path not in results else f"{path}#2"
                    results[key] = record["results"].get(path, {})
            out.append(Dispatched(tuple(r["eval_id"] for r in mine), results,
                                  all(r["done"] for r in mine), elapsed))
        return out

    # -- one submission ------------------------------------------------------------------------

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _one(self, sub: Submission, route: Route) -> dict[str, Any]:
        body: dict[str, Any] = {"code": sub.code, "language": sub.language, "route": route}
        if sub.timeout_s is not None:
            body["timeout_s"] = sub.timeout_s
        session = self._session()
        url = f"{self.gateway}/api/eval"
        try:
            resp = session.post(url, json=body, timeout=30)
        except requests.RequestException as exc:
            raise DispatchError(f"cannot reach the gateway at {url}: {exc}; is the stack running?") from exc
        if resp.status_code != 201 and resp.status_code != 200:
            raise DispatchError(f"the gateway refused a submission with {resp.status_code}: {resp.text[:500]}")
        eval_id = resp.json()["eval_id"]
        deadline = time.monotonic() + self.wait_s
        while True:
            remaining = deadline - time.monotonic()
            try:
                got = session.get(f"{url}/{eval_id}", params={"wait": max(min(remaining, 20.0), 0.0)},
                                  timeout=max(remaining, 0.0) + 10)
                got.raise_for_status()
            except requests.RequestException as exc:
                raise DispatchError(f"cannot read evaluation {eval_id} from {url}: {exc}") from exc
            record: dict[str, Any] = got.json()
            if record["done"] or remaining <= 0:
                return record
