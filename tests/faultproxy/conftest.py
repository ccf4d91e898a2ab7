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

``upstream`` is a listening socket the test accepts proxied connections from, so a test
controls both ends of a connection byte by byte.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from harness.faultproxy import FaultProxyServer

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


IO_TIMEOUT = 5.0


class Api:
    """A thin ``requests`` wrapper bound to one server, with timeouts on every call.

    ``name("p")`` is the proxy name a test uses: ``p`` on a fresh in-process server, and
    ``<prefix>p`` on a shared one, where :meth:`cleanup` deletes every proxy with the prefix.
    """

    def __init__(self, base: str, prefix: str = "") -> None:
        self.base = base
        self.prefix = prefix

    def name(self, short: str) -> str:
        return self.prefix + short

    def listed(self) -> dict[str, Any]:
        """``GET /proxies``, limited to this test's proxies (all of them on a fresh server)."""
        response = self.get("/proxies")
        assert response.status_code == 200, response.text
        return {name: proxy for name, proxy in response.json().items() if name.startswith(self.prefix)}

    def cleanup(self) -> None:
        for name in self.listed() if self.prefix else ():
            self.delete(f"/proxies/{name}")

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", IO_TIMEOUT)
        return requests.request(method, self.base + path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def create_proxy(self, name: str, upstream: str, listen: str = "127.0.0.1:0", **extra: Any) -> dict[str, Any]:
        response = self.post("/proxies", json={"name": name, "upstream": upstream, "listen": listen, **extra})
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    def add_toxic(self, proxy: str, **toxic: Any) -> dict[str, Any]:
        response = self.post(f"/proxies/{proxy}/toxics", json=toxic)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


class Upstream:
    """A listening socket standing in for the real server behind a proxy."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = int(self.listener.getsockname()[1])
        self.address = f"127.0.0.1:{self.port}"
        self._accepted: list[socket.socket] = []
        self._threads: list[threading.Thread] = []

    def accept(self, timeout: float = IO_TIMEOUT) -> socket.socket:
        self.listener.settimeout(timeout)
        conn, _ = self.listener.accept()
        conn.settimeout(timeout)
        self._accepted.append(conn)
        return conn

    def accept_sending(self, client: socket.socket, probe: bytes = b"probe") -> socket.socket:
        """Accept the proxied connection of ``client``, skipping earlier ones (e.g. ``is_up`` probes).

        ``client`` sends ``probe``; the accepted connection that receives it is returned.
        """
        client.sendall(probe)
        while True:
            conn = self.accept()
            if recv_exactly(conn, len(probe)) == probe:
                return conn

    def echo(self, conn: socket.socket) -> None:
        """Echo everything ``conn`` receives, on a thread, until EOF or error."""

        def run() -> None:
            try:
                while data := conn.recv(1 << 20):
                    conn.sendall(data)
            except OSError:
                pass

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self._threads.append(thread)

    def serve_echo(self) -> None:
        """Accept connections on a thread and echo each one."""

        def run() -> None:
            while True:
                try:
                    conn, _ = self.listener.accept()
                except OSError:
                    return
                conn.settimeout(IO_TIMEOUT)
                self._accepted.append(conn)
                self.echo(conn)

        self.listener.settimeout(None)
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self._threads.append(thread)

    def close(self) -> None:
        # shutdown() wakes a thread blocked in accept(); close() alone does not on Linux.
        for sock in (self.listener, *self._accepted):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self._threads:
            thread.join(IO_TIMEOUT)


def port_of(listen: str) -> int:
    return int(listen.rsplit(":", 1)[1])


_CLIENTS: list[socket.socket] = []


def connect(listen: str, timeout: float = IO_TIMEOUT) -> socket.socket:
    """A client socket to a proxy's listen address; closed after the test."""
    sock = socket.create_connection(("127.0.0.1", port_of(listen)), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    _CLIENTS.append(sock)
    return sock


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    try:
        yield
    finally:
        while _CLIENTS:
            _CLIENTS.pop().close()


def is_up(listen: str) -> bool:
    """Whether a TCP connect to the listen address succeeds (the spec's "up")."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    if host in ("", "::", "0.0.0.0", "localhost"):
        host = "127.0.0.1"
    try:
        socket.create_connection((host, int(port)), timeout=1.0).close()
        return True
    except OSError:
        return False


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def recv_until_eof(sock: socket.socket) -> bytes:
    data = bytearray()
    while chunk := sock.recv(1 << 20):
        data += chunk
    return bytes(data)


def wait_for(predicate: Any, timeout: float = 2.0, interval: float = 0.005) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


@dataclass(frozen=True)
class Target:
    """The server under test: its API's base URL and address, and whether it is shared."""

    url: str
    host: str
    port: int
    shared: bool


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
