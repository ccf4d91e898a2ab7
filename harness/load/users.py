"""Locust users that submit programs through the gateway and follow each evaluation to its end.

Imported only inside the Locust process (``harness/load/locustfile.py``): importing Locust patches the
process with gevent. Everything is measured by firing Locust's ``request`` event ourselves, so the
statistics, the web UI and the per-request rows show exactly three kinds of entries:

- ``POST submit``: ``POST /api/eval`` until the gateway answers ``201 {eval_id, routes}``;
- ``E2E legacy`` / ``E2E celery`` (``E2E both`` with ``--route both``): from just before the submission
  until ``GET /api/eval/{id}?wait=S`` (a long-poll, repeated until the deadline) returns the record
  with every path terminal. The path is the record's ``routes``, so the gateway's split decides it
  unless ``--route`` forces one.

An E2E entry fails only for the platform's own failures: a path ending with status ``error``, a record
the gateway no longer knows (``lost``, 404) or one not terminal within ``--e2e-timeout`` (``stuck``).
A user's program failing (non-zero exit, an exception) is a successful evaluation. The long-polls are
not reported on their own: their time is the E2E time; the row of a single-path evaluation also splits
it into stages (submission, queue, execution, delivery) and carries the execution's resource use
(``harness.load.rows.stages_of``). An evaluation still in flight when Locust
stops its user (after ``--stop-timeout``) is written as an ``unfinished`` row only, not as a Locust
request: it is neither a success nor a platform error, but dropping it would hide the slowest ones.

Users: ``InteractiveUser`` (weight 4) submits one program, waits for it, thinks, and submits again;
``BatchUser`` (weight 1) submits a batch of programs with ``batch: true`` at low priority and follows
them all at once; ``SubmitOnlyUser`` (``LOAD_MODE=submit``) submits without following, to measure the
gateway alone.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent
import gevent.pool
from geventhttpclient import HTTPClient
from locust import User, events, task
from locust.env import Environment

from harness.load.config import ENV_ROWS_DIR
from harness.load.programs import Program, draw_priority, draw_program
from harness.load.rows import RowWriter, make_row, stages_of
from harness.load.webui import COUNTS

POLL_WAIT_S = 20.0  # one long-poll; the gateway allows up to 120
HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


class SubmitRejected(Exception):
    """The gateway did not accept the submission (anything but 201, or no answer)."""


class PlatformError(Exception):
    """A path ended with status ``error``: the platform failed, not the user's program."""


class Stuck(Exception):
    """The evaluation was not terminal on every path within the E2E timeout."""


class Lost(Exception):
    """The gateway answered 404 for an evaluation it had accepted."""


# -- options -------------------------------------------------------------------------------------


def add_arguments(parser: Any) -> None:
    """The harness's own Locust options (also shown in the web UI, and forwarded by a master to its workers).

    Added on the parser itself, not on an argument group: only ``LocustArgumentParser.add_argument``
    marks an option for the web UI's start form.
    """
    group = parser
    group.add_argument("--route", choices=["split", "legacy", "celery", "both", "control"], default="split",
                       env_var="LOAD_ROUTE", help="force a path; 'split' lets the gateway's split decide; 'control' "
                                                  "forces half the evaluations to legacy and leaves the rest to it")
    group.add_argument("--think-time", type=float, default=1.0, env_var="LOAD_THINK_TIME",
                       help="mean seconds a user waits between evaluations (0: none)")
    group.add_argument("--e2e-timeout", type=float, default=120.0, env_var="LOAD_E2E_TIMEOUT",
                       help="seconds before an evaluation that is not terminal counts as stuck")
    group.add_argument("--batch-size", type=int, default=8, env_var="LOAD_BATCH_SIZE",
                       help="largest batch a BatchUser submits at once")
    group.add_argument("--seed", type=int, default=0, env_var="LOAD_SEED", help="seed for every user's choices")
    group.add_argument("--steps", type=int, default=5, env_var="LOAD_STEPS",
                       help="steps of the step shape (LOAD_SHAPE=step)")
    group.add_argument("--output-cap", type=int, default=65536, env_var="LOAD_OUTPUT_CAP",
                       help="the executors' output cap per stream, for the programs' oracle")


