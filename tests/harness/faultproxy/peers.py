"""Helpers of the fault proxy tests: an API client and raw TCP peers on 127.0.0.1.

``Api`` is a thin ``requests`` client with a timeout on every call; ``Upstream`` stands in
for the server behind a proxy, so a test controls both ends of a connection byte by byte;
``connect`` opens a client socket that the ``_close_clients`` fixture closes after the test.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests

IO_TIMEOUT = 5.0


@dataclass(frozen=True)
class Target:
    """The server under test: its API's base URL and address, and whether it is shared."""

    url: str
    host: str
    port: int
    shared: bool


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
