"""The gateway's HTTP API (FastAPI, served by uvicorn).

``POST /api/eval`` accepts an evaluation and routes it by the split policy; ``GET /api/eval/{id}``
returns the record with one result per path (``?wait=S`` long-polls until every path is terminal);
``GET``/``PUT /api/admin/split`` read and change the split at run time (bearer token); ``GET
/api/stats`` counts routing decisions; ``GET /health`` checks both queue backends. The OpenAPI
schema is at ``/openapi.json`` and the interactive docs at ``/docs``.

A submission is written whole or not at all: the record and the legacy job are written in one
transaction on the main Redis, then the Celery task is published; if that publish fails the legacy
job and the record are removed again and the client gets a 503 that names the unreachable backend.

Environment:
    GATEWAY_HOST/PORT       where to listen (default 127.0.0.1:8000)
    REDIS_URL               main Redis: evaluation store and legacy queue (default redis://127.0.0.1:6379/0)
    CELERY_BROKER_URL       celery-redis (default redis://127.0.0.1:6380/0)
    CELERY_ENABLED          route anything to Celery at all (default true)
    CELERY_PERCENTAGE       share of evaluations sent to Celery, 0..100 (default 50)
    SPLIT_ROUTING           ``random`` or ``sticky`` (stable hash of the evaluation id) (default random)
    DUAL_WRITE              send every evaluation to both paths and keep both results (default false)
    ADMIN_TOKEN             bearer token for /api/admin/split; unset disables the endpoint
    MAX_CODE_BYTES          largest accepted submission (default 65536)
    MAX_TIMEOUT_S           largest ``timeout_s`` a submission may ask for (default 60)
    GATEWAY_SEED            seed for ``random`` routing (default: unseeded)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import redis.asyncio as aioredis
from fastapi import FastAPI, Header, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from redis import Redis
from redis.exceptions import RedisError

from system_under_test import httperrors
from system_under_test.executor.sandbox import LANGUAGES
from system_under_test.gateway.split import Override, SplitPolicy
from system_under_test.legacy import client as legacy_client
from system_under_test.settings import env_bool, env_float, env_int, env_str
from system_under_test.store import EVENTS_CHANNEL, LEGACY_QUEUE, EvaluationStore, parse_record, record_key


@dataclass(frozen=True)
class GatewaySettings:
    host: str
    port: int
    redis_url: str
    broker_url: str
    policy: SplitPolicy
    admin_token: str
    max_code_bytes: int
    max_timeout_s: float
    seed: int | None

    @classmethod
    def from_env(cls) -> GatewaySettings:
        routing = env_str("SPLIT_ROUTING", "random")
        if routing not in ("random", "sticky"):
            from system_under_test.settings import ConfigError
            raise ConfigError("SPLIT_ROUTING", routing, "expected 'random' or 'sticky'")
        seed = env_str("GATEWAY_SEED", "")
        return cls(
            host=env_str("GATEWAY_HOST", "127.0.0.1"),
            port=env_int("GATEWAY_PORT", 8000, minimum=0, maximum=65535),
            redis_url=env_str("REDIS_URL", "redis://127.0.0.1:6379/0"),
            broker_url=env_str("CELERY_BROKER_URL", "redis://127.0.0.1:6380/0"),
            policy=SplitPolicy(
                celery_enabled=env_bool("CELERY_ENABLED", True),
                celery_percentage=env_float("CELERY_PERCENTAGE", 50.0, minimum=0, maximum=100),
                routing=routing,  # type: ignore[arg-type]
                dual_write=env_bool("DUAL_WRITE", False),
            ),
            admin_token=env_str("ADMIN_TOKEN", ""),
            max_code_bytes=env_int("MAX_CODE_BYTES", 65536, minimum=1),
            max_timeout_s=env_float("MAX_TIMEOUT_S", 60.0, minimum=0.01),
            seed=int(seed) if seed else None,
        )


class SubmitRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, description="the program to run")
    language: str = Field(description="python or bash")
    priority: int = Field(default=5, ge=0, le=9, description="0 (lowest) .. 9 (most urgent)")
    batch: bool = Field(default=False, description="bulk submission: Celery's batch queue")
    timeout_s: float | None = Field(default=None, gt=0, description="wall-clock limit for this run")
    route: Override | None = Field(default=None, description="force legacy, celery or both (tests)")


class SplitUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    celery_enabled: bool | None = None
    celery_percentage: float | None = Field(default=None, ge=0, le=100)
    routing: Literal["random", "sticky"] | None = None
    dual_write: bool | None = None


def celery_queue_and_priority(priority: int, batch: bool) -> tuple[str, int]:
    """Celery queue for a submission, and its Redis priority (on Redis 0 is the most urgent)."""
    queue = "batch" if batch else "high_priority" if priority >= 8 else "evaluation"
    return queue, 9 - priority


class _Waiters:
    """Wakes long-polling readers when the event bus reports a change to their evaluation."""

    def __init__(self, redis_url: str) -> None:
        self.redis = aioredis.from_url(redis_url, socket_connect_timeout=3)
        self.events: dict[str, set[asyncio.Event]] = defaultdict(set)
        self.task: asyncio.Task[None] | None = None

    async def listen(self) -> None:
        while True:
            try:
                pubsub = self.redis.pubsub()
                await pubsub.subscribe(EVENTS_CHANNEL)
                async for msg in pubsub.listen():
                    if msg.get("type") != "message":
                        continue
                    eval_id = json.loads(msg["data"]).get("eval_id")
                    for event in self.events.get(eval_id, ()):
                        event.set()
            except asyncio.CancelledError:
                raise
            except Exception:  # the bus is down: readers fall back to polling
                await asyncio.sleep(0.5)

    async def wait(self, eval_id: str, seconds: float,
                   read: Callable[[], Awaitable[dict[str, Any] | None]]) -> dict[str, Any] | None:
        deadline = time.monotonic() + seconds
        event = asyncio.Event()
        self.events[eval_id].add(event)
        try:
            while True:
                event.clear()
                record = await read()
                remaining = deadline - time.monotonic()
                if record is None or record["done"] or remaining <= 0:
                    return record
                with contextlib.suppress(TimeoutError):
                    # Re-read at least twice a second: pub/sub messages are fire-and-forget.
                    await asyncio.wait_for(event.wait(), timeout=min(remaining, 0.5))
        finally:
            self.events[eval_id].discard(event)
            if not self.events[eval_id]:
                del self.events[eval_id]


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    cfg = settings or GatewaySettings.from_env()
    # The Celery app reads CELERY_BROKER_URL itself; import late so tests can set it first.
    from system_under_test.tasks import app as celery_app

    redis = Redis.from_url(cfg.redis_url, socket_timeout=5, socket_connect_timeout=3)
    broker = Redis.from_url(cfg.broker_url, socket_timeout=3, socket_connect_timeout=2)
    store = EvaluationStore(redis)
    waiters = _Waiters(cfg.redis_url)
    state: dict[str, Any] = {"policy": cfg.policy}
    rng = random.Random(cfg.seed)
    rng_lock = threading.Lock()
    counts: dict[str, int] = {"legacy": 0, "celery": 0, "both": 0}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        waiters.task = asyncio.create_task(waiters.listen())
        yield
        waiters.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiters.task
        await waiters.redis.aclose()

    app = FastAPI(title="Crucible gateway", version="1.0",
                  description="Submit evaluations; the split policy routes them to legacy or Celery.",
                  lifespan=lifespan)
    httperrors.install(app)

    def unavailable(backend: str, url: str, exc: Exception) -> JSONResponse:
        return JSONResponse(status_code=503, content={
            "error": f"{backend} unreachable", "backend": backend, "url": url,
            "detail": f"{exc.__class__.__name__}: {exc}",
            "hint": "nothing was queued; retry when the backend is back"})

    @app.post("/api/eval", status_code=201, response_model=None)
    def submit(req: SubmitRequest) -> dict[str, Any] | JSONResponse:
        size = len(req.code.encode())
        if size > cfg.max_code_bytes:
            return httperrors.problem(413, "code", f"is {size} bytes; the limit is {cfg.max_code_bytes} bytes")
        if req.language not in LANGUAGES:
            return httperrors.problem(
                422, "language", f"unsupported language {req.language!r}; expected one of {list(LANGUAGES)}")
        if req.timeout_s is not None and req.timeout_s > cfg.max_timeout_s:
            return httperrors.problem(422, "timeout_s", f"must be <= {cfg.max_timeout_s}")
        eval_id = uuid.uuid4().hex
        policy: SplitPolicy = state["policy"]
        with rng_lock:
            routes = policy.routes(eval_id, rng, req.route)
        now = time.time()
        fields = store.record_fields(eval_id, code=req.code, language=req.language, routes=routes,
                                     priority=req.priority, batch=req.batch, timeout_s=req.timeout_s,
                                     created_at=now)
        payload = legacy_client.job_payload(eval_id=eval_id, code=req.code, language=req.language,
                                            timeout_s=req.timeout_s, queued_at=now)
        try:
            pipe = redis.pipeline(transaction=True)
            pipe.hset(record_key(eval_id), mapping=fields)  # type: ignore[arg-type]
            if "legacy" in routes:
                legacy_client.enqueue(pipe, payload)
            pipe.execute()
        except RedisError as exc:
            return unavailable("main redis", cfg.redis_url, exc)
        if "celery" in routes:
            queue, redis_priority = celery_queue_and_priority(req.priority, req.batch)
            try:
                celery_app.send_task(
                    "tasks.evaluate_code", args=[eval_id, req.code, req.language],
                    kwargs={"timeout_s": req.timeout_s, "queued_at": now},
                    task_id=eval_id, queue=queue, priority=redis_priority)
            except Exception as exc:  # kombu raises OperationalError and friends
                with contextlib.suppress(RedisError):
                    pipe = redis.pipeline(transaction=True)
                    pipe.lrem(LEGACY_QUEUE, 1, payload)
                    pipe.delete(record_key(eval_id))
                    pipe.execute()
                return unavailable("celery broker", cfg.broker_url, exc)
        counts["both" if len(routes) == 2 else routes[0]] += 1
        return {"eval_id": eval_id, "routes": routes}

    @app.get("/api/eval/{eval_id}", response_model=None)
    async def read(eval_id: str, wait: float = Query(default=0.0, ge=0.0, le=120.0,
                                                      description="long-poll up to this many seconds")
                   ) -> dict[str, Any] | JSONResponse:
        async def fetch() -> dict[str, Any] | None:
            raw = await waiters.redis.hgetall(record_key(eval_id))
            return dict(parse_record(raw)) if raw else None

        try:
            record = await (waiters.wait(eval_id, wait, fetch) if wait > 0 else fetch())
        except RedisError as exc:
            return unavailable("main redis", cfg.redis_url, exc)
        if record is None:
            return JSONResponse(status_code=404, content={
                "error": f"unknown evaluation id {eval_id!r}",
                "hint": "use the eval_id returned by POST /api/eval"})
        return record

    def check_token(authorization: str | None, x_admin_token: str | None) -> JSONResponse | None:
        if not cfg.admin_token:
            return JSONResponse(status_code=403, content={
                "error": "the admin endpoint is disabled", "hint": "start the gateway with ADMIN_TOKEN set"})
        given = x_admin_token or (authorization or "").removeprefix("Bearer ").strip()
        if given != cfg.admin_token:
            return JSONResponse(status_code=401, content={
                "error": "missing or wrong admin token",
                "hint": "send 'Authorization: Bearer <ADMIN_TOKEN>'"})
        return None

    def split_view() -> dict[str, Any]:
        p: SplitPolicy = state["policy"]
        return {"celery_enabled": p.celery_enabled, "celery_percentage": p.celery_percentage,
                "routing": p.routing, "dual_write": p.dual_write}

    @app.get("/api/admin/split", response_model=None)
    def get_split(authorization: str | None = Header(default=None),
                  x_admin_token: str | None = Header(default=None)) -> dict[str, Any] | JSONResponse:
        return check_token(authorization, x_admin_token) or split_view()

    @app.put("/api/admin/split", response_model=None)
    def put_split(update: SplitUpdate, authorization: str | None = Header(default=None),
                  x_admin_token: str | None = Header(default=None)) -> dict[str, Any] | JSONResponse:
        denied = check_token(authorization, x_admin_token)
        if denied:
            return denied
        changes = {k: v for k, v in update.model_dump().items() if v is not None}
        state["policy"] = state["policy"].with_changes(**changes)
        return split_view()

    @app.get("/api/stats")
    def stats() -> dict[str, Any]:
        return {"routed": dict(counts), "split": split_view()}

    @app.get("/health", response_model=None)
    def health() -> dict[str, Any] | JSONResponse:
        backends: dict[str, str] = {}
        for name, client in (("main_redis", redis), ("celery_broker", broker)):
            try:
                client.ping()
                backends[name] = "ok"
            except RedisError as exc:
                backends[name] = f"unreachable: {exc}"
        ok = all(v == "ok" for v in backends.values())
        body = {"status": "ok" if ok else "degraded", "backends": backends}
        return body if ok else JSONResponse(status_code=503, content=body)

    app.state.settings = cfg
    return app
