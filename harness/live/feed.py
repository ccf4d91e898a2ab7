"""The event bus as a live view reads it: terminal results in a sliding window and the work in hand.

``EventFeed`` subscribes to ``evaluations:events`` on the main Redis in a background thread. Each
event (``system_under_test.contract.Event``) updates, per path, the evaluations whose last event is
``running`` (in a worker's hand), the terminal results of the window (kept by our own clock, as the
writer's may differ) and the count of ``error`` results since the feed began. The records'
``created_at`` of the window's evaluations are remembered once read, so each costs one ``HGET``.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import redis as redis_lib

from harness.vocabulary import EVENTS_CHANNEL, PATHS, TERMINAL, Path

WINDOW_S = 10.0  # the sliding window of rates and percentiles
MAX_IN_HAND = 100_000  # evaluations remembered as running (a bound, not a limit of the platform)


@dataclass(frozen=True)
class Terminal:
    received: float  # our clock: decides the window (the writer's clock may differ)
    at: float  # the writer's clock: the end of the end-to-end time
    eval_id: str
    path: Path
    status: str


@dataclass(frozen=True)
class FeedView:
    started: float
    terminal: tuple[Terminal, ...]  # in the window, oldest first
    running: Mapping[str, int] = field(default_factory=dict)  # by path
    errors: Mapping[str, int] = field(default_factory=dict)  # by path, since the feed started
    events: int = 0
    problem: str | None = None


class EventFeed:
    """``with EventFeed(main) as feed:`` subscribes to the event bus in a thread; ``view()`` reads it.

    A lost connection (a Redis restart) is retried every second and named by ``view().problem``
    meanwhile; events published while it was away are not seen. Leaving the ``with`` stops the thread.
    """

    def __init__(self, main: redis_lib.Redis, *, window_s: float = WINDOW_S,
                 clock: Callable[[], float] = time.time) -> None:
        self.main = main
        self.window_s = window_s
        self.clock = clock
        self.started = clock()
        self._lock = threading.Lock()
        self._terminal: deque[Terminal] = deque()
        self._running: dict[tuple[str, str], float] = {}
        self._errors: Counter[str] = Counter()
        self._events = 0
        self._problem: str | None = "not subscribed yet"
        self._created: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> EventFeed:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._listen, name="live-events", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def wait_subscribed(self, timeout_s: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while self._problem is not None and time.monotonic() < deadline:
            time.sleep(0.02)
        return self._problem is None

    def _listen(self) -> None:
        while not self._stop.is_set():
            pubsub = self.main.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(EVENTS_CHANNEL)
                self._problem = None
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if message and message.get("type") == "message":
                        self.feed(message["data"])
            except (redis_lib.RedisError, OSError) as exc:
                self._problem = f"event bus {EVENTS_CHANNEL} unreadable ({type(exc).__name__}); reconnecting"
                self._stop.wait(1.0)
            finally:
                with contextlib.suppress(redis_lib.RedisError, OSError):
                    pubsub.close()

    def feed(self, raw: bytes | str) -> None:
        """Take one published event (``system_under_test.contract.Event`` as JSON); others are ignored."""
        try:
            event = json.loads(raw)
            eval_id, path, status, at = str(event["eval_id"]), event["path"], str(event["status"]), float(event["at"])
        except (ValueError, TypeError, KeyError):
            return
        if path not in PATHS:
            return
        with self._lock:
            self._events += 1
            key = (eval_id, path)
            if status == "running":
                if len(self._running) < MAX_IN_HAND:
                    self._running[key] = at
            else:
                self._running.pop(key, None)
            if status in TERMINAL:
                self._terminal.append(Terminal(self.clock(), at, eval_id, path, status))
                if status == "error":
                    self._errors[path] += 1

    def view(self) -> FeedView:
        """The window as of now (older terminal events are dropped)."""
        now = self.clock()
        with self._lock:
            while self._terminal and self._terminal[0].received < now - self.window_s:
                self._created.pop(self._terminal.popleft().eval_id, None)
            return FeedView(self.started, tuple(self._terminal), dict(Counter(p for _, p in self._running)),
                            dict(self._errors), self._events, self._problem)

    def created(self) -> dict[str, float]:
        with self._lock:
            return dict(self._created)

    def remember_created(self, found: Mapping[str, float]) -> None:
        with self._lock:
            self._created.update(found)
