"""Stacks that must be stopped even when the harness exits abnormally.

Every launcher registers a started stack with ``track`` and removes it with ``untrack`` once
stopped. On interpreter exit (``atexit``) and on SIGTERM every stack still tracked is stopped; SIGINT
already raises ``KeyboardInterrupt``, which unwinds the ``with`` blocks that own the stacks.

SIGTERM then raises ``Terminated``, a ``KeyboardInterrupt``: it unwinds exactly like Ctrl-C. It must
not be ``SystemExit``: Hypothesis (parity's search, chaos explore) takes any other exception raised
inside a test for a failure, and replays and shrinks it, running more programs or whole fault
schedules after the stack is gone, then reports the run as flaky; a KeyboardInterrupt it lets through
at once. The command exits 143 (128 + SIGTERM), as a process killed by SIGTERM would.
"""

from __future__ import annotations

import atexit
import contextlib
import signal
import threading
from types import FrameType
from typing import Protocol


class Stoppable(Protocol):
    def stop(self) -> None: ...


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: unwind like Ctrl-C, exit 143."""

    exit_code = 128 + signal.SIGTERM


_live: list[Stoppable] = []
_handlers_installed = threading.Event()


def stop_all() -> None:
    for stack in list(_live):
        with contextlib.suppress(Exception):
            stack.stop()


def install_handlers() -> None:
    """atexit and SIGTERM clean-up (only from the main thread, once per process)."""
    if _handlers_installed.is_set() or threading.current_thread() is not threading.main_thread():
        return
    atexit.register(stop_all)
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop_all()
        if callable(previous):
            previous(signum, frame)
        raise Terminated(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    _handlers_installed.set()


def track(stack: Stoppable) -> None:
    install_handlers()
    _live.append(stack)


def untrack(stack: Stoppable) -> None:
    if stack in _live:
        _live.remove(stack)
