"""A live view of both queues: per path, refreshed every second or so, from what the platform already shows.

Flower shows Celery only, and the platform's own habits (seed 000 Q4: ``llen``, ``celery inspect``)
see one path at a time. A ``Snapshot`` holds, per path: **queued** (the legacy list; Celery's queue
lists at every priority step), **in hand** (evaluations whose last event on the path is ``running``;
for legacy at least the platform's own count, the hash ``legacy:inhand``, a missing hash being 0),
**completed/s** and end-to-end **p50/p95** over a sliding window (terminal results other than
``error``; the event's ``at`` minus the record's ``created_at``), **errors** since the view began,
**dead letters** and **unacked** (Celery only), the gateway's **routed** count and share (``GET
/api/stats``; a dual write counts for both paths), and what only a load run knows: **oracle
disagreements** and **unfinished** evaluations.

``feed.EventFeed`` listens to the event bus (``evaluations:events``) in a thread and keeps the
window; ``snapshot.read_snapshot`` makes the reads of one refresh and ``snapshot.summarise``, a pure
function, turns them into the ``Snapshot``. An unreadable source leaves its numbers unknown
(``None``) and is named in ``problems``: the view goes on through a broker restart. Two views use
it: ``harness watch`` (``harness.watch``) and the Locust web UI's tab (``harness.load.webui``).
"""

from harness.live.feed import MAX_IN_HAND, WINDOW_S, EventFeed, FeedView, Terminal
from harness.live.snapshot import (
    COLUMNS,
    NONE,
    Levels,
    LiveError,
    PathView,
    Snapshot,
    Sources,
    cells,
    open_sources,
    read_snapshot,
    summarise,
)

__all__ = ["COLUMNS", "MAX_IN_HAND", "NONE", "WINDOW_S", "EventFeed", "FeedView", "Levels", "LiveError", "PathView",
           "Snapshot", "Sources", "Terminal", "cells", "open_sources", "read_snapshot", "summarise"]
