"""The admin change history: every settings change with its time, on the main Redis.

The list ``admin:changes`` holds one JSON ``AdminChange`` per change, oldest first: a gateway's start
settings (``"start": true``, ``changes`` = every setting) and then each ``PUT /api/admin/split``
(``changes`` = the fields it set). It lives on the main Redis, so it survives a gateway restart and the
harness can read it there directly (``GET /api/admin/history`` serves the same list).

A change is recorded before it takes effect: if the main Redis is unreachable the change is refused,
so the history never misses one. The start entry is written when the gateway starts, and again before
the first change if the main Redis was unreachable then, so it always comes first.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Mapping

from redis import Redis
from redis.exceptions import RedisError

from system_under_test.contract import ADMIN_CHANGES, AdminChange


class History:
    def __init__(self, redis: Redis, start_settings: Mapping[str, object]) -> None:
        self.redis = redis
        self.start_settings = dict(start_settings)
        self.started = False
        self.lock = threading.RLock()  # held around a change and its recording, so entries keep their order

    def record_start(self) -> None:
        """Write the start entry once; raises RedisError while the main Redis is unreachable."""
        with self.lock:
            if not self.started:
                self._append({"at": time.time(), "changes": self.start_settings, "start": True})
                self.started = True

    async def record_start_when_reachable(self) -> None:
        """At the gateway's start: write the start entry, retrying while the main Redis is unreachable."""
        while True:
            try:
                await asyncio.to_thread(self.record_start)
                return
            except RedisError:  # a change writes it first anyway (record)
                await asyncio.sleep(0.5)

    def record(self, changes: Mapping[str, object]) -> AdminChange:
        """Append one change (after the start entry); raises RedisError, and then nothing was written.
        Call it holding ``lock``, together with making the change."""
        self.record_start()
        entry: AdminChange = {"at": time.time(), "changes": dict(changes)}
        self._append(entry)
        return entry

    def read(self) -> list[AdminChange]:
        return [json.loads(raw) for raw in self.redis.lrange(ADMIN_CHANGES, 0, -1)]

    def _append(self, entry: AdminChange) -> None:
        self.redis.rpush(ADMIN_CHANGES, json.dumps(entry))
