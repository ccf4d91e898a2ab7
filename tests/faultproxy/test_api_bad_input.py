"""Routing details and bad input: each gets the spec's status and body, and the server keeps serving.

Where the real Toxiproxy would crash or create something unreachable (negative bandwidth,
a slicer that never terminates, names with '/'), we answer 400 instead.
"""

from __future__ import annotations

import socket
import threading

import pytest

from harness.faultproxy import FaultProxyServer, ServerStartError

from .conftest import Api, is_up


def raw_http(server: FaultProxyServer, payload: bytes) -> bytes:
    host, port = server.address
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        data = bytearray()
        while chunk := sock.recv(65536):
            data += chunk
    return bytes(data)


# -- routing -------------------------------------------------------------------------------------


def test_an_unknown_path_is_a_plain_text_404(api: Api) -> None:
    for path in ("/nope", "/proxies/", "/proxies/a/b/c/d"):
        response = api.get(path)
        assert (response.status_code, response.text) == (404, "404 page not found\n")
        assert "X-Toxiproxy-Request-Id" not in response.headers


def test_a_known_path_with_the_wrong_method_is_an_empty_405(api: Api) -> None:
    for method, path in (("DELETE", "/version"), ("GET", "/reset"), ("PUT", "/proxies"), ("GET", "/populate")):
        response = api.request(method, path)
        assert (response.status_code, response.content) == (405, b"")


def test_an_unclean_path_is_redirected_to_its_clean_form(api: Api) -> None:
    response = api.get("//proxies", allow_redirects=False)
    assert response.status_code == 301
    assert response.headers["Location"] == "/proxies"
    assert api.get("//proxies").json() == {}


def test_a_browser_on_an_unknown_path_still_gets_the_404(api: Api) -> None:
    assert api.get("/nope", headers={"User-Agent": "Mozilla/5.0"}).status_code == 404


def test_keep_alive_chunked_bodies_and_expect_continue_work(server: FaultProxyServer) -> None:
    body = b'{"name":"c","upstream":"localhost:7379","listen":"127.0.0.1:0"}'
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    reply = raw_http(
        server,
        b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /proxies HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
        + chunked
        + b"GET /proxies/c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert reply.count(b"HTTP/1.1 200 OK") == 2
    assert b"HTTP/1.1 100 Continue" in reply
    assert b"HTTP/1.1 201 Created" in reply


def test_a_malformed_request_is_a_400_and_the_server_keeps_serving(server: FaultProxyServer, api: Api) -> None:
    assert raw_http(server, b"NONSENSE\r\n\r\n").startswith(b"HTTP/1.1 400 Bad Request")
    assert raw_http(server, b"GET /version HTTP/1.1\r\nContent-Length: x\r\n\r\n").startswith(b"HTTP/1.1 400")
    assert api.get("/version").status_code == 200


# -- bodies --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"{",
        b"[1, 2",
        b'{"name": 5, "upstream": "x"}',
        b'{"name": "x", "upstream": "y", "enabled": "yes"}',
        b'{"name": "x", "upstream": "y", "listen": 8080}',
        b'{"name": NaN}',
        b"[]",
        b'"a string"',
    ],
)
def test_a_create_body_that_does_not_decode_is_a_400(api: Api, body: bytes) -> None:
    response = api.post("/proxies", data=body)
    assert response.status_code == 400
    assert response.json()["error"].startswith("bad request body: ")
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_an_empty_body_says_eof(api: Api) -> None:
    assert api.post("/proxies", data=b"").json() == {"error": "bad request body: EOF", "status": 400}


def test_bodies_decode_like_go_keys_fold_case_nulls_are_absent_and_trailing_bytes_are_ignored(api: Api) -> None:
    response = api.post("/proxies", data=b'{"Name":"folded","UPSTREAM":"localhost:1","listen":"127.0.0.1:0","enabled":null} trailing')
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "folded" and response.json()["enabled"] is True
    assert api.post("/proxies", data=b"null").json()["error"] == "missing required field: name"


def test_a_proxy_update_needs_a_body_and_a_parseable_listen(api: Api) -> None:
    api.create_proxy("u", "localhost:7379")
    assert api.post("/proxies/u", data=b"").json() == {"error": "bad request body: EOF", "status": 400}
    bad = api.patch("/proxies/u", json={"listen": "local373"})
    assert bad.status_code == 500 and "missing port" in bad.json()["error"]
    assert api.patch("/proxies/nope", json={"enabled": False}).status_code == 404
    assert is_up(api.get("/proxies/u").json()["listen"])


@pytest.mark.parametrize("name", ["a/b", "/lead", ".", ".."])
def test_names_that_no_route_can_address_are_refused(api: Api, name: str) -> None:
    response = api.post("/proxies", json={"name": name, "upstream": "localhost:1", "listen": "127.0.0.1:0"})
    assert response.status_code == 400 and "cannot contain '/'" in response.json()["error"]
    populate = api.post("/populate", json=[{"name": name, "upstream": "localhost:1", "listen": "127.0.0.1:0"}])
    assert populate.status_code == 400 and populate.json()["proxies"] is None
    api.create_proxy("ok", "localhost:1")
    toxic = api.post("/proxies/ok/toxics", json={"name": name, "type": "noop"})
    assert toxic.status_code == 400
    assert api.get("/proxies").json().keys() == {"ok"}
    assert api.get("/proxies/ok/toxics").json() == []


