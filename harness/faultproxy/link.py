"""A link: one direction of one proxied connection.

``upstream`` links carry client → server bytes, ``downstream`` links server → client.
With no toxic the link is *direct*: the source protocol writes each read straight to
the destination transport and flow control is the transports' own (the source pauses
reading while the destination's write buffer is full). With toxics, reads become
chunks that go through one :class:`~.pipeline.Stage` per toxic and end in the sink
(:meth:`Link.put`), which writes to the destination, queueing while it is paused.
The link counts the bytes inside its pipeline and pauses the source above
:data:`HIGH_WATER` (32 MiB, Toxiproxy's 1024 chunks of 32 KiB) until they drain.

When the source ends, EOF follows the data through the toxics and the sink then
*closes* the destination (Toxiproxy never half-closes); the other link notices and
closes the other socket. Toxics are added, updated and removed here synchronously,
on live links, without waiting on any socket.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from typing import Final

from .pipeline import CHUNK_SIZE, EOF, Chunk, Item, Stage, Target
from .schema import Direction, ToxicSpec
from .toxics import runner_for

HIGH_WATER: Final = 32 * 1024 * 1024
LOW_WATER: Final = 16 * 1024 * 1024

log = logging.getLogger(__name__)


class Link:
    """One direction of a connection: source transport → toxic stages → destination transport."""

    def __init__(
        self,
        direction: Direction,
        src: asyncio.Transport,
        dst: asyncio.Transport,
        loop: asyncio.AbstractEventLoop,
        rng: random.Random,
    ) -> None:
        self.direction = direction
        self.src = src
        self.dst = dst
        #: The destination's bound ``write``: the direct path calls it without lookups.
        self.dst_write = dst.write
        self.loop = loop
        self.rng = rng
        self.stages: list[Stage] = []
        self.sinkq: deque[Item] = deque()
        self.pending = 0
        self.direct = True
        self.finished = False
        self.src_ended = False
        self.dst_paused = False
        self.src_paused = False
        self.over = False
        self._dooms: list[asyncio.TimerHandle] = []

    # -- data from the source ---------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Take bytes read from the source (the direct path bypasses this)."""
        if self.finished and not self.stages:
            return
        head: Target = self.stages[0] if self.stages else self
        self.pending += len(data)
        now = self.loop.time()
        if len(data) <= CHUNK_SIZE:
            head.put(Chunk(data, now))
        else:
            for start in range(0, len(data), CHUNK_SIZE):
                head.put(Chunk(data[start : start + CHUNK_SIZE], now))
        if self.pending > HIGH_WATER:
            self._flow()

    def source_ended(self) -> None:
        """The source sent FIN or failed: EOF follows the data through the toxics."""
        if self.src_ended:
            return
        self.src_ended = True
        head: Target = self.stages[0] if self.stages else self
        head.put(EOF)

    # -- the sink ---------------------------------------------------------------------------

    def put(self, item: Item) -> None:
        """Sink: write to the destination, or queue while it is paused."""
        if self.finished:
            self.discard(item)
        elif self.dst_paused or self.sinkq:
            self.sinkq.append(item)
            self.direct = False
        else:
            self._write(item)

    def _write(self, item: Item) -> None:
        if isinstance(item, Chunk):
            self.pending -= len(item.data)
            self.dst_write(item.data)
            if self.over and self.pending <= LOW_WATER:
                self._flow()
            return
        self.finished = True
        self.direct = False
        while self.sinkq:
            self.discard(self.sinkq.popleft())
        self.dst.close()

    def discard(self, item: Item) -> None:
        if isinstance(item, Chunk):
            self.pending -= len(item.data)
            if self.over and self.pending <= LOW_WATER:
                self._flow()

    # -- destination events -----------------------------------------------------------------

    def dst_pause(self) -> None:
        self.dst_paused = True
        self._flow()

    def dst_resume(self) -> None:
        self.dst_paused = False
        while self.sinkq and not self.dst_paused and not self.finished:
            self._write(self.sinkq.popleft())
        self._refresh()
        self._flow()

    def dst_lost(self) -> None:
        """The destination socket is gone: drop everything still on its way there."""
        self.finished = True
        self.dst_paused = False
        while self.sinkq:
            self.discard(self.sinkq.popleft())
        self._refresh()
        self._flow()

    def _flow(self) -> None:
        if self.pending > HIGH_WATER:
            self.over = True
        elif self.pending <= LOW_WATER:
            self.over = False
        pause = self.over or self.dst_paused
        if pause != self.src_paused:
            self.src_paused = pause
            if pause:
                self.src.pause_reading()
            else:
                self.src.resume_reading()

    def _refresh(self) -> None:
        self.direct = not self.stages and not self.sinkq and not self.finished

    # -- toxics -----------------------------------------------------------------------------

    def add_toxic(self, spec: ToxicSpec) -> None:
        stage = Stage(self, spec, self, self.loop, self.rng)
        if self.stages:
            self.stages[-1].out = stage
        self.stages.append(stage)
        self.direct = False
        self._start(stage)

    def update_toxic(self, spec: ToxicSpec) -> None:
        for stage in self.stages:
            if stage.spec.name == spec.name:
                stage.spec = spec
                if not stage.closed:
                    stage.interrupt()
                    self._start(stage)
                return

    def remove_toxic(self, name: str) -> None:
        index = next((i for i, stage in enumerate(self.stages) if stage.spec.name == name), None)
        if index is None:
            return
        stage = self.stages[index]
        del self.stages[index]
        target = stage.out
        if index > 0:
            self.stages[index - 1].out = target
        was_closed, doom_at = stage.closed, stage.doom_at
        items = stage.detach()
        if was_closed or stage.spec.type == "timeout" or doom_at is not None:
            for item in items:
                self.discard(item)
            if not was_closed and stage.spec.type == "timeout":
                target.put(EOF)  # removing a timeout toxic closes the connection
            elif not was_closed and doom_at is not None:
                # reset_peer's wait cannot be interrupted: the close still happens on time.
                self._dooms.append(self.loop.call_at(doom_at, target.put, EOF))
        else:
            for item in items:
                target.put(item)
        self._refresh()

    def _start(self, stage: Stage) -> None:
        spec = stage.spec
        active = self.rng.random() < spec.toxicity
        stage.start(runner_for(spec.type, active), active)
        assert stage.task is not None
        stage.task.add_done_callback(lambda task: self._stage_done(stage, task))

    def _stage_done(self, stage: Stage, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        log.error("toxic %s failed on a %s link; closing it", stage.spec.name, self.direction,
                  exc_info=task.exception())
        stage.close()

    def shutdown(self) -> None:
        """Stop every stage task (the connection is gone)."""
        for stage in self.stages:
            stage.cancel()
        for handle in self._dooms:
            handle.cancel()
        self._dooms.clear()
