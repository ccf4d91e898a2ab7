"""Celery retries, the dead-letter list, and 503s for unreachable backends, on a stack of their own."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from redis import Redis

from harness.client import wait_terminal
from harness.run import RunFolder
from harness.stack.config import StackConfig
from harness.stack.processes import ProcessesStack
from harness.vocabulary import DLQ_KEY

BACKOFF_S = 0.5


@pytest.fixture(scope="module")
def small_stack(run_folder: RunFolder, launch_stack: Any) -> Iterator[ProcessesStack]:
    config = StackConfig(retry_backoff_s=BACKOFF_S, max_retries=3, legacy_workers=1, flower=False,
                         executor_timeout_s=5.0, extra_env={"EXECUTOR_MAX_TIMEOUT_S": "5"})
    run = RunFolder.create(root=run_folder.path.parent, run_id=run_folder.run_id + "-faults")
    with launch_stack(config, run) as stack:
        yield stack


def submit(stack: ProcessesStack, route: str, code: str = "print('back')") -> requests.Response:
    assert stack.endpoints is not None
    return requests.post(stack.endpoints.gateway + "/api/eval",
                         json={"code": code, "language": "python", "route": route}, timeout=30)


def test_with_executor_3_down_a_task_retries_with_backoff_then_is_dead_lettered(small_stack: ProcessesStack) -> None:
    assert small_stack.endpoints is not None
    executor = small_stack.component("executor-3")
    executor.kill()
    try:
        eval_id = submit(small_stack, "celery").json()["eval_id"]
        result = wait_terminal(small_stack.endpoints.gateway, eval_id, 30)["results"]["celery"]
    finally:
        executor.start()
        executor.wait_ready()
    assert result["status"] == "error" and result["attempts"] == 4
    assert "dead-lettered after 4 attempts" in result["error"]
    waited = result["finished_at"] - result["queued_at"]
    assert waited >= BACKOFF_S * (1 + 2 + 4) * 0.9, f"retries came after {waited:.2f}s, faster than the backoff"
    broker = Redis.from_url(small_stack.endpoints.celery_redis)
    letters = [json.loads(x) for x in broker.lrange(DLQ_KEY, 0, -1)]
    assert [(d["eval_id"], d["attempts"]) for d in letters if d["eval_id"] == eval_id] == [(eval_id, 4)]
    ledger = requests.get(small_stack.endpoints.executors["executor-3"] + "/ledger",
                          params={"eval_id": eval_id}, timeout=5).json()
    assert ledger == []


def test_with_executor_3_back_in_time_the_retried_task_completes(small_stack: ProcessesStack) -> None:
    assert small_stack.endpoints is not None
    executor = small_stack.component("executor-3")
    executor.kill()
    eval_id = submit(small_stack, "celery").json()["eval_id"]
    time.sleep(0.2)
    executor.start()
    executor.wait_ready()
    result = wait_terminal(small_stack.endpoints.gateway, eval_id, 30)["results"]["celery"]
    assert (result["status"], result["output"]) == ("completed", "back\n")
    assert 2 <= result["attempts"] <= 4
    ledger = requests.get(small_stack.endpoints.executors["executor-3"] + "/ledger",
                          params={"eval_id": eval_id}, timeout=5).json()
    assert [row["attempt"] for row in ledger] == [result["attempts"]]


def test_a_permanent_executor_error_is_not_retried(small_stack: ProcessesStack) -> None:
    # timeout_s above the executor's maximum (5 s here) passes the gateway, but the executor answers 4xx.
    assert small_stack.endpoints is not None
    resp = requests.post(small_stack.endpoints.gateway + "/api/eval",
                         json={"code": "print(1)", "language": "python", "route": "celery", "timeout_s": 30},
                         timeout=30)
    result = wait_terminal(small_stack.endpoints.gateway, resp.json()["eval_id"], 30)["results"]["celery"]
    assert result["status"] == "error" and result["attempts"] == 1 and "rejected the request" in result["error"]


def _record_count(stack: ProcessesStack) -> int:
    assert stack.endpoints is not None
    return len(list(Redis.from_url(stack.endpoints.main_redis).scan_iter("eval:*")))


def test_an_unreachable_celery_broker_is_a_503_naming_it_and_nothing_is_half_written(
        small_stack: ProcessesStack) -> None:
    broker = small_stack.component("celery-redis")
    before = _record_count(small_stack)
    broker.kill()
    try:
        for route in ("celery", "both"):
            resp = submit(small_stack, route)
            assert resp.status_code == 503, resp.text
            assert resp.json()["backend"] == "celery broker" and "nothing was queued" in resp.json()["hint"]
        assert _record_count(small_stack) == before
        assert Redis.from_url(small_stack.endpoints.main_redis).llen("queue:evaluations") == 0  # type: ignore[union-attr]
    finally:
        broker.start()
        broker.wait_ready()


def test_an_unreachable_main_redis_is_a_503_naming_it(small_stack: ProcessesStack) -> None:
    main = small_stack.component("main-redis")
    main.kill()
    try:
        resp = submit(small_stack, "legacy")
        assert resp.status_code == 503 and resp.json()["backend"] == "main redis"
        health = requests.get(small_stack.endpoints.gateway + "/health", timeout=10)  # type: ignore[union-attr]
        assert health.status_code == 503 and health.json()["backends"]["main_redis"].startswith("unreachable")
    finally:
        main.start()
        main.wait_ready()