def _option(environment: Environment, name: str, default: Any) -> Any:
    options = environment.parsed_options
    value = getattr(options, name, None) if options is not None else None
    return default if value is None else value


# -- per-request rows ------------------------------------------------------------------------------

_rows_dir = os.environ.get(ENV_ROWS_DIR)
_writer = RowWriter(Path(_rows_dir)) if _rows_dir else None
_test_run = itertools.count(1)
_current_run = 0


@events.test_start.add_listener
def _on_test_start(**_: Any) -> None:
    global _current_run
    _current_run = next(_test_run)


@events.request.add_listener
def _on_request(request_type: str, name: str, response_time: float, response_length: int | None,
                exception: BaseException | None = None, context: dict[str, Any] | None = None,
                start_time: float | None = None, **_: Any) -> None:
    if _writer is None:
        return
    detail = (context or {}).get("detail")
    text = None if exception is None else f"{type(exception).__name__}: {exception}" + (f" ({detail})" if detail
                                                                                         else "")
    _writer.write(make_row(request_type=request_type, name=name, response_time=response_time,
                           response_length=response_length, exception=text, start_time=start_time,
                           end_time=time.time(), context=context, test_run=_current_run))


def _write_unfinished(sub: Submitted) -> None:
    """An evaluation still in flight when Locust stopped its user: a row, not a Locust request.

    Without it the slowest evaluations (a starved queue's) would silently drop out of the samples.
    Its ``response_time_ms`` is a lower bound: the time waited so far.
    """
    COUNTS.not_finished(sub.routes)  # the web UI's "Both queues" tab
    if _writer is None:
        return
    path = "both" if len(sub.routes) > 1 else sub.routes[0]
    _writer.write(make_row(
        request_type="E2E", name=path, response_time=(time.perf_counter() - sub.t0) * 1000, response_length=0,
        exception="Unfinished: the run ended before the evaluation did", start_time=sub.start_time,
        end_time=time.time(), test_run=_current_run,
        context={"eval_id": sub.eval_id, "path": path, "priority": sub.priority, "batch": sub.batch,
                 "language": sub.program.language, "program": sub.program.kind, "status": "unfinished",
                 "forced": sub.forced}))


@events.test_stop.add_listener
def _on_test_stop(**_: Any) -> None:
    if _writer is not None:
        _writer.flush()


@events.quitting.add_listener
def _on_quitting(**_: Any) -> None:
    if _writer is not None:
        _writer.close()


# -- the gateway client ------------------------------------------------------------------------------


@dataclass
class Submitted:
    eval_id: str
    routes: list[str]
    program: Program
    priority: int
    batch: bool
    t0: float  # perf_counter just before the submission
    start_time: float  # epoch seconds, same instant
    submit_ms: float  # the POST /api/eval round trip (its ``POST submit`` row's response_time_ms)
    forced: bool = False  # the user chose the path (--route), not the gateway's split


_user_numbers = itertools.count()


