"""The gateway's HTTP API (FastAPI, served by uvicorn).

``POST /api/eval`` accepts an evaluation and routes it by the split policy; ``GET /api/eval/{id}``
returns the record with one result per path (``?wait=S`` long-polls until every path is terminal);
``GET``/``PUT /api/admin/split`` read and change the split and the migration's phase settings at run
time (bearer token), and ``GET /api/admin/history`` lists every change with its time (history.py);
``GET /api/stats`` counts routing decisions; ``GET /health`` checks both queue backends. The OpenAPI
schema at ``/openapi.json`` is generated from the models the gateway validates against (models.py)
and lists every status each operation can answer with its body; ``/docs`` is Swagger UI, served
from an installed package (docs.py). Every error has the format of httperrors.py, and a body over
``MAX_BODY_BYTES`` is refused while it streams in (bodylimit.py).

A submission is written whole or not at all: the record and the legacy job are written in one
transaction on the main Redis, then the Celery task is published; if that publish fails the legacy
job and the record are removed again and the client gets a 503 that names the unreachable backend,
unless the fallback (``CELERY_FALLBACK``, phase 2) sends the evaluation to legacy instead
(fallback.py). While ``ACCEPT_LEGACY_TASKS`` is false (phase 3) nothing goes to legacy: a submission
forced to ``legacy`` or ``both`` gets a 409.

Environment:
    GATEWAY_HOST/PORT       where to listen (default 127.0.0.1:8000)
    REDIS_URL               main Redis: evaluation store and legacy queue (default redis://127.0.0.1:6379/0)
    CELERY_BROKER_URL       celery-redis (default redis://127.0.0.1:6380/0)
    CELERY_ENABLED          route anything to Celery at all (default true)
    CELERY_PERCENTAGE       share of evaluations sent to Celery, 0..100 (default 50)
    SPLIT_ROUTING           ``random`` or ``sticky`` (stable hash of the evaluation id) (default random)
    DUAL_WRITE              send every evaluation to both paths and keep both results (default false)
    CELERY_FALLBACK         on a failed Celery publish: ``none`` (503), ``naive`` or ``safe`` (fall back to
                            legacy; see fallback.py) (default none)
    ACCEPT_LEGACY_TASKS     false: route nothing to legacy any more (default true)
    ADMIN_TOKEN             bearer token for /api/admin/*; unset disables those endpoints
    MAX_CODE_BYTES          largest accepted code, in bytes of UTF-8 (default 65536)
    MAX_TIMEOUT_S           largest ``timeout_s`` a submission may ask for (default 60)
    MAX_BODY_BYTES          largest request body (default 6 * MAX_CODE_BYTES + 4096)
    MAX_WAIT_S              longest long-poll, ``?wait=`` (default 120)
    GATEWAY_SEED            seed for ``random`` routing (default: unseeded)
"""

# No ``from __future__ import annotations`` here: FastAPI reads the endpoints' annotations at run
# time, and the submission model is built per gateway (its limits are settings).

import asyncio
import contextlib
import random
import threading
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, FastAPI, Query
from fastapi.responses import JSONResponse
from redis import Redis
from redis.exceptions import RedisError

from system_under_test import httperrors
from system_under_test.gateway import docs
from system_under_test.gateway.admin import AdminGuard
from system_under_test.gateway.admin import install as install_admin
from system_under_test.gateway.bodylimit import BodyLimit
from system_under_test.gateway.fallback import FallbackWriter
from system_under_test.gateway.history import History
from system_under_test.gateway.models import (
    Accepted,
    Degraded,
    FallbackInfo,
    Healthy,
    Record,
    Stats,
    SubmissionFields,
    submission_model,
)
from system_under_test.gateway.settings import GatewaySettings
from system_under_test.gateway.split import LegacyClosed, SplitPolicy
from system_under_test.gateway.waiters import Waiters
from system_under_test.legacy import client as legacy_client
from system_under_test.store import LEGACY_QUEUE, EvaluationStore, parse_record, record_key

__all__ = ["GatewaySettings", "celery_queue_and_priority", "create_app"]

D = httperrors.documented


