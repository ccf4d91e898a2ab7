"""Toxics on live TCP connections through the proxy: spec §5 cases 33–40 and slow_close.

Timings use the issue's tolerances: latency within jitter + 15 ms, bandwidth within 10 %.
Latencies are 100 ms (the spec's 500 + 500 chain is run as 100 + 100) to keep the suite fast.
"""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from .peers import Api, Upstream, connect, recv_exactly, recv_until_eof

LINE = os.urandom(40 * 1024) + b"\n"  # more than one 32 KiB chunk
TOLERANCE_S = 0.015


def open_pair(api: Api, upstream: Upstream, name: str = "p") -> tuple[socket.socket, socket.socket]:
    proxy = api.create_proxy(api.name(name), upstream.address)
    client = connect(proxy["listen"])
    return client, upstream.accept_sending(client)


def assert_near(elapsed: float, expected: float, jitter: float = 0.0) -> None:
    assert expected - jitter - 0.001 <= elapsed <= expected + jitter + TOLERANCE_S, (elapsed, expected)


def upstream_time(client: socket.socket, server_side: socket.socket, payload: bytes = LINE) -> float:
    start = time.perf_counter()
    client.sendall(payload)
    assert recv_exactly(server_side, len(payload)) == payload
    return time.perf_counter() - start


def echo_time(client: socket.socket, payload: bytes = LINE) -> float:
    start = time.perf_counter()
    client.sendall(payload)
    assert recv_exactly(client, len(payload)) == payload
    return time.perf_counter() - start


# -- case 33: latency ----------------------------------------------------------------------------


def test_upstream_latency_delays_what_the_server_receives(api: Api, upstream: Upstream) -> None:
    client, server_side = open_pair(api, upstream)
    api.add_toxic(api.name("p"), type="latency", stream="upstream", attributes={"latency": 100})
    assert_near(upstream_time(client, server_side), 0.100)


def test_downstream_latency_delays_what_the_client_reads(api: Api, upstream: Upstream) -> None:
    client, server_side = open_pair(api, upstream)
    upstream.echo(server_side)
    api.add_toxic(api.name("p"), type="latency", stream="downstream", attributes={"latency": 100})
    assert_near(echo_time(client), 0.100)


def test_latency_on_both_streams_adds_up_over_a_round_trip(api: Api, upstream: Upstream) -> None:
    client, server_side = open_pair(api, upstream)
    upstream.echo(server_side)
    api.add_toxic(api.name("p"), type="latency", stream="upstream", attributes={"latency": 100})
    api.add_toxic(api.name("p"), type="latency", stream="downstream", attributes={"latency": 100})
    assert_near(echo_time(client), 0.200)


def test_two_chained_latency_toxics_add_up(api: Api, upstream: Upstream) -> None:
    client, server_side = open_pair(api, upstream)
    api.add_toxic(api.name("p"), name="first", type="latency", stream="upstream", attributes={"latency": 100})
    api.add_toxic(api.name("p"), name="second", type="latency", stream="upstream", attributes={"latency": 100})
    assert_near(upstream_time(client, server_side), 0.200)


def test_zero_latency_adds_no_delay(api: Api, upstream: Upstream) -> None:
    client, server_side = open_pair(api, upstream)
    api.add_toxic(api.name("p"), type="latency", stream="upstream", attributes={"latency": 0})
    assert upstream_time(client, server_side) < TOLERANCE_S


def test_jitter_stays_within_its_bounds(api: Api, upstream: Upstream) -> None:
    client, server_side = open_pair(api, upstream)
    api.add_toxic(api.name("p"), type="latency", stream="upstream", attributes={"latency": 60, "jitter": 20})
    samples = [upstream_time(client, server_side, b"ping") for _ in range(8)]
    for elapsed in samples:
        assert_near(elapsed, 0.060, jitter=0.020)
    assert max(samples) - min(samples) > 0.002  # the jitter is really applied