class EvaluationUser(User):
    """Shared by every user: a seeded ``random.Random``, a connection pool, submit and follow."""

    abstract = True
    concurrency = 2  # connections to the gateway

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        runner = environment.runner
        worker = getattr(runner, "worker_index", 0) if runner is not None else 0
        seed = _option(environment, "seed", 0)
        self.rng = random.Random(f"{seed}/{worker}/{next(_user_numbers)}")
        self.http: HTTPClient | None = None

    def on_start(self) -> None:
        if not self.host:
            raise ValueError("no host: start Locust with -H <gateway URL> (harness load fills it in)")
        self.http = HTTPClient.from_url(self.host, concurrency=self.concurrency, connection_timeout=10,
                                        network_timeout=POLL_WAIT_S + 30)

    def on_stop(self) -> None:
        if self.http is not None:
            self.http.close()

    def wait_time(self) -> float:
        think = float(_option(self.environment, "think_time", 1.0))
        return self.rng.uniform(0.5 * think, 1.5 * think) if think > 0 else 0.0

    # -- one submission ----------------------------------------------------------------------------

    def submit(self, program: Program, *, priority: int, batch: bool) -> Submitted | None:
        assert self.http is not None
        route = _option(self.environment, "route", "split")
        body: dict[str, Any] = {"code": program.code, "language": program.language, "priority": priority,
                                "batch": batch, "timeout_s": program.timeout_s}
        forced = route not in ("split", "control") or (route == "control" and self.rng.random() < 0.5)
        if forced:
            body["route"] = "legacy" if route == "control" else route
        context: dict[str, Any] = {"priority": priority, "batch": batch, "language": program.language,
                                   "program": program.kind, "forced": forced}
        start_time, t0 = time.time(), time.perf_counter()
        exception: Exception | None = None
        length = 0
        accepted: tuple[str, list[str]] | None = None
        try:
            resp = self.http.post("/api/eval", body=json.dumps(body), headers=HEADERS)
            raw = resp.read()
            length = len(raw)
            context["http_status"] = resp.status_code
            if resp.status_code == 201:
                data = json.loads(raw)
                routes = list(data["routes"])
                context.update(eval_id=data["eval_id"], path="both" if len(routes) > 1 else routes[0])
                accepted = data["eval_id"], routes
            else:
                exception = SubmitRejected(f"HTTP {resp.status_code}")
                context["detail"] = raw[:300].decode("utf-8", "replace")
        except Exception as exc:  # no answer at all: refused, reset, timed out
            exception = SubmitRejected(f"no answer ({type(exc).__name__})")
            context.update(http_status=0, detail=str(exc)[:300])
        submit_ms = (time.perf_counter() - t0) * 1000
        self.environment.events.request.fire(
            request_type="POST", name="submit", response_time=submit_ms,
            response_length=length, exception=exception, context=context, start_time=start_time, url="/api/eval")
        if accepted is None:
            return None
        return Submitted(accepted[0], accepted[1], program, priority, batch, t0, start_time, submit_ms, forced)

    # -- following it to the end -----------------------------------------------------------------------

    def follow(self, sub: Submitted) -> None:
        """Long-poll until every path is terminal or the E2E timeout passes, then report ``E2E <path>``."""
        try:
            self._follow(sub)
        except gevent.GreenletExit:
            _write_unfinished(sub)
            raise

    def _follow(self, sub: Submitted) -> None:
        assert self.http is not None
        deadline = sub.t0 + float(_option(self.environment, "e2e_timeout", 120.0))
        record: dict[str, Any] | None = None
        http_status: int | None = None
        seen_wall: float | None = None  # time.time() when the last record read came back
        exception: Exception | None = None
        detail = ""
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            try:
                resp = self.http.get(f"/api/eval/{sub.eval_id}?wait={min(POLL_WAIT_S, remaining):.2f}",
                                     headers=HEADERS)
                raw = resp.read()
                http_status, seen = resp.status_code, time.time()
            except Exception as exc:  # the gateway did not answer: try again until the deadline
                http_status, detail = 0, f"{type(exc).__name__}: {exc}"
                gevent.sleep(min(0.5, max(remaining, 0)))
                continue
            if http_status == 404:
                exception, detail = Lost("the gateway no longer knows this evaluation"), raw[:300].decode(
                    "utf-8", "replace")
                break
            if http_status != 200:  # 503 while a backend is down: keep polling until the deadline
                detail = f"HTTP {http_status}: {raw[:200].decode('utf-8', 'replace')}"
                gevent.sleep(min(0.5, max(remaining, 0)))
                continue
            record, seen_wall = json.loads(raw), seen
            if record.get("done"):
                break
        elapsed_ms = (time.perf_counter() - sub.t0) * 1000
        path = "both" if len(sub.routes) > 1 else sub.routes[0]
        context: dict[str, Any] = {"eval_id": sub.eval_id, "path": path, "priority": sub.priority,
                                   "forced": sub.forced,
                                   "batch": sub.batch, "language": sub.program.language,
                                   "program": sub.program.kind, "http_status": http_status}
        length = 0
        if exception is not None:
            context.update(status="lost", detail=detail)
        elif record is None or not record.get("done"):
            exception = Stuck(f"not terminal within {float(_option(self.environment, 'e2e_timeout', 120.0)):g} s")
            statuses = ({p: r.get("status") for p, r in record.get("results", {}).items()} if record else {})
            context.update(status="stuck", detail=detail or f"last statuses {statuses}")
        else:
            results: dict[str, dict[str, Any]] = record.get("results", {})
            statuses = {p: str(r.get("status")) for p, r in results.items()}
            context["status"] = next(iter(statuses.values())) if len(set(statuses.values())) == 1 else "mixed"
            errors = {p: r.get("error") for p, r in results.items() if r.get("status") == "error"}
            if errors:
                exception = PlatformError("a path ended with status 'error'")
                context["detail"] = "; ".join(f"{p}: {str(e)[:200]}" for p, e in errors.items())
            finished = [r["finished_at"] for r in results.values() if r.get("finished_at")]
            if finished and record.get("created_at"):
                context["server_ms"] = (max(finished) - float(record["created_at"])) * 1000
            if sub.program.expected is not None and not errors:
                disagreeing = [p for p, r in results.items() if sub.program.expected.differences(r)]
                context["oracle_ok"] = not disagreeing
                COUNTS.disagree(disagreeing)  # the web UI's "Both queues" tab
            length = sum(len(r.get("output") or "") for r in results.values())
            context.update(stages_of(record, path, submit_ms=sub.submit_ms, seen_wall=seen_wall))
        self.environment.events.request.fire(
            request_type="E2E", name=path, response_time=elapsed_ms, response_length=length, exception=exception,
            context=context, start_time=sub.start_time, url=f"/api/eval/{sub.eval_id}")

    def draw(self, *, batch: bool) -> tuple[Program, int]:
        cap = int(_option(self.environment, "output_cap", 65536))
        return draw_program(self.rng, output_cap=cap), draw_priority(self.rng, batch=batch)


