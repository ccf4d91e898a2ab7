"""Spec §5 conformance, cases 1–11 and 14–32, through raw HTTP.

Each test names the case it covers. "Up" means a TCP connect to the listen address works.
Proxy names go through ``api.name`` so that the suite can run on a shared server
(``TOXIPROXY_URL``, see conftest).
"""

from __future__ import annotations

import json
import socket

import requests

from .peers import Api, Upstream, connect, is_up, port_of


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- cases 1–4: version, user agents, empty list, bad create bodies ------------------------------


def test_version_is_the_exact_toxiproxy_json_with_a_request_id(api: Api) -> None:  # case 1
    response = api.get("/version")
    assert response.status_code == 200
    assert response.content == b'{"version": "2.12.0"}\n'
    assert response.json() == {"version": "2.12.0"}
    assert response.headers["Content-Type"] == "application/json;charset=utf-8"
    assert len(response.headers["X-Toxiproxy-Request-Id"]) == 20


def test_browser_user_agents_are_refused_and_others_are_not(api: Api) -> None:  # case 2
    browser = api.get("/proxies", headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"})
    assert browser.status_code == 403
    assert browser.text == "User agent not allowed\n"
    for agent in ("Wget/2.1", "curl/8.5.0"):
        assert api.get("/proxies", headers={"User-Agent": agent}).status_code == 200


def test_a_fresh_server_lists_no_proxies(api: Api) -> None:  # case 3
    response = api.get("/proxies")
    assert response.status_code == 200
    assert isinstance(response.json(), dict)
    assert api.listed() == {}  # on a shared server: none of this test's names


def test_create_without_name_or_upstream_or_json_is_a_400(api: Api) -> None:  # case 4
    no_name = api.post("/proxies", json={"name": "", "upstream": ""})
    assert (no_name.status_code, no_name.json()) == (400, {"error": "missing required field: name", "status": 400})
    no_upstream = api.post("/proxies", json={"name": "test", "upstream": ""})
    assert no_upstream.status_code == 400
    assert no_upstream.json()["error"] == "missing required field: upstream"
    not_json = api.post("/proxies", data=b"this is not json")
    assert not_json.status_code == 400
    assert not_json.json()["error"].startswith("bad request body:")
    assert not_json.text.endswith("\n")


# -- cases 5–11: create, disabled create, duplicates, ports in use, delete, port 0 ---------------


def test_create_resolves_localhost_and_the_proxy_is_up_and_listed(api: Api, upstream: Upstream) -> None:  # case 5
    port = free_port()
    name = api.name("mysql_master")
    response = api.post("/proxies", json={"name": name, "listen": f"localhost:{port}", "upstream": "localhost:20001"})
    assert response.status_code == 201
    body = response.json()
    assert body == {
        "name": name,
        "listen": f"127.0.0.1:{port}",
        "upstream": "localhost:20001",
        "enabled": True,
        "Logger": {},
        "toxics": [],
    }
    assert response.headers["Content-Type"] == "application/json"
    assert api.get(f"/proxies/{name}").json() == body
    assert api.listed() == {name: body}
    assert is_up(body["listen"])


def test_a_proxy_created_disabled_keeps_its_literal_listen_until_enabled(api: Api) -> None:  # case 6
    port, p = free_port(), api.name("p")
    response = api.post(
        "/proxies", json={"name": p, "listen": f"localhost:{port}", "upstream": "localhost:20001", "enabled": False}
    )
    assert response.status_code == 201
    assert response.json()["listen"] == f"localhost:{port}"
    assert response.json()["enabled"] is False
    assert not is_up(f"127.0.0.1:{port}")
    enabled = api.post(f"/proxies/{p}", json={"enabled": True})
    assert enabled.status_code == 200
    assert enabled.json()["listen"] == f"127.0.0.1:{port}"
    assert is_up(f"127.0.0.1:{port}")
    disabled = api.post(f"/proxies/{p}", json={"enabled": False})
    assert disabled.status_code == 200
    assert disabled.json()["enabled"] is False
    assert not is_up(f"127.0.0.1:{port}")


def test_a_duplicate_name_is_a_409_until_the_original_is_deleted(api: Api) -> None:  # case 7
    dup = api.name("dup")
    api.create_proxy(dup, "localhost:20001")
    again = api.post("/proxies", json={"name": dup, "upstream": "localhost:20001", "listen": "127.0.0.1:0"})
    assert (again.status_code, again.json()["error"]) == (409, "proxy already exists")
    assert api.delete(f"/proxies/{dup}").status_code == 204
    api.create_proxy(dup, "localhost:20001")


def test_a_listen_address_in_use_is_a_500_and_the_proxy_is_not_added(api: Api) -> None:  # case 8
    first = api.create_proxy(api.name("first"), "localhost:20001")
    second = {"name": api.name("second"), "upstream": "localhost:20001", "listen": first["listen"]}
    clash = api.post("/proxies", json=second)
    assert clash.status_code == 500
    assert clash.json() == {"error": f"listen tcp {first['listen']}: bind: address already in use", "status": 500}
    assert set(api.listed()) == {first["name"]}
    assert api.delete(f"/proxies/{first['name']}").status_code == 204
    retry = api.post("/proxies", json=second)
    assert retry.status_code == 201


def test_delete_closes_the_port_and_a_second_delete_is_a_404(api: Api) -> None:  # case 9
    proxy = api.create_proxy(api.name("gone"), "localhost:20001")
    response = api.delete(f"/proxies/{proxy['name']}")
    assert response.status_code == 204
    assert response.content == b""
    assert not is_up(proxy["listen"])
    assert api.listed() == {}
    second = api.delete(f"/proxies/{proxy['name']}")
    assert (second.status_code, second.json()) == (404, {"error": "proxy not found", "status": 404})


def test_port_zero_is_resolved_and_a_same_address_update_keeps_connections(api: Api, upstream: Upstream) -> None:  # case 10
    proxy = api.create_proxy(api.name("zero"), upstream.address)
    port, path = port_of(proxy["listen"]), f"/proxies/{proxy['name']}"
    assert port != 0
    assert is_up(proxy["listen"])
    moved = api.patch(path, json={"listen": "localhost:0"}).json()
    assert port_of(moved["listen"]) not in (0, port)
    assert is_up(moved["listen"])
    client = connect(moved["listen"])
    server_side = upstream.accept_sending(client)
    same = api.patch(path, json={"listen": f"localhost:{port_of(moved['listen'])}"})
    assert same.status_code == 200
    assert same.json()["listen"] == moved["listen"]
    client.sendall(b"still here")
    assert server_side.recv(100) == b"still here"
    client.close()


def test_disable_then_enable_keeps_the_port_and_the_toxics(api: Api) -> None:  # case 11
    toggle = api.name("toggle")
    proxy = api.create_proxy(toggle, "localhost:20001")
    api.add_toxic(toggle, type="latency", attributes={"latency": 100})
    api.post(f"/proxies/{toggle}", json={"enabled": False})
    again = api.post(f"/proxies/{toggle}", json={"enabled": True}).json()
    assert again["listen"] == proxy["listen"]
    assert is_up(again["listen"])
    assert [toxic["name"] for toxic in again["toxics"]] == ["latency_downstream"]


# -- cases 14–19: populate -----------------------------------------------------------------------


def test_populate_creates_proxies_in_input_order(api: Api) -> None:  # case 14
    one, two = api.name("one"), api.name("two")
    response = api.post(
        "/populate",
        json=[
            {"name": one, "listen": "127.0.0.1:0", "upstream": "localhost:7379"},
            {"name": two, "listen": "127.0.0.1:0", "upstream": "localhost:7380"},
        ],
    )
    assert response.status_code == 201
    proxies = response.json()["proxies"]
    assert [proxy["name"] for proxy in proxies] == [one, two]
    assert all(is_up(proxy["listen"]) for proxy in proxies)


def test_populate_defaults_to_enabled_and_honours_enabled_false(api: Api) -> None:  # case 15
    port = free_port()
    response = api.post(
        "/populate",
        json=[
            {"name": api.name("on"), "listen": "127.0.0.1:0", "upstream": "localhost:7379"},
            {"name": api.name("off"), "listen": f"127.0.0.1:{port}", "upstream": "localhost:7380", "enabled": False},
        ],
    )
    on, off = response.json()["proxies"]
    assert on["enabled"] is True and is_up(on["listen"])
    assert off["enabled"] is False and not is_up(f"127.0.0.1:{port}")


def test_populate_keeps_an_identical_proxy_and_replaces_a_changed_one(api: Api) -> None:  # case 16
    keep_port, move_port = free_port(), free_port()
    keep_name, move_name = api.name("keep"), api.name("move")
    api.create_proxy(keep_name, "localhost:7379", listen=f"127.0.0.1:{keep_port}")
    api.add_toxic(keep_name, type="latency", attributes={"latency": 100})
    api.create_proxy(move_name, "localhost:7380", listen="127.0.0.1:0")
    response = api.post(
        "/populate",
        json=[
            {"name": keep_name, "listen": f"localhost:{keep_port}", "upstream": "localhost:7379"},
            {"name": move_name, "listen": f"127.0.0.1:{move_port}", "upstream": "localhost:7381"},
        ],
    )
    assert response.status_code == 201
    keep, move = response.json()["proxies"]
    assert keep["listen"] == f"127.0.0.1:{keep_port}"
    assert [toxic["name"] for toxic in keep["toxics"]] == ["latency_downstream"]
    assert move["listen"] == f"127.0.0.1:{move_port}" and move["upstream"] == "localhost:7381"
    assert is_up(move["listen"])


def test_populate_with_a_nameless_entry_creates_nothing(api: Api) -> None:  # case 17
    response = api.post(
        "/populate",
        json=[{"name": api.name("one"), "listen": "127.0.0.1:0", "upstream": "localhost:7379"}, {"upstream": "x:1"}],
    )
    assert response.status_code == 400
    assert response.json() == {"error": "missing required field: name at proxy 2", "status": 400, "proxies": None}
    assert api.listed() == {}


def test_populate_stops_at_an_invalid_listen_and_keeps_what_it_made(api: Api) -> None:  # case 18
    response = api.post(
        "/populate",
        json=[
            {"name": api.name("one"), "listen": "127.0.0.1:0", "upstream": "localhost:7379"},
            {"name": api.name("two"), "listen": "local373", "upstream": "localhost:7380"},
            {"name": api.name("three"), "listen": "127.0.0.1:0", "upstream": "localhost:7381"},
        ],
    )
    assert response.status_code == 500
    body = response.json()
    assert list(body) == ["error", "status", "proxies"]
    assert body["error"] == "listen tcp: address local373: missing port in address" and body["status"] == 500
    assert [proxy["name"] for proxy in body["proxies"]] == [api.name("one")]
    listed = api.listed()
    assert set(listed) == {api.name("one")}
    assert is_up(listed[api.name("one")]["listen"])


def test_a_populated_proxy_accepts_toxics(api: Api) -> None:  # case 19
    one = api.name("one")
    api.post("/populate", json=[{"name": one, "listen": "127.0.0.1:0", "upstream": "localhost:7379"}])
    api.add_toxic(one, type="latency", attributes={"latency": 10})


# -- cases 20–21: reset --------------------------------------------------------------------------


def test_reset_strips_toxics_and_keeps_the_proxy_up(api: Api) -> None:  # case 20
    r = api.name("r")
    api.create_proxy(r, "localhost:7379")
    api.add_toxic(r, type="latency", attributes={"latency": 100, "jitter": 10})
    response = api.post("/reset")
    assert (response.status_code, response.content) == (204, b"")
    proxy = api.get(f"/proxies/{r}").json()
    assert proxy["enabled"] is True and proxy["toxics"] == [] and is_up(proxy["listen"])


def test_reset_re_enables_a_disabled_proxy_on_the_same_address(api: Api) -> None:  # case 21
    r = api.name("r")
    before = api.create_proxy(r, "localhost:7379")
    api.post(f"/proxies/{r}", json={"enabled": False})
    api.add_toxic(r, type="latency", attributes={"latency": 100})
    assert api.post("/reset").status_code == 204
    after = api.get(f"/proxies/{r}").json()
    assert after["listen"] == before["listen"] and after["enabled"] is True
    assert is_up(after["listen"]) and after["toxics"] == []


# -- cases 22–32: toxics -------------------------------------------------------------------------


def test_toxic_list_is_empty_for_a_fresh_proxy_and_404_for_a_missing_one(api: Api) -> None:  # case 22
    t = api.create_proxy(api.name("t"), "localhost:7379")["name"]
    assert (api.get(f"/proxies/{t}/toxics").status_code, api.get(f"/proxies/{t}/toxics").json()) == (200, [])
    missing = api.get(f"/proxies/{api.name('nope')}/toxics")
    assert (missing.status_code, missing.json()["error"]) == (404, "proxy not found")


def test_a_created_toxic_is_echoed_and_listed(api: Api) -> None:  # case 23
    t = api.create_proxy(api.name("t"), "localhost:7379")["name"]
    toxic = {
        "name": "foobar",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1,
        "attributes": {"latency": 100, "jitter": 10},
    }
    response = api.post(f"/proxies/{t}/toxics", json=toxic)
    assert response.status_code == 200
    expected = {"attributes": {"latency": 100, "jitter": 10}, "name": "foobar", "type": "latency",
                "stream": "downstream", "toxicity": 1}  # fmt: skip
    assert response.json() == expected
    assert list(json.loads(response.content)) == ["attributes", "name", "type", "stream", "toxicity"]
    assert api.get(f"/proxies/{t}/toxics").json() == [expected]
    assert api.get(f"/proxies/{t}/toxics/foobar").json() == expected


def test_toxics_without_attributes_get_zero_attributes(api: Api) -> None:  # case 24
    t = api.create_proxy(api.name("t"), "localhost:7379")["name"]
    api.add_toxic(t, name="latency1", type="latency")
    api.add_toxic(t, name="latency2", type="latency")
    listed = api.get(f"/proxies/{t}/toxics").json()
    assert [(t["name"], t["attributes"], t["toxicity"]) for t in listed] == [
        ("latency1", {"latency": 0, "jitter": 0}, 1),
        ("latency2", {"latency": 0, "jitter": 0}, 1),
    ]


def test_a_duplicate_toxic_name_on_the_same_stream_is_a_409(api: Api) -> None:  # case 25
    t = api.create_proxy(api.name("t"), "localhost:7379")["name"]
    api.add_toxic(t, name="foobar", type="latency", attributes={"latency": 5})
    clash = api.post(f"/proxies/{t}/toxics", json={"name": "foobar", "type": "slow_close"})
    assert (clash.status_code, clash.json()["error"]) == (409, "toxic already exists")
    assert api.get(f"/proxies/{t}/toxics/foobar").json()["type"] == "latency"


def test_a_duplicate_toxic_name_on_the_other_stream_is_a_409(api: Api) -> None:  # case 26
    t = api.create_proxy(api.name("t"), "localhost:7379")["name"]
    api.add_toxic(t, name="foobar", type="latency", stream="upstream")
    clash = api.post(f"/proxies/{t}/toxics", json={"name": "foobar", "type": "latency", "stream": "downstream"})
    assert clash.status_code == 409
    assert [(t["name"], t["stream"]) for t in api.get(f"/proxies/{t}/toxics").json()] == [("foobar", "upstream")]


def test_default_toxic_names_include_the_stream(api: Api) -> None:  # case 27
    t = api.create_proxy(api.name("t"), "localhost:7379")["name"]
    api.add_toxic(t, type="latency", stream="upstream")
    api.add_toxic(t, type="latency", stream="downstream")
    assert [t["name"] for t in api.get(f"/proxies/{t}/toxics").json()] == ["latency_upstream", "latency_downstream"]


def test_toxicity_is_echoed_and_listed(api: Api) -> None:  # case 28
    t = api.create_proxy(api.name("t"), "localhost:7379")["name"]
    assert api.add_toxic(t, type="latency", toxicity=0.2)["toxicity"] == 0.2
    assert api.get(f"/proxies/{t}/toxics").json()[0]["toxicity"] == 0.2


def test_a_noop_toxic_defaults_to_downstream_with_toxicity_one(api: Api) -> None:  # case 29
    t = api.create_proxy(api.name("t"), "localhost:7379")["name"]
    toxic = api.add_toxic(t, name="quiet", type="noop")
    assert toxic == {"attributes": {}, "name": "quiet", "type": "noop", "stream": "downstream", "toxicity": 1}


def test_toxic_updates_merge_attributes_and_keep_toxicity(api: Api) -> None:  # case 30
    t = api.create_proxy(api.name("t"), "localhost:7379")["name"]
    api.add_toxic(t, type="latency", attributes={"latency": 100, "jitter": 10})
    first = api.post(f"/proxies/{t}/toxics/latency_downstream", json={"toxicity": 0.5, "attributes": {"latency": 1000}})
    assert first.status_code == 200
    assert first.json()["attributes"] == {"latency": 1000, "jitter": 10} and first.json()["toxicity"] == 0.5
    second = api.patch(f"/proxies/{t}/toxics/latency_downstream", json={"attributes": {"latency": 500}})
    assert second.status_code == 200
    assert second.json()["attributes"] == {"latency": 500, "jitter": 10} and second.json()["toxicity"] == 0.5
    assert api.get(f"/proxies/{t}/toxics/latency_downstream").json() == second.json()


def test_a_deleted_toxic_is_gone_and_further_access_is_a_404(api: Api) -> None:  # case 31
    t = api.create_proxy(api.name("t"), "localhost:7379")["name"]
    api.add_toxic(t, type="latency")
    response = api.delete(f"/proxies/{t}/toxics/latency_downstream")
    assert (response.status_code, response.content) == (204, b"")
    assert api.get(f"/proxies/{t}/toxics").json() == []
    again = api.delete(f"/proxies/{t}/toxics/latency_downstream")
    assert (again.status_code, again.json()) == (404, {"error": "toxic not found", "status": 404})
    assert api.get(f"/proxies/{t}/toxics/nope").status_code == 404


def test_bad_streams_types_and_proxies_get_their_own_errors(api: Api) -> None:  # case 32
    t = api.create_proxy(api.name("t"), "localhost:7379")["name"]
    stream = api.post(f"/proxies/{t}/toxics", json={"type": "latency", "stream": "walrustream"})
    assert (stream.status_code, stream.json()["error"]) == (
        400,
        "stream was invalid, can be either upstream or downstream",
    )
    bogus = api.post(f"/proxies/{t}/toxics", json={"type": "bogus"})
    assert (bogus.status_code, bogus.json()["error"]) == (400, "invalid toxic type")
    missing = api.post(f"/proxies/{api.name('nope')}/toxics", json={"type": "latency"})
    assert (missing.status_code, missing.json()["error"]) == (404, "proxy not found")


def test_the_server_keeps_serving_after_every_error(api: Api) -> None:
    for _ in range(3):
        api.post("/proxies", data=b"{")
        api.post(f"/proxies/{api.name('nope')}/toxics", json={"type": "bogus"})
        requests.get(api.base + "/nope", timeout=5)
    assert api.get("/version").status_code == 200
