"""The evaluation store and event bus on the main Redis.

A record per evaluation (hash ``eval:<id>``) holds what was submitted, the route(s) the gateway chose
and one result per path (field ``result:legacy`` / ``result:celery``, a JSON object); an evaluation that
fell back from Celery to legacy also has ``fallback`` (a JSON ``Fallback``), and one that must execute
exactly once overall has ``exactly_once`` = ``1`` (claims.py). A result is
written whole each time its status changes (``queued`` → ``running`` → ``completed`` | ``failed`` |
``timeout`` | ``error``), and each change is published on the ``evaluations:events`` channel.

A result is written only while its record exists (one Lua script: check, write, publish). If the
gateway rolled a submission back, a worker that still ran it cannot resurrect a half-written record;
its execution stays visible in the executors' ledger, which is where the harness looks for it.
"""

from __future__ import annotations

import json
import time
from typing import Any

from redis import Redis

from system_under_test.contract import (
    EVENTS_CHANNEL,
    LEGACY_QUEUE,
    TERMINAL,
    Event,
    Fallback,
    Path,
    Record,
    Result,
    record_key,
    status_of,
)

__all__ = ["EVENTS_CHANNEL", "LEGACY_QUEUE", "Event", "EvaluationStore", "Path", "Record", "Result", "parse_record",
           "queued_result", "record_key", "status_of"]

_WRITE_IF_EXISTS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
"""


def queued_result(queued_at: float) -> Result:
    return {"status": "queued", "output": None, "error": None, "exit_code": None, "timed_out": None,
            "truncated": None, "duration_ms": None, "executor_id": None, "attempts": 0,
            "queued_at": queued_at, "started_at": None, "finished_at": None}


class EvaluationStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._write = redis.register_script(_WRITE_IF_EXISTS)

    def record_fields(self, eval_id: str, *, code: str, language: str, routes: list[Path],
                      priority: int, batch: bool, timeout_s: float | None, created_at: float,
                      exactly_once: bool = False) -> dict[str, str]:
        fields = {
            "id": eval_id, "code": code, "language": language, "routes": json.dumps(routes),
            "priority": str(priority), "batch": "1" if batch else "0",
            "timeout_s": "" if timeout_s is None else repr(timeout_s), "created_at": repr(created_at),
        }
        if exactly_once:
            fields["exactly_once"] = "1"
        for path in routes:
            fields[f"result:{path}"] = json.dumps(queued_result(created_at))
        return fields

    def set_result(self, eval_id: str, path: Path, result: Result) -> bool:
        """Write one path's result and publish the change; False if the record does not exist."""
        event: Event = {"eval_id": eval_id, "path": path, "status": result["status"],
                        "attempts": int(result.get("attempts") or 0), "at": time.time()}
        written = self._write(keys=[record_key(eval_id)],
                              args=[f"result:{path}", json.dumps(result), EVENTS_CHANNEL, json.dumps(event)])
        return bool(written)

    def get(self, eval_id: str) -> Record | None:
        raw = self.redis.hgetall(record_key(eval_id))
        return parse_record(raw) if raw else None

    def delete(self, eval_id: str) -> None:
        self.redis.delete(record_key(eval_id))


def parse_record(raw: dict[Any, Any]) -> Record:
    """Turn a record hash (bytes or str keys) into the JSON shape the gateway serves."""
    def s(v: Any) -> str:
        return v.decode() if isinstance(v, bytes) else str(v)

    flat = {s(k): s(v) for k, v in raw.items()}
    results: dict[str, Result] = {k.split(":", 1)[1]: json.loads(v) for k, v in flat.items()
                                  if k.startswith("result:")}
    return {
        "eval_id": flat.get("id"),
        "language": flat.get("language"),
        "code": flat.get("code"),
        "routes": json.loads(flat.get("routes", "[]")),
        "priority": int(flat.get("priority", "5")),
        "batch": flat.get("batch") == "1",
        "timeout_s": float(flat["timeout_s"]) if flat.get("timeout_s") else None,
        "created_at": float(flat.get("created_at", "0")),
        "results": results,
        "done": bool(results) and all(r.get("status") in TERMINAL for r in results.values()),
        "fallback": _fallback(flat.get("fallback")),
    }


def _fallback(raw: str | None) -> Fallback | None:
    if not raw:
        return None
    doc: Fallback = json.loads(raw)
    return doc
