"""The parity surface's edges, and which of them a program reaches: the rows of the coverage table.

An *edge* is a ``(field, name)`` pair: a place where a compared field is most likely to go wrong
(``("output", "cap-cuts-character")``: stdout is longer than the output cap and the cap falls inside
a multi-byte character). ``EDGES`` declares every one, with what it means; ``edges_of(program,
output_cap)`` says which ones a program reaches *as it runs* (a Python program with a syntax error
reaches none of its steps' edges: nothing of it runs). The coverage table counts, per edge, the
programs that reached it; a declared edge no program reached shows as 0, so a gap is obvious.

Fields: ``output`` and ``error`` (the bytes a program writes to stdout and stderr: volume around
the cap, line endings, blanks, NUL and invalid UTF-8, nothing at all versus an empty line),
``exit_code`` (from ``exit`` across 0..255 and beyond, from signals, from errors), ``status``,
``timed_out`` (endings just before and just after the deadline), ``truncated`` (which stream), the
program's ``behaviour`` (stdin, files in the working directory, background children, the memory
limit) and the ``environment`` (one edge per reported aspect).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping

from harness.generate.oracle import expect, streams
from harness.generate.spec import (
    ASPECTS,
    Background,
    CommandNotFound,
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
)

Edge = tuple[str, str]
BAND = 256  # "just below / just above the cap": within this many bytes of it (a tenth of a smaller cap)

_STREAM_EDGES = {
    "nothing": "no byte written at all",
    "empty-line": "exactly one newline",
    "no-final-newline": "text that does not end in a newline",
    "trailing-blank": "a line ending in a space or a tab",
    "cr": "a carriage return not followed by a newline",
    "crlf": "a CRLF line ending",
    "unicode": "non-ASCII characters",
    "control": "control characters (escape, bell, backspace, form feed, ...)",
    "nul": "a NUL byte",
    "invalid-utf8": "bytes that are not UTF-8",
    "below-cap": f"volume within {BAND} bytes under the output cap",
    "at-cap": "volume exactly at the output cap",
    "above-cap": f"volume within {BAND} bytes over the output cap",
    "far-above-cap": "volume at least twice the output cap",
    "cap-cuts-character": "the cap falls inside a multi-byte character",
}
EDGES: dict[Edge, str] = {
    **{("output", k): f"stdout: {v}" for k, v in _STREAM_EDGES.items()},
    **{("error", k): f"stderr: {v}" for k, v in _STREAM_EDGES.items()},
    ("error", "traceback"): "a Python traceback after what the program wrote",
    ("error", "shell-error"): "a bash error message after what the program wrote",
    ("error", "exit-message"): "sys.exit with a message",
    ("exit_code", "exit-0"): "exit 0",
    ("exit_code", "exit-1..127"): "exit with 1..127",
    ("exit_code", "exit-128..192"): "exit with a code a signal death also gives",
    ("exit_code", "exit-193..255"): "exit with 193..255",
    ("exit_code", "exit-wraps"): "exit with a code below 0 or above 255 (reported modulo 256)",
    ("exit_code", "signal-1..31"): "killed by a standard signal (128 + N)",
    ("exit_code", "signal-realtime"): "killed by a real-time signal (162..192)",
    ("exit_code", "python-sigint"): "SIGINT to Python: KeyboardInterrupt, then 130",
    ("exit_code", "exception"): "an uncaught exception (1)",
    ("exit_code", "syntax-error"): "a syntax error (python 1, bash 2)",
    ("exit_code", "command-not-found"): "a command that is not on PATH (127)",
    ("exit_code", "timeout-137"): "killed at the deadline (137)",
    ("status", "completed"): "completed",
    ("status", "failed"): "failed",
    ("status", "timeout"): "timeout",
    ("timed_out", "ends-just-before"): "ends on its own shortly before the deadline",
    ("timed_out", "ends-just-after"): "would end shortly after the deadline",
    ("timed_out", "runs-far-past"): "would run far past the deadline",
    ("truncated", "stdout-only"): "only stdout is over the cap",
    ("truncated", "stderr-only"): "only stderr is over the cap",
    ("truncated", "both-streams"): "both streams are over the cap",
    ("truncated", "at-cap-not-truncated"): "a stream exactly at the cap, none over it",
    ("behaviour", "stdin-read-all"): "reads all of stdin",
    ("behaviour", "stdin-read-line"): "reads a line of stdin",
    ("behaviour", "stdin-input-eof"): "Python's input() at the end of stdin",
    ("behaviour", "file-small"): "writes a small file in the working directory and reads it back",
    ("behaviour", "file-empty"): "writes an empty file and reads it back",
    ("behaviour", "file-large"): "writes a file of a megabyte or more and reads its size back",
    ("behaviour", "file-unicode-name"): "a file name with non-ASCII characters or a space",
    ("behaviour", "file-subdirectory"): "a file in a subdirectory it creates",
    ("behaviour", "list-directory"): "lists the working directory",
    ("behaviour", "background-writes-late"): "a background child that writes after the program ended",
    ("behaviour", "background-silent"): "a background child that holds the output pipes",
    ("behaviour", "background-detached"): "a background child detached from the output pipes",
    ("behaviour", "memory-limit"): "an allocation over the memory limit",
    **{("environment", a): f"reports its {a}" for a in ASPECTS},
}
FIELDS = tuple(dict.fromkeys(f for f, _ in EDGES))
_TRAILING_BLANK = re.compile(rb"[ \t](?:\r?\n|$)")
_LONE_CR = re.compile(rb"\r(?!\n)")
_CONTROL = re.compile(rb"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _cuts_character(raw: bytes, cap: int) -> bool:
    if len(raw) <= cap or raw[cap] & 0xC0 != 0x80:
        return False
    start = cap
    while start > 0 and cap - start < 3 and raw[start] & 0xC0 == 0x80:
        start -= 1
    lead = raw[start]
    size = 2 if 0xC2 <= lead <= 0xDF else 3 if 0xE0 <= lead <= 0xEF else 4 if 0xF0 <= lead <= 0xF4 else 0
    try:
        return size > 0 and start + size > cap and len(raw[start:start + size].decode("utf-8")) == 1
    except UnicodeDecodeError:
        return False


def stream_edges(raw: bytes, cap: int) -> set[str]:
    """The stream edges ``raw`` (everything written to one stream) reaches under an output cap of ``cap``."""
    found = set()
    band = min(BAND, cap // 10)
    if not raw:
        found.add("nothing")
    elif raw == b"\n":
        found.add("empty-line")
    elif not raw.endswith(b"\n"):
        found.add("no-final-newline")
    checks = {"trailing-blank": bool(_TRAILING_BLANK.search(raw)), "cr": bool(_LONE_CR.search(raw)),
              "crlf": b"\r\n" in raw, "nul": b"\x00" in raw, "control": bool(_CONTROL.search(raw)),
              "unicode": any(ord(c) > 127 for c in raw.decode("utf-8", errors="ignore")),
              "below-cap": cap - band <= len(raw) < cap, "at-cap": len(raw) == cap,
              "above-cap": cap < len(raw) <= cap + band, "far-above-cap": len(raw) >= 2 * cap,
              "cap-cuts-character": _cuts_character(raw, cap)}
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        found.add("invalid-utf8")
    return found | {k for k, hit in checks.items() if hit}


def _exit_edge(spec: ProgramSpec) -> str:
    end = spec.ending
    if isinstance(end, Exit | Late) and not (isinstance(end, Late) and not end.before_deadline):
        code = end.code
        if not 0 <= code <= 255:
            return "exit-wraps"
        return ("exit-0" if code == 0 else "exit-1..127" if code < 128 else "exit-128..192" if code <= 192
                else "exit-193..255")
    if isinstance(end, Signal):
        if spec.language == "python" and end.signum == 2:
            return "python-sigint"
        return "signal-1..31" if end.signum < 32 else "signal-realtime"
    if isinstance(end, Raise | InputEOF | MemoryHit | ExitMessage):
        return "exception"
    if isinstance(end, SyntaxErr):
        return "syntax-error"
    if isinstance(end, CommandNotFound):
        return "command-not-found"
    return "timeout-137"


def _tail_edge(spec: ProgramSpec) -> str | None:
    end, python = spec.ending, spec.language == "python"
    if python and (isinstance(end, Raise | InputEOF | MemoryHit | SyntaxErr) or (isinstance(end, Signal) and end.signum == 2)):
        return "traceback"
    if isinstance(end, SyntaxErr | CommandNotFound):
        return "shell-error"
    return "exit-message" if isinstance(end, ExitMessage) else None


def edges_of(program: Program, output_cap: int) -> frozenset[Edge]:
    """The declared edges ``program`` reaches as it runs (a raw program reaches none the table knows)."""
    if not isinstance(program, ProgramSpec):
        return frozenset()
    spec, end, cap = program, program.ending, output_cap
    expected = expect(spec, output_cap=cap)
    assert expected is not None
    ran = not (isinstance(end, SyntaxErr) and spec.language == "python")
    raw_out, raw_err = streams(spec) if ran else (b"", b"")
    tail = _tail_edge(spec)
    found: set[Edge] = {("exit_code", _exit_edge(spec)), ("status", expected.status)}
    reports = any(isinstance(s, Report) for s in spec.steps)  # their stdout is not known in advance
    found |= set() if reports else {("output", e) for e in stream_edges(raw_out, cap)}
    found |= {("error", e) for e in stream_edges(raw_err, cap) if not (tail and e == "nothing")}
    if tail:
        found.add(("error", tail))
    if isinstance(end, Late):
        found.add(("timed_out", "ends-just-before" if end.before_deadline else "ends-just-after"))
    elif isinstance(end, Timeout):
        found.add(("timed_out", "runs-far-past"))
    over = (len(raw_out) > cap and not reports, len(raw_err) > cap)
    truncation = {(True, False): "stdout-only", (False, True): "stderr-only", (True, True): "both-streams"}.get(over)
    if truncation is None and not reports and cap in (len(raw_out), len(raw_err)):
        truncation = "at-cap-not-truncated"
    if truncation:
        found.add(("truncated", truncation))
    if isinstance(end, InputEOF):
        found.add(("behaviour", "stdin-input-eof"))
    if isinstance(end, MemoryHit):
        found.add(("behaviour", "memory-limit"))
    for step in spec.steps if ran else ():
        found |= _step_edges(step)
    return frozenset(e for e in found if e in EDGES)


def _step_edges(step: object) -> set[Edge]:
    if isinstance(step, ReadStdin):
        return {("behaviour", f"stdin-read-{step.how}")}
    if isinstance(step, FileRoundTrip):
        size = len((step.text * step.repeat).encode())
        out = {("behaviour", "file-empty" if size == 0 else "file-large" if size >= 1 << 20 else "file-small")}
        if not step.name.isascii() or " " in step.name:
            out.add(("behaviour", "file-unicode-name"))
        if "/" in step.name:
            out.add(("behaviour", "file-subdirectory"))
        return out
    if isinstance(step, ListDir):
        return {("behaviour", "list-directory")}
    if isinstance(step, Background):
        return {("behaviour", f"background-{step.kind}")}
    if isinstance(step, Report):
        return {("environment", step.aspect)}
    return set()


def coverage(edge_sets: Iterable[Iterable[Edge]]) -> Counter[Edge]:
    """Programs per edge (every declared edge present, reached or not)."""
    counts: Counter[Edge] = Counter({e: 0 for e in EDGES})
    for edges in edge_sets:
        counts.update(set(edges))
    return counts


def missing_edges(counts: Mapping[Edge, int]) -> list[Edge]:
    return [e for e in EDGES if not counts.get(e)]


def edges_text(edges: Iterable[Edge]) -> str:
    """``field:edge`` joined by commas (how ``observations.parquet`` stores them); ``parse_edges`` reads it."""
    return ",".join(f"{f}:{e}" for f, e in sorted(edges))


def parse_edges(text: object) -> list[Edge]:
    if not isinstance(text, str) or not text:
        return []
    return [tuple(item.split(":", 1)) for item in text.split(",") if ":" in item]  # type: ignore[misc]
