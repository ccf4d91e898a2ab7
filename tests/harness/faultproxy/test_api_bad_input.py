"""Routing details and bad input: each gets the spec's status and body, and the server keeps serving.

Where the real Toxiproxy would crash or create something unreachable (negative bandwidth,
a slicer that never terminates, names with '/'), we answer 400 instead: those tests are
``faultproxy_extra``. The exact texts of bad bodies are in ``test_api_error_texts``.
"""

from __future__ import annotations

import socket
import threading

import pytest

from harness.faultproxy import FaultProxyServer, ServerStartError

from .peers import Api, Target, is_up

extra = pytest.mark.faultproxy_extra


def raw_http(target: Target, payload: bytes) -> bytes:
    with socket.create_connection((target.host, target.port), timeout=5) as sock:
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
    assert api.get("//proxies").status_code == 200


def test_a_browser_on_an_unknown_path_still_gets_the_404(api: Api) -> None:
    assert api.get("/nope", headers={"User-Agent": "Mozilla/5.0"}).status_code == 404


def test_keep_alive_chunked_bodies_and_expect_continue_work(api: Api, target: Target) -> None:
    name = api.name("c").encode()
    body = b'{"name":"%s","upstream":"localhost:7379","listen":"127.0.0.1:0"}' % name
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    reply = raw_http(
        target,
        b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /proxies HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
        + chunked
        + b"GET /proxies/%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % name,
    )
    assert reply.count(b"HTTP/1.1 200 OK") == 2
    assert b"HTTP/1.1 100 Continue" in reply
    assert b"HTTP/1.1 201 Created" in reply


def test_a_malformed_request_is_a_400_and_the_server_keeps_serving(api: Api, target: Target) -> None:
    assert raw_http(target, b"NONSENSE\r\n\r\n").startswith(b"HTTP/1.1 400 Bad Request")
    assert raw_http(target, b"GET /version HTTP/1.1\r\nContent-Length: x\r\n\r\n").startswith(b"HTTP/1.1 400")
    assert api.get("/version").status_code == 200


# -- bodies --------------------------------------------------------------------------------------


def test_bodies_decode_like_go_keys_fold_case_nulls_are_absent_and_trailing_bytes_are_ignored(api: Api) -> None:
    body = b'{"Name":"%s","UPSTREAM":"localhost:1","listen":"127.0.0.1:0","enabled":null} trailing'
    response = api.post("/proxies", data=body % api.name("folded").encode())
    assert response.status_code == 201, response.text
    assert response.json()["name"] == api.name("folded") and response.json()["enabled"] is True
    assert api.post("/proxies", data=b"null").json()["error"] == "missing required field: name"


def test_a_proxy_update_needs_a_body_and_a_parseable_listen(api: Api) -> None:
    u = api.create_proxy(api.name("u"), "localhost:7379")["name"]
    assert api.post(f"/proxies/{u}", data=b"").json() == {"error": "bad request body: EOF", "status": 400}
    bad = api.patch(f"/proxies/{u}", json={"listen": "local373"})
    # Update compares with ResolveTCPAddr, which, unlike net.Listen, does not say "listen tcp: ".
    assert bad.json() == {"error": "address local373: missing port in address", "status": 500}
    assert api.patch(f"/proxies/{api.name('nope')}", json={"enabled": False}).status_code == 404
    assert is_up(api.get(f"/proxies/{u}").json()["listen"])


@extra
@pytest.mark.parametrize("name", ["a/b", "/lead", ".", ".."])
def test_names_that_no_route_can_address_are_refused(api: Api, name: str) -> None:
    response = api.post("/proxies", json={"name": name, "upstream": "localhost:1", "listen": "127.0.0.1:0"})
    assert response.status_code == 400 and "cannot contain '/'" in response.json()["error"]
    populate = api.post("/populate", json=[{"name": name, "upstream": "localhost:1", "listen": "127.0.0.1:0"}])
    assert populate.status_code == 400 and populate.json()["proxies"] is None
    ok = api.create_proxy(api.name("ok"), "localhost:1")["name"]
    toxic = api.post(f"/proxies/{ok}/toxics", json={"name": name, "type": "noop"})
    assert toxic.status_code == 400
    assert api.listed().keys() == {ok}
    assert api.get(f"/proxies/{ok}/toxics").json() == []


@extra
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
    ],
)
def test_attributes_that_crash_or_wedge_toxiproxy_are_a_400_and_nothing_is_added(
    api: Api, toxic_type: str, attributes: dict[str, object], fragment: str
) -> None:
    t = api.create_proxy(api.name("t"), "localhost:1")["name"]
    response = api.post(f"/proxies/{t}/toxics", json={"type": toxic_type, "attributes": attributes})
    assert response.status_code == 400
    assert fragment in response.json()["error"]
    assert api.get(f"/proxies/{t}/toxics").json() == []


