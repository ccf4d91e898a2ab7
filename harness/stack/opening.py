"""One way to open a stack, for every caller: ``open_stack(kind, config, run, url=...)``.

The CLI commands, the gate, chaos, load and the pytest plugin all start the system under test through
this context manager, so they accept the same kinds and say the same things when one cannot start:

- ``processes`` (the embedded default) and ``containers`` (Testcontainers) start the stack
  themselves; a start lost to a port race (another stack on this machine took a port between its
  choice and its bind) is retried with fresh ports, up to ``attempts`` times;
- ``external`` attaches to a deployment that is already running, at ``url`` (its gateway), with an
  optional endpoints file.

``controllable=True`` refuses ``external``: faults kill, pause and restart components, which the
harness can only do to a stack it started. The value yielded satisfies ``harness.stack.protocol.Stack``;
on exit (an exception or Ctrl-C included) everything started is stopped.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal, cast, get_args

from harness.errors import StackError
from harness.run import RunFolder
from harness.stack.config import StackConfig
from harness.stack.protocol import Stack

StackKind = Literal["processes", "containers", "external"]
STACK_KINDS: tuple[StackKind, ...] = get_args(StackKind)


def _launcher(kind: StackKind, config: StackConfig, run: RunFolder, url: str | None,
              endpoints_file: Path | None) -> Stack:
    if kind == "processes":
        from harness.stack.processes import ProcessesStack
        return cast(Stack, ProcessesStack(config, run))
    if kind == "containers":
        from harness.stack.containers import ContainersStack
        return cast(Stack, ContainersStack(config, run))
    from harness.stack.external import ExternalStack
    if not url:
        raise StackError("--stack external needs the gateway URL of the running deployment: --stack-url URL "
                         "(or HARNESS_STACK_URL)")
    return cast(Stack, ExternalStack.from_url(url, endpoints_file, config=config, run=run))


def check_kind(kind: str, *, controllable: bool = False) -> StackKind:
    """``kind`` as a StackKind; raises StackError naming the choices (and why external is refused)."""
    if kind not in STACK_KINDS:
        raise StackError(f"unknown stack kind {kind!r}: expected one of {', '.join(STACK_KINDS)}")
    if controllable and kind == "external":
        raise StackError("this needs a stack whose processes the harness controls: --stack processes or "
                         "containers, not external (faults kill, pause and restart components)")
    return kind


@contextlib.contextmanager
def open_stack(kind: str, config: StackConfig, run: RunFolder, *, url: str | None = None,
               endpoints_file: Path | None = None, controllable: bool = False, attempts: int = 3,
               say: Callable[[str], None] | None = None) -> Iterator[Stack]:
    """Start (or attach to) a stack and yield it once every component is healthy; stop it on exit.

    Raises StackError for an unknown kind, an external stack without a URL (or one refused by
    ``controllable``), and a stack that cannot start (the message names the component and a fix).
    """
    chosen = check_kind(kind, controllable=controllable)
    for attempt in range(1, attempts + 1):
        stack = _launcher(chosen, config, run, url, endpoints_file)
        try:
            entered = stack.__enter__()
        except StackError as exc:
            if attempt == attempts or chosen == "external" or "already in use" not in str(exc):
                raise
            if say is not None:
                say(f"  the stack lost a port race ({str(exc).splitlines()[0][:120]}); starting it again")
            continue
        try:
            yield cast(Stack, entered)
        finally:
            stack.__exit__(None, None, None)
        return
