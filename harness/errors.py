"""One root exception for the harness and one subclass per part, with structured attributes.

Messages say what was expected, what was found, and what to do.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Root of every error the harness raises on purpose."""


class StackError(HarnessError):
    """The stack could not be started, controlled or stopped."""


class ReadinessTimeout(StackError):
    """A component did not become healthy in time."""

    def __init__(self, component: str, waited_s: float, last_lines: list[str], hint: str) -> None:
        tail = "\n".join(f"    {line}" for line in last_lines) or "    (no output)"
        super().__init__(
            f"{component} did not become healthy within {waited_s:.1f}s.\n"
            f"  last log lines:\n{tail}\n  hint: {hint}"
        )
        self.component = component
        self.waited_s = waited_s
        self.last_lines = last_lines
        self.hint = hint


class ComponentExited(StackError):
    """A component's process ended while it was expected to run."""

    def __init__(self, component: str, returncode: int | None, last_lines: list[str], hint: str) -> None:
        tail = "\n".join(f"    {line}" for line in last_lines) or "    (no output)"
        super().__init__(
            f"{component} exited with code {returncode} while starting.\n"
            f"  last log lines:\n{tail}\n  hint: {hint}"
        )
        self.component = component
        self.returncode = returncode
        self.last_lines = last_lines
        self.hint = hint
