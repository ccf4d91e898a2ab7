"""Memory pressure on a Redis (the ``memory-pressure`` fault of ``nemesis.py``).

``MemoryPressure`` fills the Redis up to its ``maxmemory`` with junk keys (``chaos:junk:*``) and
keeps it full until ``stop``, which deletes them. While the pressure lasts the Redis reports every
evicted key (keyspace notifications), so ``stop`` says which keys that were not junk were evicted
(queue lists, ``unacked``, bindings, results) and how many writes were refused. With ``hot`` (the
fault's ``hot = true``) the junk is touched every 0.1 s, so an LRU policy sees it as recently used
as the broker's own keys (the worst case: another hot tenant of the same Redis); without it, the
junk is the coldest data there, as results written once would be.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

import redis as redis_lib

from harness.chaos.fault_error import FaultError

JUNK_PREFIX = "chaos:junk:"
JUNK_VALUE_BYTES = 32 * 1024


class MemoryPressure:
    """Fill a Redis up to maxmemory with junk and keep it full until ``stop``; then delete the junk."""

    def __init__(self, url: str, *, seed: int, hot: bool = False) -> None:
        self.hot = hot
        self.client = redis_lib.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3, decode_responses=True)
        self.value = random.Random(seed).randbytes(JUNK_VALUE_BYTES)
        self.written = 0
        self.refused = 0
        self.evicted: Counter[str] = Counter()
        self.evicted_names: list[str] = []
        self.junk_evicted = 0
        self._stop = threading.Event()
        self._stop_listening = threading.Event()
        self._threads: list[threading.Thread] = []
        self._notify_before: str | None = None
        self._pubsub: Any = None
        self.maxmemory = 0
        self.policy = ""
        self.evicted_before = 0
        self.errors: list[str] = []

    def _used(self) -> int:
        return int(self.client.info("memory")["used_memory"])

    def _evicted(self) -> int:
        return int(self.client.info("stats").get("evicted_keys", 0))

    def _top_up(self) -> None:
        """Write junk until the Redis is full: a write is refused (noeviction) or makes it evict (LRU).

        Large values until within two of them of maxmemory, then 1 KB values, so no headroom is left
        for a platform write to slip into.
        """
        evicted = self._evicted()
        for _ in range(100_000):
            if self._stop.is_set():
                return
            big = self._used() < self.maxmemory - 2 * JUNK_VALUE_BYTES
            try:
                self.client.set(f"{JUNK_PREFIX}{self.written:07d}", self.value if big else self.value[:1024])
                self.written += 1
            except redis_lib.ResponseError as exc:
                if not _oom(exc):
                    raise
                self.refused += 1
                return
            if not big and (self._evicted() > evicted or self._used() >= self.maxmemory):
                return

    def _listen(self) -> None:
        pubsub = self._pubsub
        idle = 0
        while True:
            try:
                msg = pubsub.get_message(timeout=0.25)
            except Exception as exc:  # the Redis went away: nothing more to learn
                self.errors.append(f"eviction listener: {exc}")
                return
            if not msg:
                idle += 1
                if self._stop_listening.is_set() and idle >= 3:
                    return  # stopped, and nothing more has arrived for a while
                continue
            idle = 0
            if msg.get("type") != "message":
                continue
            key = msg["data"].decode(errors="replace") if isinstance(msg["data"], bytes) else str(msg["data"])
            if key.startswith(JUNK_PREFIX):
                self.junk_evicted += 1
                continue
            self.evicted[_key_kind(key)] += 1
            if len(self.evicted_names) < 50:
                self.evicted_names.append(key)

    def _touch(self) -> None:
        """Mark every junk key as just used (TOUCH moves no data), so LRU has no reason to prefer it."""
        keys = [f"{JUNK_PREFIX}{i:07d}" for i in range(self.written)]
        for start in range(0, len(keys), 500):
            self.client.touch(*keys[start:start + 500])

    def _hold(self) -> None:
        while not self._stop.wait(0.1):
            try:
                if self.hot:
                    self._touch()
                self._top_up()
            except Exception as exc:
                self.errors.append(f"top-up: {exc}")
                return

    def start(self) -> dict[str, Any]:
        cfg: dict[Any, Any] = dict(self.client.config_get("maxmemory*"))
        self.maxmemory = int(cfg.get("maxmemory") or 0)
        self.policy = str(cfg.get("maxmemory-policy", ""))
        if not self.maxmemory:
            raise FaultError("memory pressure needs a maxmemory on the Redis; it has none")
        self._notify_before = str(self.client.config_get("notify-keyspace-events").get("notify-keyspace-events", ""))
        self.client.config_set("notify-keyspace-events", "Ee")
        self._pubsub = self.client.pubsub()
        self._pubsub.subscribe("__keyevent@0__:evicted")
        deadline = time.monotonic() + 5  # subscribed for real before the first write can evict
        while time.monotonic() < deadline:
            confirmation = self._pubsub.get_message(timeout=0.5)
            if confirmation and confirmation.get("type") == "subscribe":
                break
        self.evicted_before = int(self.client.info("stats").get("evicted_keys", 0))
        listener = threading.Thread(target=self._listen, name="chaos-evictions", daemon=True)
        listener.start()
        self._threads.append(listener)
        used_before = self._used()
        self._top_up()
        holder = threading.Thread(target=self._hold, name="chaos-memory-pressure", daemon=True)
        holder.start()
        self._threads.append(holder)
        return {"maxmemory": self.maxmemory, "policy": self.policy, "used_before": used_before,
                "used_after_fill": self._used(), "junk_keys": self.written, "hot": self.hot}

    def stop(self) -> dict[str, Any]:
        self._stop.set()  # the holder first; the listener drains what Redis already sent, then ends
        for t in self._threads[1:]:
            t.join(5)
        self._stop_listening.set()
        for t in self._threads[:1]:
            t.join(5)
        deleted = 0
        for key_batch in _batched(self.client.scan_iter(match=JUNK_PREFIX + "*", count=500), 500):
            deleted += int(self.client.unlink(*key_batch))
        with contextlib.suppress(Exception):
            self._pubsub.close()
        if self._notify_before is not None:
            self.client.config_set("notify-keyspace-events", self._notify_before)
        evicted_total = int(self.client.info("stats").get("evicted_keys", 0)) - self.evicted_before
        self.client.close()
        # Keyspace notifications are pub/sub, fire and forget: what INFO counts but no notification
        # named is reported as such rather than guessed.
        unattributed = evicted_total - self.junk_evicted - sum(self.evicted.values())
        return {"junk_written": self.written, "junk_deleted": deleted, "writes_refused": self.refused,
                "evicted_total": evicted_total, "junk_evicted": self.junk_evicted,
                "evicted_unattributed": unattributed,
                "other_evicted": dict(self.evicted), "other_evicted_keys": self.evicted_names,
                "errors": self.errors}


def _oom(exc: Exception) -> bool:
    """A write refused because the Redis is full (redis-py drops the "OOM" prefix from the message)."""
    return isinstance(exc, redis_lib.exceptions.OutOfMemoryError) or "maxmemory" in str(exc) or "OOM" in str(exc)


def _key_kind(key: str) -> str:
    """Group evicted keys by what they are to Celery / the platform."""
    if key.startswith("celery-task-meta-"):
        return "result (celery-task-meta-*)"
    if key.startswith("_kombu.binding."):
        return "binding (_kombu.binding.*)"
    if key in ("unacked", "unacked_index", "unacked_mutex"):
        return key
    if key.startswith("eval:"):
        return "record (eval:*)"
    base = key.split(":", 1)[0]
    if base in ("high_priority", "evaluation", "batch", "maintenance", "queue"):
        return f"queue list ({base}*)"
    return key if len(key) < 40 else key[:40] + "..."


def _batched(items: Iterable[Any], size: int) -> Iterable[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
