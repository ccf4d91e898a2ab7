"""Calling an executor over HTTP, shared by the legacy workers and the Celery task.

A transient failure (connection refused or reset, a read timeout, a 5xx) raises
``TransientExecutorError``: the caller may retry. A 4xx raises ``PermanentExecutorError``: the
request can never succeed. Anything else becomes the stored ``Result`` of the evaluation.
"""

from __future__ import annotations

import time
from typing import Any

import requests

from system_under_test.contract import Path, Result, status_of

# Time on top of the submission's own limit for the executor to start, queue and answer.
_READ_SLACK_S = 30.0


class ExecutorError(Exception):
    def __init__(self, message: str, *, url: str, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


class TransientExecutorError(ExecutorError):
    pass


class PermanentExecutorError(ExecutorError):
    pass


def execute(session: requests.Session, url: str, *, eval_id: str, code: str, language: str,
            timeout_s: float | None, path: Path, attempt: int) -> dict[str, Any]:
    """POST /execute and return the executor's JSON body; raises an ExecutorError subclass."""
    payload = {"eval_id": eval_id, "code": code, "language": language, "timeout_s": timeout_s,
               "attempt": attempt, "path": path}
    endpoint = url.rstrip("/") + "/execute"
    read = (timeout_s or 60.0) + _READ_SLACK_S
    try:
        resp = session.post(endpoint, json=payload, timeout=(3.0, read))
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise TransientExecutorError(f"executor {url} unreachable: {exc.__class__.__name__}: {exc}",
                                     url=url) from exc
    if resp.status_code >= 500:
        raise TransientExecutorError(f"executor {url} answered {resp.status_code}: {resp.text[:200]}",
                                     url=url, status=resp.status_code)
    if resp.status_code >= 400:
        raise PermanentExecutorError(f"executor {url} rejected the request ({resp.status_code}): "
                                     f"{resp.text[:500]}", url=url, status=resp.status_code)
    body: dict[str, Any] = resp.json()
    return body


def finished_result(body: dict[str, Any], *, queued_at: float, started_at: float, attempts: int) -> Result:
    return {
        "status": status_of(int(body["exit_code"]), bool(body["timed_out"])),
        "output": body["output"], "error": body["error"], "exit_code": int(body["exit_code"]),
        "timed_out": bool(body["timed_out"]), "truncated": bool(body["truncated"]),
        "duration_ms": float(body["duration_ms"]), "executor_id": body["executor_id"],
        "attempts": attempts, "queued_at": queued_at, "started_at": started_at,
        "finished_at": time.time(),
        # What the execution used, passed through as the executor measured it (absent: an older executor).
        "cpu_ms": None if body.get("cpu_ms") is None else float(body["cpu_ms"]),
        "peak_rss_kb": None if body.get("peak_rss_kb") is None else int(body["peak_rss_kb"]),
    }


def running_result(*, queued_at: float, started_at: float, attempts: int, executor_id: str | None) -> Result:
    return {"status": "running", "output": None, "error": None, "exit_code": None, "timed_out": None,
            "truncated": None, "duration_ms": None, "executor_id": executor_id, "attempts": attempts,
            "queued_at": queued_at, "started_at": started_at, "finished_at": None}


def error_result(message: str, *, queued_at: float, started_at: float | None, attempts: int,
                 executor_id: str | None = None) -> Result:
    """The result of an evaluation the platform could not run (executor down, rejected, ...)."""
    return {"status": "error", "output": None, "error": message, "exit_code": None, "timed_out": None,
            "truncated": None, "duration_ms": None, "executor_id": executor_id, "attempts": attempts,
            "queued_at": queued_at, "started_at": started_at, "finished_at": time.time()}
