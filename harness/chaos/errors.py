"""The chaos part's root error (``ChaosError``), which the checker, scenarios and runner subclass."""

from __future__ import annotations

from harness.errors import HarnessError


class ChaosError(HarnessError):
    """Root of the chaos part's errors (checker, scenarios, runner)."""
