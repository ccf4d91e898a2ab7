"""The legacy worker loop: pop a job, run it on the next executor, store the result.

Work in hand is visible, not protected: from the moment a worker has popped a job until its result is
stored, the main Redis hash ``legacy:inhand`` holds ``<worker id> -> {"eval_id", "since"}`` (HDEL
then). The pop itself stays the legacy queue's at-most-once ``BRPOP``: a worker that dies loses the
job it holds, and its in-hand entry says which one. The entry is written right after the pop returns,
so for one round trip a popped job is in neither the list nor the hash; a drain that reads both must
read them twice, a moment apart, before it concludes that nothing is in hand. A worker that starts
and finds an entry under its own id (its previous life died holding a job) logs the lost evaluation
and removes the entry: the hash says what is in hand now.

A job with ``"exactly_once": true`` (a safe fallback) is claimed first (system_under_test/claims.py);
if Celery holds the claim the worker does not run it and makes the record say that Celery has it.

Environment:
    REDIS_URL              main Redis (default redis://127.0.0.1:6379/0)
    LEGACY_EXECUTOR_URLS   comma-separated executor URLs, used round-robin
                           (default http://127.0.0.1:8001,http://127.0.0.1:8002)
    LEGACY_WORKER_ID       name in logs (default legacy-<pid>)
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import time
from typing import Any

import requests
from redis import Redis
from redis.exceptions import RedisError

from system_under_test import claims, executor_client
from system_under_test.contract import LEGACY_INHAND, InHand
from system_under_test.settings import env_list, env_str
from system_under_test.store import LEGACY_QUEUE, EvaluationStore

log = logging.getLogger("legacy.worker")
_POP_TIMEOUT_S = 1


def run_forever() -> None:
    redis_url = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
    executors = env_list("LEGACY_EXECUTOR_URLS", ["http://127.0.0.1:8001", "http://127.0.0.1:8002"])
    worker_id = env_str("LEGACY_WORKER_ID", f"legacy-{os.getpid()}")
    # socket_timeout must exceed the BRPOP block time, or redis-py turns an empty pop into errors.
    redis = Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=3)
    store = EvaluationStore(redis)
    session = requests.Session()
    next_executor = itertools.cycle(executors)
    log.info("%s ready: queue %s on %s, executors %s", worker_id, LEGACY_QUEUE, redis_url, executors)
    print(f"{worker_id} ready", flush=True)
    backoff = 0.1
    stale_checked = False
    while True:
        try:
            if not stale_checked:
                forget_stale(redis, worker_id)
                stale_checked = True
            item = redis.brpop([LEGACY_QUEUE], timeout=_POP_TIMEOUT_S)
            backoff = 0.1
        except RedisError as exc:
            log.warning("%s cannot pop from %s: %s; retrying in %.1fs", worker_id, redis_url, exc, backoff)
            time.sleep(backoff)
            backoff = min(backoff * 2, 2.0)
            continue
        if item is None:
            continue
        # From here until the result is stored, the job exists only in this process.
        job = json.loads(item[1])
        show_in_hand(redis, worker_id, job["eval_id"])
        try:
            handle(job, store, session, next(next_executor), worker_id)
        finally:
            show_in_hand(redis, worker_id, None)


def show_in_hand(redis: Redis, worker_id: str, eval_id: str | None) -> None:
    """Make ``legacy:inhand`` say what this worker holds (visibility only: a failure changes nothing else)."""
    try:
        if eval_id is None:
            redis.hdel(LEGACY_INHAND, worker_id)
        else:
            entry: InHand = {"eval_id": eval_id, "since": time.time()}
            redis.hset(LEGACY_INHAND, worker_id, json.dumps(entry))
    except RedisError as exc:
        log.warning("%s cannot update %s: %s", worker_id, LEGACY_INHAND, exc)


def forget_stale(redis: Redis, worker_id: str) -> None:
    """At start: an entry under this worker's id is a job its previous life held when it died."""
    raw = redis.hget(LEGACY_INHAND, worker_id)
    if raw is not None:
        log.warning("%s starts with %s in hand from its previous life: that evaluation was lost (the legacy "
                    "queue has no ack); removing the stale entry", worker_id,
                    raw.decode() if isinstance(raw, bytes) else raw)
        redis.hdel(LEGACY_INHAND, worker_id)


def handle(job: dict[str, Any], store: EvaluationStore, session: requests.Session, executor_url: str,
           worker_id: str) -> None:
    """Run one popped job, claiming it first if it must execute exactly once."""
    eval_id = job["eval_id"]
    if job.get("exactly_once"):
        try:
            won, holder = claims.claim(store.redis, eval_id, "legacy")
            if not won:
                if holder == "celery":
                    claims.yield_to_celery(store.redis, eval_id)
                log.warning("%s: evaluation %s not run: the %s path holds its exactly-once claim; the record "
                            "now routes it there", worker_id, eval_id, holder)
                return
        except RedisError as exc:  # the store is down: the job is dropped, as the legacy code does
            log.error("%s: cannot claim %s: %s", worker_id, eval_id, exc)
            return
    process(job, store, session, executor_url, worker_id)


def process(job: dict[str, Any], store: EvaluationStore, session: requests.Session, executor_url: str,
            worker_id: str) -> None:
    eval_id = job["eval_id"]
    started_at = time.time()
    try:
        store.set_result(eval_id, "legacy", executor_client.running_result(
            queued_at=job["queued_at"], started_at=started_at, attempts=1, executor_id=None))
        try:
            body = executor_client.execute(
                session, executor_url, eval_id=eval_id, code=job["code"], language=job["language"],
                timeout_s=job.get("timeout_s"), path="legacy", attempt=1)
            result = executor_client.finished_result(body, queued_at=job["queued_at"],
                                                     started_at=started_at, attempts=1)
        except executor_client.ExecutorError as exc:  # no retries in the legacy queue
            log.warning("%s: evaluation %s failed on %s: %s", worker_id, eval_id, executor_url, exc)
            result = executor_client.error_result(str(exc), queued_at=job["queued_at"],
                                                  started_at=started_at, attempts=1)
        store.set_result(eval_id, "legacy", result)
    except RedisError as exc:  # the store is down: the result is dropped, as the legacy code does
        log.error("%s: cannot store result of %s: %s", worker_id, eval_id, exc)
