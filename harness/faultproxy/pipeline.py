"""Stages: one toxic running on one link.

A link (one direction of one connection) is a pipeline: the bytes read from the source
are cut into :class:`Chunk` s of at most 32 KiB that carry their arrival time, pass
through one :class:`Stage` per toxic in creation order, and end in the link's sink.
``EOF`` travels the same path after the last chunk, so a toxic can delay or cut the
close as well as the data.

A stage owns an inbox, at most one *held* item (taken from the inbox, not yet passed
on), and an asyncio task running the toxic's coroutine. Passing an item on is always
synchronous and never blocks; back-pressure is the link's job. Because every stage
change (update, removal) happens on the event loop between two steps of that task,
the held item and the inbox are always in a consistent state when the API touches
them: an update can pass the held chunk on and restart the task, a removal can hand
the inbox to the next stage, and no API call ever waits for a socket.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Final, Protocol

from .schema import ToxicSpec

#: Toxiproxy reads at most this many bytes at a time; toxics act on chunks of this size.
CHUNK_SIZE: Final = 32 * 1024


class Chunk:
    """Bytes read from the source and the loop time they were read (or last released)."""

    __slots__ = ("data", "ts")

    def __init__(self, data: bytes, ts: float) -> None:
        self.data = data
        self.ts = ts

    def __repr__(self) -> str:
        return f"Chunk({len(self.data)} bytes, ts={self.ts:.6f})"


class _Eof:
    __slots__ = ()

    def __repr__(self) -> str:
        return "EOF"


#: The end of a link's data: the source closed, or a toxic closed the link.
EOF: Final = _Eof()
Item = Chunk | _Eof


class Target(Protocol):
    """Where a stage sends its output: the next stage or the link's sink."""

    def put(self, item: Item) -> None: ...


class Owner(Protocol):
    """The link a stage belongs to, as far as the stage needs it."""

    def discard(self, item: Item) -> None:
        """Account for an item that will never reach the sink."""
        ...


Runner = Callable[["Stage"], Coroutine[Any, Any, None]]


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Stage:
    """One toxic on one link: inbox, held item, per-link state, and the running task."""

    __slots__ = (
        "owner", "spec", "out", "loop", "rng", "inbox", "held", "closed",
        "state", "doom_at", "active", "task", "_waiter",
    )  # fmt: skip

    def __init__(
        self, owner: Owner, spec: ToxicSpec, out: Target, loop: asyncio.AbstractEventLoop, rng: random.Random
    ) -> None:
        self.owner = owner
        self.spec = spec
        self.out = out
        self.loop = loop
        self.rng = rng
        self.inbox: deque[Item] = deque()
        self.held: Item | None = None
        self.closed = False
        #: State that survives restarts (updates), e.g. limit_data's byte count.
        self.state: dict[str, Any] = {}
        #: reset_peer: the loop time at which this link is closed, once triggered.
        self.doom_at: float | None = None
        self.active = True
        self.task: asyncio.Task[None] | None = None
        self._waiter: asyncio.Future[None] | None = None

    # -- used by the link -------------------------------------------------------------------

    def put(self, item: Item) -> None:
        if self.closed:
            self.owner.discard(item)
            return
        self.inbox.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def start(self, runner: Runner, active: bool) -> None:
        self.active = active
        self.task = self.loop.create_task(runner(self))

    def interrupt(self) -> None:
        """Stop the task; pass a held chunk on at once (like Toxiproxy), keep a held EOF."""
        self.cancel()
        held, self.held = self.held, None
        if held is EOF:
            self.inbox.appendleft(held)
        elif held is not None:
            self.out.put(held)

    def detach(self) -> list[Item]:
        """Stop for good and return everything the stage still has, oldest first."""
        self.cancel()
        items: list[Item] = [] if self.held is None else [self.held]
        items.extend(self.inbox)
        self.held = None
        self.inbox.clear()
        self.closed = True
        return items

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None

    # -- used by toxics ---------------------------------------------------------------------

    async def take(self, timeout: float | None = None) -> Item | None:
        """The next item (which becomes the held one), or None if ``timeout`` seconds pass."""
        if not self.inbox:
            waiter: asyncio.Future[None] = self.loop.create_future()
            self._waiter = waiter
            timer = self.loop.call_later(timeout, _wake, waiter) if timeout is not None else None
            try:
                await waiter
            finally:
                if self._waiter is waiter:
                    self._waiter = None
                if timer is not None:
                    timer.cancel()
            if not self.inbox:
                return None
        item = self.inbox.popleft()
        self.held = item
        return item

    async def sleep_until(self, when: float) -> None:
        delay = when - self.loop.time()
        if delay > 0:
            await asyncio.sleep(delay)

    def forward(self) -> None:
        """Pass the held item on."""
        held, self.held = self.held, None
        if held is not None:
            self.out.put(held)

    def forward_piece(self, size: int) -> None:
        """Pass the first ``size`` bytes of the held chunk on and keep the rest held."""
        held = self.held
        assert isinstance(held, Chunk)
        self.out.put(Chunk(held.data[:size], held.ts))
        held.data = held.data[size:]

    def truncate(self, size: int) -> None:
        """Cut the held chunk to ``size`` bytes, dropping the rest."""
        held = self.held
        assert isinstance(held, Chunk)
        self.owner.discard(Chunk(held.data[size:], held.ts))
        held.data = held.data[:size]

    def drop(self) -> None:
        """Throw the held item away."""
        held, self.held = self.held, None
        if held is not None:
            self.owner.discard(held)

    def close(self) -> None:
        """End this stage's output: drop what it holds and send EOF on."""
        if self.closed:
            return
        self.closed = True
        self.drop()
        while self.inbox:
            self.owner.discard(self.inbox.popleft())
        self.out.put(EOF)
