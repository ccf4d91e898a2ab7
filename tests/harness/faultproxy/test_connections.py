"""Proxied connections: pass-through, teardown on disable/delete/re-point, no half-close, no API hangs.

Covers spec §5 cases 12–13 and the §2 semantics a harness relies on: after a 2xx the
port is bound or closed and live connections are torn down, and API calls return
promptly even when a peer has stopped reading.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import threading
import time
from typing import Any

import pytest

from harness.faultproxy import FaultProxyServer
from harness.faultproxy.connection import HELD_HIGH_WATER, Connection
from harness.faultproxy.link import Link
from harness.faultproxy.schema import Direction, ToxicSpec

from .peers import Api, Upstream, connect, is_up, recv_exactly, recv_until_eof


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
    proxy = api.create_proxy(api.name("dead"), dead)
    client = connect(proxy["listen"], timeout=0.5)
    start = time.monotonic()
    assert client.recv(10) == b""
    assert time.monotonic() - start < 0.5
    client.close()


@pytest.mark.faultproxy_extra
def test_a_proxys_stats_count_its_connections_and_the_bytes_each_way(api: Api, upstream: Upstream) -> None:
    """Our extension (GET /proxies/<name>/stats): how chaos tells a fault that hit traffic from one
    on a link no client used."""
    name = api.name("counted")
    proxy = api.create_proxy(name, upstream.address)
    assert api.get(f"/proxies/{name}/stats").json() == {
        "name": name, "enabled": True, "connections_open": 0, "connections_accepted": 0, "bytes_upstream": 0,
        "bytes_downstream": 0}
    client = connect(proxy["listen"])
    server_side = upstream.accept()
    client.sendall(b"12345")
    assert recv_exactly(server_side, 5) == b"12345"
    server_side.sendall(b"abc")
    assert recv_exactly(client, 3) == b"abc"
    stats = api.get(f"/proxies/{name}/stats").json()
    assert (stats["connections_open"], stats["connections_accepted"], stats["bytes_upstream"],
            stats["bytes_downstream"]) == (1, 1, 5, 3)
    client.close()
    assert api.get(f"/proxies/{api.name('nope')}/stats").status_code == 404


def test_bytes_pass_through_unchanged(api: Api, upstream: Upstream) -> None:  # case 13
    proxy = api.create_proxy(api.name("pass"), upstream.address)
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
    proxy = api.create_proxy(api.name("bulk"), upstream.address)
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
    proxy = api.create_proxy(api.name("d"), upstream.address)
    client = connect(proxy["listen"])
    server_side = upstream.accept_sending(client)
    response = api.post(f"/proxies/{api.name('d')}", json={"enabled": False})
    assert response.status_code == 200 and response.json()["enabled"] is False
    assert closed_by_peer(client, timeout=0.5)
    assert closed_by_peer(server_side, timeout=0.5)
    with pytest.raises(ConnectionRefusedError):
        connect(proxy["listen"])
    api.post(f"/proxies/{api.name('d')}", json={"enabled": True})
    again = connect(proxy["listen"])
    upstream.accept_sending(again)
    again.close()


def test_delete_closes_live_connections(api: Api, upstream: Upstream) -> None:
    proxy = api.create_proxy(api.name("x"), upstream.address)
    client = connect(proxy["listen"])
    server_side = upstream.accept_sending(client)
    assert api.delete(f"/proxies/{api.name('x')}").status_code == 204
    assert closed_by_peer(client, timeout=0.5) and closed_by_peer(server_side, timeout=0.5)


def test_changing_the_upstream_drops_connections_and_new_ones_go_to_the_new_upstream(
    api: Api, upstream: Upstream
) -> None:
    other = Upstream()
    try:
        proxy = api.create_proxy(api.name("re"), upstream.address)
        client = connect(proxy["listen"])
        upstream.accept_sending(client)
        updated = api.patch(f"/proxies/{api.name('re')}", json={"upstream": other.address}).json()
        assert updated["upstream"] == other.address and updated["listen"] == proxy["listen"]
        assert closed_by_peer(client, timeout=0.5)
        fresh = connect(proxy["listen"])
        other.accept_sending(fresh)
        fresh.close()
    finally:
        other.close()


def test_a_fin_from_the_client_tears_down_both_legs(api: Api, upstream: Upstream) -> None:
    proxy = api.create_proxy(api.name("fin"), upstream.address)
    client = connect(proxy["listen"])
    server_side = upstream.accept_sending(client)
    client.sendall(b"last words")
    client.shutdown(socket.SHUT_WR)
    assert recv_until_eof(server_side) == b"last words"
    # Toxiproxy never half-closes: the server never closed, yet the client sees EOF.
    assert closed_by_peer(client, timeout=1.0)


def test_a_fin_from_the_server_delivers_pending_data_then_closes_the_client(api: Api, upstream: Upstream) -> None:
    proxy = api.create_proxy(api.name("fin"), upstream.address)
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
    proxy = api.create_proxy(api.name("live"), upstream.address)
    client = connect(proxy["listen"])
    server_side = upstream.accept_sending(client)
    api.add_toxic(api.name("live"), type="latency", stream="upstream", attributes={"latency": 150})
    start = time.monotonic()
    client.sendall(b"slow")
    assert recv_exactly(server_side, 4) == b"slow"
    assert 0.149 <= time.monotonic() - start <= 0.165
    api.delete(f"/proxies/{api.name('live')}/toxics/latency_upstream")
    start = time.monotonic()
    client.sendall(b"fast")
    assert recv_exactly(server_side, 4) == b"fast"
    assert time.monotonic() - start < 0.015


def test_toxics_on_a_disabled_proxy_apply_again_once_enabled(api: Api, upstream: Upstream) -> None:
    proxy = api.create_proxy(api.name("later"), upstream.address, enabled=False)
    api.add_toxic(api.name("later"), type="limit_data", stream="upstream", attributes={"bytes": 3})
    listen = api.post(f"/proxies/{api.name('later')}", json={"enabled": True}).json()["listen"]
    client = connect(listen)
    client.sendall(b"abcdef")
    server_side = upstream.accept()
    assert recv_until_eof(server_side) == b"abc"
    assert proxy["enabled"] is False


def test_a_zero_rate_bandwidth_holds_data_until_removed(api: Api, upstream: Upstream) -> None:
    proxy = api.create_proxy(api.name("cut"), upstream.address)
    client = connect(proxy["listen"])
    server_side = upstream.accept_sending(client)
    api.add_toxic(api.name("cut"), type="bandwidth", stream="upstream", attributes={"rate": 0})
    client.sendall(b"held back")
    server_side.settimeout(0.3)
    with pytest.raises(TimeoutError):
        server_side.recv(100)
    server_side.settimeout(2)
    api.delete(f"/proxies/{api.name('cut')}/toxics/bandwidth_upstream")
    assert recv_exactly(server_side, 9) == b"held back"


@pytest.mark.faultproxy_extra
@pytest.mark.toxiproxy_lockup
def test_api_calls_return_promptly_while_a_client_has_stopped_reading(api: Api, upstream: Upstream) -> None:
    """Toxiproxy waits on the stuck link here and its API stays locked until restart (issue #558)."""
    proxy = api.create_proxy(api.name("stuck"), upstream.address)
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
        lambda: api.add_toxic(api.name("stuck"), type="latency", attributes={"latency": 10}),
        lambda: api.add_toxic(api.name("stuck"), type="timeout", attributes={"timeout": 0}),
        lambda: api.delete(f"/proxies/{api.name('stuck')}/toxics/latency_downstream"),
        lambda: api.add_toxic(api.name("stuck"), type="bandwidth", stream="upstream", attributes={"rate": 0}),
        lambda: api.delete(f"/proxies/{api.name('stuck')}/toxics/bandwidth_upstream"),
        lambda: api.post("/reset"),
        lambda: api.post(f"/proxies/{api.name('stuck')}", json={"enabled": False}),
        lambda: api.delete(f"/proxies/{api.name('stuck')}"),
    ):
        start = time.monotonic()
        call()
        timings.append(time.monotonic() - start)
    assert max(timings) < 1.0, timings
    client.close()


