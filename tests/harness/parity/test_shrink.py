"""The shrinker: the smallest spec that still fails, by simplifications that keep the oracle exact."""

from __future__ import annotations

from harness.generate.oracle import streams
from harness.generate.programs import (
    Background,
    Exit,
    FileRoundTrip,
    Late,
    MemoryHit,
    ProgramSpec,
    Raise,
    ReadStdin,
    Report,
    Signal,
    Write,
    WriteBytes,
    expect,
)
from harness.parity.shrink import shrink, simpler

BIG = ProgramSpec("python", (Write("stderr", "noise\n"), Write("stdout", "keep\r\nthis"), ReadStdin("all"),
                             Report("umask"), Background("silent"), WriteBytes("stdout", b"\x00\xff")), Signal(9))


def test_it_keeps_only_what_makes_the_program_fail() -> None:
    def fails(spec: ProgramSpec) -> bool:
        return any(isinstance(s, Write) and "\r" in s.text for s in spec.steps)

    smallest, tried = shrink(BIG, fails, budget_s=10)
    assert smallest == ProgramSpec("bash", (Write("stdout", "\r"),), Exit(0))
    assert len(smallest.code.splitlines()) == 1 and tried < 200


def test_an_environment_difference_shrinks_to_its_one_report() -> None:
    spec = ProgramSpec("bash", tuple(Report(a) for a in ("variables", "umask", "cwd")), Late(0.6, 3))
    smallest, _ = shrink(spec, lambda s: Report("umask") in s.steps, budget_s=10)
    assert smallest == ProgramSpec("bash", (Report("umask"),), Exit(0))


def test_a_volume_keeps_its_size_when_the_size_is_what_fails() -> None:
    volume = ProgramSpec("python", (Write("stdout", "x", 99), Write("stdout", "é\n"), FileRoundTrip("ü.txt", "abc")),
                         Exit(3))
    smallest, _ = shrink(volume, lambda s: expect(s, output_cap=100).truncated, budget_s=10)
    assert expect(smallest, output_cap=100).truncated and len(smallest.steps) <= 2


def test_it_stops_when_its_time_is_spent() -> None:
    smallest, tried = shrink(BIG, lambda s: True, budget_s=0)
    assert (smallest, tried) == (BIG, 0)


def test_every_simplification_keeps_the_oracle_exact() -> None:
    """The shrinker only removes and simplifies, never leaves the oracle's domain (nothing raises)."""
    for start in (BIG, ProgramSpec("python", (Write("stdout", "a"), Write("stdout", "b")), Raise("KeyError", "k")),
                  ProgramSpec("bash", (FileRoundTrip("sub/nested.txt", "0123", 3),), Late(1.4, 3))):
        for candidate in simpler(start):
            assert expect(candidate, output_cap=100) is not None
            assert candidate.code


def test_an_error_message_that_pushed_stderr_over_the_cap_gives_way_to_a_longer_write() -> None:
    spec = ProgramSpec("python", (WriteBytes("stderr", b"\x80"), Write("stderr", "ab\n", 30)), MemoryHit())

    def over_the_cap(s: ProgramSpec) -> bool:  # a traceback adds some 50 bytes to stderr
        return len(streams(s)[1]) + (0 if isinstance(s.ending, Exit) else 50) > 100

    smallest, _ = shrink(spec, over_the_cap, budget_s=10, output_cap=100)
    assert smallest == ProgramSpec("bash", (Write("stderr", "ab\n", 34),), Exit(0))
