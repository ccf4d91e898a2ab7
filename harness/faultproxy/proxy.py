"""A proxy: a listen address, an upstream, an enabled flag and two toxic chains.

Enabling binds the listen address synchronously (so when the API answers, the port
accepts connections) and records the address really bound; disabling closes the
listener and aborts every open connection, and returns once they are closed (bounded
by :data:`TEARDOWN_TIMEOUT_S`). Toxics and the resolved listen address survive a
disable/enable. Toxic changes are applied to every live connection before the method
returns, which is what makes the API's 2xx mean "attached".
"""

from __future__ import annotations

import asyncio
import random
from typing import Any, Final

from .addresses import (
    DEFAULT_LISTEN,
    LISTEN_PREFIX,
    ListenAddress,
    bind_listener,
    bound_address,
    resolve_listen,
)
from .connection import Connection, Side
from .errors import ApiError
from .schema import Direction, ProxyFields, ToxicSpec, toxic_json

#: Longest time a disable/delete waits for its connections to finish closing.
TEARDOWN_TIMEOUT_S: Final = 1.0


class Proxy:
    """One named proxy and its live connections."""

    def __init__(self, name: str, listen: str, upstream: str, rng: random.Random) -> None:
        self.name = name
        self.listen = listen or DEFAULT_LISTEN
        self.upstream = upstream
        self.rng = rng
        self.enabled = False
        self.chains: dict[Direction, list[ToxicSpec]] = {"upstream": [], "downstream": []}
        self._server: asyncio.AbstractServer | None = None
        self._conns: set[Connection] = set()
        # Traffic since the proxy was created (our extension: GET /proxies/<name>/stats), so a fault on
        # a link no client uses can be told from one that hit something.
        self.accepted = 0
        self.bytes: dict[Direction, int] = {"upstream": 0, "downstream": 0}

    # -- listener ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the listen address and accept connections. Raises ApiError 500 if it cannot."""
        if self.enabled:
            return
        try:
            address = await resolve_listen(self.listen)
        except ApiError as exc:  # Toxiproxy binds with net.Listen, which says so first
            raise ApiError(exc.status, LISTEN_PREFIX + exc.message) from None
        sock = bind_listener(address)
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(self._accept, sock=sock)
        except BaseException:
            sock.close()
            raise
        self.listen = bound_address(sock, address).text
        self.enabled = True

    async def stop(self) -> None:
        """Close the listener and every connection; return once they are closed."""
        server, self._server = self._server, None
        self.enabled = False
        if server is not None:
            server.close()
        conns = list(self._conns)
        for conn in conns:
            conn.abort()
        if conns:
            await asyncio.wait([conn.closed for conn in conns], timeout=TEARDOWN_TIMEOUT_S)

    def _accept(self) -> Side:
        loop = asyncio.get_running_loop()
        conn = Connection(self, loop, reset_linger=self.has_reset_peer())
        if self.enabled:
            self._conns.add(conn)
            self.accepted += 1
        else:
            conn.aborted = True  # accepted just before the listener closed
        return conn.client

    def forget(self, conn: Connection) -> None:
        self._conns.discard(conn)

    def count(self, direction: Direction, size: int) -> None:
        """Bytes read from one side: from the client (``upstream``) or from the server (``downstream``)."""
        self.bytes[direction] += size

    def stats(self) -> dict[str, Any]:
        return {"name": self.name, "enabled": self.enabled, "connections_open": len(self._conns),
                "connections_accepted": self.accepted, "bytes_upstream": self.bytes["upstream"],
                "bytes_downstream": self.bytes["downstream"]}

    async def differs(self, listen: str, upstream: str) -> bool:
        """Whether new settings need a restart: Toxiproxy's ``Differs``, Go's resolved text against ours.

        A started proxy's listen holds its real port, so ``:0`` always differs from it; a
        wildcard is compared as spelled, so ``0.0.0.0:P`` differs from a bound ``[::]:P``.
        """
        resolved: ListenAddress = await resolve_listen(listen)
        return resolved.resolved != self.listen or upstream != self.upstream

    async def update(self, fields: ProxyFields) -> None:
        """Apply a PATCH/POST body: new listen/upstream restart the proxy; ``enabled`` toggles it."""
        listen = self.listen if fields.listen is None else fields.listen
        upstream = self.upstream if fields.upstream is None else fields.upstream
        enabled = self.enabled if fields.enabled is None else fields.enabled
        if await self.differs(listen, upstream):
            await self.stop()
            self.listen, self.upstream = listen, upstream
        if enabled and not self.enabled:
            await self.start()
        elif not enabled and self.enabled:
            await self.stop()

    # -- toxics -----------------------------------------------------------------------------

    def chain(self, direction: Direction) -> list[ToxicSpec]:
        return list(self.chains[direction])

    def toxics(self) -> list[ToxicSpec]:
        """Upstream toxics first, then downstream ones, each in creation order."""
        return self.chains["upstream"] + self.chains["downstream"]

    def find_toxic(self, name: str) -> ToxicSpec | None:
        return next((spec for spec in self.toxics() if spec.name == name), None)

    def has_reset_peer(self) -> bool:
        return any(spec.type == "reset_peer" for spec in self.toxics())

    def _links(self, direction: Direction) -> list[Any]:
        return [conn.links[direction] for conn in self._conns if conn.links]

    def add_toxic(self, spec: ToxicSpec) -> None:
        self.chains[spec.direction].append(spec)
        for link in self._links(spec.direction):
            link.add_toxic(spec)

    def update_toxic(self, spec: ToxicSpec) -> None:
        chain = self.chains[spec.direction]
        chain[next(i for i, old in enumerate(chain) if old.name == spec.name)] = spec
        for link in self._links(spec.direction):
            link.update_toxic(spec)

    def remove_toxic(self, name: str) -> None:
        spec = self.find_toxic(name)
        if spec is None:
            return
        self.chains[spec.direction].remove(spec)
        for link in self._links(spec.direction):
            link.remove_toxic(name)

    def remove_all_toxics(self) -> None:
        for spec in self.toxics():
            self.remove_toxic(spec.name)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "Logger": {},
            "toxics": [toxic_json(spec) for spec in self.toxics()],
        }
