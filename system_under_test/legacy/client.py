"""Submitting to the legacy queue (used by the gateway)."""

from __future__ import annotations

import json
from typing import Any

from redis.client import Pipeline

from system_under_test.store import LEGACY_QUEUE


def job_payload(*, eval_id: str, code: str, language: str, timeout_s: float | None, queued_at: float,
                exactly_once: bool = False) -> str:
    """The job as the legacy workers pop it; ``exactly_once`` (a safe fallback) makes the worker claim it."""
    job: dict[str, Any] = {"eval_id": eval_id, "code": code, "language": language,
                           "timeout_s": timeout_s, "queued_at": queued_at}
    if exactly_once:
        job["exactly_once"] = True
    return json.dumps(job)


def enqueue(pipe: Pipeline, payload: str) -> None:
    """Queue the job in the caller's pipeline, so it lands together with the record or not at all."""
    pipe.lpush(LEGACY_QUEUE, payload)
