"""Errors of the fault proxy.

Everything the fault proxy raises on purpose derives from :class:`FaultProxyError`.
:class:`ApiError` carries the HTTP status and the Toxiproxy error text that the API
sends back (``{"error": message, "status": status}``); :class:`ConfigError` names a
config file, the place inside it and what was expected; :class:`ServerStartError` says
why the API listener could not be started and what to do about it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import HarnessError


class FaultProxyError(HarnessError):
    """Root of every error the fault proxy raises on purpose (the fault proxy's part of HarnessError)."""


class ApiError(FaultProxyError):
    """An error the HTTP API reports as ``{"error": message, "status": status}``.

    ``message`` is the exact Toxiproxy error text, for example ``proxy not found``.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def __repr__(self) -> str:
        return f"ApiError(status={self.status}, message={self.message!r})"


class PopulateError(ApiError):
    """A ``/populate`` that stopped part-way; ``done`` holds the proxies already in place."""

    def __init__(self, status: int, message: str, done: Sequence[Any]) -> None:
        super().__init__(status, message)
        self.done = list(done)


class ConfigError(FaultProxyError):
    """A config file (the ``/populate`` format) that cannot be loaded."""

    def __init__(self, path: str, where: str, problem: str) -> None:
        super().__init__(f"{path}: {where}: {problem}" if where else f"{path}: {problem}")
        self.path = path
        self.where = where
        self.problem = problem


class ServerStartError(FaultProxyError):
    """The API listener could not be bound."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        super().__init__(
            f"cannot start the fault proxy API on {host}:{port}: {reason}; "
            "pick another --port (0 chooses a free one) or stop whatever holds it"
        )
        self.host = host
        self.port = port
        self.reason = reason