class InteractiveUser(EvaluationUser):
    """Submits one program, waits for its result, thinks, and submits the next."""

    weight = 4

    @task
    def evaluate(self) -> None:
        program, priority = self.draw(batch=False)
        sub = self.submit(program, priority=priority, batch=False)
        if sub is not None:
            self.follow(sub)


class BatchUser(EvaluationUser):
    """Submits a batch (``batch: true``, priority 0-2) and follows every evaluation of it at once."""

    weight = 1

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.batch_size = int(_option(environment, "batch_size", 8))
        self.concurrency = self.batch_size + 1

    def wait_time(self) -> float:
        return 3 * super().wait_time()  # batches come less often than interactive submissions

    @task
    def submit_batch(self) -> None:
        size = self.rng.randint(max(1, self.batch_size // 2), self.batch_size)
        group = gevent.pool.Group()
        try:
            for _ in range(size):
                program, priority = self.draw(batch=True)
                sub = self.submit(program, priority=priority, batch=True)
                if sub is not None:
                    group.spawn(self.follow, sub)  # follow at once: a sequential wait would inflate E2E
            group.join()
        finally:
            group.kill()  # the user was stopped mid-batch: do not leave followers behind


class SubmitOnlyUser(EvaluationUser):
    """Submits without following (``LOAD_MODE=submit``): what the gateway alone can take."""

    concurrency = 1

    @task
    def submit_only(self) -> None:
        program, priority = self.draw(batch=False)
        self.submit(program, priority=priority, batch=False)
