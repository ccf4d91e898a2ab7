"""What a generated program does, as data: a ``ProgramSpec`` is a language, a list of steps and an ending.

A spec is small, frozen and hashable, so Hypothesis can shrink it and the parity session can cache
it; ``render`` (``harness.generate.render``) turns it into Python or bash source and ``expect``
(``harness.generate.oracle``) into the result the platform must report.

Steps, in order:

- ``Write``: text to stdout or stderr, ``repeat`` times (volumes around the output cap stay short
  as code); ``WriteBytes``: raw bytes (NUL, invalid UTF-8) the same way;
- ``ReadStdin``: read standard input (``all`` of it, or one ``line``) and print what came;
- ``FileRoundTrip``: write a file in the working directory (``name`` may hold a subdirectory),
  read it back and print its size (and its content when it is small); ``ListDir``: print the
  working directory's entries;
- ``Background``: start a child that outlives the program (``writes-late`` prints after the program
  has ended, ``silent`` only holds the output pipes, ``detached`` does not even hold them);
- ``Report``: print one aspect of the environment the program runs in (``ASPECTS``); the output
  of such a program is not known in advance, only compared between the paths.

Endings: ``Exit`` (any integer: the platform reports it modulo 256), ``ExitMessage``, ``Raise``,
``InputEOF`` (python reads a line past the end of stdin), ``SyntaxErr``, ``CommandNotFound``
(bash), ``Signal`` (sent to itself), ``MemoryHit``, ``Late`` (sleeps, then exits: just before or
just after the deadline ``DEADLINE_S``) and ``Timeout`` (sleeps far past it).

``RawProgram`` is a program given as source (a saved fixture the spec language cannot say, or a
deliberately nondeterministic one): it has no oracle, only the two paths are compared.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, get_args

Language = Literal["python", "bash"]
Stream = Literal["stdout", "stderr"]
BackgroundKind = Literal["writes-late", "silent", "detached"]
StdinRead = Literal["all", "line"]
Aspect = Literal["variables", "cwd", "umask", "ids", "rlimits", "locale", "timezone", "interpreter", "modules",
                 "writable", "network", "hostname", "fds", "capabilities", "scheduling"]
ASPECTS: tuple[Aspect, ...] = get_args(Aspect)
LANGUAGES: tuple[Language, ...] = ("python", "bash")

# Programs whose ending is about the deadline are submitted with this timeout; the others get the
# stack's. ``Late`` sleeps keep ``LATE_MARGIN_S`` away from it on either side: closer than that,
# whether a program beats the clock depends on how loaded the machine is, not on the platform.
DEADLINE_S = 1.0
LATE_MARGIN_S = 0.4


class SpecError(ValueError):
    """A stored spec is not one this version can read."""


@dataclass(frozen=True)
class Write:
    stream: Stream
    text: str
    repeat: int = 1

    @property
    def data(self) -> str:
        return self.text * self.repeat

    @property
    def raw(self) -> bytes:
        return self.data.encode("utf-8")


@dataclass(frozen=True)
class WriteBytes:
    stream: Stream
    data_bytes: bytes
    repeat: int = 1

    @property
    def raw(self) -> bytes:
        return self.data_bytes * self.repeat


@dataclass(frozen=True)
class ReadStdin:
    how: StdinRead = "all"


@dataclass(frozen=True)
class FileRoundTrip:
    name: str
    text: str
    repeat: int = 1

    @property
    def small(self) -> bool:
        return self.repeat == 1


@dataclass(frozen=True)
class ListDir:
    pass


@dataclass(frozen=True)
class Background:
    kind: BackgroundKind


@dataclass(frozen=True)
class Report:
    aspect: Aspect


Step = Write | WriteBytes | ReadStdin | FileRoundTrip | ListDir | Background | Report
_STEPS: dict[str, type[Step]] = {t.__name__: t for t in (Write, WriteBytes, ReadStdin, FileRoundTrip, ListDir,
                                                          Background, Report)}


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
class InputEOF:  # python: input() at the end of stdin raises EOFError
    pass


@dataclass(frozen=True)
class SyntaxErr:  # python: nothing runs; bash: the lines before the bad one run
    pass


@dataclass(frozen=True)
class CommandNotFound:  # bash: a command that is not on PATH exits 127
    pass


@dataclass(frozen=True)
class Signal:
    signum: int


@dataclass(frozen=True)
class Timeout:  # sleeps far past the deadline
    pass


@dataclass(frozen=True)
class Late:  # sleeps ``seconds`` (just before or just after the deadline), then exits ``code``
    seconds: float
    code: int = 0

    @property
    def before_deadline(self) -> bool:
        return self.seconds < DEADLINE_S


@dataclass(frozen=True)
class MemoryHit:  # python: an allocation over the address-space limit raises MemoryError
    pass


Ending = Exit | ExitMessage | Raise | InputEOF | SyntaxErr | CommandNotFound | Signal | Timeout | Late | MemoryHit
_ENDINGS: dict[str, type[Ending]] = {t.__name__: t for t in (Exit, ExitMessage, Raise, InputEOF, SyntaxErr,
                                                              CommandNotFound, Signal, Timeout, Late, MemoryHit)}
PYTHON_ONLY = (ExitMessage, Raise, InputEOF, MemoryHit)
BASH_ONLY = (CommandNotFound,)


@dataclass(frozen=True)
class ProgramSpec:
    language: Language
    steps: tuple[Step, ...]
    ending: Ending

    @property
    def code(self) -> str:
        from harness.generate.render import render

        return render(self)

    @property
    def writes(self) -> tuple[Write | WriteBytes, ...]:
        return tuple(s for s in self.steps if isinstance(s, (Write, WriteBytes)))

    @property
    def timeout_s(self) -> float | None:
        """The timeout it is submitted with: ``DEADLINE_S`` for a deadline ending, else the stack's."""
        return DEADLINE_S if isinstance(self.ending, (Timeout, Late)) else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (saved counterexamples); ``from_dict`` reads it back."""
        return {"language": self.language, "steps": [_step_dict(s) for s in self.steps],
                "ending": {"kind": type(self.ending).__name__, **dataclasses.asdict(self.ending)}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProgramSpec:
        """Read ``to_dict``'s form (also the older ``writes`` form); raises SpecError naming what is wrong."""
        try:
            ending = dict(data["ending"])
            kind = _ENDINGS[ending.pop("kind")]
            steps = tuple(_read_step(s) for s in data.get("steps", data.get("writes", [])))
            if data["language"] not in LANGUAGES:
                raise ValueError(f"language must be one of {LANGUAGES}, got {data['language']!r}")
            return cls(data["language"], steps, kind(**ending))
        except (KeyError, TypeError, ValueError) as exc:
            raise SpecError(f"not a program spec ({type(exc).__name__}: {exc}); expected "
                            "{language, steps: [{step, ...}], ending: {kind, ...}}") from exc


