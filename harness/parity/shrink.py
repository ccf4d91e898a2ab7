"""Shrinking a failing program: the smallest spec that still fails, one simplification at a time.

The search finds a failing program inside a batch and knows which one it is, so it shrinks that
program alone. Hypothesis's own shrinker would work on the whole batch's choice sequence (hundreds
of choices, every attempt a round trip through the stack); this one works on the spec, where a
step is one line: it tries simplifications biggest first (drop every step, half of them, one of
them; a plain ending; bash for Python; shorter texts, fewer repeats, smaller exit codes; two
writes as one) and keeps the first one that still fails, until none does or its time is spent.
Every attempt is one program through the stack (a program tried before is answered from the
session's cache). Each simplification keeps the spec inside what the oracle can predict.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator

from harness.generate.oracle import streams
from harness.generate.spec import (
    BASH_ONLY,
    PYTHON_ONLY,
    Ending,
    Exit,
    FileRoundTrip,
    Late,
    ProgramSpec,
    Signal,
    Step,
    Timeout,
    Write,
    WriteBytes,
)


def shrink(spec: ProgramSpec, fails: Callable[[ProgramSpec], bool], *, budget_s: float,
           output_cap: int | None = None) -> tuple[ProgramSpec, int]:
    """The smallest simplification of ``spec`` that still ``fails``, and how many were tried."""
    deadline = time.monotonic() + budget_s
    best, tried, seen = spec, 0, {spec}
    improved = True
    while improved and time.monotonic() < deadline:
        improved = False
        for candidate in simpler(best, output_cap):
            if candidate in seen:
                continue
            if time.monotonic() >= deadline:
                break
            seen.add(candidate)
            tried += 1
            if fails(candidate):
                best, improved = candidate, True
                break
    return best, tried


def simpler(spec: ProgramSpec, output_cap: int | None = None) -> Iterator[ProgramSpec]:
    """Simplifications of ``spec``, biggest first (``output_cap``: also try a plain ending in place of an error
    message that pushed stderr over the cap, the last stderr write growing to do it instead)."""
    steps, n = spec.steps, len(spec.steps)
    if n:
        yield dataclasses.replace(spec, steps=())
    if n > 2:
        yield dataclasses.replace(spec, steps=steps[: n // 2])
        yield dataclasses.replace(spec, steps=steps[n // 2:])
    for i in reversed(range(n)):
        yield dataclasses.replace(spec, steps=steps[:i] + steps[i + 1:])
    for ending in _endings(spec.ending):
        yield dataclasses.replace(spec, ending=ending)
    if output_cap is not None and not isinstance(spec.ending, Exit | Late | Timeout):
        yield from _over_cap_without_tail(spec, output_cap)
    if spec.language == "python" and not isinstance(spec.ending, PYTHON_ONLY + BASH_ONLY):
        yield dataclasses.replace(spec, language="bash")  # a bash program is a line shorter
    for i in range(n - 1):  # two writes to one stream as one write: one line fewer
        a, b = steps[i], steps[i + 1]
        if isinstance(a, Write) and isinstance(b, Write) and a.stream == b.stream and a.repeat == b.repeat == 1:
            yield dataclasses.replace(spec, steps=steps[:i] + (Write(a.stream, a.text + b.text),) + steps[i + 2:])
    for i, step in enumerate(steps):
        for smaller in _steps(step):
            yield dataclasses.replace(spec, steps=steps[:i] + (smaller,) + steps[i + 1:])


def _over_cap_without_tail(spec: ProgramSpec, cap: int) -> Iterator[ProgramSpec]:
    _, err = streams(spec)
    last = max((i for i, s in enumerate(spec.steps) if isinstance(s, Write) and s.stream == "stderr" and s.text),
               default=None)
    if last is None or len(err) >= cap:
        return
    write = spec.steps[last]
    assert isinstance(write, Write)
    more = -(-(cap + 1 - len(err)) // len(write.text.encode()))
    steps = spec.steps[:last] + (Write("stderr", write.text, write.repeat + more),) + spec.steps[last + 1:]
    yield dataclasses.replace(spec, steps=steps, ending=Exit(1))


def _endings(end: Ending) -> Iterator[Ending]:
    if end != Exit(0):
        yield Exit(0)
    if isinstance(end, Late):
        yield Exit(end.code)
    if isinstance(end, Timeout | Signal | Late):
        yield Exit(1)
    if isinstance(end, Exit):
        for code in dict.fromkeys((1, end.code % 256, end.code // 2)):
            if 0 <= code < end.code or (not 0 <= end.code <= 255 and code == end.code % 256):
                yield Exit(code)
    if isinstance(end, Signal) and end.signum != 15:
        yield Signal(15)


def _shorter(text: str) -> Iterator[str]:
    if len(text) > 1:
        yield text[: len(text) // 2]
        yield text[len(text) // 2:]
    if len(text) <= 12:
        for i in range(len(text)):
            yield text[:i] + text[i + 1:]


def _steps(step: Step) -> Iterator[Step]:
    if isinstance(step, Write):
        if step.repeat > 1:
            yield Write(step.stream, step.text, step.repeat // 2)
        for text in _shorter(step.text):
            yield Write(step.stream, text, step.repeat)
    elif isinstance(step, WriteBytes):
        if step.repeat > 1:
            yield WriteBytes(step.stream, step.data_bytes, step.repeat // 2)
        for i in range(len(step.data_bytes)):
            yield WriteBytes(step.stream, step.data_bytes[:i] + step.data_bytes[i + 1:], step.repeat)
    elif isinstance(step, FileRoundTrip):
        if step.name != "data.txt":
            yield FileRoundTrip("data.txt", step.text, step.repeat)
        if step.text:
            yield FileRoundTrip(step.name, "", 1)
        for text in _shorter(step.text):
            yield FileRoundTrip(step.name, text, step.repeat)
