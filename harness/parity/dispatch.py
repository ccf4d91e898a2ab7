"""Send programs through the gateway, many at once, and collect every path's result.

A ``Dispatcher`` submits a whole batch of programs concurrently and waits for all of them, so the
parity suite is limited by the executors rather than by one request at a time. It speaks to the
gateway only through ``harness.client`` and records every operation in a ``harness.history.History``
(Jepsen's format, shared with chaos): a ``submit`` (invoke, then ok / fail / info) and a ``read``
(invoke, then ok with which paths finished). The suite stores it as ``parity_history.parquet``.

What a program is sent as is a *plan*: a tuple of gateway routes, one submission each.

- ``("both",)`` dual-write: one evaluation, the gateway writes it to both queues; its record
  holds the control (legacy) and the candidate (celery) result;
- ``("legacy", "celery")`` forced routes: two evaluations of the same code, one per path;
- ``("legacy", "legacy")`` / ``("celery", "celery")`` A/A: the same code twice through one path.

Results are keyed by path; a path's second result is ``"<path>#2"``. A program with a ``timeout_s``
(one that ends near or past its deadline) is submitted with it and queued ahead of the batch's
quick programs; every other program gets the stack's default timeout.

An evaluation's *deadline* is its timeout (its own ``timeout_s``, else ``default_timeout_s``, the
stack's) plus ``queue_allowance_s`` for queueing behind the rest of the batch. A path still without
a terminal result then is *missing*: its result is left out, and the comparison says so at once
(``compare``: class ``missing``); nobody waits longer for it.

Errors a user can act on: the gateway refusing a submission (its status and problems are quoted)
and a gateway that cannot be reached (``DispatchError`` names the URL).
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from harness.client import ClientError, EvalRequest, GatewayClient, recorded
from harness.errors import HarnessError
from harness.generate.spec import DEADLINE_S
from harness.history import History
from harness.vocabulary import TERMINAL, Record, Route

Plan = tuple[Route, ...]
DUAL: Plan = ("both",)
FORCED: Plan = ("legacy", "celery")
TIMEOUT_PROGRAM_S = DEADLINE_S


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
    """Submits batches through ``gateway``; ``history`` records every operation (a new one by default)."""

    def __init__(self, gateway: str, *, max_in_flight: int = 32, default_timeout_s: float = 10.0,
                 queue_allowance_s: float = 20.0, history: History | None = None) -> None:
        self.gateway = gateway.rstrip("/")
        self.default_timeout_s = default_timeout_s
        self.queue_allowance_s = queue_allowance_s
        self.history = history if history is not None else History()
        self.client = GatewayClient(self.gateway, request_timeout_s=30.0)
        self._pool = ThreadPoolExecutor(max_in_flight, thread_name_prefix="parity-dispatch")
        self._processes = itertools.count()
        self._lock = threading.Lock()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def deadline_s(self, submission: Submission) -> float:
        """How long after its submission an evaluation may take before a path without a result is missing."""
        return (submission.timeout_s or self.default_timeout_s) + self.queue_allowance_s

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
                    results[key] = dict(record["results"].get(path, {}))
            out.append(Dispatched(tuple(str(r["eval_id"]) for r in mine), results,
                                  all(r["done"] for r in mine), elapsed))
        return out

    # -- one submission ------------------------------------------------------------------------

    def _process(self) -> str:
        with self._lock:
            return f"parity-{next(self._processes)}"

    def _one(self, sub: Submission, route: Route) -> Record:
        process = self._process()
        request = EvalRequest(sub.code, sub.language, route=route, timeout_s=sub.timeout_s)
        program = hashlib.sha256(sub.code.encode()).hexdigest()[:12]
        _, answer = recorded(self.history, process, "submit", lambda: self.client.submit(request),
                             path=None if route == "both" else route,
                             value={"route": route, "language": sub.language, "timeout_s": sub.timeout_s,
                                    "program": program})
        if answer.type != "ok" or answer.eval_id is None:
            problems = f" problems: {list(answer.problems)}" if answer.problems else ""
            what = "refused" if answer.type == "fail" else "did not answer (the outcome is unknown)"
            raise DispatchError(f"the gateway at {self.gateway} {what} a submission: {answer.error}{problems}; "
                                "is the stack running, and does it take this language and timeout?")
        invoke = self.history.invoke(process, "read", eval_id=answer.eval_id)
        try:
            record = self.client.await_record(answer.eval_id, timeout_s=self.deadline_s(sub))
        except ClientError as exc:
            self.history.complete(invoke, "fail", error=str(exc)[:300])
            raise DispatchError(str(exc)) from exc
        if record is None:
            self.history.complete(invoke, "fail", error="the gateway does not know this evaluation")
            raise DispatchError(f"the gateway at {self.gateway} accepted evaluation {answer.eval_id} and then "
                                "did not know it: its main Redis lost the record?")
        unfinished = [p for p in record["routes"] if record["results"].get(p, {}).get("status") not in TERMINAL]
        self.history.complete(invoke, "ok", value={"done": record["done"], "missing": unfinished})
        return record