def _step_dict(step: Step) -> dict[str, Any]:
    fields = dataclasses.asdict(step)
    if isinstance(step, WriteBytes):
        fields["data_bytes"] = step.data_bytes.hex()
    return {"step": type(step).__name__, **fields}


def _read_step(doc: dict[str, Any]) -> Step:
    fields = dict(doc)
    kind = _STEPS[fields.pop("step", "Write")]  # the older form held only writes, without a step name
    if kind is WriteBytes:
        fields["data_bytes"] = bytes.fromhex(fields["data_bytes"])
    step = kind(**fields)
    if isinstance(step, (Write, WriteBytes)) and step.stream not in ("stdout", "stderr"):
        raise ValueError(f"stream must be stdout or stderr, got {step.stream!r}")
    return step


@dataclass(frozen=True)
class RawProgram:
    """A program given as source; it has no oracle, so only the two paths are compared."""

    language: Language
    source: str
    timeout_s: float | None = None

    @property
    def code(self) -> str:
        return self.source

    def to_dict(self) -> dict[str, Any]:
        return {"language": self.language, "code": self.source, "timeout_s": self.timeout_s}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RawProgram:
        try:
            language, code = data["language"], data["code"]
            timeout = data.get("timeout_s")
            if language not in LANGUAGES or not isinstance(code, str):
                raise ValueError(f"language must be one of {LANGUAGES} and code a string")
            if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                        or timeout <= 0):
                raise ValueError(f"timeout_s must be a positive number or null, got {timeout!r}")
        except (KeyError, TypeError, ValueError) as exc:
            raise SpecError(f"not a raw program ({type(exc).__name__}: {exc}); expected "
                            "{language, code, timeout_s}") from exc
        return cls(language, code, None if timeout is None else float(timeout))


Program = ProgramSpec | RawProgram
