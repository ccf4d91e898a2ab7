"""Reading the platform's state during and after a chaos run, without changing anything.

The evaluation records on the main Redis (``eval:*``), the executors' ledgers, what is left on both
brokers (Celery queue lists at every priority, the ``unacked`` hash, the dead-letter list
``celery:dlq``, the legacy list ``queue:evaluations``), the event bus while the run lasts
(``EventRecorder``: every result change with its attempt), and ``quiesce``: waiting until every
accepted evaluation is terminal, or until nothing can change any more.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import redis as redis_lib

from harness.chaos.platform import UNACKED_KEY, queue_keys, task_id
from harness.history import History
from harness.vocabulary import ADMIN_CHANGES, DLQ_KEY, EVENTS_CHANNEL, LEGACY_QUEUE, TERMINAL, Record
from system_under_test.executor.ledger import read_ledger
from system_under_test.store import parse_record


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


def _backlog(main: redis_lib.Redis, broker: redis_lib.Redis, queues: Sequence[str]) -> int | None:
    """Messages still queued or unacked on either broker; None if a broker cannot be read."""
    try:
        pipe = broker.pipeline(transaction=False)
        for key in queue_keys(queues):
            pipe.llen(key)
        pipe.hlen(UNACKED_KEY)
        celery = sum(int(x) for x in pipe.execute())
        return celery + int(main.llen(LEGACY_QUEUE))
    except redis_lib.RedisError:
        return None


def quiesce(main: redis_lib.Redis, broker: redis_lib.Redis, history: History, token: str, *, timeout_s: float,
            settle_s: float, queues: Sequence[str], poll_s: float = 0.25,
            tick: Callable[[], bool] | None = None, tick_s: float = 1.0) -> str:
    """Wait until every accepted evaluation is terminal on every route it has; returns why it stopped.

    Stops early ("settled") when nothing can change any more: no message is queued or unacked on
    either broker and no record of the workload changed for ``settle_s`` (longer than any execution
    can run), so waiting longer would only add time. ``tick`` is called every ``tick_s`` (the runner's
    supervisor); when it says it changed something (a component started again), the wait to settle
    starts over.
    """
    deadline = time.monotonic() + timeout_s
    last_change = time.monotonic()
    next_tick = time.monotonic() + tick_s
    last: tuple[Any, ...] | None = None
    mark = f"chaos-{token}-"
    quiet = 0  # consecutive polls with everything terminal and nothing queued or unacked
    pending: list[str] = []
    backlog: int | None = None
    while True:
        if tick is not None and time.monotonic() >= next_tick:
            if tick():
                last_change, quiet = time.monotonic(), 0
            next_tick = time.monotonic() + tick_s
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


def inspect_queues(main: redis_lib.Redis, broker: redis_lib.Redis, queues: Sequence[str]) -> dict[str, Any]:
    """What is left after quiesce on both brokers (nothing is removed)."""
    out: dict[str, Any] = {"celery_queued": {}, "celery_unacked": [], "dead_letters": [], "legacy_queued": [],
                           "problems": []}
    try:
        for key in queue_keys(queues):
            ids = [task_id(m) for m in broker.lrange(key, 0, -1)]
            if ids:
                out["celery_queued"][key] = [i for i in ids if i]
        out["celery_unacked"] = [i for i in (task_id(m) for m in broker.hvals(UNACKED_KEY)) if i]
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


class EventRecorder:
    """Records the platform's event bus (every result change, ``EVENTS_CHANNEL``) while a run lasts.

    A thread subscribes on the main Redis and keeps each event with the time it arrived. Pub/sub
    delivers only to connected subscribers, so a dropped connection is a gap: it reconnects and
    records the gap (``gaps``), and a check that needs the events says it could not see them.
    """

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.events: list[dict[str, Any]] = []
        self.gaps: list[tuple[float, float]] = []  # (lost at, back at), epoch seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="event-recorder", daemon=True)
        self._subscribed = threading.Event()

    def __enter__(self) -> EventRecorder:
        self._thread.start()
        self._subscribed.wait(5.0)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5.0)

    def _run(self) -> None:
        lost_at: float | None = None
        while not self._stop.is_set():
            client = redis_lib.Redis.from_url(self.redis_url, socket_timeout=2, socket_connect_timeout=2)
            try:
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(EVENTS_CHANNEL)
                if lost_at is not None:
                    self.gaps.append((lost_at, time.time()))
                    lost_at = None
                self._subscribed.set()
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.2)
                    if message and message.get("type") == "message":
                        with contextlib.suppress(ValueError, TypeError):
                            event = json.loads(message["data"])
                            if isinstance(event, dict):
                                self.events.append({**event, "received_at": time.time()})
            except redis_lib.RedisError:
                lost_at = lost_at or time.time()
                self._stop.wait(0.2)
            finally:
                with contextlib.suppress(Exception):
                    client.close()
        if lost_at is not None:
            self.gaps.append((lost_at, time.time()))


def read_admin_history(main: redis_lib.Redis) -> list[dict[str, Any]]:
    """The gateway's settings changes of this run, oldest first ([] when it keeps none)."""
    out = []
    try:
        for raw in main.lrange(ADMIN_CHANGES, 0, -1):
            with contextlib.suppress(ValueError):
                entry = json.loads(raw)
                if isinstance(entry, dict):
                    out.append(entry)
    except redis_lib.RedisError:
        return []
    return out
