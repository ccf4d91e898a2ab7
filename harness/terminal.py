"""The terminal: progress for long steps, verdict colours, and plain lines where colour would be noise.

Every command that runs for more than a few seconds shows what it is doing with ``progress``: on a
terminal a live line with counts, rate and an ETA (``rich``); when stdout is not a terminal, or
``NO_COLOR`` is set (CI logs), plain lines, one every ``plain_every_s`` seconds and one at the end,
so a log still says how far the run got. ``styled`` colours a verdict or outcome word the way the
report does (PASS and held green, FAIL and failed red, INCONCLUSIVE, known-failure and error amber).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

STYLES = {"PASS": "bold green", "held": "green", "FAIL": "bold red", "failed": "red", "INCONCLUSIVE": "bold yellow",
          "known-failure": "yellow", "error": "yellow", "finding": "cyan"}


def is_plain(stream: TextIO | None = None) -> bool:
    """Plain output: not a terminal, or ``NO_COLOR`` set (https://no-color.org)."""
    out = stream or sys.stdout
    return bool(os.environ.get("NO_COLOR")) or not (hasattr(out, "isatty") and out.isatty())


def styled(word: str, stream: TextIO | None = None) -> str:
    """``word`` in its verdict colour on a terminal, as is otherwise (rich markup is not used)."""
    style = STYLES.get(word)
    if style is None or is_plain(stream):
        return word
    codes = {"bold": "1", "green": "32", "red": "31", "yellow": "33", "cyan": "36"}
    return "\033[" + ";".join(codes[p] for p in style.split()) + f"m{word}\033[0m"


class Progress:
    """One long step's progress: ``update(done, note=...)``; ``total`` None when open-ended."""

    def __init__(self, description: str, total: int | None, stream: TextIO, plain_every_s: float) -> None:
        self.description = description
        self.total = total
        self.stream = stream
        self.plain = is_plain(stream)
        self.plain_every_s = plain_every_s
        self.started = time.monotonic()
        self.done = 0
        self.note = ""
        self._last_plain = 0.0
        self._rich = None
        self._task = None
        if not self.plain:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._rich = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[note]}"),
                                      console=Console(file=stream), transient=True)
            self._rich.start()
            self._task = self._rich.add_task(description, total=total, note="")

    def update(self, done: int, *, note: str = "", total: int | None = None) -> None:
        self.done, self.note = done, note
        if total is not None:
            self.total = total
        if self._rich is not None and self._task is not None:
            self._rich.update(self._task, completed=done, total=self.total, note=note)
            return
        now = time.monotonic()
        if now - self._last_plain >= self.plain_every_s:
            self._last_plain = now
            self._line()

    def _line(self) -> None:
        of = f"/{self.total}" if self.total is not None else ""
        extra = f" ({self.note})" if self.note else ""
        self.stream.write(f"  {self.description}: {self.done}{of} after {time.monotonic() - self.started:.0f} s{extra}\n")
        self.stream.flush()

    def close(self) -> None:
        if self._rich is not None:
            self._rich.stop()
        else:
            self._line()


@contextmanager
def progress(description: str, total: int | None = None, *, stream: TextIO | None = None,
             plain_every_s: float = 10.0) -> Iterator[Progress]:
    """A progress display for one long step (see the module docstring); closed on exit, always."""
    shown = Progress(description, total, stream or sys.stdout, plain_every_s)
    try:
        yield shown
    finally:
        shown.close()
