"""Proxied connections: pass-through, teardown on disable/delete/re-point, no half-close, no API hangs.

Covers spec §5 cases 12–13 and the §2 semantics a harness relies on: after a 2xx the
port is bound or closed and live connections are torn down, and API calls return
promptly even when a peer has stopped reading.
"""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from harness.faultproxy import FaultProxyServer

from .conftest import Api, Upstream, connect, is_up, recv_exactly, recv_until_eof


def closed_by_peer(sock: socket.socket, timeout: float = 2.0) -> bool:
    """True if the peer closed (EOF or reset) within ``timeout``; data received before is skipped."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return True


def test_a_dead_upstream_gives_the_client_a_connect_then_eof(api: Api) -> None:  # case 12
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{placeholder.getsockname()[1]}"
    proxy = api.create_proxy("dead", dead)
    client = connect(proxy["listen"], timeout=0.5)
    start = time.monotonic()
    assert client.recv(10) == b""
    assert time.monotonic() - start < 0.5
    client.close()


def test_bytes_pass_through_unchanged(api: Api, upstream: Upstream) -> None:  # case 13
    proxy = api.create_proxy("pass", upstream.address)
    client = connect(proxy["listen"])
    server_side = upstream.accept()
    payloads = [b"hello world", os.urandom(64 * 1024)]
    for payload in payloads:
        client.sendall(payload)
        assert recv_exactly(server_side, len(payload)) == payload
    client.sendall(b"first")
    client.sendall(b"second")
    assert recv_exactly(server_side, 11) == b"firstsecond"
    server_side.sendall(payloads[1])
    assert recv_exactly(client, len(payloads[1])) == payloads[1]
    client.close()


def test_many_megabytes_each_way_on_many_connections_arrive_intact(api: Api, upstream: Upstream) -> None:
    upstream.serve_echo()
    proxy = api.create_proxy("bulk", upstream.address)
    payload = os.urandom(4 * 1024 * 1024)
    results: list[bool] = []

    def roundtrip() -> None:
        client = connect(proxy["listen"])
        sender = threading.Thread(target=client.sendall, args=(payload,))
        sender.start()
        results.append(recv_exactly(client, len(payload)) == payload)
        sender.join()
        client.close()

    threads = [threading.Thread(target=roundtrip) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [True] * 8


def test_disable_closes_live_connections_and_refuses_new_ones(api: Api, upstream: Upstream) -> None:
    proxy = api.create_proxy("d", upstream.address)
    client = connect(proxy["listen"])
    server_side = upstream.accept_sending(client)
    response = api.post("/proxies/d", json={"enabled": False})
    assert response.status_code == 200 and response.json()["enabled"] is False
    assert closed_by_peer(client, timeout=0.5)
    assert closed_by_peer(server_side, timeout=0.5)
    with pytest.raises(ConnectionRefusedError):
        connect(proxy["listen"])
    api.post("/proxies/d", json={"enabled": True})
    again = connect(proxy["listen"])
    upstream.accept_sending(again)
    again.close()


def test_delete_closes_live_connections(api: Api, upstream: Upstream) -> None:
    proxy = api.create_proxy("x", upstream.address)
    client = connect(proxy["listen"])
    server_side = upstream.accept_sending(client)
    assert api.delete("/proxies/x").status_code == 204
    assert closed_by_peer(client, timeout=0.5) and closed_by_peer(server_side, timeout=0.5)


def test_changing_the_upstream_drops_connections_and_new_ones_go_to_the_new_upstream(
    api: Api, upstream: Upstream
) -> None:
    other = Upstream()
    try:
        proxy = api.create_proxy("re", upstream.address)
        client = connect(proxy["listen"])
        upstream.accept_sending(client)
        updated = api.patch("/proxies/re", json={"upstream": other.address}).json()
        assert updated["upstream"] == other.address and updated["listen"] == proxy["listen"]
        assert closed_by_peer(client, timeout=0.5)
        fresh = connect(proxy["listen"])
        other.accept_sending(fresh)
        fresh.close()
    finally:
        other.close()


def test_a_fin_from_the_client_tears_down_both_legs(api: Api, upstream: Upstream) -> None:
    proxy = api.create_proxy("fin", upstream.address)
    client = connect(proxy["listen"])
    server_side = upstream.accept_sending(client)
    client.sendall(b"last words")
    client.shutdown(socket.SHUT_WR)
    assert recv_until_eof(server_side) == b"last words"
    # Toxiproxy never half-closes: the server never closed, yet the client sees EOF.
    assert closed_by_peer(client, timeout=1.0)


def test_a_fin_from_the_server_delivers_pending_data_then_closes_the_client(api: Api, upstream: Upstream) -> None:
    proxy = api.create_proxy("fin", upstream.address)
    client = connect(proxy["listen"])
    server_side = upstream.accept_sending(client)
    server_side.sendall(b"goodbye")
    server_side.close()
    assert recv_until_eof(client) == b"goodbye"


def test_stopping_the_server_closes_proxied_connections(upstream: Upstream) -> None:
    server = FaultProxyServer("127.0.0.1", 0).start()
    try:
        listen = Api(server.url).create_proxy("s", upstream.address)["listen"]
        client = connect(listen)
        upstream.accept_sending(client)
    finally:
        server.stop()
    assert closed_by_peer(client, timeout=1.0)
    assert not is_up(listen)


def test_a_toxic_added_to_a_live_connection_applies_to_it(api: Api, upstream: Upstream) -> None:
    proxy = api.create_proxy("live", upstream.address)
    client = connect(proxy["listen"])
    server_side = upstream.accept_sending(client)
    api.add_toxic("live", type="latency", stream="upstream", attributes={"latency": 150})
    start = time.monotonic()
    client.sendall(b"slow")
    assert recv_exactly(server_side, 4) == b"slow"
    assert 0.149 <= time.monotonic() - start <= 0.165
    api.delete("/proxies/live/toxics/latency_upstream")
    start = time.monotonic()
    client.sendall(b"fast")
    assert recv_exactly(server_side, 4) == b"fast"
    assert time.monotonic() - start < 0.015


def test_toxics_on_a_disabled_proxy_apply_again_once_enabled(api: Api, upstream: Upstream) -> None:
    proxy = api.create_proxy("later", upstream.address, enabled=False)
    api.add_toxic("later", type="limit_data", stream="upstream", attributes={"bytes": 3})
    listen = api.post("/proxies/later", json={"enabled": True}).json()["listen"]
    client = connect(listen)
    client.sendall(b"abcdef")
    server_side = upstream.accept()
    assert recv_until_eof(server_side) == b"abc"
    assert proxy["enabled"] is False


def test_a_zero_rate_bandwidth_holds_data_until_removed(api: Api, upstream: Upstream) -> None:
    proxy = api.create_proxy("cut", upstream.address)
    client = connect(proxy["listen"])
    server_side = upstream.accept_sending(client)
    api.add_toxic("cut", type="bandwidth", stream="upstream", attributes={"rate": 0})
    client.sendall(b"held back")
    server_side.settimeout(0.3)
    with pytest.raises(TimeoutError):
        server_side.recv(100)
    server_side.settimeout(2)
    api.delete("/proxies/cut/toxics/bandwidth_upstream")
    assert recv_exactly(server_side, 9) == b"held back"


def test_api_calls_return_promptly_while_a_client_has_stopped_reading(api: Api, upstream: Upstream) -> None:
    proxy = api.create_proxy("stuck", upstream.address)
    client = connect(proxy["listen"])
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    server_side = upstream.accept_sending(client)
    server_side.setblocking(False)
    blob = b"x" * (1 << 20)
    deadline, refused = time.monotonic() + 2, 0
    while refused < 20 and time.monotonic() < deadline:  # fill every buffer on the way to the client
        try:
            server_side.send(blob)
            refused = 0
        except BlockingIOError:
            refused += 1
            time.sleep(0.01)
    assert refused == 20, "the server could still send: the path to the client never filled up"
    timings = []
    for call in (
        lambda: api.add_toxic("stuck", type="latency", attributes={"latency": 10}),
        lambda: api.add_toxic("stuck", type="timeout", attributes={"timeout": 0}),
        lambda: api.delete("/proxies/stuck/toxics/latency_downstream"),
        lambda: api.add_toxic("stuck", type="bandwidth", stream="upstream", attributes={"rate": 0}),
        lambda: api.delete("/proxies/stuck/toxics/bandwidth_upstream"),
        lambda: api.post("/reset"),
        lambda: api.post("/proxies/stuck", json={"enabled": False}),
        lambda: api.delete("/proxies/stuck"),
    ):
        start = time.monotonic()
        call()
        timings.append(time.monotonic() - start)
    assert max(timings) < 1.0, timings
    client.close()


def test_removing_a_latency_toxic_in_front_of_a_timeout_does_not_hang(api: Api, upstream: Upstream) -> None:  # case 36
    proxy = api.create_proxy("chain", upstream.address)
    client = connect(proxy["listen"])
    upstream.accept_sending(client)
    api.add_toxic("chain", type="latency", stream="upstream", attributes={"latency": 10})
    api.add_toxic("chain", type="timeout", stream="upstream", attributes={"timeout": 0})
    for _ in range(20):
        client.sendall(b"x" * 1000)
    start = time.monotonic()
    assert api.delete("/proxies/chain/toxics/latency_upstream").status_code == 204
    assert time.monotonic() - start < 1.0
