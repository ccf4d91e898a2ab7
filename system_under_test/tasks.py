"""The Celery app and its tasks: ``celery -A system_under_test.tasks worker``.

Broker and result backend are celery-redis, a Redis separate from the main one. The task
``tasks.evaluate_code`` calls executor-3 (``EXECUTOR_SERVICE_URL``) and writes the result into the
same evaluation store as the legacy path. Transient executor errors (connection refused, 5xx,
timeouts) are retried with exponential backoff, ``CELERY_RETRY_BACKOFF_S × 2^retries`` seconds,
up to ``max_retries``; a task that exhausts them goes to the dead-letter list ``celery:dlq`` on
celery-redis and its result becomes ``error``. A permanent error (4xx) is not retried. An evaluation
whose record asks for exactly-once execution (a safe fallback, claims.py) is claimed first and skipped
if the legacy path holds the claim.

Delivery settings keep Celery's own defaults unless the environment sets them: early ack,
``reject_on_worker_lost`` off, visibility timeout 3600 s, prefetch multiplier 4, restore sweep
every 10 s × 10. Queues ``high_priority``, ``evaluation``, ``batch`` and ``maintenance`` use Redis
priorities (0 is the highest on Redis, steps 0..9, ``queue_order_strategy=priority``); task events
are on so Flower sees every task.

Environment:
    CELERY_BROKER_URL                broker (default redis://127.0.0.1:6380/0)
    CELERY_RESULT_BACKEND            result backend (default: the broker URL)
    REDIS_URL                        main Redis, the evaluation store (default redis://127.0.0.1:6379/0)
    EXECUTOR_SERVICE_URL             executor-3 (default http://127.0.0.1:8003)
    CELERY_ACKS_LATE                 task_acks_late (default false)
    CELERY_REJECT_ON_WORKER_LOST     task_reject_on_worker_lost (default false)
    CELERY_VISIBILITY_TIMEOUT        seconds before an unacked message is redelivered (default 3600)
    CELERY_PREFETCH_MULTIPLIER       worker_prefetch_multiplier (default 4)
    CELERY_RESTORE_INTERVAL          kombu unacked_restore_interval, seconds (default 10)
    CELERY_RESTORE_THROTTLE          kombu unacked_restore_throttle (default 10)
    CELERY_TASK_TIME_LIMIT           hard time limit, seconds (default 300)
    CELERY_TASK_SOFT_TIME_LIMIT      soft time limit, seconds (default 270)
    CELERY_MAX_RETRIES               retries on transient executor errors (default 3)
    CELERY_RETRY_BACKOFF_S           first retry countdown; doubles each retry (default 60)
    CELERY_CANDIDATE_DEFECTS         comma-separated defects for the power check (default none)
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

import requests
from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded
from kombu.entity import Queue
from redis import Redis

from system_under_test import claims, defects, executor_client
from system_under_test.contract import DLQ_KEY
from system_under_test.settings import env_bool, env_float, env_int, env_list, env_str
from system_under_test.store import EvaluationStore

log = logging.getLogger("celery.tasks")

QUEUES = ("high_priority", "evaluation", "batch", "maintenance")

BROKER_URL = env_str("CELERY_BROKER_URL", "redis://127.0.0.1:6380/0")
VISIBILITY_TIMEOUT = env_float("CELERY_VISIBILITY_TIMEOUT", 3600.0, minimum=1)
MAX_RETRIES = env_int("CELERY_MAX_RETRIES", 3, minimum=0)
RETRY_BACKOFF_S = env_float("CELERY_RETRY_BACKOFF_S", 60.0, minimum=0)
CANDIDATE_DEFECTS = defects.parse(env_list("CELERY_CANDIDATE_DEFECTS", []))

_transport_options = {
    "visibility_timeout": VISIBILITY_TIMEOUT,
    "priority_steps": list(range(10)),
    "sep": ":",
    "queue_order_strategy": "priority",
    "unacked_restore_interval": env_float("CELERY_RESTORE_INTERVAL", 10.0, minimum=0.1),
    "unacked_restore_throttle": env_int("CELERY_RESTORE_THROTTLE", 10, minimum=1),
}

app = Celery("tasks")
app.conf.update(
    broker_url=BROKER_URL,
    result_backend=env_str("CELERY_RESULT_BACKEND", BROKER_URL),
    broker_transport_options=_transport_options,
    result_backend_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT},
    visibility_timeout=VISIBILITY_TIMEOUT,
    broker_connection_retry_on_startup=True,
    task_serializer="json", accept_content=["json"], result_serializer="json",
    task_queues=[Queue(name) for name in QUEUES],
    task_default_queue="evaluation",
    task_default_priority=5,
    task_routes={
        "tasks.evaluate_code": {"queue": "evaluation"},
        "tasks.high_priority_eval": {"queue": "high_priority"},
        "tasks.batch_evaluation": {"queue": "batch"},
        "tasks.cleanup": {"queue": "maintenance"},
    },
    task_acks_late=env_bool("CELERY_ACKS_LATE", False),
    task_reject_on_worker_lost=env_bool("CELERY_REJECT_ON_WORKER_LOST", False),
    worker_prefetch_multiplier=env_int("CELERY_PREFETCH_MULTIPLIER", 4, minimum=0),
    task_time_limit=env_float("CELERY_TASK_TIME_LIMIT", 300.0, minimum=1),
    task_soft_time_limit=env_float("CELERY_TASK_SOFT_TIME_LIMIT", 270.0, minimum=1),
    worker_send_task_events=True,
    task_send_sent_event=True,
)

_clients: dict[str, Any] = {}


T = TypeVar("T")


def _per_process(name: str, factory: Callable[[], T]) -> T:
    """A client per process: prefork children must not share sockets opened by the parent."""
    key = f"{name}:{os.getpid()}"
    if key not in _clients:
        _clients[key] = factory()
    return cast(T, _clients[key])


def _store() -> EvaluationStore:
    url = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
    return _per_process("store", lambda: EvaluationStore(Redis.from_url(url, socket_timeout=10)))


def _session() -> requests.Session:
    return _per_process("session", requests.Session)


def _dead_letter(entry: dict[str, Any]) -> None:
    broker = _per_process("broker", lambda: Redis.from_url(BROKER_URL, socket_timeout=10))
    broker.lpush(DLQ_KEY, json.dumps(entry))


@app.task(bind=True, name="tasks.evaluate_code", max_retries=MAX_RETRIES)
def evaluate_code(self: Any, eval_id: str, code: str, language: str, timeout_s: float | None = None,
                  queued_at: float | None = None) -> dict[str, Any]:
    attempt = self.request.retries + 1
    queued = queued_at if queued_at is not None else time.time()
    started_at = time.time()
    store = _store()
    if claims.is_exactly_once(store.redis, eval_id):
        won, holder = claims.claim(store.redis, eval_id, "celery")
        if not won:
            log.warning("evaluation %s skipped: the %s path holds its exactly-once claim", eval_id, holder)
            return {"eval_id": eval_id, "status": "skipped", "claimed_by": holder}
    executor_url = env_str("EXECUTOR_SERVICE_URL", "http://127.0.0.1:8003")
    store.set_result(eval_id, "celery", executor_client.running_result(
        queued_at=queued, started_at=started_at, attempts=attempt, executor_id=None))
    if CANDIDATE_DEFECTS:  # the power check's deliberate bugs (never in a deployment)
        code = defects.apply_code(CANDIDATE_DEFECTS, code, language)
        timeout_s = defects.apply_timeout(CANDIDATE_DEFECTS, timeout_s)
    try:
        body = _execute(executor_url, eval_id=eval_id, code=code, language=language, timeout_s=timeout_s,
                        attempt=attempt)
    except executor_client.PermanentExecutorError as exc:
        store.set_result(eval_id, "celery", executor_client.error_result(
            str(exc), queued_at=queued, started_at=started_at, attempts=attempt))
        return {"eval_id": eval_id, "status": "error", "error": str(exc)}
    except executor_client.TransientExecutorError as exc:
        if self.request.retries >= self.max_retries:
            message = f"dead-lettered after {attempt} attempts: {exc}"
            if "no_dead_letter" not in CANDIDATE_DEFECTS:
                _dead_letter({"eval_id": eval_id, "task_id": self.request.id, "attempts": attempt,
                              "error": str(exc), "at": time.time()})
            store.set_result(eval_id, "celery", executor_client.error_result(
                message, queued_at=queued, started_at=started_at, attempts=attempt))
            log.error("evaluation %s %s", eval_id, message)
            raise
        countdown = RETRY_BACKOFF_S * (1 if "retry_fixed_countdown" in CANDIDATE_DEFECTS
                                       else 2 ** self.request.retries)
        store.set_result(eval_id, "celery", {
            **executor_client.error_result(str(exc), queued_at=queued, started_at=started_at,
                                           attempts=attempt),
            "status": "queued", "finished_at": None})
        log.warning("evaluation %s attempt %d failed (%s); retrying in %.1fs", eval_id, attempt, exc, countdown)
        raise self.retry(exc=exc, countdown=countdown) from exc
    except SoftTimeLimitExceeded:
        store.set_result(eval_id, "celery", executor_client.error_result(
            "task soft time limit exceeded", queued_at=queued, started_at=started_at, attempts=attempt))
        raise
    if CANDIDATE_DEFECTS:
        body = defects.apply(CANDIDATE_DEFECTS, body)
    result = executor_client.finished_result(body, queued_at=queued, started_at=started_at, attempts=attempt)
    store.set_result(eval_id, "celery", result)
    return {"eval_id": eval_id, "status": result["status"], "exit_code": result["exit_code"]}


def _execute(executor_url: str, **request: Any) -> dict[str, Any]:
    if "swallow_soft_time_limit" not in CANDIDATE_DEFECTS:
        return executor_client.execute(_session(), executor_url, path="celery", **request)
    # The defect: something ignores the pool's soft-timeout signal (billiard's SIGUSR1) during the call,
    # so the soft time limit never interrupts it.
    previous = signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    try:
        return executor_client.execute(_session(), executor_url, path="celery", **request)
    finally:
        signal.signal(signal.SIGUSR1, previous)


@app.task(name="tasks.cleanup")
def cleanup() -> dict[str, int]:
    """Maintenance: report the dead-letter list's length (kept, never dropped, for analysis)."""
    broker = _per_process("broker", lambda: Redis.from_url(BROKER_URL, socket_timeout=10))
    return {"dead_letters": int(broker.llen(DLQ_KEY))}
