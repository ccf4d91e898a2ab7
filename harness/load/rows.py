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
``priority``, ``batch``, ``language``, ``program`` (the mix entry), ``oracle_ok`` (did every path's
result agree with the program's oracle; ``None`` when not checked), ``server_ms`` (the platform's
own ``finished_at - created_at``), ``response_length``, ``exception``, ``worker``, ``test_run`` (the
number of the run in this Locust process: the web UI can start several).
"""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path
from typing import IO, Any, TypedDict


class Row(TypedDict):
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
    server_ms: float | None
    response_length: int
    exception: str | None
    worker: str
    test_run: int


COLUMNS: tuple[str, ...] = tuple(Row.__annotations__)


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
        oracle_ok=ctx.get("oracle_ok"), server_ms=ctx.get("server_ms"), response_length=int(response_length or 0),
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
