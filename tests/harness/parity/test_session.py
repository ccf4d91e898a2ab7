"""ParitySession: what it sends, what it re-sends, and how it classifies, against a recording dispatcher.

The dispatcher here stands in for the stack (the suites in ``tests/parity`` run the real one): it
answers each submission from the program's oracle, with the Celery path dropping a trailing newline
when told to, and records every submission it was asked to make.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.generate.programs import Exit, ProgramSpec, Write, expect
from harness.parity.compare import ParityConfig
from harness.parity.dispatch import DUAL, Dispatched, Plan, Submission
from harness.parity.suite import ParitySession

CAP = 65536


class RecordingDispatcher:
    def __init__(self, specs: Sequence[ProgramSpec], *, candidate_drops_newline: bool) -> None:
        self.by_code = {s.code: s for s in specs}
        self.drops = candidate_drops_newline
        self.sent: list[tuple[str, Plan]] = []

    def run(self, submissions: Sequence[Submission], plan: Plan) -> list[Dispatched]:
        out = []
        for sub in submissions:
            self.sent.append((sub.code, plan))
            oracle = expect(self.by_code[sub.code], output_cap=CAP)
            result: dict[str, Any] = {"status": oracle.status, "output": oracle.output, "error": oracle.error_starts,
                                      "exit_code": oracle.exit_code, "timed_out": oracle.timed_out,
                                      "truncated": oracle.truncated}
            candidate = {**result, "output": result["output"].removesuffix("\n")} if self.drops else result
            results = {"legacy": result} if plan == ("legacy",) else {"legacy": result, "celery": candidate}
            out.append(Dispatched((f"e{len(self.sent)}",), results, True, 0.0))
        return out


def program(text: str) -> ProgramSpec:
    return ProgramSpec("python", (Write("stdout", text),), Exit(0))


def session(dispatcher: RecordingDispatcher) -> ParitySession:
    return ParitySession(dispatcher, ParityConfig.load(), CAP, DUAL)  # type: ignore[arg-type]


def test_a_program_checked_before_is_not_sent_again_unless_asked() -> None:
    a, b, c = program("a"), program("b"), program("c")
    dispatcher = RecordingDispatcher([a, b, c], candidate_drops_newline=False)
    s = session(dispatcher)
    first = s.check([a, b])
    assert [x.comparison.cls for x in first] == ["matched", "matched"]
    assert len(dispatcher.sent) == 2
    again = s.check([b, a, c])
    assert [x.spec for x in again] == [b, a, c]
    assert [code for code, _ in dispatcher.sent[2:]] == [c.code]  # only the new program
    s.check([a], resend=True)
    assert dispatcher.sent[-1] == (a.code, DUAL)
    assert len(s.checks) == 4  # every execution is an observation; cached answers are not


def test_a_failing_program_is_confirmed_once_then_answered_from_the_cache_until_resent() -> None:
    a, b = program("a\n"), program("b\n")
    dispatcher = RecordingDispatcher([a, b], candidate_drops_newline=True)
    s = session(dispatcher)
    first = s.check([a, b])
    assert all(x.failing for x in first)
    # Both sent, then legacy once more on the first failure only, to rule out noise.
    assert dispatcher.sent == [(a.code, DUAL), (b.code, DUAL), (a.code, ("legacy",))]
    assert first[0].noise_checked and not first[1].noise_checked
    assert first[0].comparison.differing == ("output",)

    shrinking = s.check([b])  # a shrink step that keeps a failing program costs nothing
    assert shrinking[0].failing and len(dispatcher.sent) == 3

    final = s.check([b], resend=True)  # the reported failure is a fresh execution
    assert final[0].failing and final[0].noise_checked
    assert dispatcher.sent[3:] == [(b.code, DUAL), (b.code, ("legacy",))]


def test_a_program_that_stops_failing_when_resent_moves_to_the_passed_cache() -> None:
    a = program("a\n")
    dispatcher = RecordingDispatcher([a], candidate_drops_newline=True)
    s = session(dispatcher)
    assert s.check([a])[0].failing
    dispatcher.drops = False
    assert not s.check([a], resend=True)[0].failing
    assert a in s.passed and a not in s.failed
    assert not s.check([a])[0].failing and len(dispatcher.sent) == 3
