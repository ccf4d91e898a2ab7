"""Spec §5 conformance, cases 1–11 and 14–32, through raw HTTP.

Each test names the case it covers. "Up" means a TCP connect to the listen address works.
"""

from __future__ import annotations

import json
import socket

import requests

from .conftest import Api, Upstream, connect, is_up, port_of


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
    assert response.json() == {}


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
    response = api.post(
        "/proxies", json={"name": "mysql_master", "listen": f"localhost:{port}", "upstream": "localhost:20001"}
    )
    assert response.status_code == 201
    body = response.json()
    assert body == {
        "name": "mysql_master",
        "listen": f"127.0.0.1:{port}",
        "upstream": "localhost:20001",
        "enabled": True,
        "Logger": {},
        "toxics": [],
    }
    assert response.headers["Content-Type"] == "application/json"
    assert api.get("/proxies/mysql_master").json() == body
    assert api.get("/proxies").json() == {"mysql_master": body}
    assert is_up(body["listen"])


def test_a_proxy_created_disabled_keeps_its_literal_listen_until_enabled(api: Api) -> None:  # case 6
    port = free_port()
    response = api.post(
        "/proxies", json={"name": "p", "listen": f"localhost:{port}", "upstream": "localhost:20001", "enabled": False}
    )
    assert response.status_code == 201
    assert response.json()["listen"] == f"localhost:{port}"
    assert response.json()["enabled"] is False
    assert not is_up(f"127.0.0.1:{port}")
    enabled = api.post("/proxies/p", json={"enabled": True})
    assert enabled.status_code == 200
    assert enabled.json()["listen"] == f"127.0.0.1:{port}"
    assert is_up(f"127.0.0.1:{port}")
    disabled = api.post("/proxies/p", json={"enabled": False})
    assert disabled.status_code == 200
    assert disabled.json()["enabled"] is False
    assert not is_up(f"127.0.0.1:{port}")


def test_a_duplicate_name_is_a_409_until_the_original_is_deleted(api: Api) -> None:  # case 7
    api.create_proxy("dup", "localhost:20001")
    again = api.post("/proxies", json={"name": "dup", "upstream": "localhost:20001", "listen": "127.0.0.1:0"})
    assert (again.status_code, again.json()["error"]) == (409, "proxy already exists")
    assert api.delete("/proxies/dup").status_code == 204
    api.create_proxy("dup", "localhost:20001")


def test_a_listen_address_in_use_is_a_500_and_the_proxy_is_not_added(api: Api) -> None:  # case 8
    first = api.create_proxy("first", "localhost:20001")
    clash = api.post("/proxies", json={"name": "second", "upstream": "localhost:20001", "listen": first["listen"]})
    assert clash.status_code == 500
    assert "address already in use" in clash.json()["error"]
    assert clash.json()["status"] == 500
    assert set(api.get("/proxies").json()) == {"first"}
    assert api.delete("/proxies/first").status_code == 204
    retry = api.post("/proxies", json={"name": "second", "upstream": "localhost:20001", "listen": first["listen"]})
    assert retry.status_code == 201


def test_delete_closes_the_port_and_a_second_delete_is_a_404(api: Api) -> None:  # case 9
    proxy = api.create_proxy("gone", "localhost:20001")
    response = api.delete("/proxies/gone")
    assert response.status_code == 204
    assert response.content == b""
    assert not is_up(proxy["listen"])
    assert api.get("/proxies").json() == {}
    second = api.delete("/proxies/gone")
    assert (second.status_code, second.json()) == (404, {"error": "proxy not found", "status": 404})


