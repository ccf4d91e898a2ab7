"""Listen addresses: resolution like Go's ``net`` package, IPv6 loopback, and bind failures on enable and reset."""

from __future__ import annotations

import asyncio
import random
import socket

import pytest

from harness.faultproxy.addresses import resolve_listen
from harness.faultproxy.errors import ApiError
from harness.faultproxy.proxy import Proxy

from .peers import Api, Upstream, connect, is_up


@pytest.mark.parametrize(
    ("listen", "text"),
    [
        ("localhost:7070", "127.0.0.1:7070"),
        ("127.0.0.1:0", "127.0.0.1:0"),
        ("[::1]:7070", "[::1]:7070"),
        ("0.0.0.0:7070", "[::]:7070"),
        (":7070", "[::]:7070"),
    ],
)
def test_listen_addresses_resolve_to_what_toxiproxy_reports(listen: str, text: str) -> None:
    assert asyncio.run(resolve_listen(listen)).text == text


@pytest.mark.parametrize(
    ("listen", "message"),
    [
        ("local373", "address local373: missing port in address"),
        ("a:b:c", "address a:b:c: too many colons in address"),
        ("127.0.0.1:70000", "address 70000: invalid port"),
        ("127.0.0.1:-1", "address -1: invalid port"),
        ("127.0.0.1:\u0663", "lookup tcp/\u0663: unknown port"),  # Go reads only ASCII digits as a port
        ("no-such-host.invalid:1", "lookup no-such-host.invalid: no such host"),
    ],
)
def test_unusable_listen_addresses_are_500s_with_gos_wording(listen: str, message: str) -> None:
    with pytest.raises(ApiError) as caught:
        asyncio.run(resolve_listen(listen))
    assert (caught.value.status, caught.value.message) == (500, message)


def test_a_proxy_can_listen_on_ipv6_loopback(api: Api, upstream: Upstream) -> None:
    try:
        socket.socket(socket.AF_INET6).close()
    except OSError:
        pytest.skip("no IPv6 on this machine")
    proxy = api.create_proxy(api.name("v6"), upstream.address, listen="[::1]:0")
    host, _, port = proxy["listen"].rpartition(":")
    assert host == "[::1]" and port != "0"
    client = socket.create_connection(("::1", int(port)), timeout=5)
    server_side = upstream.accept_sending(client)
    server_side.sendall(b"v6 ok")
    assert client.recv(10) == b"v6 ok"
    client.close()


def test_an_upstream_named_localhost_is_resolved_at_dial_time(api: Api, upstream: Upstream) -> None:
    proxy = api.create_proxy(api.name("named"), f"localhost:{upstream.port}")
    client = connect(proxy["listen"])
    upstream.accept_sending(client)
    client.close()


def test_enable_fails_with_500_when_the_port_was_taken_and_the_proxy_stays_disabled(api: Api) -> None:
    proxy = api.create_proxy(api.name("taken"), "localhost:1")
    path = f"/proxies/{proxy['name']}"
    api.post(path, json={"enabled": False})
    squatter = socket.socket()
    try:
        squatter.bind(("127.0.0.1", int(proxy["listen"].rsplit(":", 1)[1])))
        squatter.listen()
        response = api.post(path, json={"enabled": True})
        failure = {"error": f"listen tcp {proxy['listen']}: bind: address already in use", "status": 500}
        assert (response.status_code, response.json()) == (500, failure)
        assert api.get(path).json()["enabled"] is False
        reset = api.post("/reset")
        assert (reset.status_code, reset.json()) == (500, failure)
    finally:
        squatter.close()
    assert api.post("/reset").status_code == 204
    assert is_up(api.get(path).json()["listen"])


@pytest.mark.parametrize(
    ("listen", "resolved"),
    [("0.0.0.0:7070", "0.0.0.0:7070"), (":7070", ":7070"), ("[::]:7070", "[::]:7070"), ("127.0.0.1:+80", "127.0.0.1:80")],
)
def test_resolved_text_is_gos_resolve_tcp_addr_string(listen: str, resolved: str) -> None:
    assert asyncio.run(resolve_listen(listen)).resolved == resolved


def test_a_proxy_differs_as_toxiproxys_does_wildcards_as_spelled_and_port_zero_by_text() -> None:
    async def differs(stored: str, listen: str) -> bool:
        proxy = Proxy("p", stored, "up:1", random.Random(0))  # never started: only the stored text counts
        return await proxy.differs(listen, "up:1")

    assert asyncio.run(differs("[::]:7070", "[::]:7070")) is False
    assert asyncio.run(differs("[::]:7070", "0.0.0.0:7070")) is True  # Go: "0.0.0.0:7070" != "[::]:7070"
    assert asyncio.run(differs("[::]:7070", ":7070")) is True
    assert asyncio.run(differs("127.0.0.1:7070", "localhost:7070")) is False
    assert asyncio.run(differs("127.0.0.1:0", "127.0.0.1:0")) is False  # a disabled proxy's literal :0 is kept
    assert asyncio.run(differs("127.0.0.1:41234", "127.0.0.1:0")) is True
