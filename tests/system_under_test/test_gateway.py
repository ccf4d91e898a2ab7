"""The gateway: split honoured, sticky routing, admin changes, a clear 4xx for bad input, and its contract:
strict types, one error format for every error, a body limit enforced while the body streams in, and
/docs that needs no network."""

from __future__ import annotations

import json
import random
import re
import select
import socket
from collections.abc import Iterator

import pytest
import requests
from scipy.stats import binomtest

from harness.stack.processes import ProcessesStack
from system_under_test import httperrors
from system_under_test.gateway.split import SplitPolicy, sticky_draw

ADMIN: dict[str, str] = {}  # the session stack's admin header: its token is random per stack (set below)


@pytest.fixture
def gateway(stack: ProcessesStack) -> Iterator[str]:
    ADMIN["Authorization"] = f"Bearer {stack.config.admin_token}"
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


# -- the contract: strict types, one error format, the body limit, offline docs --------------------

def _post_raw(gateway: str, body: bytes, content_type: str = "application/json") -> requests.Response:
    return requests.post(gateway + "/api/eval", data=body, headers={"content-type": content_type}, timeout=10)


@pytest.mark.parametrize("changes, field", [
    ({"priority": True}, "priority"),
    ({"priority": "5"}, "priority"),
    ({"priority": 5.5}, "priority"),
    ({"batch": "yes"}, "batch"),
    ({"batch": 1}, "batch"),
    ({"timeout_s": "5"}, "timeout_s"),
    ({"code": 5}, "code"),
    ({"route": 1}, "route"),
])
def test_submissions_are_strict_no_type_is_coerced(gateway: str, changes: dict, field: str) -> None:
    resp = requests.post(gateway + "/api/eval", json={"code": "pass", "language": "python", **changes}, timeout=10)
    assert resp.status_code == 422, resp.text
    body = httperrors.Invalid.model_validate(resp.json())
    assert [p.field for p in body.problems] == [field]


def test_an_integral_number_is_an_integer_as_json_schema_says(gateway: str) -> None:
    resp = requests.post(gateway + "/api/eval", json={"code": "pass", "language": "python", "priority": 7.0,
                                                      "timeout_s": 5, "route": "legacy"}, timeout=10)
    assert resp.status_code == 201, resp.text
    record = requests.get(f"{gateway}/api/eval/{resp.json()['eval_id']}", timeout=10).json()
    assert record["priority"] == 7 and record["timeout_s"] == 5.0


def test_the_split_update_is_strict_too(gateway: str) -> None:
    for changes in ({"dual_write": 0}, {"celery_enabled": "true"}, {"celery_percentage": "50"}):
        resp = requests.put(gateway + "/api/admin/split", json=changes, headers=ADMIN, timeout=5)
        assert resp.status_code == 422, (changes, resp.text)
        assert httperrors.Invalid.model_validate(resp.json()).problems[0].field == next(iter(changes))


def test_a_timeout_over_the_limit_names_the_limit(gateway: str) -> None:
    resp = requests.post(gateway + "/api/eval", json={"code": "pass", "language": "python", "timeout_s": 61},
                         timeout=10)
    assert resp.status_code == 422
    assert httperrors.Invalid.model_validate(resp.json()).problems[0].rule == "Input should be less than or equal to 60"


@pytest.mark.parametrize("body, words", [
    (b'{"code": "\xff\xfe", "language": "python"}', "not valid UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, "nested deeper"),
    (b'{"code": "pass", "language": ', "Expecting value"),
])
def test_a_body_that_cannot_be_parsed_is_a_400_in_the_error_format(gateway: str, body: bytes, words: str) -> None:
    resp = _post_raw(gateway, body)
    assert resp.status_code == 400, resp.text
    assert words in httperrors.Malformed.model_validate(resp.json()).detail


def test_a_body_not_declared_as_json_is_a_415(gateway: str) -> None:
    resp = _post_raw(gateway, b'{"code": "pass", "language": "python"}', content_type="text/plain")
    assert resp.status_code == 415
    assert "application/json" in httperrors.ErrorBody.model_validate(resp.json()).hint


def test_unknown_paths_and_methods_answer_in_the_error_format(gateway: str) -> None:
    missing = requests.get(gateway + "/api/nothing", timeout=5)
    assert missing.status_code == 404 and "/openapi.json" in httperrors.ErrorBody.model_validate(missing.json()).hint
    wrong = requests.delete(gateway + "/api/admin/split", timeout=5)
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, PUT"
    assert "DELETE /api/admin/split" in httperrors.ErrorBody.model_validate(wrong.json()).error


def _raw_request(gateway: str, head: str) -> socket.socket:
    host, port = gateway.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(head.encode("ascii"))
    return sock


def _read_response(sock: socket.socket) -> tuple[int, dict]:
    data = b""
    while b"\r\n\r\n" not in data or not data.split(b"\r\n\r\n", 1)[1].rstrip().endswith(b"}"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def _limit(gateway: str) -> int:
    description = requests.get(gateway + "/openapi.json", timeout=5).json()["info"]["description"]
    return int(re.search(r"a request body at most (\d+) bytes", description).group(1))  # type: ignore[union-attr]


def test_a_declared_length_over_the_limit_is_refused_before_any_body_is_sent(gateway: str) -> None:
    with _raw_request(gateway, "POST /api/eval HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                               "Content-Length: 50000000\r\n\r\n") as sock:
        status, body = _read_response(sock)  # not one byte of the 50 MB was sent
    assert status == 413
    problem = httperrors.Invalid.model_validate(body).problems[0]
    assert problem.field == "body" and f"the limit is {_limit(gateway)} bytes" in problem.rule


def test_a_chunked_body_is_refused_as_soon_as_it_grows_past_the_limit(gateway: str) -> None:
    limit, chunk = _limit(gateway), b"a" * 65536
    sent = 0
    with _raw_request(gateway, "POST /api/eval HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n") as sock:
        while sent < 50_000_000 and not select.select([sock], [], [], 0.02)[0]:
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        status, body = _read_response(sock)
    assert status == 413
    assert "arrived" in httperrors.Invalid.model_validate(body).problems[0].rule
    # Refused while streaming: at most what the socket buffers hold past the limit, never 50 MB.
    assert sent < limit + 8 * 1024 * 1024, f"sent {sent} bytes before the gateway answered"


def test_docs_work_with_no_network_every_asset_is_served_by_the_gateway(gateway: str) -> None:
    page = requests.get(gateway + "/docs", timeout=5)
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']|url: ["']([^"']+)["']""", page.text)
    urls = [a or b for a, b in urls]
    assert urls and all(u.startswith("/") for u in urls), urls  # nothing from a CDN
    for url in urls:
        resp = requests.get(gateway + url, timeout=5)
        assert resp.status_code == 200 and len(resp.content) > 100, url
    assert "SwaggerUIBundle" in requests.get(gateway + "/docs/assets/swagger-ui-bundle.js", timeout=5).text
