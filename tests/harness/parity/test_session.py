"""ParitySession and the search: what they send, what they re-send, how they classify, against a recording dispatcher.

The dispatcher here stands in for the stack (the suites in ``tests/parity`` run the real one, and
``test_dispatch`` the real dispatcher against a gateway that loses results): it answers each
submission from the program's oracle, with the Celery path corrupted or missing when told to, and
records every submission it was asked to make.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from harness.generate.programs import Exit, ProgramSpec, RawProgram, Report, Write, expect
from harness.history import History
from harness.parity.compare import ParityConfig
from harness.parity.dispatch import DUAL, Dispatched, Plan, Submission
from harness.parity.suite import POPULATION, ParitySession, sample, search, write_outputs

CAP = 65536
Result = dict[str, Any]


class RecordingDispatcher:
    def __init__(self, *, candidate: Callable[[Result], Result] = lambda r: r, missing: bool = False,
                 raw: Result | None = None) -> None:
        self.candidate = candidate
        self.missing = missing
        self.raw = raw or {}
        self.sent: list[tuple[str, Plan]] = []
        self.history = History()
        self.specs: dict[str, ProgramSpec] = {}

    def oracle_result(self, sub: Submission) -> Result:
        if sub.code in self.raw:
            return dict(self.raw[sub.code])
        spec = self.specs[sub.code]
        o = expect(spec, output_cap=CAP)
        return {"status": o.status, "output": o.output, "error": o.error_starts, "exit_code": o.exit_code,
                "timed_out": o.timed_out, "truncated": o.truncated}

    def run(self, submissions: Sequence[Submission], plan: Plan) -> list[Dispatched]:
        out = []
        for sub in submissions:
            self.sent.append((sub.code, plan))
            result = self.oracle_result(sub)
            candidate = ({"status": "queued", "output": None} if self.missing else self.candidate(dict(result)))
            results = {"legacy": result} if plan == ("legacy",) else {"legacy": result, "celery": candidate}
            out.append(Dispatched((f"e{len(self.sent)}",), results, not self.missing, 0.0))
        return out


def program(text: str) -> ProgramSpec:
    return ProgramSpec("python", (Write("stdout", text),), Exit(0))


def drop_newline(result: Result) -> Result:
    return {**result, "output": result["output"].removesuffix("\n")}


class Session(ParitySession):
    """Lets the recording dispatcher know each program's spec (it answers from the oracle)."""

    def submission(self, program: Any) -> Submission:  # type: ignore[override]
        if isinstance(program, ProgramSpec):
            self.dispatcher.specs[program.code] = program  # type: ignore[attr-defined]
        return ParitySession.submission(program)


def session(dispatcher: RecordingDispatcher) -> ParitySession:
    return Session(dispatcher, ParityConfig.load(), CAP, DUAL)  # type: ignore[arg-type]


def test_a_program_checked_before_is_not_sent_again_unless_asked() -> None:
    a, b, c = program("a"), program("b"), program("c")
    dispatcher = RecordingDispatcher()
    s = session(dispatcher)
    first = s.check([a, b])
    assert [x.comparison.cls for x in first] == ["matched", "matched"]
    assert len(dispatcher.sent) == 2
    again = s.check([b, a, c])
    assert [x.program for x in again] == [b, a, c]
    assert [code for code, _ in dispatcher.sent[2:]] == [c.code]  # only the new program
    s.check([a], resend=True)
    assert dispatcher.sent[-1] == (a.code, DUAL)
    assert len(s.checks) == 4  # every execution is an observation; cached answers are not


def test_a_failing_program_is_confirmed_once_then_answered_from_the_cache_until_resent() -> None:
    a, b = program("a\n"), program("b\n")
    dispatcher = RecordingDispatcher(candidate=drop_newline)
    s = session(dispatcher)
    first = s.check([a, b])
    assert all(x.failing for x in first)
    # Both sent, then legacy once more on the first failure only, to rule out noise.
    assert dispatcher.sent == [(a.code, DUAL), (b.code, DUAL), (a.code, ("legacy",))]
    assert first[0].noise_checked and not first[1].noise_checked
    assert first[0].comparison.differing == ("output",)
    assert first[0].headline.startswith("celery is wrong: the paths differ on output")

    shrinking = s.check([b])  # a shrink step that keeps a failing program costs nothing
    assert shrinking[0].failing and len(dispatcher.sent) == 3

    final = s.check([b], resend=True)  # the reported failure is a fresh execution
    assert final[0].failing and final[0].noise_checked
    assert dispatcher.sent[3:] == [(b.code, DUAL), (b.code, ("legacy",))]


def test_a_program_that_stops_failing_when_resent_moves_to_the_passed_cache() -> None:
    a = program("a\n")
    dispatcher = RecordingDispatcher(candidate=drop_newline)
    s = session(dispatcher)
    assert s.check([a])[0].failing
    dispatcher.candidate = lambda r: r
    assert not s.check([a], resend=True)[0].failing
    assert a in s.passed and a not in s.failed
    assert not s.check([a])[0].failing and len(dispatcher.sent) == 3


