"""The oracle: the result the platform must report for a spec, computed before the program runs.

``expect(program, output_cap=...)`` plays the spec through: the bytes each step writes to each
stream, what the ending adds (a traceback, a shell error), the exit code (modulo 256; ``128 + N``
for signal N; 137 for a timeout), then the executor's output cap (the first ``output_cap`` bytes of
each stream, decoded as UTF-8 with replacement characters, exactly as the executor decodes them).

What cannot be known in advance is declared, never guessed: an environment report's output (it is
compared between the paths instead); the end of an error when a traceback follows stderr writes
that nearly fill the cap (how much of it fits depends on the traceback's length). ``Expected``
names those fields in ``unknown``; ``differences`` checks every other one. A ``RawProgram`` has no
oracle (``expect`` returns None).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import overload

from harness.generate.render import MISSING_COMMAND
from harness.generate.spec import (
    CommandNotFound,
    Ending,
    Exit,
    ExitMessage,
    FileRoundTrip,
    InputEOF,
    Late,
    ListDir,
    MemoryHit,
    Program,
    ProgramSpec,
    Raise,
    ReadStdin,
    Report,
    Signal,
    SyntaxErr,
    Timeout,
    Write,
    WriteBytes,
)

TIMEOUT_EXIT = 137
TRACEBACK = "Traceback (most recent call last):\n"
SOURCE_NAME = {"python": "main.py", "bash": "main.sh"}
# A traceback or a shell error is at most this long; stderr writes closer than this to the cap
# leave the end of the error (and whether it is cut) unknown.
ERROR_TAIL_MAX = 4096


@dataclass(frozen=True)
class Expected:
    """What the platform must report. ``error`` is checked by its exact start and end."""

    status: str
    output: str
    exit_code: int
    timed_out: bool
    truncated: bool
    error_starts: str
    error_ends: str | None  # None: anything may follow error_starts
    error_exact: bool
    unknown: tuple[str, ...] = ()  # fields the oracle cannot predict (never checked)

    def differences(self, result: dict[str, object]) -> list[str]:
        """The fields of ``result`` that disagree with the oracle (empty when it is right)."""
        wrong = [f for f in ("status", "output", "exit_code", "timed_out", "truncated")
                 if f not in self.unknown and result.get(f) != getattr(self, f)]
        if "error" in self.unknown:
            return wrong
        error = result.get("error")
        if not isinstance(error, str):
            return [*wrong, "error"]
        if self.error_exact:
            ok = error == self.error_starts
        else:
            ok = error.startswith(self.error_starts) and (self.error_ends is None or error.endswith(self.error_ends))
        return wrong if ok else [*wrong, "error"]


def _decode(raw: bytes, cap: int) -> tuple[str, bool]:
    return raw[:cap].decode("utf-8", errors="replace"), len(raw) > cap


def streams(spec: ProgramSpec) -> tuple[bytes, bytes]:
    """The bytes the spec's steps write to stdout and stderr (before the ending, before the cap)."""
    out, err = bytearray(), bytearray()
    entries = {SOURCE_NAME[spec.language]}
    for step in spec.steps:
        if isinstance(step, Write | WriteBytes):
            (out if step.stream == "stdout" else err).extend(step.raw)
        elif isinstance(step, ReadStdin):
            if step.how == "all":
                out += b"stdin: 0 bytes\n"
            else:
                out += b"stdin line: ''\n" if spec.language == "python" else b"stdin line: 1\n"
        elif isinstance(step, FileRoundTrip):
            raw = (step.text * step.repeat).encode("utf-8")
            out += f"{step.name}: {len(raw)} bytes\n".encode() + (raw if step.small else b"")
            entries.add(step.name.split("/", 1)[0])
        elif isinstance(step, ListDir):
            out += ("dir:" + "".join(" " + n for n in sorted(entries)) + "\n").encode()
    return bytes(out), bytes(err)


def _tail(end: Ending, language: str) -> tuple[str, str | None, int] | None:
    """What an ending appends to stderr: (start, end, exit code), or None when it appends nothing."""
    if isinstance(end, Raise):
        shown = repr(end.message) if end.exception == "KeyError" else end.message  # KeyError shows the key's repr
        return TRACEBACK, (f"{end.exception}: {shown}\n" if shown else f"{end.exception}\n"), 1
    if isinstance(end, InputEOF):
        return TRACEBACK, "EOFError: EOF when reading a line\n", 1
    if isinstance(end, MemoryHit):
        return TRACEBACK, "MemoryError\n", 1
    if isinstance(end, Signal) and language == "python" and end.signum == 2:
        return TRACEBACK, "KeyboardInterrupt\n", 130  # Python turns SIGINT into KeyboardInterrupt, then dies of it
    if isinstance(end, SyntaxErr):  # bash: the lines before run; python returned earlier
        return "", "syntax error: unexpected end of file\n", 2
    if isinstance(end, CommandNotFound):
        return "", f": {MISSING_COMMAND}: command not found\n", 127
    return None


@overload
def expect(program: ProgramSpec, *, output_cap: int) -> Expected: ...
@overload
def expect(program: Program, *, output_cap: int) -> Expected | None: ...


def expect(program: Program, *, output_cap: int) -> Expected | None:
    """The result the platform must report for ``program`` with the executor's ``output_cap`` bytes per
    stream; None for a ``RawProgram`` (no oracle)."""
    if not isinstance(program, ProgramSpec):
        return None
    spec, cap, end = program, output_cap, program.ending
    if isinstance(end, SyntaxErr) and spec.language == "python":  # nothing runs
        return Expected("failed", "", 1, False, False, "", "SyntaxError: invalid syntax\n", False)
    raw_out, raw_err = streams(spec)
    unknown: tuple[str, ...] = ("output", "error", "truncated") if any(isinstance(s, Report) for s in spec.steps) else ()
    out, cut_out = _decode(raw_out, cap)
    timed_out = isinstance(end, Timeout) or (isinstance(end, Late) and not end.before_deadline)
    if timed_out:
        err, cut_err = _decode(raw_err, cap)
        return Expected("timeout", out, TIMEOUT_EXIT, True, cut_out or cut_err, err, None, True, unknown)
    if isinstance(end, ExitMessage):
        err, cut_err = _decode(raw_err + (end.message + "\n").encode(), cap)
        return Expected("failed", out, 1, False, cut_out or cut_err, err, None, True, unknown)
    if isinstance(end, Exit | Late) or (isinstance(end, Signal) and _tail(end, spec.language) is None):
        code = end.code % 256 if isinstance(end, Exit | Late) else 128 + end.signum
        err, cut_err = _decode(raw_err, cap)
        return Expected("completed" if code == 0 else "failed", out, code, False, cut_out or cut_err, err, None, True,
                        unknown)
    tail = _tail(end, spec.language)
    if tail is None:
        raise TypeError(f"unknown ending {end!r}")
    starts, ends, code = tail
    if len(raw_err) >= cap:  # the writes fill the cap: nothing of the tail is kept
        err, _ = _decode(raw_err, cap)
        return Expected("failed", out, code, False, True, err, None, True, unknown)
    err_text = raw_err.decode("utf-8", errors="replace")
    if len(raw_err) + ERROR_TAIL_MAX > cap:  # the tail may or may not fit: only its start is known
        maybe = () if cut_out else ("truncated",)
        return Expected("failed", out, code, False, cut_out, err_text, None, False, tuple(dict.fromkeys([*unknown, *maybe])))
    return Expected("failed", out, code, False, cut_out, err_text + starts, ends, False, unknown)