@extra
def test_an_update_to_a_negative_attribute_is_a_400_and_changes_nothing(api: Api) -> None:
    t = api.create_proxy(api.name("t"), "localhost:1")["name"]
    original = api.add_toxic(t, type="latency", attributes={"latency": 50, "jitter": 5})
    response = api.patch(f"/proxies/{t}/toxics/latency_downstream", json={"attributes": {"latency": -1}})
    assert response.status_code == 400 and "must be >= 0" in response.json()["error"]
    assert api.get(f"/proxies/{t}/toxics/latency_downstream").json() == original


def test_a_bad_toxic_update_is_a_400_and_changes_nothing(api: Api) -> None:
    t = api.create_proxy(api.name("t"), "localhost:1")["name"]
    original = api.add_toxic(t, type="latency", attributes={"latency": 50, "jitter": 5})
    for body in ({"toxicity": "high"}, {"attributes": [1]}, {"attributes": {"latency": 1.5}}):
        assert api.patch(f"/proxies/{t}/toxics/latency_downstream", json=body).status_code == 400
    assert api.post(f"/proxies/{t}/toxics/latency_downstream", data=b"").json()["error"] == "bad request body: EOF"
    assert api.get(f"/proxies/{t}/toxics/latency_downstream").json() == original
    assert api.patch(f"/proxies/{t}/toxics/nope", json={}).json()["error"] == "toxic not found"
    assert api.patch(f"/proxies/{api.name('nope')}/toxics/x", json={}).json()["error"] == "proxy not found"


def test_toxic_fields_follow_toxiproxy_quirks(api: Api) -> None:
    t = api.create_proxy(api.name("t"), "localhost:1")["name"]
    mixed = api.add_toxic(t, type="latency", stream="UpStream", toxicity=2.5, attributes={"latency": 1, "nope": "x"})
    assert (mixed["name"], mixed["stream"], mixed["toxicity"]) == ("latency_UpStream", "UpStream", 2.5)
    assert mixed["attributes"] == {"latency": 1, "jitter": 0}
    negative = api.add_toxic(t, type="noop", toxicity=-1)
    assert negative["toxicity"] == -1
    empty_stream = api.post(f"/proxies/{t}/toxics", json={"type": "noop", "stream": ""})
    assert empty_stream.status_code == 400
    missing_type = api.post(f"/proxies/{t}/toxics", json={"stream": "upstream"})
    assert missing_type.json()["error"] == "invalid toxic type"
    odd = api.add_toxic(t, name="precise", type="noop", toxicity=0.123456789)
    assert odd["toxicity"] == 0.12345679  # stored as float32, like Go


def test_populate_rejects_a_non_array_and_ignores_toxics_in_entries(api: Api) -> None:
    not_array = api.post("/populate", json={"name": "x"})
    assert not_array.status_code == 400 and not_array.json()["proxies"] is None
    assert not_array.headers["Content-Type"] == "application/json"
    entry = {"name": api.name("x"), "upstream": "localhost:1", "listen": "127.0.0.1:0", "toxics": [{"type": "latency"}]}
    created = api.post("/populate", json=[entry])
    assert created.status_code == 201 and created.json()["proxies"][0]["toxics"] == []


def test_populate_reports_a_port_in_use_with_the_proxies_done_so_far(api: Api) -> None:
    busy = api.create_proxy(api.name("busy"), "localhost:1")
    response = api.post(
        "/populate",
        json=[
            {"name": api.name("a"), "upstream": "localhost:1", "listen": "127.0.0.1:0"},
            {"name": api.name("b"), "upstream": "localhost:1", "listen": busy["listen"]},
        ],
    )
    assert response.status_code == 500
    body = response.json()
    assert body["error"] == f"listen tcp {busy['listen']}: bind: address already in use"
    assert [proxy["name"] for proxy in body["proxies"]] == [api.name("a")]
    assert set(api.listed()) == {busy["name"], api.name("a")}


def test_an_api_port_in_use_is_a_clear_start_error(server: FaultProxyServer) -> None:
    host, port = server.address
    threads_before = threading.active_count()
    with pytest.raises(ServerStartError, match="address already in use") as caught:
        FaultProxyServer(host, port).start()
    assert caught.value.port == port and "--port" in str(caught.value)
    assert threading.active_count() == threads_before  # the failed start left no loop thread behind
