"""The migration's phases in the platform: the admin settings and their history, phase 3's accept_legacy,
phase 2's naive and safe fallback on a failed Celery publish, the exactly-once claims on both paths, and
the legacy workers' work in hand. On a stack of their own (one legacy worker, no Flower)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from redis import Redis

from harness.run import RunFolder
from harness.stack.config import StackConfig
from harness.stack.processes import ProcessesStack
from system_under_test.contract import ADMIN_CHANGES, LEGACY_INHAND, LEGACY_QUEUE, claim_key, record_key
from system_under_test.legacy.client import job_payload
from system_under_test.store import EvaluationStore

ADMIN: dict[str, str] = {}  # this file's stack's admin header: its token is random per stack (set below)
DEFAULTS = {"celery_enabled": True, "celery_percentage": 50.0, "routing": "random", "dual_write": False,
            "fallback": "none", "accept_legacy": True}
BROKER_LINK = "gateway-celery-redis"


@pytest.fixture(scope="module")
def phases_stack(run_folder: RunFolder, launch_stack: Any) -> Iterator[ProcessesStack]:
    config = StackConfig.for_tests(legacy_workers=1, flower=False)
    run = RunFolder.create(root=run_folder.path.parent, run_id=run_folder.run_id + "-phases")
    ADMIN["Authorization"] = f"Bearer {config.admin_token}"
    with launch_stack(config, run) as stack:
        yield stack


@pytest.fixture
def sut(phases_stack: ProcessesStack) -> Iterator[ProcessesStack]:
    """The module's stack with the gateway's defaults and the broker link up, before and after each test."""
    reset(phases_stack)
    yield phases_stack
    reset(phases_stack)


def reset(stack: ProcessesStack) -> None:
    set_link(stack, BROKER_LINK, enabled=True)
    resp = requests.put(stack.endpoints.gateway + "/api/admin/split", json=DEFAULTS, headers=ADMIN, timeout=5)
    assert resp.status_code == 200, resp.text


def set_link(stack: ProcessesStack, link: str, *, enabled: bool) -> None:
    resp = requests.post(f"{stack.endpoints.proxy_api}/proxies/{link}", json={"enabled": enabled}, timeout=5)
    assert resp.status_code == 200, resp.text


def put_split(stack: ProcessesStack, **changes: object) -> requests.Response:
    return requests.put(stack.endpoints.gateway + "/api/admin/split", json=changes, headers=ADMIN, timeout=5)


def submit(stack: ProcessesStack, code: str = "print('hi')", **fields: object) -> requests.Response:
    return requests.post(stack.endpoints.gateway + "/api/eval",
                         json={"code": code, "language": "python", **fields}, timeout=60)


def finished(stack: ProcessesStack, eval_id: str) -> dict[str, Any]:
    """The record as the gateway serves it, once every path is done (the long-poll)."""
    resp = requests.get(f"{stack.endpoints.gateway}/api/eval/{eval_id}", params={"wait": 30}, timeout=40)
    assert resp.status_code == 200 and resp.json()["done"], resp.text
    return dict(resp.json())


def main_redis(stack: ProcessesStack) -> Redis:
    return Redis.from_url(stack.endpoints.main_redis, decode_responses=True)


def ledger(stack: ProcessesStack, eval_id: str) -> list[str]:
    """The executors that ran ``eval_id``, one entry per execution."""
    ran = []
    for name, url in stack.endpoints.executors.items():
        rows = requests.get(url + "/ledger", params={"eval_id": eval_id}, timeout=5).json()
        ran += [name for _ in rows]
    return sorted(ran)


def eventually(check: Any, timeout_s: float = 15.0, what: str = "the condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout_s} s")
        time.sleep(0.05)


def warm_up_publisher(stack: ProcessesStack) -> None:
    """One publish while the broker is up: a gateway's first publish also connects Celery's result
    consumer, which would otherwise retry for about 20 s before the publish fails."""
    assert submit(stack, route="celery").status_code == 201


# -- the admin settings and their history -------------------------------------------------------------


def test_the_admin_endpoint_reads_and_changes_every_phase_setting(sut: ProcessesStack) -> None:
    split = requests.get(sut.endpoints.gateway + "/api/admin/split", headers=ADMIN, timeout=5).json()
    assert split == DEFAULTS
    for changes in ({"fallback": "naive"}, {"fallback": "safe"}, {"accept_legacy": False},
                    {"fallback": "none", "accept_legacy": True}):
        resp = put_split(sut, **changes)
        assert resp.status_code == 200, resp.text
        assert resp.json() == {**split, **changes}
        split = requests.get(sut.endpoints.gateway + "/api/admin/split", headers=ADMIN, timeout=5).json()
        assert split == resp.json()


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"fallback": "sometimes"}, "fallback", "'none', 'naive' or 'safe'"),
    ({"fallback": None, "accept_legacy": "false"}, "accept_legacy", "valid boolean"),
    ({"accept_legacy": 0}, "accept_legacy", "valid boolean"),
])
def test_a_bad_phase_setting_is_a_422_naming_the_field(sut: ProcessesStack, changes: dict, field: str,
                                                        words: str) -> None:
    resp = put_split(sut, **changes)
    assert resp.status_code == 422, resp.text
    problems = resp.json()["problems"]
    assert [p["field"] for p in problems] == [field] and words in problems[0]["rule"]


def test_no_path_for_new_work_is_a_409_and_changes_nothing(sut: ProcessesStack) -> None:
    before = main_redis(sut).llen(ADMIN_CHANGES)
    for first, second in (({}, {"celery_enabled": False, "accept_legacy": False}),
                          ({"accept_legacy": False}, {"celery_enabled": False})):
        if first:
            assert put_split(sut, **first).status_code == 200
        resp = put_split(sut, **second)
        assert resp.status_code == 409, resp.text
        assert "leaves no path for new work" in resp.json()["error"] and "accept_legacy true" in resp.json()["hint"]
    split = requests.get(sut.endpoints.gateway + "/api/admin/split", headers=ADMIN, timeout=5).json()
    assert (split["celery_enabled"], split["accept_legacy"]) == (True, False)
    assert main_redis(sut).llen(ADMIN_CHANGES) == before + 1  # only the change that was made


def test_every_change_is_recorded_with_its_time_the_start_settings_first(sut: ProcessesStack) -> None:
    url = sut.endpoints.gateway + "/api/admin/history"
    assert requests.get(url, timeout=5).status_code == 401
    before = requests.get(url, headers=ADMIN, timeout=5).json()
    assert before[0]["start"] is True and set(before[0]["changes"]) == set(DEFAULTS)
    assert all("start" not in entry for entry in before[1:])
    t0 = time.time()
    assert put_split(sut, celery_percentage=90, fallback="naive").status_code == 200
    assert put_split(sut, accept_legacy=False).status_code == 200
    assert put_split(sut, fallback="unknown").status_code == 422  # refused: not recorded
    t1 = time.time()
    after = requests.get(url, headers=ADMIN, timeout=5).json()
    assert after[:len(before)] == before
    new = after[len(before):]
    assert [e["changes"] for e in new] == [{"celery_percentage": 90.0, "fallback": "naive"}, {"accept_legacy": False}]
    assert t0 <= new[0]["at"] <= new[1]["at"] <= t1
    stored = [json.loads(x) for x in main_redis(sut).lrange(ADMIN_CHANGES, 0, -1)]
    assert stored == after  # the harness can read it from the main Redis directly


# -- phase 3: accept_legacy ------------------------------------------------------------------------------


def test_with_accept_legacy_false_a_forced_legacy_or_both_is_a_409_and_nothing_is_queued(
        sut: ProcessesStack) -> None:
    assert put_split(sut, accept_legacy=False).status_code == 200
    records = len(list(main_redis(sut).scan_iter("eval:*")))
    for route in ("legacy", "both"):
        resp = submit(sut, route=route)
        assert resp.status_code == 409, resp.text
        assert resp.json()["error"] == "the legacy path no longer accepts work (accept_legacy is false)"
        assert "accept_legacy" in resp.json()["hint"]
    assert len(list(main_redis(sut).scan_iter("eval:*"))) == records
    assert main_redis(sut).llen(LEGACY_QUEUE) == 0


def test_with_accept_legacy_false_the_split_and_dual_write_send_everything_to_celery(sut: ProcessesStack) -> None:
    assert put_split(sut, accept_legacy=False, celery_percentage=0).status_code == 200
    routes = [submit(sut).json()["routes"] for _ in range(20)]
    assert routes == [["celery"]] * 20
    assert put_split(sut, dual_write=True).status_code == 200
    eval_id = submit(sut).json()["eval_id"]
    record = finished(sut, eval_id)
    assert record["routes"] == ["celery"] and set(record["results"]) == {"celery"}
    assert ledger(sut, eval_id) == ["executor-3"]


# -- phase 2: the fallback -------------------------------------------------------------------------------


def test_naive_fallback_sends_a_failed_publish_to_legacy_and_says_so(sut: ProcessesStack) -> None:
    warm_up_publisher(sut)
    assert put_split(sut, fallback="naive", celery_percentage=100).status_code == 200
    set_link(sut, BROKER_LINK, enabled=False)
    t0 = time.time()
    answers = [submit(sut, route="celery"), submit(sut)]  # forced, and chosen by the split
    t1 = time.time()
    set_link(sut, BROKER_LINK, enabled=True)
    for resp in answers:
        assert resp.status_code == 201, resp.text
        body = resp.json()
        assert body["routes"] == ["legacy"]
        fallback = body["fallback"]
        assert (fallback["from"], fallback["mode"]) == ("celery", "naive") and t0 <= fallback["at"] <= t1
        assert "Error" in fallback["reason"]
        record = finished(sut, body["eval_id"])
        assert record["routes"] == ["legacy"] and set(record["results"]) == {"legacy"}
        assert record["results"]["legacy"]["output"] == "hi\n"
        assert record["fallback"] == fallback
        assert ledger(sut, body["eval_id"]) in (["executor-1"], ["executor-2"])
        assert main_redis(sut).hget(record_key(body["eval_id"]), "exactly_once") is None
        assert main_redis(sut).get(claim_key(body["eval_id"])) is None  # naive: no claims


def test_safe_fallback_marks_the_evaluation_exactly_once_and_legacy_claims_it(sut: ProcessesStack) -> None:
    warm_up_publisher(sut)
    assert put_split(sut, fallback="safe").status_code == 200
    set_link(sut, BROKER_LINK, enabled=False)
    resp = submit(sut, route="celery")
    set_link(sut, BROKER_LINK, enabled=True)
    assert resp.status_code == 201, resp.text
    assert resp.json()["routes"] == ["legacy"] and resp.json()["fallback"]["mode"] == "safe"
    eval_id = resp.json()["eval_id"]
    record = finished(sut, eval_id)
    assert record["routes"] == ["legacy"] and record["results"]["legacy"]["status"] == "completed"
    assert main_redis(sut).hget(record_key(eval_id), "exactly_once") == "1"
    assert main_redis(sut).get(claim_key(eval_id)) == "legacy"
    assert 86000 < main_redis(sut).ttl(claim_key(eval_id)) <= 86400


@pytest.mark.parametrize("changes", [{"fallback": "none"}, {"fallback": "naive", "accept_legacy": False}],
                         ids=["fallback-none", "accept-legacy-false"])
def test_without_a_fallback_a_failed_publish_is_a_503_and_nothing_is_queued(sut: ProcessesStack,
                                                                             changes: dict) -> None:
    warm_up_publisher(sut)
    assert put_split(sut, **changes).status_code == 200
    records = len(list(main_redis(sut).scan_iter("eval:*")))
    set_link(sut, BROKER_LINK, enabled=False)
    resp = submit(sut, route="celery")
    set_link(sut, BROKER_LINK, enabled=True)
    assert resp.status_code == 503, resp.text
    assert resp.json()["backend"] == "celery broker" and "nothing was queued" in resp.json()["hint"]
    assert len(list(main_redis(sut).scan_iter("eval:*"))) == records
    assert main_redis(sut).llen(LEGACY_QUEUE) == 0


# -- the claims ------------------------------------------------------------------------------------------


def test_in_safe_mode_a_celery_task_claims_its_evaluation_and_runs_it(sut: ProcessesStack) -> None:
    assert put_split(sut, fallback="safe").status_code == 200
    eval_id = submit(sut, route="celery").json()["eval_id"]
    record = finished(sut, eval_id)
    assert record["results"]["celery"]["output"] == "hi\n" and record["fallback"] is None
    assert main_redis(sut).get(claim_key(eval_id)) == "celery"
    assert ledger(sut, eval_id) == ["executor-3"]


def test_a_celery_task_skips_an_evaluation_whose_claim_legacy_holds(sut: ProcessesStack) -> None:
    assert put_split(sut, fallback="safe").status_code == 200
    worker = sut.component("celery-worker-1")
    worker.pause()
    try:
        eval_id = submit(sut, route="celery").json()["eval_id"]
        assert main_redis(sut).hget(record_key(eval_id), "exactly_once") == "1"
        main_redis(sut).set(claim_key(eval_id), "legacy")  # as if the legacy worker had it first
    finally:
        worker.resume()
    meta_key = f"celery-task-meta-{eval_id}"
    backend = Redis.from_url(sut.endpoints.celery_redis, decode_responses=True)
    meta = json.loads(eventually(lambda: backend.get(meta_key), what="the task's result"))
    assert meta["status"] == "SUCCESS" and meta["result"] == {"eval_id": eval_id, "status": "skipped",
                                                              "claimed_by": "legacy"}
    record = EvaluationStore(Redis.from_url(sut.endpoints.main_redis)).get(eval_id)
    assert record is not None and record["results"]["celery"]["status"] == "queued"  # never written
    assert ledger(sut, eval_id) == []
    assert main_redis(sut).get(claim_key(eval_id)) == "legacy"


def queue_legacy_job_by_hand(stack: ProcessesStack, eval_id: str, *, exactly_once: bool, code: str) -> None:
    """What a safe fallback leaves on the main Redis: the record routed to legacy and its job queued."""
    redis = Redis.from_url(stack.endpoints.main_redis)
    now = time.time()
    fields = EvaluationStore(redis).record_fields(eval_id, code=code, language="python", routes=["legacy"],
                                                  priority=5, batch=False, timeout_s=None, created_at=now,
                                                  exactly_once=exactly_once)
    redis.hset(record_key(eval_id), mapping=fields)  # type: ignore[arg-type]
    redis.lpush(LEGACY_QUEUE, job_payload(eval_id=eval_id, code=code, language="python", timeout_s=None,
                                          queued_at=now, exactly_once=exactly_once))


def test_the_legacy_worker_that_loses_the_claim_hands_the_record_to_celery(sut: ProcessesStack) -> None:
    eval_id = f"phases-{time.time_ns()}"
    main_redis(sut).set(claim_key(eval_id), "celery")  # Celery's ambiguous publish landed and ran first
    queue_legacy_job_by_hand(sut, eval_id, exactly_once=True, code="print('legacy')")
    redis = main_redis(sut)
    eventually(lambda: json.loads(redis.hget(record_key(eval_id), "routes") or "[]") == ["celery"],
               what="the record's routes becoming ['celery']")
    assert redis.hget(record_key(eval_id), "result:legacy") is None
    eventually(lambda: redis.llen(LEGACY_QUEUE) == 0 and not redis.hexists(LEGACY_INHAND, "legacy-worker-1"),
               what="the job leaving the worker's hands")
    assert ledger(sut, eval_id) == []
    assert any(eval_id in line and "holds its exactly-once claim" in line
               for line in sut.component("legacy-worker-1").logs(200))


def test_a_legacy_job_marked_exactly_once_whose_claim_is_free_runs_on_legacy(sut: ProcessesStack) -> None:
    eval_id = f"phases-{time.time_ns()}"
    queue_legacy_job_by_hand(sut, eval_id, exactly_once=True, code="print('legacy')")
    record = finished(sut, eval_id)
    assert record["results"]["legacy"]["output"] == "legacy\n"
    assert main_redis(sut).get(claim_key(eval_id)) == "legacy"
    assert ledger(sut, eval_id) in (["executor-1"], ["executor-2"])


# -- work in hand ------------------------------------------------------------------------------------------

SLOW = "import time; time.sleep(2); print('slept')"


def in_hand(stack: ProcessesStack) -> dict[str, dict[str, Any]]:
    return {str(k): json.loads(v) for k, v in main_redis(stack).hgetall(LEGACY_INHAND).items()}


def test_a_legacy_job_is_in_hand_while_it_runs_and_gone_after(sut: ProcessesStack) -> None:
    t0 = time.time()
    eval_id = submit(sut, SLOW, route="legacy").json()["eval_id"]
    held = eventually(lambda: in_hand(sut).get("legacy-worker-1"), what="the job showing in legacy:inhand")
    assert held["eval_id"] == eval_id and t0 <= held["since"] <= time.time()
    assert main_redis(sut).llen(LEGACY_QUEUE) == 0  # in no list: only legacy:inhand shows it
    record = finished(sut, eval_id)
    assert record["results"]["legacy"]["output"] == "slept\n"
    assert "legacy-worker-1" not in in_hand(sut)


def legacy_status(store: EvaluationStore, eval_id: str) -> str | None:
    record = store.get(eval_id)
    result = record["results"].get("legacy") if record else None
    return result.get("status") if result else None


def test_a_killed_legacy_worker_leaves_its_entry_until_it_starts_again_and_names_the_lost_job(
        sut: ProcessesStack) -> None:
    eval_id = submit(sut, SLOW, route="legacy").json()["eval_id"]
    eventually(lambda: in_hand(sut).get("legacy-worker-1"), what="the job showing in legacy:inhand")
    store = EvaluationStore(Redis.from_url(sut.endpoints.main_redis))
    eventually(lambda: legacy_status(store, eval_id) == "running", what="the job running")
    worker = sut.component("legacy-worker-1")
    worker.kill()
    try:
        time.sleep(2.5)  # longer than the job: nothing finishes it
        assert in_hand(sut)["legacy-worker-1"]["eval_id"] == eval_id
        assert main_redis(sut).llen(LEGACY_QUEUE) == 0
    finally:
        worker.start()
        worker.wait_ready()
    eventually(lambda: "legacy-worker-1" not in in_hand(sut), what="the stale entry being removed")
    assert any(eval_id in line and "was lost" in line for line in worker.logs(50))
    record = store.get(eval_id)
    assert record is not None and record["results"]["legacy"]["status"] == "running"  # lost, as legacy loses it
