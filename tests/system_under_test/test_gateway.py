"""The gateway: split honoured, sticky routing, admin changes, and a clear 4xx for bad input."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
import requests
from scipy.stats import binomtest

from harness.stack.processes import ProcessesStack
from system_under_test.gateway.split import SplitPolicy, sticky_draw

ADMIN = {"Authorization": "Bearer harness-admin"}


@pytest.fixture
def gateway(stack: ProcessesStack) -> Iterator[str]:
    assert stack.endpoints is not None
    url = stack.endpoints.gateway
    before = requests.get(url + "/api/admin/split", headers=ADMIN, timeout=5).json()
    yield url
    requests.put(url + "/api/admin/split", json=before, headers=ADMIN, timeout=5)


def set_split(gateway: str, **changes: object) -> dict:
    resp = requests.put(gateway + "/api/admin/split", json=changes, headers=ADMIN, timeout=5)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def routes_of(gateway: str, n: int) -> list[tuple[str, list[str]]]:
    out = []
    for _ in range(n):
        body = requests.post(gateway + "/api/eval", json={"code": "pass", "language": "python"}, timeout=10).json()
        out.append((body["eval_id"], body["routes"]))
    return out


def test_the_split_is_honoured_within_binomial_noise(gateway: str) -> None:
    set_split(gateway, celery_percentage=30, routing="random", dual_write=False, celery_enabled=True)
    decided = routes_of(gateway, 300)
    to_celery = sum(routes == ["celery"] for _, routes in decided)
    assert all(routes in (["celery"], ["legacy"]) for _, routes in decided)
    assert binomtest(to_celery, 300, 0.30).pvalue > 0.001, f"{to_celery}/300 went to Celery at 30 %"


def test_sticky_routing_follows_the_stable_hash_of_the_id(gateway: str) -> None:
    set_split(gateway, celery_percentage=50, routing="sticky", dual_write=False)
    for eval_id, routes in routes_of(gateway, 40):
        assert routes == (["celery"] if sticky_draw(eval_id) < 50 else ["legacy"])


def test_sticky_routing_gives_the_same_id_the_same_path_every_time() -> None:
    policy = SplitPolicy(celery_percentage=50, routing="sticky")
    rng = random.Random(1)
    ids = [f"id-{i}" for i in range(200)]
    first = [policy.routes(i, rng) for i in ids]
    assert first == [policy.routes(i, rng) for i in ids]
    assert 60 < sum(r == ["celery"] for r in first) < 140


def test_dual_write_records_both_results(gateway: str) -> None:
    set_split(gateway, dual_write=True)
    (eval_id, routes), = routes_of(gateway, 1)
    assert routes == ["legacy", "celery"]
    record = requests.get(f"{gateway}/api/eval/{eval_id}", params={"wait": 20}, timeout=30).json()
    assert record["done"] and set(record["results"]) == {"legacy", "celery"}


def test_an_admin_split_change_takes_effect_at_once(gateway: str) -> None:
    set_split(gateway, celery_percentage=100, dual_write=False, celery_enabled=True)
    assert {tuple(r) for _, r in routes_of(gateway, 10)} == {("celery",)}
    set_split(gateway, celery_percentage=0)
    assert {tuple(r) for _, r in routes_of(gateway, 10)} == {("legacy",)}
    set_split(gateway, celery_percentage=100, celery_enabled=False)
    assert {tuple(r) for _, r in routes_of(gateway, 5)} == {("legacy",)}


def test_the_admin_endpoint_needs_the_token(gateway: str) -> None:
    assert requests.get(gateway + "/api/admin/split", timeout=5).status_code == 401
    wrong = requests.put(gateway + "/api/admin/split", json={"celery_percentage": 1},
                         headers={"Authorization": "Bearer nope"}, timeout=5)
    assert wrong.status_code == 401 and "ADMIN_TOKEN" in wrong.json()["hint"]
    bad = requests.put(gateway + "/api/admin/split", json={"celery_percentage": 101}, headers=ADMIN, timeout=5)
    assert bad.status_code == 422 and bad.json()["problems"][0]["field"] == "celery_percentage"


@pytest.mark.parametrize("body, status, field, words", [
    ({"code": "", "language": "python"}, 422, "code", "at least 1 character"),
    ({"code": "x" * 70000, "language": "python"}, 413, "code", "limit is 65536 bytes"),
    ({"code": "print(1)", "language": "cobol"}, 422, "language", "expected one of"),
    ({"code": "print(1)", "language": "python", "priority": 10}, 422, "priority", "less than or equal to 9"),
    ({"code": "print(1)", "language": "python", "priority": -1}, 422, "priority", "greater than or equal to 0"),
    ({"code": "print(1)", "language": "python", "route": "kafka"}, 422, "route", "legacy"),
    ({"code": "print(1)", "langauge": "python"}, 422, "langauge", "Extra inputs are not permitted"),
    ({"language": "python"}, 422, "code", "Field required"),
])
def test_bad_input_gets_a_4xx_that_names_the_field_and_the_rule(
        gateway: str, body: dict, status: int, field: str, words: str) -> None:
    resp = requests.post(gateway + "/api/eval", json=body, timeout=10)
    assert resp.status_code == status, resp.text
    problems = resp.json()["problems"]
    assert any(p["field"] == field and words in p["rule"] for p in problems), problems


def test_malformed_json_is_a_400(gateway: str) -> None:
    resp = requests.post(gateway + "/api/eval", data="{not json", headers={"content-type": "application/json"},
                         timeout=10)
    assert resp.status_code == 400 and resp.json()["error"] == "malformed JSON"


def test_an_unknown_id_is_a_404(gateway: str) -> None:
    resp = requests.get(gateway + "/api/eval/does-not-exist", timeout=10)
    assert resp.status_code == 404 and "does-not-exist" in resp.json()["error"]


def test_the_openapi_schema_is_served(gateway: str) -> None:
    schema = requests.get(gateway + "/openapi.json", timeout=10).json()
    assert {"/api/eval", "/api/eval/{eval_id}", "/api/admin/split"} <= set(schema["paths"])
