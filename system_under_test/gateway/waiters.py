"""Long-polling: wake the readers of an evaluation when the event bus reports a change to it.

``GET /api/eval/{id}?wait=S`` re-reads the record whenever a message for its id arrives on the
main Redis's ``evaluations:events`` channel, and at least twice a second anyway: pub/sub messages
are fire-and-forget, so a reader never depends on one arriving. While the bus is down, readers
simply poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from system_under_test.store import EVENTS_CHANNEL


class Waiters:
    def __init__(self, redis_url: str) -> None:
        self.redis = aioredis.from_url(redis_url, socket_connect_timeout=3)
        self.events: dict[str, set[asyncio.Event]] = defaultdict(set)
        self.task: asyncio.Task[None] | None = None

    async def listen(self) -> None:
        while True:
            try:
                pubsub = self.redis.pubsub()
                await pubsub.subscribe(EVENTS_CHANNEL)
                async for msg in pubsub.listen():
                    if msg.get("type") != "message":
                        continue
                    eval_id = json.loads(msg["data"]).get("eval_id")
                    for event in self.events.get(eval_id, ()):
                        event.set()
            except asyncio.CancelledError:
                raise
            except Exception:  # the bus is down: readers fall back to polling
                await asyncio.sleep(0.5)

    async def wait(self, eval_id: str, seconds: float,
                   read: Callable[[], Awaitable[dict[str, Any] | None]]) -> dict[str, Any] | None:
        """Read the record until it is done, missing, or ``seconds`` have passed; returns the last read."""
        deadline = time.monotonic() + seconds
        event = asyncio.Event()
        self.events[eval_id].add(event)
        try:
            while True:
                event.clear()
                record = await read()
                remaining = deadline - time.monotonic()
                if record is None or record["done"] or remaining <= 0:
                    return record
                with contextlib.suppress(TimeoutError):
                    # Re-read at least twice a second: pub/sub messages are fire-and-forget.
                    await asyncio.wait_for(event.wait(), timeout=min(remaining, 0.5))
        finally:
            self.events[eval_id].discard(event)
            if not self.events[eval_id]:
                del self.events[eval_id]
