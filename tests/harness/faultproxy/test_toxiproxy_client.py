"""The fault proxy driven by ``toxiproxy-python`` 0.1.1, the client the harness uses.

The client keeps its host and port in class globals; the ``toxiproxy`` fixture points
them at the server under test and restores them afterwards. Names come from ``api.name``
and ``api.listed``/``mine`` look only at this test's proxies, so a shared server works too.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from .peers import Api, Upstream, connect, is_up, recv_exactly, recv_until_eof


def mine(api: Api, proxies: dict[str, Any]) -> set[str]:
    return {name for name in proxies if name.startswith(api.prefix)}


def test_the_client_sees_a_running_server_and_its_version(toxiproxy: Any) -> None:
    assert toxiproxy.running() is True
    assert toxiproxy.version() == b'{"version": "2.12.0"}\n'


def test_create_list_get_and_destroy_proxies(toxiproxy: Any, api: Api, upstream: Upstream) -> None:
    name = api.name("redis_main")
    proxy = toxiproxy.create(upstream=upstream.address, name=name)
    assert proxy.listen.startswith("127.0.0.1:") and not proxy.listen.endswith(":0")
    assert proxy.enabled is True and is_up(proxy.listen)
    assert mine(api, toxiproxy.proxies()) == {name}
    assert toxiproxy.get_proxy(name).listen == proxy.listen
    with pytest.raises(ProxyExists):
        toxiproxy.create(upstream=upstream.address, name=name)
    assert toxiproxy.destroy(proxy) is True
    assert mine(api, toxiproxy.proxies()) == set() and not is_up(proxy.listen)


def test_a_port_in_use_surfaces_as_the_clients_known_key_error(toxiproxy: Any, api: Api, upstream: Upstream) -> None:
    first = toxiproxy.create(upstream=upstream.address, name=api.name("first"))
    with pytest.raises(KeyError):  # the client reads a 500 body as a proxy (spec §4)
        toxiproxy.create(upstream=upstream.address, name=api.name("second"), listen=first.listen)
    assert mine(api, toxiproxy.proxies()) == {first.name}


def test_toxics_are_added_listed_applied_and_destroyed(toxiproxy: Any, api: Api, upstream: Upstream) -> None:
    proxy = toxiproxy.create(upstream=upstream.address, name=api.name("db"))
    client = connect(proxy.listen)
    server_side = upstream.accept_sending(client)
    proxy.add_toxic(type="latency", stream="upstream", attributes={"latency": 100})
    toxic = proxy.get_toxic("latency_upstream")
    assert (toxic.type, toxic.stream, toxic.toxicity, toxic.attributes) == (
        "latency",
        "upstream",
        1,
        {"latency": 100, "jitter": 0},
    )
    start = time.perf_counter()
    client.sendall(b"slow")
    assert recv_exactly(server_side, 4) == b"slow"
    assert 0.099 <= time.perf_counter() - start <= 0.115
    with pytest.raises(ProxyExists):
        proxy.add_toxic(type="latency", stream="upstream")
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="bogus")
    assert proxy.destroy_toxic("latency_upstream") is True
    assert proxy.toxics() == {}
    with pytest.raises(NotFound):
        proxy.destroy_toxic("latency_upstream")


def test_disable_enable_and_down_close_and_reopen_the_port(toxiproxy: Any, api: Api, upstream: Upstream) -> None:
    proxy = toxiproxy.create(upstream=upstream.address, name=api.name("svc"))
    client = connect(proxy.listen)
    upstream.accept_sending(client)
    proxy.disable()
    assert proxy.enabled is False and not is_up(proxy.listen)
    client.settimeout(1.0)
    assert recv_until_eof(client) == b""
    proxy.enable()
    assert is_up(proxy.listen) and toxiproxy.get_proxy(proxy.name).enabled is True
    with proxy.down():
        assert not is_up(proxy.listen)
    assert is_up(proxy.listen)


def test_reset_re_enables_proxies_and_removes_toxics(toxiproxy: Any, api: Api, upstream: Upstream) -> None:
    proxy = toxiproxy.create(upstream=upstream.address, name=api.name("svc"))
    proxy.add_toxic(type="timeout", attributes={"timeout": 0})
    proxy.disable()
    assert toxiproxy.reset() is True
    assert toxiproxy.get_proxy(proxy.name).enabled is True and is_up(proxy.listen)
    assert proxy.toxics() == {}


def test_client_side_populate_and_destroy_all(toxiproxy: Any, api: Api, upstream: Upstream) -> None:
    created = toxiproxy.populate(
        [
            {"name": api.name("a"), "upstream": upstream.address, "listen": "127.0.0.1:0"},
            {"name": api.name("b"), "upstream": upstream.address, "listen": "127.0.0.1:0"},
        ]
    )
    assert sorted(proxy.name for proxy in created) == [api.name("a"), api.name("b")]
    assert all(is_up(proxy.listen) for proxy in created)
    toxiproxy.destroy_all()  # every proxy on the server: the suite needs a server of its own
    assert toxiproxy.proxies() == {}
