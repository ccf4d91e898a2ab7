"""Load: Locust users that submit programs through the gateway and follow each evaluation to its end.

Locust runs in a subprocess, never in the caller's process (importing it monkey-patches everything
with gevent). The parts:

- ``locustfile``, ``users``, ``shapes``: what runs inside Locust (users, the step shape, the rows
  each Locust process writes as JSONL);
- ``config`` (options and limits), ``programs`` (the program mix), ``rows`` (the row schema),
  ``frames`` (rows → parquet frames → ``LoadSummary``): plain Python, safe anywhere;
- ``runner``: the Locust subprocess and ``run_headless``, the API the gate calls;
- ``cli``: ``harness load --web | --headless | --worker``.

``from harness.load import run_headless, LoadSummary`` never imports Locust.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.load.config import LoadError, LoadOptions
    from harness.load.frames import LoadSummary
    from harness.load.runner import collect, run_headless

__all__ = ["LoadError", "LoadOptions", "LoadSummary", "collect", "run_headless"]

_HOMES = {"LoadError": "config", "LoadOptions": "config", "LoadSummary": "frames", "collect": "runner",
          "run_headless": "runner"}


def __getattr__(name: str) -> Any:  # lazy: the Locust process imports this package too, and needs no pandas
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(f"harness.load.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'harness.load' has no attribute {name!r}")
