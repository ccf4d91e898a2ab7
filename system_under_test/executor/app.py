"""The executor service (executor-1, -2, -3: identical code, different ``EXECUTOR_ID``).

``POST /execute`` runs one submission in the sandbox and returns its result; ``GET /health`` says
whether the service is up; ``GET /ledger`` serves the execution ledger. A submission's own failure
(non-zero exit, exception, timeout) is a normal 200 result: 4xx is reserved for requests that can
never succeed (unknown language, bad fields) and 5xx for the service's own faults, which callers
may retry.

Environment:
    EXECUTOR_ID               name in results and the ledger (default ``executor-1``)
    EXECUTOR_HOST/PORT        where to listen (default 127.0.0.1:8001)
    EXECUTOR_CONCURRENCY      executions at once; more requests wait (default 4)
    EXECUTOR_TIMEOUT_S        wall-clock limit when the request gives none (default 10)
    EXECUTOR_MAX_TIMEOUT_S    largest ``timeout_s`` a request may ask for (default 60)
    EXECUTOR_CPU_S            CPU-seconds limit (default: timeout rounded up + 1)
    EXECUTOR_MEMORY_MB        address-space limit (default 256)
    EXECUTOR_MAX_PROCS        process limit per execution (default 64)
    EXECUTOR_FILE_MB          largest file a submission may write (default 10)
    EXECUTOR_OUTPUT_BYTES     cap per stream before ``truncated`` (default 65536)
    EXECUTOR_LEDGER_PATH      JSONL ledger file (default ``./ledger/<EXECUTOR_ID>.jsonl``)
    EXECUTOR_LEDGER_FSYNC     fsync every ledger row (default false)
    SANDBOX_UID_BASE          first uid of this executor's execution slots when run as root
                              (default 61000 + 64 × the number in EXECUTOR_ID)
    SANDBOX_PYTHON            interpreter for python submissions (default: this one, if reachable)
    SANDBOX_NAMESPACES        as root, give each execution its own mount, PID, network, IPC and UTS
                              namespaces (default true); false keeps only the uid drop and the
                              empty network namespace (weaker; for measurements)

As root the executor checks at start-up that its sandbox can run a program and refuses to start,
saying what to change, if it cannot; it prints one line naming its isolation mode (see sandbox.py).
``/execute`` answers 500 with the reason if the sandbox itself fails (callers may retry).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from system_under_test import httperrors
from system_under_test.executor.ledger import Ledger, LedgerRow, Outcome
from system_under_test.executor.sandbox import LANGUAGES, Limits, Sandbox, SandboxError
from system_under_test.settings import env_bool, env_float, env_int, env_str


@dataclass(frozen=True)
class ExecutorSettings:
    executor_id: str
    host: str
    port: int
    concurrency: int
    timeout_s: float
    max_timeout_s: float
    cpu_s: int | None
    memory_mb: int
    max_procs: int
    file_mb: int
    output_bytes: int
    ledger_path: str
    ledger_fsync: bool
    uid_base: int
    python: str | None
    namespaces: bool

    @classmethod
    def from_env(cls) -> ExecutorSettings:
        executor_id = env_str("EXECUTOR_ID", "executor-1")
        digits = re.findall(r"\d+", executor_id)
        default_base = 61000 + 64 * (int(digits[-1]) % 60 if digits else 0)
        cpu = env_int("EXECUTOR_CPU_S", 0, minimum=0)
        return cls(
            executor_id=executor_id,
            host=env_str("EXECUTOR_HOST", "127.0.0.1"),
            port=env_int("EXECUTOR_PORT", 8001, minimum=0, maximum=65535),
            concurrency=env_int("EXECUTOR_CONCURRENCY", 4, minimum=1, maximum=64),
            timeout_s=env_float("EXECUTOR_TIMEOUT_S", 10.0, minimum=0.01),
            max_timeout_s=env_float("EXECUTOR_MAX_TIMEOUT_S", 60.0, minimum=0.01),
            cpu_s=cpu or None,
            memory_mb=env_int("EXECUTOR_MEMORY_MB", 256, minimum=16),
            max_procs=env_int("EXECUTOR_MAX_PROCS", 64, minimum=1),
            file_mb=env_int("EXECUTOR_FILE_MB", 10, minimum=0),
            output_bytes=env_int("EXECUTOR_OUTPUT_BYTES", 65536, minimum=0),
            ledger_path=env_str("EXECUTOR_LEDGER_PATH", f"ledger/{executor_id}.jsonl"),
            ledger_fsync=env_bool("EXECUTOR_LEDGER_FSYNC", False),
            uid_base=env_int("SANDBOX_UID_BASE", default_base, minimum=1000),
            python=env_str("SANDBOX_PYTHON", "") or None,
            namespaces=env_bool("SANDBOX_NAMESPACES", True),
        )

    def limits(self, timeout_s: float | None) -> Limits:
        timeout = self.timeout_s if timeout_s is None else timeout_s
        return Limits(
            timeout_s=timeout,
            cpu_s=self.cpu_s or math.ceil(timeout) + 1,
            memory_bytes=self.memory_mb * 1024 * 1024,
            max_procs=self.max_procs,
            file_bytes=self.file_mb * 1024 * 1024,
            output_bytes=self.output_bytes,
        )


class ExecuteRequest(BaseModel):
    eval_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    code: str
    language: str
    timeout_s: float | None = Field(default=None, gt=0)
    attempt: int = Field(default=1, ge=1)
    path: Literal["legacy", "celery", "direct"] = "direct"


def outcome_of(exit_code: int, timed_out: bool) -> Outcome:
    if timed_out:
        return "timeout"
    return "completed" if exit_code == 0 else "failed"


def create_app(settings: ExecutorSettings | None = None) -> FastAPI:
    cfg = settings or ExecutorSettings.from_env()
    sandbox = Sandbox(concurrency=cfg.concurrency, uid_base=cfg.uid_base, python=cfg.python,
                      namespaces=cfg.namespaces)
    sandbox.check()  # SandboxError says what to change; an executor that cannot isolate does not start
    ledger = Ledger(cfg.ledger_path, fsync=cfg.ledger_fsync)
    app = FastAPI(title=f"Crucible executor ({cfg.executor_id})", version="1.0")
    httperrors.install(app)
    busy = {"n": 0}

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "executor_id": cfg.executor_id, "busy": busy["n"],
                "concurrency": cfg.concurrency}

    @app.post("/execute", response_model=None)
    def execute(req: ExecuteRequest) -> dict[str, Any] | JSONResponse:
        if req.language not in LANGUAGES:
            return httperrors.problem(
                400, "language", f"unsupported language {req.language!r}; expected one of {list(LANGUAGES)}")
        if req.timeout_s is not None and req.timeout_s > cfg.max_timeout_s:
            return httperrors.problem(400, "timeout_s", f"must be <= {cfg.max_timeout_s}")
        busy["n"] += 1
        try:
            started_at = time.time()
            result = sandbox.run(req.code, req.language, cfg.limits(req.timeout_s))
            finished_at = time.time()
        except SandboxError as exc:  # the platform's fault, not the submission's: not an execution
            return JSONResponse(status_code=500, content={"error": "sandbox failure", "detail": str(exc)})
        finally:
            busy["n"] -= 1
        row: LedgerRow = {
            "eval_id": req.eval_id, "path": req.path, "attempt": req.attempt,
            "executor_id": cfg.executor_id, "started_at": started_at, "finished_at": finished_at,
            "exit_code": result.exit_code, "outcome": outcome_of(result.exit_code, result.timed_out),
            "timed_out": result.timed_out, "truncated": result.truncated,
            "duration_ms": result.duration_ms, "cpu_ms": result.cpu_ms, "peak_rss_kb": result.peak_rss_kb,
        }
        ledger.append(row)  # before the response: an execution the caller hears of is on record
        return {
            "output": result.output, "error": result.error, "exit_code": result.exit_code,
            "timed_out": result.timed_out, "truncated": result.truncated,
            "duration_ms": result.duration_ms, "executor_id": cfg.executor_id,
            "cpu_ms": result.cpu_ms, "peak_rss_kb": result.peak_rss_kb,
        }

    @app.get("/ledger")
    def get_ledger(eval_id: str | None = None) -> list[dict[str, Any]]:
        return [dict(row) for row in ledger.rows(eval_id)]

    app.state.settings = cfg
    app.state.ledger = ledger
    app.state.sandbox = sandbox
    return app
