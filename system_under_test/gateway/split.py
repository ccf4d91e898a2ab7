"""The split policy: which path(s) an evaluation goes to, and what happens when Celery cannot take it.

In order: a per-request override (``legacy``, ``celery``, ``both``) wins; then ``DUAL_WRITE`` sends
every evaluation to both; then ``CELERY_ENABLED=false`` sends everything to legacy; otherwise
``CELERY_PERCENTAGE`` percent go to Celery, chosen at ``random`` or ``sticky`` (a stable hash of the
evaluation id, so the same id always takes the same path).

Two settings belong to the later phases of the migration:

- ``fallback`` (phase 2, ``CELERY_FALLBACK``): ``none`` rolls a submission back when its Celery publish
  fails; ``naive`` and ``safe`` send it to legacy instead (fallback.py says how);
- ``accept_legacy`` (phase 3, ``ACCEPT_LEGACY_TASKS``): when false nothing goes to legacy any more:
  the split and dual-write send everything to Celery, an override to ``legacy`` or ``both`` is
  refused (:class:`LegacyClosed`), and no fallback happens. It cannot be false while
  ``celery_enabled`` is false: no path would take work.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, replace
from typing import Literal

from system_under_test.contract import FALLBACK_MODES, FallbackMode, Path, Route

Routing = Literal["random", "sticky"]
Override = Route  # the per-request route override: a path, or both


class LegacyClosed(ValueError):
    """A submission forced to ``legacy`` or ``both`` while ``accept_legacy`` is false."""


@dataclass(frozen=True)
class SplitPolicy:
    celery_enabled: bool = True
    celery_percentage: float = 50.0
    routing: Routing = "random"
    dual_write: bool = False
    fallback: FallbackMode = "none"
    accept_legacy: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.celery_percentage <= 100.0:
            raise ValueError(f"celery_percentage must be within 0..100, got {self.celery_percentage}")
        if self.routing not in ("random", "sticky"):
            raise ValueError(f"routing must be 'random' or 'sticky', got {self.routing!r}")
        if self.fallback not in FALLBACK_MODES:
            raise ValueError(f"fallback must be one of {list(FALLBACK_MODES)}, got {self.fallback!r}")
        if not self.celery_enabled and not self.accept_legacy:
            raise ValueError("celery_enabled false with accept_legacy false leaves no path for new work")

    def as_dict(self) -> dict[str, object]:
        return {"celery_enabled": self.celery_enabled, "celery_percentage": self.celery_percentage,
                "routing": self.routing, "dual_write": self.dual_write, "fallback": self.fallback,
                "accept_legacy": self.accept_legacy}

    def with_changes(self, **changes: object) -> SplitPolicy:
        return replace(self, **changes)  # type: ignore[arg-type]

    def routes(self, eval_id: str, rng: random.Random, override: Override | None = None) -> list[Path]:
        """The path(s) for one evaluation; raises LegacyClosed for an override legacy cannot take."""
        if not self.accept_legacy:
            if override in ("legacy", "both"):
                raise LegacyClosed(f"route {override!r} needs the legacy path, which no longer accepts work")
            return ["celery"]
        if override == "both":
            return ["legacy", "celery"]
        if override is not None:
            return [override]
        if self.dual_write:
            return ["legacy", "celery"]
        if not self.celery_enabled:
            return ["legacy"]
        draw = sticky_draw(eval_id) if self.routing == "sticky" else rng.random() * 100.0
        return ["celery"] if draw < self.celery_percentage else ["legacy"]


def sticky_draw(key: str) -> float:
    """A stable number in [0, 100) for a key: the same key always lands on the same side."""
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100.0
