"""The phases' parts, one at a time, on a real redis-server and no stack: the split with accept_legacy,
the settings from the environment, the claims, the fallback step, the admin history."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from harness.stack.ports import free_port
from harness.stack.process import ManagedProcess
from system_under_test import claims
from system_under_test.contract import ADMIN_CHANGES, LEGACY_QUEUE, claim_key, record_key
from system_under_test.gateway.fallback import FallbackWriter
from system_under_test.gateway.history import History
from system_under_test.gateway.settings import GatewaySettings
from system_under_test.gateway.split import LegacyClosed, SplitPolicy
from system_under_test.legacy.client import job_payload
from system_under_test.redis_server import find_redis_server, redis_argv
from system_under_test.store import EvaluationStore, parse_record


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port, logs = free_port(), tmp_path_factory.mktemp("phase-units")
    proc = ManagedProcess("main-redis", redis_argv(port=port, binary=find_redis_server(), workdir=str(logs)),
                          env={}, log_path=Path(logs) / "main-redis.log",
                          ready=lambda: Redis(port=port).ping())
    proc.start()
    try:
        proc.wait_ready(10)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.stop()


@pytest.fixture
def redis(redis_server: str) -> Redis:
    client = Redis.from_url(redis_server, decode_responses=True)
    client.flushdb()
    return client


# -- the split -------------------------------------------------------------------------------------------


def test_with_accept_legacy_false_everything_goes_to_celery_whatever_the_split_says() -> None:
    rng = random.Random(0)
    for policy in (SplitPolicy(celery_percentage=0, accept_legacy=False),
                   SplitPolicy(celery_percentage=0, dual_write=True, accept_legacy=False)):
        assert {tuple(policy.routes(f"id-{i}", rng)) for i in range(100)} == {("celery",)}
        assert policy.routes("x", rng, "celery") == ["celery"]
        for override in ("legacy", "both"):
            with pytest.raises(LegacyClosed, match=f"route '{override}' needs the legacy path"):
                policy.routes("x", rng, override)  # type: ignore[arg-type]


def test_a_policy_with_no_path_for_new_work_or_an_unknown_fallback_is_refused() -> None:
    with pytest.raises(ValueError, match="leaves no path for new work"):
        SplitPolicy(celery_enabled=False, accept_legacy=False)
    with pytest.raises(ValueError, match="fallback must be one of"):
        SplitPolicy(fallback="always")  # type: ignore[arg-type]
    assert SplitPolicy().as_dict() == {"celery_enabled": True, "celery_percentage": 50.0, "routing": "random",
                                       "dual_write": False, "fallback": "none", "accept_legacy": True}


def test_the_gateway_reads_the_phase_settings_from_the_plans_variables() -> None:
    policy = GatewaySettings.from_env({"CELERY_FALLBACK": "safe", "ACCEPT_LEGACY_TASKS": "false"}).policy
    assert (policy.fallback, policy.accept_legacy) == ("safe", False)
    assert GatewaySettings.from_env({}).policy.fallback == "none"
    with pytest.raises(ValueError, match=r"CELERY_FALLBACK='sometimes' is invalid: expected one of none, naive, safe"):
        GatewaySettings.from_env({"CELERY_FALLBACK": "sometimes"})
    with pytest.raises(ValueError, match=r"ACCEPT_LEGACY_TASKS='false' is invalid: .*CELERY_ENABLED is false"):
        GatewaySettings.from_env({"CELERY_ENABLED": "false", "ACCEPT_LEGACY_TASKS": "false"})


def test_the_exactly_once_mark_is_in_the_legacy_job_only_when_asked_for() -> None:
    plain = json.loads(job_payload(eval_id="a", code="1", language="python", timeout_s=None, queued_at=1.0))
    marked = json.loads(job_payload(eval_id="a", code="1", language="python", timeout_s=None, queued_at=1.0,
                                    exactly_once=True))
    assert "exactly_once" not in plain and marked == {**plain, "exactly_once": True}


# -- claims -------------------------------------------------------------------------------------------------


def test_the_first_path_to_claim_wins_and_its_own_path_may_claim_again(redis: Redis) -> None:
    assert claims.claim(redis, "e1", "legacy") == (True, "legacy")
    assert claims.claim(redis, "e1", "celery") == (False, "legacy")
    assert claims.claim(redis, "e1", "legacy") == (True, "legacy")  # a retry or redelivery of the winner
    assert redis.get(claim_key("e1")) == "legacy" and 86390 < redis.ttl(claim_key("e1")) <= 86400


def test_the_exactly_once_mark_is_read_from_the_record(redis: Redis) -> None:
    store = EvaluationStore(redis)
    for eval_id, marked in (("m", True), ("u", False)):
        redis.hset(record_key(eval_id), mapping=store.record_fields(  # type: ignore[arg-type]
            eval_id, code="1", language="python", routes=["celery"], priority=5, batch=False, timeout_s=None,
            created_at=1.0, exactly_once=marked))
    assert claims.is_exactly_once(redis, "m") and not claims.is_exactly_once(redis, "u")
    assert not claims.is_exactly_once(redis, "absent")


def test_a_legacy_worker_that_lost_the_claim_hands_the_record_to_celery_only_if_it_exists(redis: Redis) -> None:
    redis.hset(record_key("e"), mapping={"id": "e", "routes": '["legacy"]', "result:legacy": "{}",
                                         "result:celery": '{"status": "completed"}'})
    assert claims.yield_to_celery(redis, "e")
    assert redis.hget(record_key("e"), "routes") == '["celery"]'
    assert redis.hget(record_key("e"), "result:legacy") is None
    assert redis.hget(record_key("e"), "result:celery") == '{"status": "completed"}'
    assert not claims.yield_to_celery(redis, "gone") and not redis.exists(record_key("gone"))


# -- the fallback step ------------------------------------------------------------------------------------


def celery_record(redis: Redis, eval_id: str, *, exactly_once: bool) -> str:
    store = EvaluationStore(redis)
    redis.hset(record_key(eval_id), mapping=store.record_fields(  # type: ignore[arg-type]
        eval_id, code="print(1)", language="python", routes=["celery"], priority=5, batch=False, timeout_s=None,
        created_at=10.0, exactly_once=exactly_once))
    return job_payload(eval_id=eval_id, code="print(1)", language="python", timeout_s=None, queued_at=10.0,
                       exactly_once=exactly_once)


@pytest.mark.parametrize("mode", ["naive", "safe"])
def test_a_fallback_reroutes_the_record_to_legacy_and_queues_its_job_in_one_step(redis: Redis, mode: str) -> None:
    job = celery_record(redis, "f", exactly_once=mode == "safe")
    outcome, fallback = FallbackWriter(redis).fall_back("f", mode=mode, exc=ConnectionError("reply lost"),  # type: ignore[arg-type]
                                                        queued_at=10.0, job=job)
    assert outcome == "fell back"
    assert fallback["from"] == "celery" and fallback["mode"] == mode
    assert fallback["reason"] == "ConnectionError: reply lost" and fallback["at"] <= time.time()
    record = parse_record(redis.hgetall(record_key("f")))
    assert record["routes"] == ["legacy"] and set(record["results"]) == {"legacy"}
    assert record["results"]["legacy"]["status"] == "queued" and record["results"]["legacy"]["queued_at"] == 10.0
    assert record["fallback"] == fallback
    assert redis.lrange(LEGACY_QUEUE, 0, -1) == [job]
    assert (redis.hget(record_key("f"), "exactly_once") == "1") == (mode == "safe")


def test_a_safe_fallback_does_not_happen_when_celery_already_holds_the_claim(redis: Redis) -> None:
    job = celery_record(redis, "g", exactly_once=True)
    redis.set(claim_key("g"), "celery")  # the publish that "failed" had landed, and its task started
    outcome, _ = FallbackWriter(redis).fall_back("g", mode="safe", exc=TimeoutError("t"), queued_at=10.0, job=job)
    assert outcome == "landed"
    assert parse_record(redis.hgetall(record_key("g")))["routes"] == ["celery"]
    assert redis.llen(LEGACY_QUEUE) == 0
    # the naive fallback has no idempotency key: it falls back anyway
    outcome, _ = FallbackWriter(redis).fall_back("g", mode="naive", exc=TimeoutError("t"), queued_at=10.0, job=job)
    assert outcome == "fell back" and redis.llen(LEGACY_QUEUE) == 1


def test_a_fallback_for_a_record_that_is_gone_changes_nothing(redis: Redis) -> None:
    outcome, _ = FallbackWriter(redis).fall_back("nope", mode="naive", exc=OSError("x"), queued_at=1.0, job="{}")
    assert outcome == "gone" and not redis.exists(record_key("nope")) and redis.llen(LEGACY_QUEUE) == 0


def test_a_record_without_a_fallback_says_null() -> None:
    assert parse_record({"id": "x", "routes": '["celery"]'})["fallback"] is None


# -- the admin history ---------------------------------------------------------------------------------------


def test_the_history_starts_with_the_start_settings_once_whoever_writes_first(redis: Redis) -> None:
    history = History(redis, SplitPolicy().as_dict())
    history.record({"celery_percentage": 90.0})  # before the start entry was written: it comes first anyway
    history.record_start()  # already written: not again
    entries = history.read()
    assert [e.get("start", False) for e in entries] == [True, False]
    assert entries[0]["changes"] == SplitPolicy().as_dict() and entries[1]["changes"] == {"celery_percentage": 90.0}
    assert entries[0]["at"] <= entries[1]["at"]
    assert [json.loads(x) for x in redis.lrange(ADMIN_CHANGES, 0, -1)] == entries
