"""Programs with an oracle: a program is generated from a spec, so its result is known before it runs.

A ``ProgramSpec`` says what a program writes to stdout and stderr (in order, each write a text
repeated some number of times, so large volumes around the output cap stay small as code) and how
it ends: an exit code, ``sys.exit`` with a string, an uncaught exception, a syntax error, a signal
it sends itself, a timeout, or a memory limit hit. ``render`` turns the spec into Python or bash
source; ``expect`` computes the result the platform must report for it, given the executor's output
cap. Hypothesis strategies (``program_specs``) generate specs in Hypothesis's own style, so a
failure shrinks to the smallest spec that still fails.
"""

from __future__ import annotations

import dataclasses
import re
import signal
from dataclasses import dataclass
from typing import Any, Literal

from hypothesis import strategies as st

Language = Literal["python", "bash"]
Stream = Literal["stdout", "stderr"]


@dataclass(frozen=True)
class Write:
    stream: Stream
    text: str
    repeat: int = 1

    @property
    def data(self) -> str:
        return self.text * self.repeat


@dataclass(frozen=True)
class Exit:
    code: int


@dataclass(frozen=True)
class ExitMessage:  # python: sys.exit("message") prints it to stderr and exits 1
    message: str


@dataclass(frozen=True)
class Raise:  # python: an uncaught exception, traceback on stderr, exit 1
    exception: str
    message: str


@dataclass(frozen=True)
class SyntaxErr:  # python: nothing runs; bash: the lines before the bad one run
    pass


@dataclass(frozen=True)
class Signal:
    signum: int


@dataclass(frozen=True)
class Timeout:
    pass


@dataclass(frozen=True)
class MemoryHit:  # python: an allocation over the address-space limit raises MemoryError
    pass


Ending = Exit | ExitMessage | Raise | SyntaxErr | Signal | Timeout | MemoryHit
_ENDINGS: dict[str, type[Ending]] = {t.__name__: t for t in (Exit, ExitMessage, Raise, SyntaxErr, Signal, Timeout,
                                                              MemoryHit)}


