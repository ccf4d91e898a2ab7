"""The legacy worker loop: pop a job, run it on the next executor, store the result.

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

import requests
from redis import Redis
from redis.exceptions import RedisError

from system_under_test import executor_client
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
    while True:
        try:
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
        process(job, store, session, next(next_executor), worker_id)


def process(job: dict, store: EvaluationStore, session: requests.Session, executor_url: str,
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