def test_latency_does_not_cap_throughput(api: Api, upstream: Upstream) -> None:  # case 34
    client, server_side = open_pair(api, upstream)
    api.add_toxic(api.name("p"), type="latency", stream="downstream", attributes={"latency": 100})
    total = 40 * 1024 * 1024
    block = os.urandom(1024 * 1024)

    def send_all() -> None:
        for _ in range(total // len(block)):
            server_side.sendall(block)

    sender = threading.Thread(target=send_all)
    start = time.perf_counter()
    sender.start()
    first = client.recv(1 << 20)
    first_at = time.perf_counter()
    received = len(first)
    while received < total:
        received += len(client.recv(1 << 20))
    done = time.perf_counter()
    sender.join()
    assert first_at - start >= 0.099
    assert (total - len(first)) / (done - first_at) >= 100e6, f"{total / (done - first_at) / 1e6:.0f} MB/s"


def test_toxicity_zero_leaves_the_link_untouched(api: Api, upstream: Upstream) -> None:
    client, server_side = open_pair(api, upstream)
    api.add_toxic(api.name("p"), type="latency", stream="upstream", toxicity=0, attributes={"latency": 500})
    assert upstream_time(client, server_side, b"free") < TOLERANCE_S


# -- case 35: bandwidth --------------------------------------------------------------------------


def test_upstream_bandwidth_delivers_about_rate_kilobytes_per_second(api: Api, upstream: Upstream) -> None:
    client, server_side = open_pair(api, upstream)
    api.add_toxic(api.name("p"), type="bandwidth", stream="upstream", attributes={"rate": 1000})
    payload = os.urandom(480_000)
    elapsed = upstream_time(client, server_side, payload)
    assert 0.480 * 0.9 <= elapsed <= 0.480 * 1.1, elapsed


def test_downstream_bandwidth_slices_large_chunks_at_a_low_rate(api: Api, upstream: Upstream) -> None:
    client, server_side = open_pair(api, upstream)
    api.add_toxic(api.name("p"), type="bandwidth", stream="downstream", attributes={"rate": 100})
    payload = os.urandom(40_000)
    start = time.perf_counter()
    server_side.sendall(payload)
    assert recv_exactly(client, len(payload)) == payload
    assert 0.400 * 0.9 <= time.perf_counter() - start <= 0.400 * 1.1


# -- case 36: timeout ----------------------------------------------------------------------------


def test_removing_a_zero_timeout_closes_both_sides(api: Api, upstream: Upstream) -> None:
    client, server_side = open_pair(api, upstream)
    api.add_toxic(api.name("p"), type="timeout", stream="upstream", attributes={"timeout": 0})
    client.sendall(b"dropped")
    server_side.settimeout(0.1)
    with pytest.raises(TimeoutError):
        server_side.recv(10)
    server_side.settimeout(1.0)
    client.settimeout(1.0)
    api.delete(f"/proxies/{api.name('p')}/toxics/timeout_upstream")
    assert recv_until_eof(server_side) == b""
    assert recv_until_eof(client) == b""


def test_a_timeout_closes_an_idle_connection_after_its_delay(api: Api, upstream: Upstream) -> None:
    client, server_side = open_pair(api, upstream)
    start = time.perf_counter()
    api.add_toxic(api.name("p"), type="timeout", stream="downstream", attributes={"timeout": 100})
    assert recv_until_eof(client) == b""
    assert_near(time.perf_counter() - start, 0.100)
    assert recv_until_eof(server_side) == b""


# -- case 37: reset_peer -------------------------------------------------------------------------


def test_reset_peer_resets_the_client_after_its_first_write(api: Api, upstream: Upstream) -> None:
    proxy = api.create_proxy(api.name("p"), upstream.address)
    api.add_toxic(api.name("p"), type="reset_peer", stream="upstream", attributes={"timeout": 0})
    client = connect(proxy["listen"])
    client.sendall(b"anyone there?")
    with pytest.raises(ConnectionResetError):
        client.recv(10)
    assert client.recv(10) == b""


@pytest.mark.parametrize("stream", ["upstream", "downstream"])
def test_reset_peer_with_a_timeout_resets_that_much_later(api: Api, upstream: Upstream, stream: str) -> None:
    proxy = api.create_proxy(api.name("p"), upstream.address)
    api.add_toxic(api.name("p"), type="reset_peer", stream=stream, attributes={"timeout": 100})
    client = connect(proxy["listen"])
    server_side = upstream.accept()
    upstream.echo(server_side)
    start = time.perf_counter()
    client.sendall(b"hello")
    with pytest.raises(ConnectionResetError):
        while client.recv(10):
            pass
    assert 0.099 <= time.perf_counter() - start <= 0.130


def test_reset_peer_gives_connections_opened_before_it_a_plain_close(api: Api, upstream: Upstream) -> None:
    client, _server_side = open_pair(api, upstream)
    api.add_toxic(api.name("p"), type="reset_peer", stream="upstream", attributes={"timeout": 0})
    client.sendall(b"x")
    assert recv_until_eof(client) == b""


# -- case 38: limit_data -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("writes", "expected", "closes"),
    [
        ([b"a" * 50], b"a" * 50, False),
        ([b"b" * 100], b"b" * 100, True),
        ([b"c" * 150], b"c" * 100, True),
        ([b"d" * 25] * 4, b"d" * 100, True),
        ([b"e" * 90, b"f" * 20], b"e" * 90 + b"f" * 10, True),
    ],
)
def test_limit_data_forwards_up_to_the_limit_then_closes(
    api: Api, upstream: Upstream, writes: list[bytes], expected: bytes, closes: bool
) -> None:
    proxy = api.create_proxy(api.name("p"), upstream.address)
    api.add_toxic(api.name("p"), type="limit_data", stream="upstream", attributes={"bytes": 100})
    client = connect(proxy["listen"])
    server_side = upstream.accept()
    for data in writes:
        client.sendall(data)
        time.sleep(0.01)
    assert recv_exactly(server_side, len(expected)) == expected
    if closes:
        assert recv_until_eof(server_side) == b""
    else:
        server_side.settimeout(0.1)
        with pytest.raises(TimeoutError):
            server_side.recv(10)