@dataclass(frozen=True)
class ProgramSpec:
    language: Language
    writes: tuple[Write, ...]
    ending: Ending

    @property
    def code(self) -> str:
        return render(self)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (saved counterexamples); ``from_dict`` reads it back."""
        return {"language": self.language,
                "writes": [{"stream": w.stream, "text": w.text, "repeat": w.repeat} for w in self.writes],
                "ending": {"kind": type(self.ending).__name__, **dataclasses.asdict(self.ending)}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProgramSpec:
        try:
            ending = dict(data["ending"])
            kind = _ENDINGS[ending.pop("kind")]
            writes = tuple(Write(w["stream"], w["text"], int(w.get("repeat", 1))) for w in data["writes"])
            if data["language"] not in ("python", "bash") or any(w.stream not in ("stdout", "stderr") for w in writes):
                raise ValueError("language must be python or bash and streams stdout or stderr")
            return cls(data["language"], writes, kind(**ending))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a program spec ({type(exc).__name__}: {exc}); expected "
                             "{language, writes: [{stream, text, repeat}], ending: {kind, ...}}") from exc


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

    def differences(self, result: dict[str, object]) -> list[str]:
        """The fields of ``result`` that disagree with the oracle (empty when it is right)."""
        wrong = [f for f in ("status", "output", "exit_code", "timed_out", "truncated")
                 if result.get(f) != getattr(self, f)]
        error = result.get("error")
        if not isinstance(error, str):
            return [*wrong, "error"]
        if self.error_exact:
            ok = error == self.error_starts
        else:
            ok = error.startswith(self.error_starts) and (self.error_ends is None or error.endswith(self.error_ends))
        return wrong if ok else [*wrong, "error"]


PY_EXCEPTIONS = ("ValueError", "KeyError", "RuntimeError", "ZeroDivisionError", "TypeError", "AssertionError")
SIGNALS = (int(signal.SIGTERM), int(signal.SIGKILL), int(signal.SIGABRT), int(signal.SIGUSR1), int(signal.SIGSEGV))


# -- rendering ---------------------------------------------------------------------------------------


def render(spec: ProgramSpec) -> str:
    return _render_python(spec) if spec.language == "python" else _render_bash(spec)


def _render_python(spec: ProgramSpec) -> str:
    """The shortest program that does what the spec says (shrunk counterexamples are read by people)."""
    if isinstance(spec.ending, SyntaxErr):
        body = [f"print({w.text!r})" for w in spec.writes]
        return "\n".join([*body, "def broken(:", "    pass", ""])
    end = spec.ending
    lines = ["import sys"] if spec.writes or isinstance(end, (Exit, ExitMessage)) and end != Exit(0) else []
    for w in spec.writes:
        data = repr(w.text) if w.repeat == 1 else f"{w.text!r} * {w.repeat}"
        lines.append(f"sys.{w.stream}.write({data})")
    if spec.writes and isinstance(end, (Signal, Timeout)):
        lines.append("sys.stdout.flush(); sys.stderr.flush()")  # a signal death skips the flush at exit
    if isinstance(end, Exit):
        lines += [f"sys.exit({end.code})"] if end.code else []
    elif isinstance(end, ExitMessage):
        lines.append(f"sys.exit({end.message!r})")
    elif isinstance(end, Raise):
        lines.append(f"raise {end.exception}({end.message!r})")
    elif isinstance(end, Signal):
        lines.append(f"import os; os.kill(os.getpid(), {end.signum})")
    elif isinstance(end, Timeout):
        lines.append("import time; time.sleep(3600)")
    elif isinstance(end, MemoryHit):
        lines.append("hog = bytearray(1 << 40)")
    return "\n".join(lines) + "\n"


def _bash_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _render_bash(spec: ProgramSpec) -> str:
    lines = []
    for w in spec.writes:
        redirect = " >&2" if w.stream == "stderr" else ""
        if w.repeat == 1:
            lines.append(f"printf '%s' {_bash_quote(w.text)}{redirect}")
        else:
            lines.append(f"for _ in $(seq {w.repeat}); do printf '%s' {_bash_quote(w.text)}; done{redirect}")
    end = spec.ending
    if isinstance(end, Exit):
        lines += [f"exit {end.code}"] if end.code or not lines else []  # the last printf's status is 0
    elif isinstance(end, Signal):
        lines.append(f"kill -s {signal.Signals(end.signum).name.removeprefix('SIG')} $$")
    elif isinstance(end, Timeout):
        lines.append("sleep 3600")
    elif isinstance(end, SyntaxErr):
        lines.append("fi")
    else:
        raise ValueError(f"bash programs cannot end with {end!r}")
    return "\n".join(lines) + "\n"


# -- the oracle ----------------------------------------------------------------------------------------


def _capped(data: str, cap: int) -> tuple[str, bool]:
    raw = data.encode("utf-8")
    if len(raw) <= cap:
        return data, False
    return raw[:cap].decode("utf-8", errors="replace"), True


def expect(spec: ProgramSpec, *, output_cap: int) -> Expected:
    """The result the platform must report for ``spec`` with the executor's ``output_cap`` bytes."""
    end = spec.ending
    stdout = "".join(w.data for w in spec.writes if w.stream == "stdout")
    stderr = "".join(w.data for w in spec.writes if w.stream == "stderr")
    if isinstance(end, SyntaxErr) and spec.language == "python":
        return Expected("failed", "", 1, False, False, "", "SyntaxError: invalid syntax\n", False)
    out, cut_out = _capped(stdout, output_cap)  # bash runs the lines before a syntax error
    err, cut_err = _capped(stderr, output_cap)
    if isinstance(end, Exit):
        return Expected("completed" if end.code == 0 else "failed", out, end.code, False, cut_out or cut_err,
                        err, None, True)
    if isinstance(end, Signal):
        return Expected("failed", out, 128 + end.signum, False, cut_out or cut_err, err, None, True)
    if isinstance(end, Timeout):
        return Expected("timeout", out, 137, True, cut_out or cut_err, err, None, True)
    if isinstance(end, SyntaxErr):
        # bash reports "...: syntax error near unexpected token `fi'" and then "...: `fi'".
        return Expected("failed", out, 2, False, cut_out or cut_err, err, "`fi'\n", False)
    if isinstance(end, ExitMessage):
        full, cut_full = _capped(stderr + end.message + "\n", output_cap)
        return Expected("failed", out, 1, False, cut_out or cut_full, full, None, True)
    if isinstance(end, Raise):
        shown = repr(end.message) if end.exception == "KeyError" else end.message  # KeyError shows the key's repr
        tail = f"{end.exception}: {shown}\n" if shown else f"{end.exception}\n"
        return Expected("failed", out, 1, False, cut_out or cut_err, err + "Traceback (most recent call last):\n",
                        tail, False)
    if isinstance(end, MemoryHit):
        return Expected("failed", out, 1, False, cut_out or cut_err, err + "Traceback (most recent call last):\n",
                        "MemoryError\n", False)
    raise TypeError(f"unknown ending {end!r}")