def test_a_missing_half_is_failing_at_once_named_and_never_rerun_for_noise() -> None:
    a = program("a\n")
    dispatcher = RecordingDispatcher(missing=True)
    check = session(dispatcher).check([a])[0]
    assert check.failing and check.comparison.cls == "missing" and check.comparison.missing == ("celery",)
    assert check.headline.startswith("celery result missing")
    assert dispatcher.sent == [(a.code, DUAL)]


def test_the_search_stops_at_a_missing_result_and_reports_it_not_as_flaky() -> None:
    dispatcher = RecordingDispatcher(missing=True)
    started = time.monotonic()
    outcome = search(session(dispatcher), profile="dev", seed=0, database=False)
    assert outcome.missing is not None and outcome.failure is None and not outcome.flaky
    assert outcome.missing.comparison.missing == ("celery",)
    assert len({code for code, _ in dispatcher.sent}) <= 6  # one batch, then nothing more is sent
    assert time.monotonic() - started < 30


def test_a_sample_sends_every_draw_duplicates_included_and_names_its_population() -> None:
    dispatcher = RecordingDispatcher()
    s = session(dispatcher)
    assert sample(s, programs=80, seed=0, profile="ci") == 80
    assert len(dispatcher.sent) == 80 and {c.population for c in s.checks} == {POPULATION} == {"mix:parity-v1"}
    assert s.frame()["population"].eq("mix:parity-v1").all()


def test_an_environment_report_is_compared_between_paths_not_against_an_oracle() -> None:
    spec = ProgramSpec("bash", (Report("umask"),), Exit(0))
    same = {"status": "completed", "output": "umask: 0022\n", "error": "", "exit_code": 0, "timed_out": False,
            "truncated": False}
    dispatcher = RecordingDispatcher(raw={spec.code: same})
    assert session(dispatcher).check([spec])[0].comparison.cls == "matched"
    dispatcher = RecordingDispatcher(raw={spec.code: same}, candidate=lambda r: {**r, "output": "umask: 0077\n"})
    check = session(dispatcher).check([spec])[0]
    assert check.failing and check.comparison.differing == ("output",) and check.comparison.wrong_paths() == ()
    assert check.headline.startswith("the paths differ on output (no oracle")
    assert ("environment", "umask") in check.edges


def test_a_raw_program_has_no_oracle_and_is_compared_between_the_paths() -> None:
    raw = RawProgram("bash", "(sleep 5 &); sleep 0.95; exit 3", 1.0)
    result = {"status": "failed", "output": "", "error": "", "exit_code": 3, "timed_out": False, "truncated": False}
    dispatcher = RecordingDispatcher(raw={raw.code: result})
    check = session(dispatcher).check([raw])[0]
    assert check.oracle is None and check.comparison.cls == "matched"
    assert dispatcher.sent == [(raw.code, DUAL)]


def test_outputs_hold_observations_the_history_and_the_coverage_table(tmp_path: Any) -> None:
    dispatcher = RecordingDispatcher()
    dispatcher.history.invoke("parity-0", "submit", value={"route": "both"})
    s = session(dispatcher)
    s.check([program("x \n"), program("\n")])
    summary = write_outputs(s, tmp_path, title="Parity (test)").read_text()
    assert (tmp_path / "observations.parquet").is_file() and (tmp_path / "parity_history.parquet").is_file()
    assert "## Coverage of the parity surface" in summary
    assert "| output | trailing-blank | 1 | 0 | 1 |" in summary and "| output | nul | 0 | 0 | **0** |" in summary
    assert "Edges no program reached:" in summary and "population `search`: 2 programs" in summary


def test_the_search_shrinks_the_failing_program_alone_and_reports_a_fresh_confirmed_execution() -> None:
    dispatcher = RecordingDispatcher(candidate=drop_newline)
    outcome = search(session(dispatcher), profile="ci", seed=0, database=False)
    assert outcome.failure is not None and not outcome.flaky and outcome.first_failure is not None
    assert outcome.failure.noise_checked and outcome.failure.comparison.differing == ("output",)
    assert len(outcome.failure.code.splitlines()) <= 2, outcome.failure.code
    assert dispatcher.sent[-1] == (outcome.failure.code, ("legacy",))  # the last thing sent: the noise re-run


def test_a_failure_that_does_not_reproduce_when_resent_is_flaky() -> None:
    class Once(RecordingDispatcher):
        def run(self, submissions: Sequence[Submission], plan: Plan) -> list[Dispatched]:
            out = super().run(submissions, plan)
            self.candidate = lambda r: r  # only the very first batch is corrupted
            return out

    outcome = search(session(Once(candidate=lambda r: {**r, "output": f"{r['output']}!"})), profile="dev", seed=1,
                     database=False)
    assert outcome.flaky and outcome.failure is None and outcome.first_failure is not None
