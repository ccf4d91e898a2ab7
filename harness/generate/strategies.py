"""Hypothesis strategies for program specs: every edge of the parity surface, in Hypothesis's own style.

``program_specs`` draws a language, then an ending, then up to ``max_steps`` groups of steps; each
group comes from one family (text writes, volumes around the output cap, raw bytes, stdin, files,
background children, environment reports), so that on the ``ci`` profile every declared edge of
``harness.generate.edges`` is reached (``tests/harness/generate`` asserts it). Families are drawn
with ``one_of`` and values with ``sampled_from``, so a failure shrinks to the first family and value
that still fail: a short, readable program.

Two rules keep the oracle exact: a program that ends near its deadline (``Late``) or sleeps past it
does only light work first (no environment report, no volume, no background child), and background
children are started only by programs that end at once (their child must outlive them).
"""

from __future__ import annotations

from hypothesis import strategies as st

from harness.generate import catalogue as cat
from harness.generate.oracle import streams
from harness.generate.spec import (
    ASPECTS,
    Background,
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

_UNICODE = (st.characters(blacklist_categories=("Cs", "Cc"), max_codepoint=0x1F9FF)
            | st.sampled_from("\n\r\t \x00\x1b\x07\x7f"))
_STREAMS: st.SearchStrategy[Stream] = st.sampled_from(["stdout", "stderr"])


def texts(*, max_size: int = 40) -> st.SearchStrategy[str]:
    """Text a program writes: the catalogue's edge texts (line endings, blanks, unicode) or random text."""
    return st.one_of(st.sampled_from(cat.TEXTS), st.text(alphabet=_UNICODE, max_size=max_size))


@st.composite
def text_writes(draw: st.DrawFn) -> tuple[Step, ...]:
    """Text on stdout, on stderr, or both (one or two writes each)."""
    both = st.tuples(st.lists(texts(), max_size=2), st.lists(texts(), max_size=2)).filter(lambda t: t != ([], []))
    out, err = draw(both)
    return (*(Write("stdout", t) for t in out), *(Write("stderr", t) for t in err))


_VOLUME_TARGETS = ("none", "below", "at", "above", "far-above", "cuts-character", "at", "well-below", "well-above")


def _volume(stream: Stream, target: str, unit: str, char: str, inside: int, cap: int, written: int) -> tuple[Step, ...]:
    """Writes that bring ``stream`` from ``written`` bytes to the ``target`` relative to the cap."""
    if target == "cuts-character":  # the cap falls ``inside`` bytes into ``char``
        fill = cap - inside - written
        return (Write(stream, "x", fill), Write(stream, char + "\n")) if fill > 0 else ()
    size = {"below": cap - 1, "well-below": cap - 100, "at": cap, "above": cap + 1, "well-above": cap + 100,
            "far-above": 2 * cap + 3}.get(target, 0) - written
    if size <= 0:
        return ()
    repeat, pad = cat.volume_repeats(unit, size)
    if repeat * len(unit.encode()) > size:  # the unit is longer than what is left: pad only
        return (Write(stream, "x" * size),)
    return (Write(stream, unit, repeat), *((Write(stream, "x" * pad),) if pad else ()))


@st.composite
def volumes(draw: st.DrawFn, *, output_cap: int, written: tuple[int, int] = (0, 0)) -> tuple[Step, ...]:
    """Each stream's volume: none, just below, at, just above or far above the cap, or a multi-byte character
    cut by it (at least one stream has some); ``written`` is what the program wrote to each before."""
    out_target, err_target = draw(st.tuples(st.sampled_from(_VOLUME_TARGETS), st.sampled_from(_VOLUME_TARGETS))
                                  .filter(lambda t: t != ("none", "none")))
    steps: tuple[Step, ...] = ()
    for (stream, target), before in zip((("stdout", out_target), ("stderr", err_target)), written, strict=True):
        char = draw(st.sampled_from(cat.MULTIBYTE))
        inside = draw(st.integers(1, len(char.encode()) - 1))
        steps += _volume(stream, target, draw(st.sampled_from(cat.VOLUME_UNITS)), char, inside,  # type: ignore[arg-type]
                         output_cap, before)
    return steps


@st.composite
def byte_writes(draw: st.DrawFn) -> tuple[Step, ...]:
    return tuple(WriteBytes(stream, data) for stream, data in draw(
        st.lists(st.tuples(_STREAMS, st.sampled_from(cat.BYTES)), min_size=1, max_size=2)))


@st.composite
def stdin_reads(draw: st.DrawFn) -> tuple[Step, ...]:
    return (ReadStdin(draw(st.sampled_from(["all", "line"]))),)


@st.composite
def files(draw: st.DrawFn) -> tuple[Step, ...]:
    name = draw(st.sampled_from(cat.FILE_NAMES))
    size = draw(st.sampled_from(["small", "empty", "large"]))
    if size == "empty":
        step = FileRoundTrip(name, "")
    elif size == "large":
        step = FileRoundTrip(name, "0123456789abcdef" * 4, cat.LARGE_FILE_BYTES // 64)
    else:
        step = FileRoundTrip(name, draw(st.sampled_from(cat.TEXTS)))
    return (step, ListDir()) if draw(st.booleans()) else (step,)


@st.composite
def backgrounds(draw: st.DrawFn) -> tuple[Step, ...]:
    return (Background(draw(st.sampled_from(["writes-late", "silent", "detached"]))),)


@st.composite
def reports(draw: st.DrawFn) -> tuple[Step, ...]:
    """Environment reports: each aspect in or out (half of the time each; one at least). Shrinking drops
    the aspects one by one down to the one that differs."""
    chosen = [a for a in ASPECTS if draw(st.booleans())]
    return tuple(Report(a) for a in chosen or [draw(st.sampled_from(ASPECTS))])


@st.composite
def blanks(draw: st.DrawFn) -> tuple[Step, ...]:
    """Nothing at all versus an empty line, per stream (and nothing else in the program)."""
    return tuple(Write(stream, "\n") for stream in ("stdout", "stderr") if draw(st.booleans()))


# Endings, weighted by repetition (``sampled_from`` shrinks towards the first, a plain exit).
_PYTHON_ENDINGS = ("exit",) * 6 + ("signal",) * 3 + ("raise",) * 2 + ("exit-message",) * 2 + ("input-eof",) * 2 + (
    "memory", "memory", "syntax", "late", "late", "timeout")
_BASH_ENDINGS = ("exit",) * 6 + ("signal",) * 3 + ("syntax", "command-not-found", "command-not-found", "late", "late",
                                                   "timeout")


def endings(*, language: Language, slow: bool = True) -> st.SearchStrategy[Ending]:
    kinds = tuple(k for k in (_PYTHON_ENDINGS if language == "python" else _BASH_ENDINGS)
                  if slow or k not in ("late", "timeout"))
    standard = cat.SIGNALS[language]
    build: dict[str, st.SearchStrategy[Ending]] = {
        "exit": st.builds(Exit, st.just(0) | st.integers(0, 255) | st.sampled_from(cat.EXIT_CODES)),
        "signal": st.builds(Signal, st.just(2) | st.sampled_from(standard) | st.sampled_from(cat.REALTIME)),
        "syntax": st.just(SyntaxErr()),
        "late": st.builds(Late, st.sampled_from(cat.LATE_BEFORE + cat.LATE_AFTER), st.sampled_from([0, 3])),
        "timeout": st.just(Timeout()),
        "command-not-found": st.just(CommandNotFound()),
        "exit-message": st.builds(ExitMessage, st.text(alphabet=_UNICODE, min_size=1, max_size=20)),
        "raise": st.builds(Raise, st.sampled_from(cat.PY_EXCEPTIONS),
                           st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20)),
        "input-eof": st.just(InputEOF()),
        "memory": st.just(MemoryHit()),
    }
    return st.sampled_from(kinds).flatmap(lambda k: build[k])


_MAYBE = st.sampled_from([False, False, True])  # a family is in a program a third of the time; shrinks to out
_SHAPES = ("mixed",) * 6 + ("environment",) * 3 + ("blank",)


@st.composite
def program_specs(draw: st.DrawFn, *, output_cap: int = 65536, languages: tuple[Language, ...] = ("python", "bash"),
                  slow: bool = True) -> ProgramSpec:
    """Specs of programs with a known result; ``slow=False`` leaves out the deadline endings.

    Six programs in ten are *mixed*: each family is in independently (a third of the time; volumes
    half of the time, last of the writes, so that they bring a stream exactly where they aim;
    background children a quarter), in a fixed order; three in ten are *environment* reports; one
    in ten is *blank* (an empty line or nothing on each stream). A program ending near its deadline holds only
    quick families.
    """
    language = draw(st.sampled_from(languages))
    ending = draw(endings(language=language, slow=slow))
    if isinstance(ending, Raise) and ending.message != ending.message.rstrip():
        ending = Raise(ending.exception, ending.message.rstrip() or "x")
    shape = draw(st.sampled_from(_SHAPES))
    late = isinstance(ending, Late | Timeout)
    if shape == "blank":
        return ProgramSpec(language, draw(blanks()), ending)
    if shape == "environment" and not isinstance(ending, Late):
        return ProgramSpec(language, draw(reports()), ending)
    steps: tuple[Step, ...] = ()
    for family in [text_writes(), byte_writes(), stdin_reads()] + ([] if isinstance(ending, Late) else [files()]):
        if draw(_MAYBE):
            steps += draw(family)
    if not isinstance(ending, Late) and draw(st.booleans()):
        out, err = streams(ProgramSpec(language, steps, ending))
        steps += draw(volumes(output_cap=output_cap, written=(len(out), len(err))))
    if not late and draw(st.sampled_from([False, False, False, True])):
        steps += draw(backgrounds())
    return ProgramSpec(language, steps, ending)