def test_limit_data_zero_forwards_nothing(api: Api, upstream: Upstream) -> None:
    proxy = api.create_proxy(api.name("p"), upstream.address)
    api.add_toxic(api.name("p"), type="limit_data", stream="upstream", attributes={"bytes": 0})
    client = connect(proxy["listen"])
    server_side = upstream.accept()
    client.sendall(b"nothing")
    assert recv_until_eof(server_side) == b""


def test_the_limit_data_count_survives_an_update(api: Api, upstream: Upstream) -> None:
    client, server_side = open_pair(api, upstream)  # sent a 5-byte probe before the toxic existed
    api.add_toxic(api.name("p"), type="limit_data", stream="upstream", attributes={"bytes": 100})
    client.sendall(b"g" * 60)
    assert recv_exactly(server_side, 60) == b"g" * 60
    api.patch(f"/proxies/{api.name('p')}/toxics/limit_data_upstream", json={"toxicity": 1, "attributes": {"bytes": 100}})
    client.sendall(b"h" * 60)
    assert recv_until_eof(server_side) == b"h" * 40


# -- case 39: slicer -----------------------------------------------------------------------------


def test_sliced_data_arrives_intact(api: Api, upstream: Upstream) -> None:
    client, server_side = open_pair(api, upstream)
    api.add_toxic(
        api.name("p"), type="slicer", stream="upstream", attributes={"average_size": 1024, "size_variation": 512, "delay": 10}
    )
    payload = os.urandom(480_000)
    assert upstream_time(client, server_side, payload) < 2.0


def test_a_reader_that_keeps_up_never_gets_two_slices_in_one_read(api: Api, upstream: Upstream) -> None:
    client, server_side = open_pair(api, upstream)
    attributes = {"average_size": 100, "size_variation": 50, "delay": 10_000}  # 10 ms after every slice
    api.add_toxic(api.name("p"), type="slicer", stream="upstream", attributes=attributes)
    for _ in range(2):
        payload = os.urandom(2000)
        client.sendall(payload)
        sizes: list[int] = []
        while sum(sizes) < len(payload):
            sizes.append(len(server_side.recv(65536)))
        assert max(sizes) <= 150, sizes


# -- case 40: toxic updates and churn on live connections ----------------------------------------


def test_turning_a_timeout_on_by_update_drops_the_next_write_and_closes(api: Api, upstream: Upstream) -> None:
    client, server_side = open_pair(api, upstream)
    api.add_toxic(api.name("p"), type="timeout", stream="upstream", toxicity=0, attributes={"timeout": 100})
    assert upstream_time(client, server_side, b"passes") < TOLERANCE_S
    api.patch(f"/proxies/{api.name('p')}/toxics/timeout_upstream", json={"toxicity": 1, "attributes": {"timeout": 100}})
    start = time.perf_counter()
    client.sendall(b"dropped")
    server_side.settimeout(1.0)
    assert recv_until_eof(server_side) == b""
    assert time.perf_counter() - start <= 0.150


def test_adding_and_removing_noop_toxics_during_echo_traffic_corrupts_nothing(api: Api, upstream: Upstream) -> None:
    client, server_side = open_pair(api, upstream)
    upstream.echo(server_side)
    stop = threading.Event()

    def churn() -> None:
        index = 0
        while not stop.is_set():
            stream = "upstream" if index % 2 else "downstream"
            api.add_toxic(api.name("p"), name=f"noop{index}", type="noop", stream=stream)
            api.delete(f"/proxies/{api.name('p')}/toxics/noop{index}")
            index += 1

    churner = threading.Thread(target=churn)
    churner.start()
    try:
        for round_trip in range(100):
            payload = os.urandom(1 + round_trip * 97)
            client.sendall(payload)
            assert recv_exactly(client, len(payload)) == payload
    finally:
        stop.set()
        churner.join(5)


# -- slow_close ----------------------------------------------------------------------------------


def test_slow_close_passes_data_and_holds_the_close(api: Api, upstream: Upstream) -> None:
    client, server_side = open_pair(api, upstream)
    api.add_toxic(api.name("p"), type="slow_close", stream="downstream", attributes={"delay": 150})
    start = time.perf_counter()
    server_side.sendall(b"bye")
    assert recv_exactly(client, 3) == b"bye"
    assert time.perf_counter() - start < TOLERANCE_S
    server_side.close()
    closed_at = time.perf_counter()
    assert recv_until_eof(client) == b""
    assert_near(time.perf_counter() - closed_at, 0.150)