def test_port_zero_is_resolved_and_a_same_address_update_keeps_connections(api: Api, upstream: Upstream) -> None:  # case 10
    proxy = api.create_proxy("zero", upstream.address)
    port = port_of(proxy["listen"])
    assert port != 0
    assert is_up(proxy["listen"])
    moved = api.patch("/proxies/zero", json={"listen": "localhost:0"}).json()
    assert port_of(moved["listen"]) not in (0, port)
    assert is_up(moved["listen"])
    client = connect(moved["listen"])
    server_side = upstream.accept_sending(client)
    same = api.patch("/proxies/zero", json={"listen": f"localhost:{port_of(moved['listen'])}"})
    assert same.status_code == 200
    assert same.json()["listen"] == moved["listen"]
    client.sendall(b"still here")
    assert server_side.recv(100) == b"still here"
    client.close()


def test_disable_then_enable_keeps_the_port_and_the_toxics(api: Api) -> None:  # case 11
    proxy = api.create_proxy("toggle", "localhost:20001")
    api.add_toxic("toggle", type="latency", attributes={"latency": 100})
    api.post("/proxies/toggle", json={"enabled": False})
    again = api.post("/proxies/toggle", json={"enabled": True}).json()
    assert again["listen"] == proxy["listen"]
    assert is_up(again["listen"])
    assert [toxic["name"] for toxic in again["toxics"]] == ["latency_downstream"]


# -- cases 14–19: populate -----------------------------------------------------------------------


def test_populate_creates_proxies_in_input_order(api: Api) -> None:  # case 14
    response = api.post(
        "/populate",
        json=[
            {"name": "one", "listen": "127.0.0.1:0", "upstream": "localhost:7379"},
            {"name": "two", "listen": "127.0.0.1:0", "upstream": "localhost:7380"},
        ],
    )
    assert response.status_code == 201
    proxies = response.json()["proxies"]
    assert [proxy["name"] for proxy in proxies] == ["one", "two"]
    assert all(is_up(proxy["listen"]) for proxy in proxies)


def test_populate_defaults_to_enabled_and_honours_enabled_false(api: Api) -> None:  # case 15
    port = free_port()
    response = api.post(
        "/populate",
        json=[
            {"name": "on", "listen": "127.0.0.1:0", "upstream": "localhost:7379"},
            {"name": "off", "listen": f"127.0.0.1:{port}", "upstream": "localhost:7380", "enabled": False},
        ],
    )
    on, off = response.json()["proxies"]
    assert on["enabled"] is True and is_up(on["listen"])
    assert off["enabled"] is False and not is_up(f"127.0.0.1:{port}")