@pytest.mark.parametrize(
    ("toxic_type", "attributes", "fragment"),
    [
        ("latency", {"latency": -1}, "must be >= 0"),
        ("latency", {"jitter": -5}, "must be >= 0"),
        ("bandwidth", {"rate": -100}, "must be >= 0"),
        ("timeout", {"timeout": -1}, "must be >= 0"),
        ("limit_data", {"bytes": -1}, "must be >= 0"),
        ("slicer", {}, "average_size >= 1"),
        ("slicer", {"average_size": 10, "size_variation": 10}, "size_variation < average_size"),
        ("latency", {"latency": 100.0}, "cannot unmarshal number 100.0"),
        ("latency", {"latency": "100"}, "cannot unmarshal string"),
        ("latency", {"latency": True}, "cannot unmarshal bool"),
        ("latency", {"latency": 2**63}, "of type int64"),
    ],
)
def test_bad_toxic_attributes_are_a_400_and_nothing_is_added(
    api: Api, toxic_type: str, attributes: dict[str, object], fragment: str
) -> None:
    api.create_proxy("t", "localhost:1")
    response = api.post("/proxies/t/toxics", json={"type": toxic_type, "attributes": attributes})
    assert response.status_code == 400
    assert fragment in response.json()["error"]
    assert api.get("/proxies/t/toxics").json() == []


def test_a_bad_toxic_update_is_a_400_and_changes_nothing(api: Api) -> None:
    api.create_proxy("t", "localhost:1")
    original = api.add_toxic("t", type="latency", attributes={"latency": 50, "jitter": 5})
    for body in ({"attributes": {"latency": -1}}, {"toxicity": "high"}, {"attributes": [1]}):
        assert api.patch("/proxies/t/toxics/latency_downstream", json=body).status_code == 400
    assert api.post("/proxies/t/toxics/latency_downstream", data=b"").json()["error"] == "bad request body: EOF"
    assert api.get("/proxies/t/toxics/latency_downstream").json() == original
    assert api.patch("/proxies/t/toxics/nope", json={}).json()["error"] == "toxic not found"
    assert api.patch("/proxies/nope/toxics/x", json={}).json()["error"] == "proxy not found"


def test_toxic_fields_follow_toxiproxy_quirks(api: Api) -> None:
    api.create_proxy("t", "localhost:1")
    mixed = api.add_toxic("t", type="latency", stream="UpStream", toxicity=2.5, attributes={"latency": 1, "nope": "x"})
    assert (mixed["name"], mixed["stream"], mixed["toxicity"]) == ("latency_UpStream", "UpStream", 2.5)
    assert mixed["attributes"] == {"latency": 1, "jitter": 0}
    negative = api.add_toxic("t", type="noop", toxicity=-1)
    assert negative["toxicity"] == -1
    empty_stream = api.post("/proxies/t/toxics", json={"type": "noop", "stream": ""})
    assert empty_stream.status_code == 400
    missing_type = api.post("/proxies/t/toxics", json={"stream": "upstream"})
    assert missing_type.json()["error"] == "invalid toxic type"
    odd = api.add_toxic("t", name="precise", type="noop", toxicity=0.123456789)
    assert odd["toxicity"] == 0.12345679  # stored as float32, like Go


def test_populate_rejects_a_non_array_and_ignores_toxics_in_entries(api: Api) -> None:
    not_array = api.post("/populate", json={"name": "x"})
    assert not_array.status_code == 400 and not_array.json()["proxies"] is None
    assert not_array.headers["Content-Type"] == "application/json"
    created = api.post(
        "/populate",
        json=[{"name": "x", "upstream": "localhost:1", "listen": "127.0.0.1:0", "toxics": [{"type": "latency"}]}],
    )
    assert created.status_code == 201 and created.json()["proxies"][0]["toxics"] == []


def test_populate_reports_a_port_in_use_with_the_proxies_done_so_far(api: Api) -> None:
    busy = api.create_proxy("busy", "localhost:1")
    response = api.post(
        "/populate",
        json=[
            {"name": "a", "upstream": "localhost:1", "listen": "127.0.0.1:0"},
            {"name": "b", "upstream": "localhost:1", "listen": busy["listen"]},
        ],
    )
    assert response.status_code == 500
    body = response.json()
    assert "address already in use" in body["error"]
    assert [proxy["name"] for proxy in body["proxies"]] == ["a"]
    assert set(api.get("/proxies").json()) == {"busy", "a"}


def test_an_api_port_in_use_is_a_clear_start_error(server: FaultProxyServer) -> None:
    host, port = server.address
    threads_before = threading.active_count()
    with pytest.raises(ServerStartError, match="address already in use") as caught:
        FaultProxyServer(host, port).start()
    assert caught.value.port == port and "--port" in str(caught.value)
    assert threading.active_count() == threads_before  # the failed start left no loop thread behind
