"""The executor service over real HTTP: results, 4xx for bad requests, and the ledger."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from harness.stack.ports import free_port
from harness.stack.process import ManagedProcess


@pytest.fixture(scope="module")
def executor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    tmp = tmp_path_factory.mktemp("executor")
    port = free_port()
    ledger = tmp / "ledger.jsonl"
    url = f"http://127.0.0.1:{port}"
    proc = ManagedProcess(
        "executor-7", [sys.executable, "-m", "system_under_test.executor"],
        env={"PATH": "/usr/bin:/bin", "EXECUTOR_ID": "executor-7", "EXECUTOR_PORT": str(port),
             "EXECUTOR_LEDGER_PATH": str(ledger), "EXECUTOR_TIMEOUT_S": "2", "EXECUTOR_OUTPUT_BYTES": "1000"},
        log_path=tmp / "executor.log", ready=lambda: requests.get(url + "/health", timeout=0.5).ok)
    proc.start()
    try:
        proc.wait_ready(20)
        yield url, ledger, tmp / "executor.log"
    finally:
        proc.stop()


def test_execute_returns_the_result_with_the_executor_id(executor: tuple[str, Path, Path]) -> None:
    url, _, _ = executor
    body = requests.post(url + "/execute", json={"eval_id": "e-1", "code": "print('hello')",
                                                 "language": "python"}, timeout=10).json()
    assert body == {**body, "output": "hello\n", "error": "", "exit_code": 0, "timed_out": False,
                    "truncated": False, "executor_id": "executor-7"}
    assert body["duration_ms"] > 0
    assert body["cpu_ms"] > 0 and 1024 < body["peak_rss_kb"] < 64 * 1024  # the submission's, not the executor's


def test_the_executor_says_how_it_isolates_submissions_when_it_starts(executor: tuple[str, Path, Path]) -> None:
    _, _, log = executor
    expected = "sandbox isolation 'namespaces'" if os.geteuid() == 0 else "sandbox isolation 'user' (WEAKER)"
    assert any(line.startswith(f"executor-7: {expected}") for line in log.read_text().splitlines())


def test_defaults_from_the_environment_apply(executor: tuple[str, Path, Path]) -> None:
    url, _, _ = executor
    flood = requests.post(url + "/execute", json={"eval_id": "e-2", "code": "print('x' * 5000)",
                                                  "language": "python"}, timeout=10).json()
    slow = requests.post(url + "/execute", json={"eval_id": "e-3", "code": "sleep 10", "language": "bash"},
                         timeout=10).json()
    assert flood["truncated"] and len(flood["output"]) == 1000
    assert slow["timed_out"] and slow["exit_code"] == 137


@pytest.mark.parametrize("payload, field", [
    ({"eval_id": "e", "code": "x", "language": "ruby"}, "language"),
    ({"eval_id": "e", "code": "x"}, "language"),
    ({"eval_id": "bad id/", "code": "x", "language": "python"}, "eval_id"),
    ({"eval_id": "e", "code": "x", "language": "python", "timeout_s": -1}, "timeout_s"),
    ({"eval_id": "e", "code": "x", "language": "python", "timeout_s": 10_000}, "timeout_s"),
])
def test_a_bad_request_gets_a_4xx_naming_the_field(executor: tuple[str, Path, Path], payload: dict, field: str) -> None:
    url, _, _ = executor
    resp = requests.post(url + "/execute", json=payload, timeout=10)
    assert 400 <= resp.status_code < 500
    assert field in [p["field"] for p in resp.json()["problems"]]


def test_malformed_json_is_a_400_that_says_so(executor: tuple[str, Path, Path]) -> None:
    url, _, _ = executor
    resp = requests.post(url + "/execute", data='{"eval_id": ', headers={"content-type": "application/json"},
                         timeout=10)
    assert resp.status_code == 400 and resp.json()["error"] == "malformed JSON"


def test_every_execution_is_in_the_ledger_exactly_once(executor: tuple[str, Path, Path]) -> None:
    url, ledger, _ = executor
    for attempt in (1, 2):
        requests.post(url + "/execute", json={"eval_id": "ledgered", "code": "exit 3", "language": "bash",
                                              "attempt": attempt, "path": "celery"}, timeout=10)
    rows = [json.loads(line) for line in ledger.read_text().splitlines()]
    mine = [r for r in rows if r["eval_id"] == "ledgered"]
    assert [(r["attempt"], r["path"], r["exit_code"], r["outcome"], r["executor_id"]) for r in mine] == [
        (1, "celery", 3, "failed", "executor-7"), (2, "celery", 3, "failed", "executor-7")]
    assert all(r["started_at"] <= r["finished_at"] for r in mine)
    assert all(r["cpu_ms"] > 0 and r["peak_rss_kb"] > 0 for r in mine)
    served = requests.get(url + "/ledger", params={"eval_id": "ledgered"}, timeout=10).json()
    assert served == mine
    rejected = [r for r in rows if r["eval_id"] == "e"]
    assert rejected == []  # a refused request is not an execution
