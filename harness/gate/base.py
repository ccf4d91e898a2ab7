"""The leaf of the gate's modules: ``GateError``, a criterion's result (``Criterion``), a path's error count
(``ErrorCount``) and the names of the latency stages and resources. Every other gate module imports these;
this one imports none of them (``decide`` re-exports all of it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from harness.errors import HarnessError
from harness.vocabulary import Verdict as Status

__all__ = ["OVERHEAD", "RESOURCES", "STAGES", "Criterion", "ErrorCount", "GateError", "Status"]


class GateError(HarnessError):
    """The gate was given arguments or evidence it cannot judge."""


class ErrorCount(NamedTuple):
    n: int  # evaluations submitted on the path
    errors: int  # of those, ending in a platform error (status "error", lost, stuck), not a user program failure


STAGES = ("submit", "queue", "execution", "delivery")  # the parts of end-to-end latency, in order
OVERHEAD = "overhead"  # submit + queue + delivery = end-to-end − execution: what the migration changes
RESOURCES = ("cpu_ms", "peak_rss_kb")


@dataclass(frozen=True)
class Criterion:
    name: str
    status: Status
    observed: str
    threshold: str
    sample_size: int | None
    bound: str
    detail: str  # short; the headline quotes it
    values: Mapping[str, float | int | str | None] = field(default_factory=dict)  # raw numbers for JSON