def celery_queue_and_priority(priority: int, batch: bool, *, rabbitmq_priority: bool = False) -> tuple[str, int]:
    """Celery queue for a submission, and its Redis priority (on Redis 0 is the most urgent).

    ``rabbitmq_priority`` is a candidate defect: the API priority sent as it is, as on RabbitMQ, where a
    higher number is more urgent; on Redis that puts urgent work last.
    """
    queue = "batch" if batch else "high_priority" if priority >= 8 else "evaluation"
    return queue, priority if rabbitmq_priority else 9 - priority


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    cfg = settings or GatewaySettings.from_env()
    # The Celery app reads CELERY_BROKER_URL itself; import late so tests can set it first.
    from system_under_test.tasks import app as celery_app

    redis = Redis.from_url(cfg.redis_url, socket_timeout=5, socket_connect_timeout=3)
    broker = Redis.from_url(cfg.broker_url, socket_timeout=3, socket_connect_timeout=2)
    store = EvaluationStore(redis)
    waiters = Waiters(cfg.redis_url)
    fallbacks = FallbackWriter(redis)
    history = History(redis, cfg.policy.as_dict())
    state: dict[str, SplitPolicy] = {"policy": cfg.policy}
    rng = random.Random(cfg.seed)
    rng_lock = threading.Lock()
    counts: dict[str, int] = {"legacy": 0, "celery": 0, "both": 0}
    Submission = submission_model(cfg.max_code_bytes, cfg.max_timeout_s)
    admin = AdminGuard(cfg.admin_token)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        waiters.task = asyncio.create_task(waiters.listen())
        started = asyncio.create_task(history.record_start_when_reachable())
        yield
        for task in (waiters.task, started):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await waiters.redis.aclose()

    app = FastAPI(
        title="Crucible gateway", version="1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
        redirect_slashes=False,
        description=(
            "Submit evaluations; the split policy routes them to the legacy queue or Celery.\n\n"
            f"Limits of this gateway: code at most {cfg.max_code_bytes} bytes of UTF-8 (MAX_CODE_BYTES), "
            f"`timeout_s` at most {cfg.max_timeout_s:g} s (MAX_TIMEOUT_S), a request body at most "
            f"{cfg.max_body_bytes} bytes (MAX_BODY_BYTES, refused with 413 while it streams in), a long-poll "
            f"at most {cfg.max_wait_s:g} s (MAX_WAIT_S).\n\n"
            "Every error is a JSON object with `error` and `hint`; `problems` lists each field that "
            "broke a rule (413, 422), `detail` says why a body could not be parsed (400) or a backend "
            "could not be reached (503). Request bodies are strict: no type coercion, no unknown fields."))
    httperrors.install(app)
    app.add_middleware(BodyLimit, max_bytes=cfg.max_body_bytes)
    docs.install(app)

    too_large = D(413, f"the request body is over {cfg.max_body_bytes} bytes (MAX_BODY_BYTES; refused as "
                       "it streams in, the connection is closed)")
    redis_down = D(503, "the main Redis is unreachable")

    def unavailable(backend: str, url: str, exc: Exception,
                    hint: str = "nothing was queued; retry when the backend is back") -> JSONResponse:
        return httperrors.respond(503, httperrors.Unavailable(
            error=f"{backend} unreachable", backend=backend, url=url,
            detail=f"{exc.__class__.__name__}: {exc}", hint=hint))

    json_only = [Depends(httperrors.require_json)]
    not_json = D(415, "the body is not declared as JSON (Content-Type: application/json)")

    @app.post("/api/eval", status_code=201, response_model=Accepted, operation_id="submit_evaluation",
              summary="Submit an evaluation", dependencies=json_only, responses={
                  201: {"description": "accepted and queued on the path(s) in routes", "links": {
                      "ReadEvaluation": {"operationId": "read_evaluation",
                                         "parameters": {"eval_id": "$response.body#/eval_id"}}}},
                  400: D(400, "the body is not JSON, not UTF-8, or nested too deeply"),
                  413: D(413, f"code is over {cfg.max_code_bytes} bytes of UTF-8 (MAX_CODE_BYTES; a code "
                              "within maxLength characters can still be over it), or the body is over "
                              f"{cfg.max_body_bytes} bytes (MAX_BODY_BYTES, refused as it streams in)"),
                  415: not_json,
                  409: D(409, "route legacy or both while the legacy path no longer accepts work "
                              "(accept_legacy is false)"),
                  422: D(422, "a field is missing, of the wrong type, out of range, or unknown"),
                  503: D(503, "the main Redis or the Celery broker is unreachable: nothing was queued")})
    def submit(req: Submission) -> Accepted | JSONResponse:  # type: ignore[valid-type]
        return accept(req)

    def accept(req: SubmissionFields) -> Accepted | JSONResponse:
        size = len(req.code.encode())
        if size > cfg.max_code_bytes:
            return httperrors.problem(413, "code", f"is {size} bytes; the limit is {cfg.max_code_bytes} bytes",
                                      hint="send a smaller program (the limit is MAX_CODE_BYTES, in bytes of UTF-8)")
        eval_id = uuid.uuid4().hex
        policy = state["policy"]
        try:
            with rng_lock:
                routes = policy.routes(eval_id, rng, req.route)
        except LegacyClosed:
            return httperrors.error(409, "the legacy path no longer accepts work (accept_legacy is false)",
                                    "send the evaluation without route (or with route 'celery'); an operator "
                                    "reopens legacy with PUT /api/admin/split {\"accept_legacy\": true}")
        # Only a Celery-only evaluation can fall back, and only while legacy takes work; in safe mode it
        # is marked before the publish (claims.py says why).
        mode = policy.fallback if routes == ["celery"] and policy.accept_legacy else "none"
        now = time.time()
        fields = store.record_fields(eval_id, code=req.code, language=req.language, routes=routes,
                                     priority=req.priority, batch=req.batch, timeout_s=req.timeout_s,
                                     created_at=now, exactly_once=mode == "safe")
        payload = legacy_client.job_payload(eval_id=eval_id, code=req.code, language=req.language,
                                            timeout_s=req.timeout_s, queued_at=now, exactly_once=mode == "safe")
        try:
            pipe = redis.pipeline(transaction=True)
            pipe.hset(record_key(eval_id), mapping=fields)  # type: ignore[arg-type]
            if "legacy" in routes:
                legacy_client.enqueue(pipe, payload)
            pipe.execute()
        except RedisError as exc:
            return unavailable("main redis", cfg.redis_url, exc)
        if "celery" in routes:
            queue, redis_priority = celery_queue_and_priority(
                req.priority, req.batch, rabbitmq_priority="rabbitmq_priority" in cfg.candidate_defects)
            try:
                celery_app.send_task(
                    "tasks.evaluate_code", args=[eval_id, req.code, req.language],
                    kwargs={"timeout_s": req.timeout_s, "queued_at": now},
                    task_id=eval_id, queue=queue, priority=redis_priority)
            except Exception as exc:  # kombu raises OperationalError and friends
                # accept_legacy is read again: it may have been switched off while the publish failed.
                if mode != "none" and state["policy"].accept_legacy:
                    with contextlib.suppress(RedisError):
                        outcome, fallback = fallbacks.fall_back(eval_id, mode=mode, exc=exc, queued_at=now,
                                                                job=payload)
                        if outcome == "fell back":
                            counts["legacy"] += 1
                            return Accepted(eval_id=eval_id, routes=["legacy"],
                                            fallback=FallbackInfo.model_validate(fallback))
                        if outcome == "landed":  # Celery already holds the claim: the publish did land
                            counts["celery"] += 1
                            return Accepted(eval_id=eval_id, routes=routes)
                with contextlib.suppress(RedisError):
                    pipe = redis.pipeline(transaction=True)
                    pipe.lrem(LEGACY_QUEUE, 1, payload)
                    pipe.delete(record_key(eval_id))
                    pipe.execute()
                return unavailable("celery broker", cfg.broker_url, exc)
        counts["both" if len(routes) == 2 else routes[0]] += 1
        return Accepted(eval_id=eval_id, routes=routes)

    @app.get("/api/eval/{eval_id}", response_model=Record, operation_id="read_evaluation",
             summary="Read an evaluation, optionally waiting until every path is done", responses={
                 404: D(404, "no evaluation has this id"),
                 413: too_large,
                 422: D(422, f"wait is not a number within 0..{cfg.max_wait_s:g} (MAX_WAIT_S)"),
                 503: redis_down})
    async def read(eval_id: str, wait: float = Query(
            default=0.0, ge=0.0, le=cfg.max_wait_s, allow_inf_nan=False,
            description=f"long-poll: answer when every path is done or after this many seconds, at most "
                        f"{cfg.max_wait_s:g} (MAX_WAIT_S)")) -> dict[str, Any] | JSONResponse:
        async def fetch() -> dict[str, Any] | None:
            raw = await waiters.redis.hgetall(record_key(eval_id))
            return dict(parse_record(raw)) if raw else None

        try:
            record = await (waiters.wait(eval_id, wait, fetch) if wait > 0 else fetch())
        except RedisError as exc:
            return unavailable("main redis", cfg.redis_url, exc, hint="retry the read when the main Redis is back")
        if record is None:
            return httperrors.error(404, f"unknown evaluation id {eval_id!r}",
                                    "use the eval_id returned by POST /api/eval")
        return record

    split_view = install_admin(app, guard=admin, state=state, history=history, unavailable=unavailable,
                               redis_url=cfg.redis_url, too_large=too_large, json_only=json_only)

    @app.get("/api/stats", response_model=Stats, operation_id="read_stats",
             summary="Count routing decisions", responses={413: too_large})
    def stats() -> Stats:
        return Stats.model_validate({"routed": dict(counts), "split": split_view().model_dump()})

    @app.get("/health", response_model=Healthy, operation_id="health", summary="Check both Redis instances",
             responses={413: too_large, 503: {"model": Degraded, "description": "a backend is unreachable"}})
    def health() -> Healthy | JSONResponse:
        backends: dict[str, str] = {}
        for name, client in (("main_redis", redis), ("celery_broker", broker)):
            try:
                client.ping()
                backends[name] = "ok"
            except RedisError as exc:
                backends[name] = f"unreachable: {exc}"
        down = [name for name, v in backends.items() if v != "ok"]
        if not down:
            return Healthy(status="ok", backends=backends)
        return httperrors.respond(503, Degraded(
            status="degraded", backends=backends, error=f"unreachable: {', '.join(down)}",
            hint="start the unreachable backend(s) or fix REDIS_URL / CELERY_BROKER_URL"))

    app.state.settings = cfg
    return app
