"""The declared mix ``parity-v1``: the population the gate's parity rate bound is about.

A rate bound ("0 mismatches in 299, so the mismatch rate is below 1 % with 95 % confidence") holds
for programs drawn independently from a stated distribution. Hypothesis's examples are neither
independent nor from one (it aims at edge cases, shrinks and skips duplicates), so the search hunts
counterexamples under zero tolerance and the bound is computed on a sample from this mix instead:
every program drawn independently, with a seeded ``random.Random`` (stream ``parity-v1:<seed>``),
duplicates kept (they are independent draws too). No Hypothesis here.

Families and their share of the mix (percent); each builds a spec from ``catalogue`` values, so the
oracle knows the result:

| family | share | what |
|---|---:|---|
| quick | 20 | text on stdout and/or stderr (line endings, blanks, unicode), exit 0 |
| failing | 10 | text, then a non-zero exit (1..255, and codes that wrap) |
| python-errors | 8 | an exception, ``sys.exit("message")``, ``input()`` at EOF, the memory limit, a syntax error |
| bash-errors | 4 | a syntax error, a command not found |
| signals | 6 | killed by a signal it sends itself (standard and real-time) |
| volume | 12 | one or both streams just below, at, just above or far above the output cap, or a character cut by it |
| bytes | 5 | NUL and invalid UTF-8 on either stream |
| blank | 4 | nothing at all versus an empty line |
| stdin | 4 | reads stdin (all of it, a line) |
| files | 6 | writes files in the working directory and reads them back, lists it |
| background | 4 | starts a child that outlives it |
| deadline | 5 | ends just before or just after its deadline, or sleeps far past it |
| environment | 12 | reports aspects of its environment (compared between the paths, not predicted) |

Python and bash are equally likely wherever both can say it.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from harness.generate import catalogue as cat
from harness.generate.spec import (
    ASPECTS,
    Background,
    BackgroundKind,
    CommandNotFound,
    Ending,
    Exit,
    ExitMessage,
    FileRoundTrip,
    InputEOF,
    Language,
    Late,
    ListDir,
    MemoryHit,
    ProgramSpec,
    Raise,
    ReadStdin,
    Report,
    Signal,
    Step,
    Stream,
    SyntaxErr,
    Timeout,
    Write,
    WriteBytes,
)

MIX_NAME = "parity-v1"
Family = Callable[[random.Random, int], ProgramSpec]


def _language(rng: random.Random) -> Language:
    return rng.choice(("python", "bash"))


def _text(rng: random.Random) -> str:
    return rng.choice(cat.TEXTS)


def _texts(rng: random.Random) -> tuple[Step, ...]:
    streams: list[Stream] = rng.choice([["stdout"], ["stderr"], ["stdout", "stderr"], ["stdout", "stdout"]])
    return tuple(Write(s, _text(rng)) for s in streams)


def quick(rng: random.Random, cap: int) -> ProgramSpec:
    return ProgramSpec(_language(rng), _texts(rng), Exit(0))


def failing(rng: random.Random, cap: int) -> ProgramSpec:
    code = rng.choice(cat.EXIT_CODES[1:]) if rng.random() < 0.5 else rng.randint(1, 255)
    return ProgramSpec(_language(rng), _texts(rng), Exit(code))


def python_errors(rng: random.Random, cap: int) -> ProgramSpec:
    endings: list[Ending] = [Raise(rng.choice(cat.PY_EXCEPTIONS), rng.choice(["boom", "bad value 42", ""])),
                             ExitMessage(rng.choice(["usage: main.py FILE", "fatal: ✗"])), InputEOF(), MemoryHit(),
                             SyntaxErr()]
    ending = rng.choice(endings)
    return ProgramSpec("python", _texts(rng) if rng.random() < 0.5 else (), ending)


def bash_errors(rng: random.Random, cap: int) -> ProgramSpec:
    endings: list[Ending] = [SyntaxErr(), CommandNotFound()]
    return ProgramSpec("bash", _texts(rng) if rng.random() < 0.5 else (), rng.choice(endings))


def signals(rng: random.Random, cap: int) -> ProgramSpec:
    language = _language(rng)
    signum = rng.choice(cat.SIGNALS[language]) if rng.random() < 0.7 else rng.choice(cat.REALTIME)
    return ProgramSpec(language, _texts(rng), Signal(signum))


def _volume(rng: random.Random, stream: Stream, cap: int) -> tuple[Step, ...]:
    if rng.random() < 0.25:
        char = rng.choice(cat.MULTIBYTE)
        return Write(stream, "x", cap - rng.randint(1, len(char.encode()) - 1)), Write(stream, char + "\n")
    unit = rng.choice(cat.VOLUME_UNITS)
    target = rng.choice([cap - 1, cap - 100, cap, cap + 1, cap + 100, 2 * cap + 3])
    repeat, pad = cat.volume_repeats(unit, target)
    return (Write(stream, unit, repeat), *((Write(stream, "x" * pad),) if pad else ()))


def volume(rng: random.Random, cap: int) -> ProgramSpec:
    streams: list[Stream] = rng.choice([["stdout"], ["stderr"], ["stdout", "stderr"]])
    return ProgramSpec(_language(rng), tuple(w for s in streams for w in _volume(rng, s, cap)),
                       Exit(rng.choice([0, 0, 1])))


def byte_writes(rng: random.Random, cap: int) -> ProgramSpec:
    steps = tuple(WriteBytes(rng.choice(("stdout", "stderr")), rng.choice(cat.BYTES)) for _ in range(rng.randint(1, 2)))
    return ProgramSpec(_language(rng), steps, Exit(0))


def blank(rng: random.Random, cap: int) -> ProgramSpec:
    steps = tuple(Write(s, "\n") for s in ("stdout", "stderr") if rng.random() < 0.5)
    return ProgramSpec(_language(rng), steps, Exit(rng.choice([0, 1])))


def stdin(rng: random.Random, cap: int) -> ProgramSpec:
    return ProgramSpec(_language(rng), (ReadStdin(rng.choice(("all", "line"))),), Exit(0))


def files(rng: random.Random, cap: int) -> ProgramSpec:
    name = rng.choice(cat.FILE_NAMES)
    kind = rng.choice(["small", "small", "empty", "large"])
    step = (FileRoundTrip(name, "") if kind == "empty" else FileRoundTrip(name, _text(rng)) if kind == "small"
            else FileRoundTrip(name, "0123456789abcdef" * 4, cat.LARGE_FILE_BYTES // 64))
    return ProgramSpec(_language(rng), (step, ListDir()) if rng.random() < 0.5 else (step,), Exit(0))


def background(rng: random.Random, cap: int) -> ProgramSpec:
    kinds: tuple[BackgroundKind, ...] = ("writes-late", "silent", "detached")
    kind = rng.choice(kinds)
    return ProgramSpec(_language(rng), (Write("stdout", "main\n"), Background(kind)), Exit(rng.choice([0, 3])))


def deadline(rng: random.Random, cap: int) -> ProgramSpec:
    ending: Ending = (Timeout() if rng.random() < 0.2
                      else Late(rng.choice(cat.LATE_BEFORE + cat.LATE_AFTER), rng.choice([0, 3])))
    return ProgramSpec(_language(rng), (Write("stdout", "started\n"),), ending)


def environment(rng: random.Random, cap: int) -> ProgramSpec:
    aspects = ASPECTS if rng.random() < 0.3 else tuple(rng.sample(ASPECTS, rng.randint(1, 3)))
    return ProgramSpec(_language(rng), tuple(Report(a) for a in aspects), Exit(0))


MIX: tuple[tuple[str, int, Family], ...] = (
    ("quick", 20, quick), ("failing", 10, failing), ("python-errors", 8, python_errors),
    ("bash-errors", 4, bash_errors), ("signals", 6, signals), ("volume", 12, volume), ("bytes", 5, byte_writes),
    ("blank", 4, blank), ("stdin", 4, stdin), ("files", 6, files), ("background", 4, background),
    ("deadline", 5, deadline), ("environment", 12, environment),
)
assert sum(share for _, share, _ in MIX) == 100


def draw(rng: random.Random, output_cap: int) -> tuple[str, ProgramSpec]:
    """One program from the mix: (its family, its spec)."""
    name, _, family = rng.choices(MIX, weights=[share for _, share, _ in MIX])[0]
    return name, family(rng, output_cap)


def sample(n: int, *, seed: int, output_cap: int) -> list[tuple[str, ProgramSpec]]:
    """``n`` independent draws from the mix, from the seeded stream ``parity-v1:<seed>``."""
    rng = random.Random(f"{MIX_NAME}:{seed}")
    return [draw(rng, output_cap) for _ in range(n)]