def test_populate_keeps_an_identical_proxy_and_replaces_a_changed_one(api: Api) -> None:  # case 16
    keep_port, move_port = free_port(), free_port()
    api.create_proxy("keep", "localhost:7379", listen=f"127.0.0.1:{keep_port}")
    api.add_toxic("keep", type="latency", attributes={"latency": 100})
    api.create_proxy("move", "localhost:7380", listen="127.0.0.1:0")
    response = api.post(
        "/populate",
        json=[
            {"name": "keep", "listen": f"localhost:{keep_port}", "upstream": "localhost:7379"},
            {"name": "move", "listen": f"127.0.0.1:{move_port}", "upstream": "localhost:7381"},
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
        json=[{"name": "one", "listen": "127.0.0.1:0", "upstream": "localhost:7379"}, {"upstream": "localhost:7380"}],
    )
    assert response.status_code == 400
    assert response.json() == {"error": "missing required field: name at proxy 2", "status": 400, "proxies": None}
    assert api.get("/proxies").json() == {}


def test_populate_stops_at_an_invalid_listen_and_keeps_what_it_made(api: Api) -> None:  # case 18
    response = api.post(
        "/populate",
        json=[
            {"name": "one", "listen": "127.0.0.1:0", "upstream": "localhost:7379"},
            {"name": "two", "listen": "local373", "upstream": "localhost:7380"},
            {"name": "three", "listen": "127.0.0.1:0", "upstream": "localhost:7381"},
        ],
    )
    assert response.status_code == 500
    body = response.json()
    assert body["status"] == 500 and "local373" in body["error"]
    assert [proxy["name"] for proxy in body["proxies"]] == ["one"]
    listed = api.get("/proxies").json()
    assert set(listed) == {"one"}
    assert is_up(listed["one"]["listen"])


def test_a_populated_proxy_accepts_toxics(api: Api) -> None:  # case 19
    api.post("/populate", json=[{"name": "one", "listen": "127.0.0.1:0", "upstream": "localhost:7379"}])
    api.add_toxic("one", type="latency", attributes={"latency": 10})


# -- cases 20–21: reset --------------------------------------------------------------------------


def test_reset_strips_toxics_and_keeps_the_proxy_up(api: Api) -> None:  # case 20
    api.create_proxy("r", "localhost:7379")
    api.add_toxic("r", type="latency", attributes={"latency": 100, "jitter": 10})
    response = api.post("/reset")
    assert (response.status_code, response.content) == (204, b"")
    proxy = api.get("/proxies/r").json()
    assert proxy["enabled"] is True and proxy["toxics"] == [] and is_up(proxy["listen"])


def test_reset_re_enables_a_disabled_proxy_on_the_same_address(api: Api) -> None:  # case 21
    before = api.create_proxy("r", "localhost:7379")
    api.post("/proxies/r", json={"enabled": False})
    api.add_toxic("r", type="latency", attributes={"latency": 100})
    assert api.post("/reset").status_code == 204
    after = api.get("/proxies/r").json()
    assert after["listen"] == before["listen"] and after["enabled"] is True
    assert is_up(after["listen"]) and after["toxics"] == []


# -- cases 22–32: toxics -------------------------------------------------------------------------


def test_toxic_list_is_empty_for_a_fresh_proxy_and_404_for_a_missing_one(api: Api) -> None:  # case 22
    api.create_proxy("t", "localhost:7379")
    assert (api.get("/proxies/t/toxics").status_code, api.get("/proxies/t/toxics").json()) == (200, [])
    missing = api.get("/proxies/nope/toxics")
    assert (missing.status_code, missing.json()["error"]) == (404, "proxy not found")


def test_a_created_toxic_is_echoed_and_listed(api: Api) -> None:  # case 23
    api.create_proxy("t", "localhost:7379")
    toxic = {
        "name": "foobar",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1,
        "attributes": {"latency": 100, "jitter": 10},
    }
    response = api.post("/proxies/t/toxics", json=toxic)
    assert response.status_code == 200
    expected = {"attributes": {"latency": 100, "jitter": 10}, "name": "foobar", "type": "latency",
                "stream": "downstream", "toxicity": 1}  # fmt: skip
    assert response.json() == expected
    assert list(json.loads(response.content)) == ["attributes", "name", "type", "stream", "toxicity"]
    assert api.get("/proxies/t/toxics").json() == [expected]
    assert api.get("/proxies/t/toxics/foobar").json() == expected


def test_toxics_without_attributes_get_zero_attributes(api: Api) -> None:  # case 24
    api.create_proxy("t", "localhost:7379")
    api.add_toxic("t", name="latency1", type="latency")
    api.add_toxic("t", name="latency2", type="latency")
    listed = api.get("/proxies/t/toxics").json()
    assert [(t["name"], t["attributes"], t["toxicity"]) for t in listed] == [
        ("latency1", {"latency": 0, "jitter": 0}, 1),
        ("latency2", {"latency": 0, "jitter": 0}, 1),
    ]


def test_a_duplicate_toxic_name_on_the_same_stream_is_a_409(api: Api) -> None:  # case 25
    api.create_proxy("t", "localhost:7379")
    api.add_toxic("t", name="foobar", type="latency", attributes={"latency": 5})
    clash = api.post("/proxies/t/toxics", json={"name": "foobar", "type": "slow_close"})
    assert (clash.status_code, clash.json()["error"]) == (409, "toxic already exists")
    assert api.get("/proxies/t/toxics/foobar").json()["type"] == "latency"


def test_a_duplicate_toxic_name_on_the_other_stream_is_a_409(api: Api) -> None:  # case 26
    api.create_proxy("t", "localhost:7379")
    api.add_toxic("t", name="foobar", type="latency", stream="upstream")
    clash = api.post("/proxies/t/toxics", json={"name": "foobar", "type": "latency", "stream": "downstream"})
    assert clash.status_code == 409
    assert [(t["name"], t["stream"]) for t in api.get("/proxies/t/toxics").json()] == [("foobar", "upstream")]


def test_default_toxic_names_include_the_stream(api: Api) -> None:  # case 27
    api.create_proxy("t", "localhost:7379")
    api.add_toxic("t", type="latency", stream="upstream")
    api.add_toxic("t", type="latency", stream="downstream")
    assert [t["name"] for t in api.get("/proxies/t/toxics").json()] == ["latency_upstream", "latency_downstream"]


def test_toxicity_is_echoed_and_listed(api: Api) -> None:  # case 28
    api.create_proxy("t", "localhost:7379")
    assert api.add_toxic("t", type="latency", toxicity=0.2)["toxicity"] == 0.2
    assert api.get("/proxies/t/toxics").json()[0]["toxicity"] == 0.2


def test_a_noop_toxic_defaults_to_downstream_with_toxicity_one(api: Api) -> None:  # case 29
    api.create_proxy("t", "localhost:7379")
    toxic = api.add_toxic("t", name="quiet", type="noop")
    assert toxic == {"attributes": {}, "name": "quiet", "type": "noop", "stream": "downstream", "toxicity": 1}


def test_toxic_updates_merge_attributes_and_keep_toxicity(api: Api) -> None:  # case 30
    api.create_proxy("t", "localhost:7379")
    api.add_toxic("t", type="latency", attributes={"latency": 100, "jitter": 10})
    first = api.post("/proxies/t/toxics/latency_downstream", json={"toxicity": 0.5, "attributes": {"latency": 1000}})
    assert first.status_code == 200
    assert first.json()["attributes"] == {"latency": 1000, "jitter": 10} and first.json()["toxicity"] == 0.5
    second = api.patch("/proxies/t/toxics/latency_downstream", json={"attributes": {"latency": 500}})
    assert second.status_code == 200
    assert second.json()["attributes"] == {"latency": 500, "jitter": 10} and second.json()["toxicity"] == 0.5
    assert api.get("/proxies/t/toxics/latency_downstream").json() == second.json()


def test_a_deleted_toxic_is_gone_and_further_access_is_a_404(api: Api) -> None:  # case 31
    api.create_proxy("t", "localhost:7379")
    api.add_toxic("t", type="latency")
    response = api.delete("/proxies/t/toxics/latency_downstream")
    assert (response.status_code, response.content) == (204, b"")
    assert api.get("/proxies/t/toxics").json() == []
    again = api.delete("/proxies/t/toxics/latency_downstream")
    assert (again.status_code, again.json()) == (404, {"error": "toxic not found", "status": 404})
    assert api.get("/proxies/t/toxics/nope").status_code == 404


def test_bad_streams_types_and_proxies_get_their_own_errors(api: Api) -> None:  # case 32
    api.create_proxy("t", "localhost:7379")
    stream = api.post("/proxies/t/toxics", json={"type": "latency", "stream": "walrustream"})
    assert (stream.status_code, stream.json()["error"]) == (
        400,
        "stream was invalid, can be either upstream or downstream",
    )
    bogus = api.post("/proxies/t/toxics", json={"type": "bogus"})
    assert (bogus.status_code, bogus.json()["error"]) == (400, "invalid toxic type")
    missing = api.post("/proxies/nope/toxics", json={"type": "latency"})
    assert (missing.status_code, missing.json()["error"]) == (404, "proxy not found")


def test_the_server_keeps_serving_after_every_error(api: Api) -> None:
    for _ in range(3):
        api.post("/proxies", data=b"{")
        api.post("/proxies/nope/toxics", json={"type": "bogus"})
        requests.get(api.base + "/nope", timeout=5)
    assert api.get("/version").status_code == 200
