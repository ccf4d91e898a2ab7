"""Per-request rows: one JSON line per Locust request event, written by the Locust process itself.

Each Locust process that runs users (the only process in a local run; every worker in distributed
mode) appends to its own file ``<LOAD_ROWS_DIR>/requests-<host>-<pid>.jsonl``, opened lazily so a
worker forked by ``--processes`` never shares a file handle with its parent. The parent reads every
file of the folder back (``harness.load.frames``) and writes ``load_requests.parquet``; rows from
workers on other machines are copied into the same folder first (see the README's "Load" section).

Row fields (``Row``): ``time`` (epoch seconds the request started), ``end_time`` (when it ended),
``request_type`` (``POST`` for a submission, ``E2E`` for an evaluation followed to its end),
``name`` (``submit``, or the path for E2E: ``legacy``, ``celery``, ``both``), ``path`` (the path the
gateway chose; on a submit row too), ``response_time_ms``, ``ok``, ``eval_id``, ``status`` (the
evaluation's final status on E2E rows: ``completed``, ``failed``, ``timeout``, ``error``, ``stuck``,
``lost``, or ``unfinished`` for one still in flight when Locust stopped its user; ``None`` on
submit rows), ``http_status`` (the last HTTP status seen, 0 for no answer),
``priority``, ``batch``, ``language``, ``program`` (the mix entry), ``forced`` (the user forced the path
with ``--route``; the split's accuracy counts only evaluations the gateway routed), ``oracle_ok`` (did every path's
result agree with the program's oracle; ``None`` when not checked), ``server_ms`` (the platform's
own ``finished_at - created_at``), ``response_length``, ``exception``, ``worker``, ``test_run`` (the
number of the run in this Locust process: the web UI can start several).

Stage fields (``stages_of``), set only on an E2E row whose evaluation went down exactly one path
(``legacy`` or ``celery``, the record's only result being that path's) and whose record became
done; ``None`` on every other row (``both``, ``lost``, ``stuck``, ``unfinished``, submit rows) and
wherever a timestamp or value they need is missing. ``queued_at`` and ``started_at`` come from the
platform's clock, the client's ``time.time()`` from the Locust machine's: they are comparable only
when both run on one machine (or on synchronised clocks). The stages overlap and do not add up to
``response_time_ms``: the gateway reads ``queued_at`` while the client's POST is still in flight, so
the rest of the POST counts in both ``submit_ms`` and ``queue_ms``.

- ``submit_ms``: the round trip of this evaluation's ``POST /api/eval`` as the client measured it
  (the ``response_time_ms`` of its ``POST submit`` row).
- ``queue_ms``: ``(started_at - queued_at) * 1000`` of the path's result: from the gateway's clock
  reading just before it enqueued the evaluation until the worker began the attempt that produced
  the result (on Celery, earlier failed attempts and their retry back-off count here).
- ``execution_ms``: the result's ``duration_ms``, the sandboxed program's own run time as the
  executor measured it (no executor slot wait, no HTTP).
- ``delivery_ms``: ``(seen_wall - started_at) * 1000 - duration_ms``, where ``seen_wall`` is the
  client's ``time.time()`` when the long-poll that returned the done record came back: everything
  from the worker beginning the attempt to the client holding the result except the execution
  itself (the worker's call to the executor and any wait there for a free slot, storing the result,
  the event that wakes the gateway's long-poll, the response); a value below 0 by less than 1 ms
  (rounding) is 0, a larger negative one is kept (clock skew shows instead of being hidden).
- ``cpu_ms``: the result's ``cpu_ms``, user + system CPU time of all the submission's processes.
- ``peak_rss_kb``: the result's ``peak_rss_kb``, the largest peak resident set size among them (KiB).
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, TypedDict

from harness.vocabulary import PATHS, TERMINAL


class Stages(TypedDict):
    """The stage fields of a row (see the module's docstring)."""

    submit_ms: float | None
    queue_ms: float | None
    execution_ms: float | None
    delivery_ms: float | None
    cpu_ms: float | None
    peak_rss_kb: int | None


class Row(Stages):
    time: float
    end_time: float
    request_type: str
    name: str
    path: str | None
    response_time_ms: float
    ok: bool
    eval_id: str | None
    status: str | None
    http_status: int | None
    priority: int | None
    batch: bool | None
    language: str | None
    program: str | None
    oracle_ok: bool | None
    forced: bool | None  # the path was forced by the user (--route), not chosen by the gateway's split
    server_ms: float | None
    response_length: int
    exception: str | None
    worker: str
    test_run: int


STAGE_FIELDS: tuple[str, ...] = tuple(Stages.__annotations__)
_OWN = tuple(k for k in Row.__annotations__ if k not in STAGE_FIELDS)
# the stages after server_ms, where a reader of the table looks for timings
COLUMNS: tuple[str, ...] = (*_OWN[:_OWN.index("server_ms") + 1], *STAGE_FIELDS, *_OWN[_OWN.index("server_ms") + 1:])
NO_STAGES = Stages(submit_ms=None, queue_ms=None, execution_ms=None, delivery_ms=None, cpu_ms=None, peak_rss_kb=None)
_ROUNDING_MS = 1.0  # a delivery this little below 0 is rounding, not skew


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def stages_of(record: Mapping[str, Any] | None, path: str, *, submit_ms: float | None,
              seen_wall: float | None) -> Stages:
    """The stage fields of the E2E row of ``record`` (its last read, ``None`` if none), reported as ``path``.

    ``seen_wall``: the client's ``time.time()`` when that read came back. All ``None`` unless ``path`` is
    one path, the record is done and its only result is that path's, with a terminal status.
    """
    if path not in PATHS or record is None or not record.get("done"):
        return NO_STAGES.copy()
    results = record.get("results") or {}
    if set(results) != {path}:
        return NO_STAGES.copy()
    result = results[path]
    if result.get("status") not in TERMINAL:
        return NO_STAGES.copy()
    queued, started = _number(result.get("queued_at")), _number(result.get("started_at"))
    duration, seen = _number(result.get("duration_ms")), _number(seen_wall)
    delivery = None
    if started is not None and duration is not None and seen is not None:
        delivery = (seen - started) * 1000.0 - duration
        if -_ROUNDING_MS < delivery < 0:
            delivery = 0.0
    rss = result.get("peak_rss_kb")
    return Stages(
        submit_ms=_number(submit_ms),
        queue_ms=None if queued is None or started is None else (started - queued) * 1000.0,
        execution_ms=duration, delivery_ms=delivery, cpu_ms=_number(result.get("cpu_ms")),
        peak_rss_kb=int(rss) if isinstance(rss, int | float) and not isinstance(rss, bool) else None,
    )


def make_row(*, request_type: str, name: str, response_time: float, response_length: int | None,
             exception: BaseException | str | None, start_time: float | None, end_time: float,
             context: dict[str, Any] | None, test_run: int) -> Row:
    """A row from the arguments of a Locust ``request`` event; extras come from its ``context``."""
    ctx = context or {}
    start = start_time if start_time is not None else end_time - response_time / 1000.0
    return Row(
        time=start, end_time=end_time, request_type=request_type, name=name, path=ctx.get("path"),
        response_time_ms=float(response_time), ok=exception is None, eval_id=ctx.get("eval_id"),
        status=ctx.get("status"), http_status=ctx.get("http_status"), priority=ctx.get("priority"),
        batch=ctx.get("batch"), language=ctx.get("language"), program=ctx.get("program"),
        oracle_ok=ctx.get("oracle_ok"), forced=ctx.get("forced"), server_ms=ctx.get("server_ms"),
        submit_ms=ctx.get("submit_ms"),
        queue_ms=ctx.get("queue_ms"), execution_ms=ctx.get("execution_ms"), delivery_ms=ctx.get("delivery_ms"),
        cpu_ms=ctx.get("cpu_ms"), peak_rss_kb=ctx.get("peak_rss_kb"), response_length=int(response_length or 0),
        exception=None if exception is None else (exception if isinstance(exception, str) else
                                                  f"{type(exception).__name__}: {exception}"),
        worker=f"{socket.gethostname()}:{os.getpid()}", test_run=test_run,
    )


class RowWriter:
    """Appends rows as JSON lines to this process's own file in ``folder``; ``flush`` on every stop."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._file: IO[str] | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        return self.folder / f"requests-{socket.gethostname()}-{os.getpid()}.jsonl"

    def write(self, row: Row) -> None:
        line = json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._lock:
            if self._file is None or self._pid != os.getpid():  # first row, or first row after a fork
                self.folder.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (kept open for the run)
                self._pid = os.getpid()
            self._file.write(line)

    def flush(self) -> None:
        with self._lock:
            if self._file is not None and self._pid == os.getpid():
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None and self._pid == os.getpid():
                self._file.close()
            self._file = None
