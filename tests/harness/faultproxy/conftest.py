"""Fixtures for the fault proxy tests: the server under test, an API client, raw TCP peers.

The API tests (those that use ``api``, ``target`` or ``toxiproxy``; they get the
``faultproxy_api`` marker automatically) run against *the server under test*: a fresh
in-process :class:`FaultProxyServer` on 127.0.0.1 port 0 per test, stopped when the test
ends, or, when ``TOXIPROXY_URL`` is set (``http://127.0.0.1:8474``), that server, which
may be a real ``toxiproxy-server`` or another build of ours. It must run on this machine,
because the tests' upstreams and clients are on 127.0.0.1. On a remote server every
proxy a test creates is named with a per-test prefix (``api.name("p")``) and deleted
after the test; ``/reset`` still touches every proxy there, so give the suite a server of
its own. Tests that check how our own code is built (units, the command line, the
in-process server) use ``server`` or ``local_api`` and always run in process.

Markers, registered here:

- ``faultproxy_extra``: behaviour we add where Toxiproxy differs on purpose (the README's
  list); deselect with ``-m "not faultproxy_extra"`` to check only what Toxiproxy promises.
- ``toxiproxy_lockup``: locks up a real Toxiproxy's API until it is restarted (issue
  #558); skipped when ``TOXIPROXY_URL`` is set, to protect that server.

``upstream`` is a listening socket (:class:`~.peers.Upstream`) the test accepts proxied
connections from; the helpers are in ``peers``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from harness.faultproxy import FaultProxyServer

from .peers import _CLIENTS, IO_TIMEOUT, Api, Target, Upstream

HERE = Path(__file__).resolve().parent
API_FIXTURES = frozenset({"api", "target", "toxiproxy"})
#: The server under test when set; unset: a fresh in-process server per test.
TOXIPROXY_URL = os.environ.get("TOXIPROXY_URL", "").strip()
LOCKUP_SKIP = (
    "TOXIPROXY_URL is set, and this test would lock up a real Toxiproxy's API until it is "
    "restarted (Toxiproxy issue #558); it runs against the in-process server only"
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "faultproxy_api: talks to the fault proxy under test (TOXIPROXY_URL, else in process); set automatically"
    )
    config.addinivalue_line(
        "markers", "faultproxy_extra: behaviour we add where Toxiproxy 2.12 differs on purpose (README list)"
    )
    config.addinivalue_line(
        "markers", "toxiproxy_lockup: locks up a real Toxiproxy's API (issue #558); skipped when TOXIPROXY_URL is set"
    )
    if TOXIPROXY_URL:
        parts = urlsplit(TOXIPROXY_URL)
        if parts.scheme != "http" or not parts.hostname or parts.path.strip("/"):
            raise pytest.UsageError(
                f"TOXIPROXY_URL must be the API's base URL, like http://127.0.0.1:8474; got {TOXIPROXY_URL!r}. "
                "Fix it, or unset it to test the in-process fault proxy."
            )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE not in item.path.parents:
            continue
        if API_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.faultproxy_api)
        if TOXIPROXY_URL and item.get_closest_marker("toxiproxy_lockup"):
            item.add_marker(pytest.mark.skip(reason=LOCKUP_SKIP))


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    try:
        yield
    finally:
        while _CLIENTS:
            _CLIENTS.pop().close()


@pytest.fixture(scope="session")
def remote_target() -> Target:
    """The server at TOXIPROXY_URL, checked once: it must answer ``GET /version``."""
    parts = urlsplit(TOXIPROXY_URL)
    url = f"{parts.scheme}://{parts.netloc}"
    problem = ""
    try:
        requests.get(url + "/version", timeout=IO_TIMEOUT).raise_for_status()
    except requests.RequestException as exc:
        problem = str(exc)
    if problem:
        pytest.exit(
            f"TOXIPROXY_URL={TOXIPROXY_URL} is set, but GET /version failed: {problem}. Start that server "
            "(on this machine), or unset TOXIPROXY_URL to test the in-process fault proxy.",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )
    assert parts.hostname is not None
    return Target(url, parts.hostname, parts.port or 80, shared=True)


@pytest.fixture
def server() -> Iterator[FaultProxyServer]:
    """A fresh in-process fault proxy (always ours, whatever TOXIPROXY_URL says)."""
    fault_proxy = FaultProxyServer("127.0.0.1", 0, seed=1234).start()
    try:
        yield fault_proxy
    finally:
        fault_proxy.stop()


@pytest.fixture
def target(request: pytest.FixtureRequest) -> Target:
    """The server under test: TOXIPROXY_URL's, else a fresh in-process one."""
    if TOXIPROXY_URL:
        shared: Target = request.getfixturevalue("remote_target")
        return shared
    local: FaultProxyServer = request.getfixturevalue("server")
    host, port = local.address
    return Target(local.url, host, port, shared=False)


@pytest.fixture
def api(target: Target) -> Iterator[Api]:
    client = Api(target.url, f"fp{uuid.uuid4().hex[:8]}_" if target.shared else "")
    try:
        yield client
    finally:
        client.cleanup()


@pytest.fixture
def local_api(server: FaultProxyServer) -> Api:
    """An API client of the in-process server, for tests of how our own server is built."""
    return Api(server.url)


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    peer = Upstream()
    try:
        yield peer
    finally:
        peer.close()


@pytest.fixture
def toxiproxy(target: Target) -> Iterator[Any]:
    """``toxiproxy.Toxiproxy()`` pointed at the server under test (its host/port are class globals)."""
    from toxiproxy import Toxiproxy
    from toxiproxy.api import APIConsumer

    saved = (APIConsumer.host, APIConsumer.port)
    client = Toxiproxy()
    client.update_api_consumer(target.host, target.port)
    try:
        yield client
    finally:
        APIConsumer.host, APIConsumer.port = saved