# -- strategies ------------------------------------------------------------------------------------------

_UNICODE = st.characters(blacklist_categories=("Cs", "Cc"), max_codepoint=0x1F9FF) | st.sampled_from("\n\r\t")
_NO_TRAILING_SPACE = re.compile(r"\s+$")


@st.composite
def texts(draw: st.DrawFn, *, max_size: int = 40) -> str:
    """Text a program writes: ASCII, unicode, empty, CRLF, lines with or without a final newline."""
    return draw(st.one_of(
        st.just(""),
        st.sampled_from(["hello\n", "no newline", "a\r\nb\r\n", "tab\tseparated\n", "é ü ✓ 🚀\n", "\n\n"]),
        st.text(alphabet=_UNICODE, max_size=max_size),
    ))


@st.composite
def writes(draw: st.DrawFn, *, language: Language, output_cap: int) -> Write:
    stream: Stream = draw(st.sampled_from(["stdout", "stdout", "stderr"]))
    text = draw(texts())
    if stream == "stdout" and text and draw(st.booleans()):
        # Volumes around the cap: just under, at, just over.
        size = len(text.encode())
        target = draw(st.sampled_from([output_cap - 1, output_cap, output_cap + 1, 2 * output_cap]))
        repeat = max(1, target // size)
        repeat = min(repeat, 2000 if language == "bash" else 10**6)
        return Write(stream, text, repeat)
    return Write(stream, text, 1)


def endings(*, language: Language, slow: bool = True) -> st.SearchStrategy[Ending]:
    common: list[st.SearchStrategy[Ending]] = [
        st.builds(Exit, st.integers(0, 255)),
        st.builds(Signal, st.sampled_from(SIGNALS)),
        st.just(SyntaxErr()),
    ]
    if slow:
        common.append(st.just(Timeout()))
    if language == "bash":
        return st.one_of(common)
    return st.one_of(
        *common,
        st.builds(ExitMessage, st.text(alphabet=_UNICODE, min_size=1, max_size=20)),
        st.builds(Raise, st.sampled_from(PY_EXCEPTIONS),
                  st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20)),
        st.just(MemoryHit()),
    )


@st.composite
def program_specs(draw: st.DrawFn, *, output_cap: int = 65536, languages: tuple[Language, ...] = ("python", "bash"),
                  max_writes: int = 4, slow: bool = True) -> ProgramSpec:
    """Specs of programs with a known result; ``slow=False`` leaves out timeouts."""
    language = draw(st.sampled_from(languages))
    ws = draw(st.lists(writes(language=language, output_cap=output_cap), max_size=max_writes))
    ending = draw(endings(language=language, slow=slow))
    if isinstance(ending, Raise) and ending.message and _NO_TRAILING_SPACE.search(ending.message):
        ending = Raise(ending.exception, ending.message.rstrip() or "x")
    return ProgramSpec(language, tuple(ws), ending)
