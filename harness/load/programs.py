"""The program mix load users submit: what a day on the platform looks like, in small programs.

Most programs come from ``harness.generate.programs`` specs rendered to Python or bash, so the
result each one must give is known (``expect``) and the load run can count results that disagree
with the oracle under load. A few are fixed templates the spec language cannot say (short sleeps);
their oracle is written out by hand. No Hypothesis strategy runs here: specs are built directly
from a seeded ``random.Random``, which is cheap enough for a Locust process.

The weights (percent of interactive submissions): quick Python 35, quick bash 15, stdout and stderr
with a non-zero exit (a user's program failing, not the platform) 10, uncaught exception 5, large
output (~40 KB) 10, output over the executor's cap (truncated) 3, short sleep (0.1-0.5 s) 17,
unicode 5. Batch users draw from the same mix.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from harness.generate.programs import Exit, Expected, Language, ProgramSpec, Raise, Write, expect

DEFAULT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Program:
    kind: str
    language: Language
    code: str
    expected: Expected | None  # None: no oracle (never the case in the default mix)
    timeout_s: float = DEFAULT_TIMEOUT_S


def _spec(kind: str, spec: ProgramSpec, cap: int) -> Program:
    return Program(kind, spec.language, spec.code, expect(spec, output_cap=cap))


def _sleep(rng: random.Random, cap: int) -> Program:
    seconds = round(rng.uniform(0.1, 0.5), 2)
    if rng.random() < 0.7:
        code = f"import time\ntime.sleep({seconds})\nprint('slept {seconds}')\n"
        language: Language = "python"
    else:
        code = f"sleep {seconds}\necho 'slept {seconds}'\n"
        language = "bash"
    output = f"slept {seconds}\n"
    return Program("sleep", language, code,
                   Expected("completed", output, 0, False, False, "", None, True))


def _quick_python(rng: random.Random, cap: int) -> Program:
    n = rng.randrange(10**6)
    return _spec("quick-python", ProgramSpec("python", (Write("stdout", f"result {n}\n"),), Exit(0)), cap)


def _quick_bash(rng: random.Random, cap: int) -> Program:
    n = rng.randrange(10**6)
    return _spec("quick-bash", ProgramSpec("bash", (Write("stdout", f"line {n}\n"), Write("stderr", "note\n")),
                                           Exit(0)), cap)


def _user_failure(rng: random.Random, cap: int) -> Program:
    language: Language = rng.choice(["python", "bash"])
    writes = (Write("stdout", "partial output\n"), Write("stderr", "error: bad input\n"))
    return _spec("exit-nonzero", ProgramSpec(language, writes, Exit(rng.choice([1, 2, 3]))), cap)


def _exception(rng: random.Random, cap: int) -> Program:
    return _spec("exception", ProgramSpec("python", (Write("stdout", "before\n"),),
                                          Raise(rng.choice(["ValueError", "KeyError", "RuntimeError"]), "boom")), cap)


def _large(rng: random.Random, cap: int) -> Program:
    line = "x" * 63 + "\n"
    repeat = max(1, min(640, (cap - 1) // len(line)))  # ~40 KB, always under the cap
    return _spec("large-output", ProgramSpec("python", (Write("stdout", line, repeat),), Exit(0)), cap)


def _over_cap(rng: random.Random, cap: int) -> Program:
    line = "y" * 99 + "\n"
    return _spec("over-cap", ProgramSpec("python", (Write("stdout", line, cap // len(line) + 10),), Exit(0)), cap)


def _unicode(rng: random.Random, cap: int) -> Program:
    return _spec("unicode", ProgramSpec(rng.choice(["python", "bash"]), (Write("stdout", "héllo wörld ✓ 🚀\n"),),
                                        Exit(0)), cap)


MIX = (
    (35, _quick_python), (15, _quick_bash), (10, _user_failure), (5, _exception),
    (10, _large), (3, _over_cap), (17, _sleep), (5, _unicode),
)


def draw_program(rng: random.Random, *, output_cap: int = 65536) -> Program:
    """One program from the mix, chosen with ``rng``."""
    (make,) = rng.choices([m for _, m in MIX], weights=[w for w, _ in MIX])
    return make(rng, output_cap)


def draw_priority(rng: random.Random, *, batch: bool) -> int:
    """Interactive work is mostly 5, sometimes urgent (8-9) or relaxed; batch work is 0-2."""
    if batch:
        return rng.choice([0, 1, 2])
    return rng.choices([3, 4, 5, 6, 7, 8, 9], weights=[5, 10, 50, 10, 5, 12, 8])[0]
