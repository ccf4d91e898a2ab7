"""The split policy: which path(s) an evaluation goes to.

In order: a per-request override (``legacy``, ``celery``, ``both``) wins; then ``DUAL_WRITE`` sends
every evaluation to both; then ``CELERY_ENABLED=false`` sends everything to legacy; otherwise
``CELERY_PERCENTAGE`` percent go to Celery, chosen at ``random`` or ``sticky`` (a stable hash of the
evaluation id, so the same id always takes the same path).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, replace
from typing import Literal

from system_under_test.contract import Path, Route

Routing = Literal["random", "sticky"]
Override = Route  # the per-request route override: a path, or both


@dataclass(frozen=True)
class SplitPolicy:
    celery_enabled: bool = True
    celery_percentage: float = 50.0
    routing: Routing = "random"
    dual_write: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.celery_percentage <= 100.0:
            raise ValueError(f"celery_percentage must be within 0..100, got {self.celery_percentage}")
        if self.routing not in ("random", "sticky"):
            raise ValueError(f"routing must be 'random' or 'sticky', got {self.routing!r}")

    def with_changes(self, **changes: object) -> SplitPolicy:
        return replace(self, **changes)  # type: ignore[arg-type]

    def routes(self, eval_id: str, rng: random.Random, override: Override | None = None) -> list[Path]:
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
