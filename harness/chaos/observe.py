"""Reading the platform's state during and after a chaos run, without changing anything.

The evaluation records on the main Redis (``eval:*``), the executors' ledgers, what is left on both
brokers (Celery queue lists at every priority, the ``unacked`` hash, the dead-letter list
``celery:dlq``, the legacy list ``queue:evaluations``), and ``quiesce``: waiting until every accepted
evaluation is terminal, or until nothing can change any more.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis as redis_lib

from harness.history import History
from harness.vocabulary import DLQ_KEY, LEGACY_QUEUE, TERMINAL, Record
from system_under_test.executor.ledger import read_ledger
from system_under_test.store import parse_record

PRIORITY_STEPS = range(10)


def _scan_records(main: redis_lib.Redis) -> dict[str, Record]:
    keys = list(main.scan_iter(match="eval:*", count=1000))
    pipe = main.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(key)
    out: dict[str, Record] = {}
    for raw in pipe.execute():
        if raw:
            rec = parse_record(raw)
            if rec.get("eval_id"):
                out[str(rec["eval_id"])] = rec
    return out


def read_records(main: redis_lib.Redis) -> dict[str, Record]:
    """Every evaluation record on the main Redis (``eval:*``), parsed as the gateway serves it."""
    return _scan_records(main)


def _queue_keys(queues: Sequence[str]) -> list[str]:
    return [q if pri == 0 else f"{q}:{pri}" for q in queues for pri in PRIORITY_STEPS]


def _backlog(main: redis_lib.Redis, broker: redis_lib.Redis, queues: Sequence[str]) -> int | None:
    """Messages still queued or unacked on either broker; None if a broker cannot be read."""
    try:
        pipe = broker.pipeline(transaction=False)
        for key in _queue_keys(queues):
            pipe.llen(key)
        pipe.hlen("unacked")
        celery = sum(int(x) for x in pipe.execute())
        return celery + int(main.llen(LEGACY_QUEUE))
    except redis_lib.RedisError:
        return None


def quiesce(main: redis_lib.Redis, broker: redis_lib.Redis, history: History, token: str, *, timeout_s: float,
            settle_s: float, queues: Sequence[str], poll_s: float = 0.25) -> str:
    """Wait until every accepted evaluation is terminal on every route it has; returns why it stopped.

    Stops early ("settled") when nothing can change any more: no message is queued or unacked on
    either broker and no record of the workload changed for ``settle_s`` (longer than any execution
    can run), so waiting longer would only add time.
    """
    deadline = time.monotonic() + timeout_s
    last_change = time.monotonic()
    last: tuple[Any, ...] | None = None
    mark = f"chaos-{token}-"
    quiet = 0  # consecutive polls with everything terminal and nothing queued or unacked
    pending: list[str] = []
    backlog: int | None = None
    while True:
        acked = {op.eval_id for op in history.ops if op.f == "submit" and op.type == "ok" and op.eval_id}
        try:
            records = _scan_records(main)
        except redis_lib.RedisError:
            records = None
        if records is not None:
            mine = {i: r for i, r in records.items() if mark in str(r.get("code") or "")}
            pending = sorted(i for i in acked if i not in mine)
            pending += sorted(i for i, r in mine.items()
                              if any((r.get("results") or {}).get(p, {}).get("status") not in TERMINAL
                                     for p in r.get("routes", [])))
            state = tuple(sorted((i, p, r.get("status"), r.get("attempts")) for i, rec in mine.items()
                                 for p, r in (rec.get("results") or {}).items()))
            if state != last:
                last, last_change = state, time.monotonic()
            backlog = _backlog(main, broker, queues)
            # Terminal is not enough: a restored or re-published copy may still be queued or unacked,
            # and running it turns a terminal result back into 'running'. Wait until the brokers are
            # empty too, on two polls in a row (a message between its ack and its 'running' write).
            quiet = quiet + 1 if not pending and backlog == 0 else 0
            if quiet >= 2:
                return "every accepted evaluation terminal, nothing queued or unacked"
            if pending and backlog == 0 and time.monotonic() - last_change >= settle_s:
                return (f"settled with {len(pending)} evaluation(s) not terminal (nothing queued or unacked, "
                        f"no record changed for {settle_s:g}s)")
        if time.monotonic() >= deadline:
            if records is None:
                return "timed out (the main Redis could not be read)"
            if not pending:
                return (f"timed out with every accepted evaluation terminal but {backlog if backlog is not None else 'an unknown number of'} "
                        "message(s) still queued or unacked")
            return f"timed out with {len(pending)} evaluation(s) not terminal"
        time.sleep(poll_s)


def _task_id(message: Any) -> str | None:
    """The Celery task id (= eval id) of a kombu message stored in Redis."""
    try:
        data = json.loads(message)
    except (TypeError, ValueError):
        return None
    if isinstance(data, list) and data:  # an unacked entry: [message, exchange, routing_key]
        data = data[0] if isinstance(data[0], dict) else json.loads(data[0])
    headers = data.get("headers") or {} if isinstance(data, dict) else {}
    task_id = headers.get("id") or (data.get("properties") or {}).get("correlation_id")
    return str(task_id) if task_id else None


def inspect_queues(main: redis_lib.Redis, broker: redis_lib.Redis, queues: Sequence[str]) -> dict[str, Any]:
    """What is left after quiesce on both brokers (nothing is removed)."""
    out: dict[str, Any] = {"celery_queued": {}, "celery_unacked": [], "dead_letters": [], "legacy_queued": [],
                           "problems": []}
    try:
        for key in _queue_keys(queues):
            ids = [_task_id(m) for m in broker.lrange(key, 0, -1)]
            if ids:
                out["celery_queued"][key] = [i for i in ids if i]
        out["celery_unacked"] = [i for i in (_task_id(m) for m in broker.hvals("unacked")) if i]
        for entry in broker.lrange(DLQ_KEY, 0, -1):
            with contextlib.suppress(ValueError):
                out["dead_letters"].append(json.loads(entry))
    except redis_lib.RedisError as exc:
        out["problems"].append(f"celery-redis: {exc}")
    try:
        for job in main.lrange(LEGACY_QUEUE, 0, -1):
            with contextlib.suppress(ValueError, KeyError):
                out["legacy_queued"].append(json.loads(job)["eval_id"])
    except redis_lib.RedisError as exc:
        out["problems"].append(f"main redis: {exc}")
    return out


def read_ledgers(folder: Path) -> list[dict[str, Any]]:
    """Every row of every executor's ledger in ``folder`` (``*.jsonl``)."""
    rows: list[dict[str, Any]] = []
    for file in sorted(Path(folder).glob("*.jsonl")):
        rows += [dict(r) for r in read_ledger(str(file))]
    return rows
