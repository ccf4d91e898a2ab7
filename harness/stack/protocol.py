"""The Stack protocol: what every launcher (processes, containers, external) provides.

A stack is a context manager that yields only when every component is healthy and, on exit, leaves
nothing running. It exposes its ``endpoints`` and a handle per component that can fault it.
Implementations must not return from ``start``/``__enter__`` with a component unhealthy, and must
stop whatever they started when starting fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from harness.run import RunFolder
from harness.stack.config import StackConfig

# Every network link of the platform that a fault may target: name -> (client, server).
LINKS: dict[str, tuple[str, str]] = {
    "gateway-main-redis": ("gateway", "main-redis"),
    "gateway-celery-redis": ("gateway", "celery-redis"),
    "legacy-main-redis": ("legacy workers", "main-redis"),
    "celery-worker-celery-redis": ("celery workers", "celery-redis"),
    "legacy-executor-1": ("legacy workers", "executor-1"),
    "legacy-executor-2": ("legacy workers", "executor-2"),
    "celery-executor-3": ("celery workers", "executor-3"),
}


@dataclass(frozen=True)
class Link:
    """One network link: clients connect to ``listen``, which forwards to ``upstream``."""

    name: str
    upstream: str
    listen: str

    @property
    def proxied(self) -> bool:
        return self.listen != self.upstream


@dataclass
class Endpoints:
    gateway: str
    flower: str | None
    main_redis: str
    celery_redis: str
    executors: dict[str, str]
    proxy_api: str | None
    links: dict[str, Link] = field(default_factory=dict)


@runtime_checkable
class ComponentHandle(Protocol):
    """One component of a running stack. Faults act on the real thing (process or container)."""

    name: str

    def kill(self) -> None: ...  # SIGKILL
    def terminate(self, grace_s: float = 10.0) -> None: ...  # SIGTERM, graceful
    def pause(self) -> None: ...  # SIGSTOP
    def resume(self) -> None: ...  # SIGCONT
    def restart(self, grace_s: float = 3.0) -> float:
        """Stop (SIGTERM, SIGKILL after ``grace_s``), start again, and return the seconds until healthy.

        Returns only when *this* start is ready: a readiness probe or log line from before the restart
        never counts (callers rely on it and do not wait again). Raises StackError when it does not
        become healthy.
        """
        ...
    def logs(self, last: int | None = None) -> list[str]: ...
    def alive(self) -> bool: ...
    def healthy(self) -> bool: ...


@runtime_checkable
class Stack(Protocol):
    kind: str
    config: StackConfig
    run: RunFolder

    @property
    def endpoints(self) -> Endpoints:
        """Where the running stack listens; raises StackError before it has started."""
        ...

    def __enter__(self) -> Any: ...
    def __exit__(self, *exc: object) -> None: ...
    def start(self) -> Endpoints: ...
    def stop(self) -> None: ...
    def component(self, name: str) -> ComponentHandle: ...
    def describe(self) -> list[dict[str, Any]]: ...
