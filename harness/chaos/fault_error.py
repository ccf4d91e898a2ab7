"""The error of the nemesis: a fault that could not be injected or healed.

It has a module of its own so that the nemesis (``nemesis.py``) and the fault helpers it uses
(``pool_children.py``, ``memory_pressure.py``) can all raise it without importing each other.
"""

from __future__ import annotations

from harness.chaos.errors import ChaosError


class FaultError(ChaosError):
    """A fault could not be injected or healed."""
