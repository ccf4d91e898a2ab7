"""The snapshot of one refresh: what both paths hold, per path, read in one pipeline per Redis.

``read_snapshot`` makes the reads (the legacy list and ``legacy:inhand`` on the main Redis, with one
``HGET created_at`` per new completion; Celery's queue lists at every priority step, ``unacked`` and
``celery:dlq`` on the broker; ``GET /api/stats`` on the gateway) and ``summarise``, a pure function,
turns them and the event feed's window into a frozen ``Snapshot``. ``cells`` shows a path's numbers
as text, the same way in the terminal and in the Locust tab.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import redis as redis_lib
import requests

from harness.chaos.platform import UNACKED_KEY, queue_keys
from harness.errors import HarnessError
from harness.live.feed import WINDOW_S, EventFeed, FeedView
from harness.vocabulary import DLQ_KEY, LEGACY_QUEUE, PATHS, Path, record_key
from harness.vocabulary import LEGACY_INHAND as INHAND_KEY

# How each column is shown, in order (the terminal view and the Locust tab share them).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("path", "path"), ("queued", "queued"), ("in_hand", "in hand"), ("completed_per_s", "completed/s"),
    ("p50_ms", "p50 ms"), ("p95_ms", "p95 ms"), ("errors", "errors"), ("dead_letters", "dead letters"),
    ("unacked", "unacked"), ("routed", "routed (share)"), ("oracle_disagreements", "oracle disagreements"),
    ("unfinished", "unfinished"))
NONE = "–"


class LiveError(HarnessError):
    """A live view cannot start: no stack to watch, or a source it needs is missing."""


@dataclass(frozen=True)
class PathView:
    """One path at one instant; ``None`` is unknown (unreadable) or not applicable (legacy's unacked)."""

    path: Path
    queued: int | None
    in_hand: int | None
    completed_per_s: float | None  # None while the view has watched less than a second
    p50_ms: float | None
    p95_ms: float | None
    errors: int
    dead_letters: int | None
    unacked: int | None
    routed: int | None
    routed_share: float | None  # percent of the gateway's routing decisions that include this path
    oracle_disagreements: int | None = None
    unfinished: int | None = None


def cells(view: PathView) -> dict[str, str]:
    """A path's numbers as text, by column key (``NONE`` for unknown or not applicable)."""
    def num(value: float | None, fmt: str = "d") -> str:
        return NONE if value is None else format(value, fmt)

    share = f" ({view.routed_share:.0f} %)" if view.routed_share is not None else ""
    return {"path": view.path, "queued": num(view.queued), "in_hand": num(view.in_hand),
            "completed_per_s": num(view.completed_per_s, ".1f"), "p50_ms": num(view.p50_ms, ".0f"),
            "p95_ms": num(view.p95_ms, ".0f"), "errors": num(view.errors), "dead_letters": num(view.dead_letters),
            "unacked": num(view.unacked), "routed": num(view.routed) + share,
            "oracle_disagreements": num(view.oracle_disagreements), "unfinished": num(view.unfinished)}


@dataclass(frozen=True)
class Snapshot:
    at: float  # epoch seconds
    window_s: float  # the window the rates and percentiles cover (shorter while the view starts)
    paths: tuple[PathView, ...]
    celery_percentage: float | None
    dual_write: bool | None
    events: int  # events received since the view began
    problems: tuple[str, ...] = ()

    def path(self, name: Path) -> PathView:
        return next(p for p in self.paths if p.path == name)


@dataclass(frozen=True)
class Levels:
    """What the brokers hold right now (``None``: that broker could not be read)."""

    legacy_queued: int | None = None
    legacy_in_hand: int | None = None
    celery_queued: int | None = None
    unacked: int | None = None
    dead_letters: int | None = None


def summarise(feed: FeedView, created: Mapping[str, float], levels: Levels, gateway: Mapping[str, Any] | None, *,
              now: float, window_s: float, oracle: Mapping[str, int] | None = None,
              unfinished: Mapping[str, int] | None = None, problems: Sequence[str] = ()) -> Snapshot:
    """The snapshot of one refresh, from what was read (pure).

    ``gateway`` is the body of ``GET /api/stats`` (``None``: unreachable); ``oracle`` and
    ``unfinished`` are counts by path that only a load run has (``None``: not known here).
    """
    watched = now - feed.started
    span = max(min(window_s, watched), 1.0)
    routed = dict(gateway["routed"]) if gateway else None
    total = sum(routed.values()) if routed else 0
    split = gateway.get("split", {}) if gateway else {}
    views = []
    for path in PATHS:
        done = [t for t in feed.terminal if t.path == path and t.status != "error"]
        e2e = [(t.at - created[t.eval_id]) * 1000 for t in done if t.eval_id in created]
        p50, p95 = (float(v) for v in np.percentile(e2e, [50, 95])) if e2e else (None, None)  # as the gate's
        running = feed.running.get(path, 0)
        if path == "legacy":
            queued, in_hand = levels.legacy_queued, max(running, levels.legacy_in_hand or 0)
            dead, unacked = None, None
        else:
            queued, in_hand, dead, unacked = levels.celery_queued, running, levels.dead_letters, levels.unacked
        mine = routed.get(path, 0) + routed.get("both", 0) if routed is not None else None
        views.append(PathView(
            path=path, queued=queued, in_hand=in_hand, completed_per_s=len(done) / span if watched >= 1.0 else None,
            p50_ms=p50, p95_ms=p95, errors=feed.errors.get(path, 0),
            dead_letters=dead, unacked=unacked, routed=mine,
            routed_share=100.0 * mine / total if mine is not None and total else None,
            oracle_disagreements=oracle.get(path, 0) if oracle is not None else None,
            unfinished=unfinished.get(path, 0) if unfinished is not None else None))
    found = [*problems, *([feed.problem] if feed.problem else [])]
    return Snapshot(at=now, window_s=span, paths=tuple(views), celery_percentage=split.get("celery_percentage"),
                    dual_write=split.get("dual_write"), events=feed.events, problems=tuple(found))


@dataclass
class Sources:
    """Where one live view reads: the main Redis, the Celery broker, the gateway, and the feed."""

    main: redis_lib.Redis
    broker: redis_lib.Redis
    gateway: str
    feed: EventFeed
    queues: Sequence[str]
    session: requests.Session = field(default_factory=requests.Session)
    timeout_s: float = 1.0


@contextlib.contextmanager
def open_sources(main_url: str, broker_url: str, gateway: str, queues: Sequence[str], *,
                 window_s: float = WINDOW_S) -> Iterator[Sources]:
    """Clients for one live view and its event feed; everything is closed when it is left."""
    main = redis_lib.Redis.from_url(main_url, socket_timeout=2, socket_connect_timeout=2)
    broker = redis_lib.Redis.from_url(broker_url, socket_timeout=2, socket_connect_timeout=2)
    session = requests.Session()
    try:
        with EventFeed(main, window_s=window_s) as feed:
            yield Sources(main, broker, gateway.rstrip("/"), feed, tuple(queues), session)
    finally:
        session.close()
        main.close()
        broker.close()


def read_snapshot(src: Sources, *, oracle: Mapping[str, int] | None = None,
                  unfinished: Mapping[str, int] | None = None) -> Snapshot:
    """One refresh: one pipeline on each Redis and ``GET /api/stats``, then ``summarise``."""
    view = src.feed.view()
    known = src.feed.created()
    missing = sorted({t.eval_id for t in view.terminal if t.status != "error"} - set(known))
    problems: list[str] = []
    legacy_queued = legacy_in_hand = None
    try:
        pipe = src.main.pipeline(transaction=False)
        pipe.llen(LEGACY_QUEUE)
        pipe.hlen(INHAND_KEY)
        for eval_id in missing:
            pipe.hget(record_key(eval_id), "created_at")
        legacy_queued, legacy_in_hand, *found = pipe.execute()
        fresh = {i: float(v) for i, v in zip(missing, found, strict=True) if v is not None}
        src.feed.remember_created(fresh)
        known.update(fresh)
    except (redis_lib.RedisError, OSError) as exc:
        problems.append(f"main Redis unreadable ({type(exc).__name__}: {exc})")
    celery: list[int] | None = None
    try:
        pipe = src.broker.pipeline(transaction=False)
        for key in queue_keys(src.queues):
            pipe.llen(key)
        pipe.hlen(UNACKED_KEY)
        pipe.llen(DLQ_KEY)
        celery = [int(x) for x in pipe.execute()]
    except (redis_lib.RedisError, OSError) as exc:
        problems.append(f"Celery broker unreadable ({type(exc).__name__}: {exc})")
    gateway: dict[str, Any] | None = None
    try:
        resp = src.session.get(f"{src.gateway}/api/stats", timeout=src.timeout_s)
        resp.raise_for_status()
        gateway = resp.json()
    except (requests.RequestException, ValueError) as exc:
        problems.append(f"gateway {src.gateway}/api/stats unreadable ({type(exc).__name__})")
    levels = Levels(legacy_queued=legacy_queued, legacy_in_hand=legacy_in_hand,
                    celery_queued=sum(celery[:-2]) if celery else None, unacked=celery[-2] if celery else None,
                    dead_letters=celery[-1] if celery else None)
    return summarise(view, known, levels, gateway, now=src.feed.clock(), window_s=src.feed.window_s,
                     oracle=oracle, unfinished=unfinished, problems=problems)