def test_removing_a_latency_toxic_in_front_of_a_timeout_does_not_hang(api: Api, upstream: Upstream) -> None:  # case 36
    proxy = api.create_proxy(api.name("chain"), upstream.address)
    client = connect(proxy["listen"])
    upstream.accept_sending(client)
    api.add_toxic(api.name("chain"), type="latency", stream="upstream", attributes={"latency": 10})
    api.add_toxic(api.name("chain"), type="timeout", stream="upstream", attributes={"timeout": 0})
    for _ in range(20):
        client.sendall(b"x" * 1000)
    start = time.monotonic()
    assert api.delete(f"/proxies/{api.name('chain')}/toxics/latency_upstream").status_code == 204
    assert time.monotonic() - start < 1.0


# -- bytes sent before the upstream is connected (Python 3.11.2) -------------------------------------
#
# These patch our own classes, so they always run against the in-process server (local_api).
# The proxy pauses the client in connection_made() while it dials the upstream. Python 3.11.2
# (Debian bookworm's python3, the one in the Docker image) ignores that pause and reads anyway; the
# proxy used to throw those bytes away, so e.g. a Redis PING sent right after connect never arrived.

DIAL_DELAY = 0.2


@pytest.fixture
def early_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Behave like Python 3.11.2, and make every upstream dial take :data:`DIAL_DELAY` seconds.

    3.11.2 starts reading after connection_made() whatever the protocol did there: its
    ``_add_reader`` checks only ``_closing`` (later releases also check ``is_reading()``).
    """

    def add_reader_as_in_3_11_2(self: Any, fd: int, callback: Any, *args: Any) -> None:
        if self._closing:
            return
        self._loop._add_reader(fd, callback, *args)

    monkeypatch.setattr("asyncio.selector_events._SelectorTransport._add_reader", add_reader_as_in_3_11_2)
    dial = Connection._connect

    async def slow_dial(self: Connection) -> None:
        await asyncio.sleep(DIAL_DELAY)
        await dial(self)

    monkeypatch.setattr(Connection, "_connect", slow_dial)


@pytest.mark.parametrize("toxic", [None, "latency", "slicer"])
def test_bytes_sent_before_the_upstream_is_connected_arrive_in_order(
    local_api: Api, upstream: Upstream, early_reads: None, toxic: str | None
) -> None:
    proxy = local_api.create_proxy("early", upstream.address)
    if toxic == "latency":
        local_api.add_toxic("early", type="latency", stream="upstream", attributes={"latency": 20})
    elif toxic == "slicer":
        local_api.add_toxic("early", type="slicer", stream="upstream", attributes={"average_size": 3, "delay": 0})
    client = connect(proxy["listen"])
    client.sendall(b"PING\r\n")
    time.sleep(DIAL_DELAY / 4)  # read by the proxy while it is still dialling
    client.sendall(b"first")
    client.sendall(b"second")
    server_side = upstream.accept()
    assert recv_exactly(server_side, 17) == b"PING\r\nfirstsecond"
    client.sendall(b"after")  # and reads go on once the upstream is there
    assert recv_exactly(server_side, 5) == b"after"
    server_side.sendall(b"+PONG\r\n")
    assert recv_exactly(client, 7) == b"+PONG\r\n"


def test_a_burst_and_eof_sent_before_the_upstream_is_connected_arrive_intact(
    local_api: Api, upstream: Upstream, early_reads: None
) -> None:
    proxy = local_api.create_proxy("burst", upstream.address)
    small = connect(proxy["listen"])
    small.sendall(b"last words")
    small.shutdown(socket.SHUT_WR)  # EOF before the upstream exists: it follows the data
    assert recv_until_eof(upstream.accept()) == b"last words"

    payload = os.urandom(4 * 1024 * 1024)  # far above HELD_HIGH_WATER
    big = connect(proxy["listen"])

    def send() -> None:
        big.sendall(payload)
        big.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=send)
    sender.start()
    try:
        assert recv_until_eof(upstream.accept()) == payload
    finally:
        sender.join(10)


class _Owner:
    upstream = "127.0.0.1:1"
    rng = random.Random(0)

    def chain(self, direction: Direction) -> list[ToxicSpec]:
        return []

    def forget(self, conn: Connection) -> None:
        pass

    def count(self, direction: Direction, size: int) -> None:
        pass


class _Transport(asyncio.Transport):
    """Records writes; reads until paused, like a transport that ignored the pause in connection_made."""

    def __init__(self) -> None:
        super().__init__()
        self.reading = True
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


@pytest.mark.parametrize("eof", [False, True])
def test_bytes_held_before_the_link_exists_are_bounded_then_flushed_in_order(eof: bool) -> None:
    loop = asyncio.new_event_loop()
    try:
        conn = Connection(_Owner(), loop, reset_linger=False)
        client, server = _Transport(), _Transport()
        side = conn.client
        side.transport = client
        pieces = [bytes([i]) * 10_000 for i in range(1, 21)]
        for n, piece in enumerate(pieces, 1):
            side.data_received(piece)  # no link yet: held, not dropped
            # Reading stops again once more than the high-water mark is held.
            assert client.reading == (n * 10_000 < HELD_HIGH_WATER)
        if eof:
            assert side.eof_received() is True
        link = Link("upstream", client, server, loop, _Owner.rng)
        side.out_link = link
        side.release()
        assert bytes(server.written) == b"".join(pieces)
        assert server.closed is eof  # EOF followed the data (and Toxiproxy never half-closes)
        assert client.reading is not eof  # reading resumes unless the client already sent EOF
        if not eof:
            side.data_received(b"next")
            assert bytes(server.written) == b"".join(pieces) + b"next"
    finally:
        loop.close()
