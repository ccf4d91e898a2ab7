"""A proxied connection: the client socket, the upstream socket and the two links.

On accept the client socket stops reading while the upstream is dialled (the upstream
string is resolved again on every dial). If the dial fails the client is closed at
once: it saw a successful connect, then EOF, as with Toxiproxy. Once both sockets are
up, the ``upstream`` link (client → server) and the ``downstream`` link (server →
client) are built with the proxy's current toxics, and the client resumes reading.

That pause is only a hint: Python 3.11.2's selector transports (Debian bookworm's
python3) ignore a ``pause_reading()`` made in ``connection_made()`` and read anyway.
Whatever the client sends before its upstream link exists, bytes and EOF, is therefore
held in order and fed to the link, toxics and all, as the first read once it is built,
so no byte is lost whether or not the pause held. Should more than :data:`HELD_HIGH_WATER`
bytes pile up, the pause is made again, now from a callback that every Python honours.

A connection is over when both sockets are closed; :attr:`Connection.closed` then
resolves. :meth:`Connection.abort` tears both sockets down at once (used when the
proxy is disabled, deleted or re-pointed).
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import struct
from typing import Literal, Protocol, cast

from .addresses import upstream_target
from .errors import ApiError
from .link import Link
from .schema import Direction, ToxicSpec

log = logging.getLogger(__name__)

_LINGER_ZERO = struct.pack("ii", 1, 0)
#: Bytes asked for per read on the direct path.
READ_SIZE = 1024 * 1024
#: Bytes held from a socket whose link does not exist yet before its pause is made again.
HELD_HIGH_WATER = 64 * 1024


class ConnectionOwner(Protocol):
    """What a connection needs from its proxy."""

    upstream: str
    rng: random.Random

    def chain(self, direction: Direction) -> list[ToxicSpec]: ...

    def forget(self, conn: Connection) -> None: ...

    def count(self, direction: Direction, size: int) -> None: ...


class Side(asyncio.Protocol):
    """The protocol of one socket of a connection."""

    __slots__ = ("conn", "role", "transport", "out_link", "in_link", "lost", "held", "held_size", "held_eof")

    def __init__(self, conn: Connection, role: Literal["client", "upstream"]) -> None:
        self.conn = conn
        self.role = role
        self.transport: asyncio.Transport | None = None
        self.out_link: Link | None = None  # the link this socket feeds
        self.in_link: Link | None = None  # the link that writes to this socket
        self.lost = False
        #: What the socket sent before ``out_link`` existed, oldest first, and whether EOF followed.
        self.held: list[bytes] = []
        self.held_size = 0
        self.held_eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.conn.side_made(self)

    def data_received(self, data: bytes) -> None:
        self.conn.owner.count("upstream" if self.role == "client" else "downstream", len(data))
        link = self.out_link
        if link is None:
            self._hold(data)
            return
        if link.direct:
            link.dst_write(data)
        else:
            link.feed(data)

    def eof_received(self) -> bool:
        if self.out_link is not None:
            self.out_link.source_ended()
        elif not self.lost:
            self.held_eof = True
        return True  # keep the socket open: the other link may still write to it

    def _hold(self, data: bytes) -> None:
        """Keep bytes read although reading was paused: the link they belong to is not built yet."""
        if self.lost or self.conn.done or self.conn.aborted:
            return  # the connection is over: nobody will ever read them
        self.held.append(data)
        self.held_size += len(data)
        transport = self.transport
        if self.held_size >= HELD_HIGH_WATER and transport is not None:
            # The pause was ignored (3.11.2 does so in connection_made): make it again. Python
            # skips a pause it believes is in effect, so lift it first; nothing is read in between.
            transport.resume_reading()
            transport.pause_reading()

    def release(self) -> None:
        """``out_link`` now exists: pass on what was held, then read on (unless EOF came already)."""
        held, self.held, self.held_size = self.held, [], 0
        transport = self.transport
        if transport is not None and not self.held_eof:
            # Before the held bytes go: if they fill the link, its flow control pauses us again.
            transport.resume_reading()
        if held:
            self.data_received(held[0] if len(held) == 1 else b"".join(held))
        if self.held_eof:
            self.held_eof = False
            self.eof_received()

    def discard_held(self) -> None:
        self.held, self.held_size, self.held_eof = [], 0, False

    def connection_lost(self, exc: Exception | None) -> None:
        self.discard_held()
        self.conn.side_lost(self)

    def pause_writing(self) -> None:
        if self.in_link is not None:
            self.in_link.dst_pause()

    def resume_writing(self) -> None:
        if self.in_link is not None:
            self.in_link.dst_resume()


class Connection:
    """One accepted client connection and its upstream."""

    def __init__(self, owner: ConnectionOwner, loop: asyncio.AbstractEventLoop, reset_linger: bool) -> None:
        self.owner = owner
        self.loop = loop
        self.reset_linger = reset_linger
        self.client = Side(self, "client")
        self.upstream: Side | None = None
        self.links: dict[Direction, Link] = {}
        self.aborted = False
        self.done = False
        self.closed: asyncio.Future[None] = loop.create_future()
        self._dial: asyncio.Task[None] | None = None

    def side_made(self, side: Side) -> None:
        transport = side.transport
        assert transport is not None
        if self.aborted or self.done or (side is not self.client and self.client.lost):
            transport.abort()
            return
        if self.reset_linger:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
        # Read up to 1 MiB at a time (asyncio reads 256 KiB). With smaller reads the tail
        # of a large reply arrives as its own tiny read and write, which can wait ~40 ms
        # for the receiver's delayed ACK; measured: GET of 1 MiB via Redis 250 -> 1100 MB/s.
        # Toxics still see chunks of at most 32 KiB (the link splits reads).
        if hasattr(transport, "max_size"):
            transport.max_size = READ_SIZE
        if side is self.client:
            transport.pause_reading()
            self._dial = self.loop.create_task(self._connect())
            return
        client = self.client.transport
        assert client is not None
        up = Link("upstream", client, transport, self.loop, self.owner.rng)
        down = Link("downstream", transport, client, self.loop, self.owner.rng)
        for direction, link in (("upstream", up), ("downstream", down)):
            for spec in self.owner.chain(cast(Direction, direction)):
                link.add_toxic(spec)
        self.links = {"upstream": up, "downstream": down}
        self.client.out_link, self.client.in_link = up, down
        side.out_link, side.in_link = down, up
        self.client.release()

    async def _connect(self) -> None:
        try:
            host, port = upstream_target(self.owner.upstream)
            side = self.upstream = Side(self, "upstream")
            await self.loop.create_connection(lambda: side, host, port)
        except (OSError, ApiError) as exc:
            log.info("dial %s failed: %s", self.owner.upstream, exc)
            self.upstream = None
            self.client.discard_held()
            if self.client.transport is not None:
                self.client.transport.close()

    def side_lost(self, side: Side) -> None:
        side.lost = True
        if side.out_link is not None:
            side.out_link.source_ended()
        if side.in_link is not None:
            side.in_link.dst_lost()
        if side is self.client and self._dial is not None and not self._dial.done():
            self._dial.cancel()
        upstream = self.upstream
        if self.client.lost and (upstream is None or upstream.transport is None or upstream.lost):
            self._finish()

    def _finish(self) -> None:
        if self.done:
            return
        self.done = True
        for link in self.links.values():
            link.shutdown()
        self.owner.forget(self)
        if not self.closed.done():
            self.closed.set_result(None)

    def abort(self) -> None:
        """Close both sockets now (no flush), and stop dialling."""
        self.aborted = True
        if self._dial is not None and not self._dial.done():
            self._dial.cancel()
        for side in (self.client, self.upstream):
            if side is not None and side.transport is not None and not side.lost:
                side.transport.abort()
        if self.client.transport is None:
            return  # connection_made will abort it
        if self.client.lost and (self.upstream is None or self.upstream.transport is None or self.upstream.lost):
            self._finish()
