"""The oracle is right: generated programs, run in the real sandbox, give exactly the expected result.

Every edge family is run here, through the same sandbox the executors use (as root it drops to a
slot uid, as on the stack): volumes around the cap on both streams (a multi-byte character cut by
it included), CR and CRLF, trailing blanks, NUL and invalid UTF-8, exit codes from ``exit`` and
from every signal each language dies of, endings just before and just after the deadline,
background children, stdin, files in the working directory, and environment reports (whose output
is compared between paths, not predicted: here only their status and exit code are).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings

from harness.generate import catalogue as cat
from harness.generate.programs import (
    ASPECTS,
    DEADLINE_S,
    Background,
    CommandNotFound,
    Exit,
    ExitMessage,
    FileRoundTrip,
    InputEOF,
    Late,
    ListDir,
    MemoryHit,
    ProgramSpec,
    Raise,
    ReadStdin,
    Report,
    Signal,
    SyntaxErr,
    Timeout,
    Write,
    WriteBytes,
    expect,
    program_specs,
)
from system_under_test.executor.sandbox import Limits, Sandbox
from system_under_test.store import status_of

CAP = 1000
# Its own slot uid: the sandbox kills every process of its uid when an execution ends, so two test
# runs at once (other worktrees) must not share one.
SANDBOX = Sandbox(concurrency=1, uid_base=70000 + os.getpid() % 20000)


def run(spec: ProgramSpec, cap: int = CAP) -> dict[str, object]:
    limits = Limits(timeout_s=spec.timeout_s or 5.0, cpu_s=6, output_bytes=cap)
    result = SANDBOX.run(spec.code, spec.language, limits)
    return {**result.__dict__, "status": status_of(result.exit_code, result.timed_out)}


def check(spec: ProgramSpec, cap: int = CAP) -> dict[str, object]:
    result = run(spec, cap)
    oracle = expect(spec, output_cap=cap)
    assert oracle is not None
    assert oracle.differences(result) == [], (spec.code, result, oracle)
    return result


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(program_specs(output_cap=CAP, slow=False))
def test_generated_programs_give_the_result_their_oracle_predicts(spec: ProgramSpec) -> None:
    check(spec)


@pytest.mark.parametrize("spec", [
    ProgramSpec("python", (Write("stdout", "before\n"),), Timeout()),
    ProgramSpec("bash", (Write("stdout", "before\n"),), Timeout()),
], ids=["python", "bash"])
def test_a_timeout_keeps_what_was_written_before_it(spec: ProgramSpec) -> None:
    result = check(spec)
    assert result["output"] == "before\n" and result["exit_code"] == 137


@pytest.mark.parametrize("language", ["python", "bash"])
@pytest.mark.parametrize("seconds", cat.LATE_BEFORE + cat.LATE_AFTER)
def test_endings_just_before_and_just_after_the_deadline(language: str, seconds: float) -> None:
    spec = ProgramSpec(language, (Write("stderr", "e"),), Late(seconds, 3))  # type: ignore[arg-type]
    result = check(spec)
    assert result["timed_out"] is (seconds > DEADLINE_S)
    assert result["exit_code"] == (137 if seconds > DEADLINE_S else 3)


@pytest.mark.parametrize("language", ["python", "bash"])
def test_every_signal_each_language_dies_of_reports_128_plus_n(language: str) -> None:
    for signum in cat.SIGNALS[language] + cat.REALTIME:  # type: ignore[index]
        result = check(ProgramSpec(language, (Write("stdout", "x"),), Signal(signum)))  # type: ignore[arg-type]
        assert result["exit_code"] == 128 + signum


@pytest.mark.parametrize("language", ["python", "bash"])
def test_exit_codes_wrap_modulo_256(language: str) -> None:
    for code in cat.EXIT_CODES:
        assert check(ProgramSpec(language, (), Exit(code)))["exit_code"] == code % 256  # type: ignore[arg-type]


@pytest.mark.parametrize("language", ["python", "bash"])
@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_volumes_around_the_cap_and_a_character_cut_by_it(language: str, stream: str) -> None:
    for char in cat.MULTIBYTE:
        for inside in range(1, len(char.encode())):
            result = check(ProgramSpec(language, (Write(stream, "x", CAP - inside),  # type: ignore[arg-type]
                                                  Write(stream, char + "\n")), Exit(0)))  # type: ignore[arg-type]
            assert result["truncated"] is True and str(result["output" if stream == "stdout" else "error"]).endswith(
                "\ufffd")
    for unit in cat.VOLUME_UNITS:
        for target in (CAP - 1, CAP, CAP + 1, 2 * CAP + 3):
            repeat, pad = cat.volume_repeats(unit, target)
            steps = (Write(stream, unit, repeat), *((Write(stream, "x" * pad),) if pad else ()))  # type: ignore[arg-type]
            assert check(ProgramSpec(language, steps, Exit(1)))["truncated"] is (target > CAP)  # type: ignore[arg-type]


@pytest.mark.parametrize("language", ["python", "bash"])
def test_bytes_line_endings_and_blanks_reach_the_result_unchanged(language: str) -> None:
    for data in cat.BYTES:
        check(ProgramSpec(language, (WriteBytes("stdout", data), WriteBytes("stderr", data)), Exit(0)))  # type: ignore[arg-type]
    for text in cat.TEXTS:
        check(ProgramSpec(language, (Write("stdout", text), Write("stderr", text)), Exit(0)))  # type: ignore[arg-type]


@pytest.mark.parametrize("language", ["python", "bash"])
def test_stdin_files_and_the_working_directory(language: str) -> None:
    steps = (ReadStdin("all"), ReadStdin("line"), *(FileRoundTrip(n, "α\r\nβ \n") for n in cat.FILE_NAMES),
             FileRoundTrip("empty.txt", ""), FileRoundTrip("big.bin", "0123456789abcdef" * 4, cat.LARGE_FILE_BYTES // 64),
             ListDir())
    result = check(ProgramSpec(language, steps, Exit(0)))  # type: ignore[arg-type]
    assert "stdin: 0 bytes\n" in str(result["output"]) and "dir: " in str(result["output"])


@pytest.mark.parametrize("language", ["python", "bash"])
@pytest.mark.parametrize("kind", ["writes-late", "silent", "detached"])
def test_a_background_child_that_outlives_the_program_changes_nothing(language: str, kind: str) -> None:
    result = check(ProgramSpec(language, (Write("stdout", "main\n"), Background(kind)), Exit(3)))  # type: ignore[arg-type]
    assert result["output"] == "main\n"


@pytest.mark.parametrize("language", ["python", "bash"])
def test_every_environment_report_runs_cleanly(language: str) -> None:
    result = check(ProgramSpec(language, tuple(Report(a) for a in ASPECTS), Exit(0)), cap=1 << 20)  # type: ignore[arg-type]
    assert result["error"] == "" and result["truncated"] is False
    for aspect in ASPECTS:
        prefix = {"variables": "env ", "modules": "modules: " if language == "python" else "commands: ",
                  "capabilities": "Cap", "rlimits": "rlimit "}.get(aspect, aspect)
        assert prefix in str(result["output"]), (aspect, result["output"])


@pytest.mark.parametrize("spec, output, exit_code, error_end", [
    (ProgramSpec("python", (Write("stdout", "hi\n"),), Exit(3)), "hi\n", 3, ""),
    (ProgramSpec("python", (), ExitMessage("bad input")), "", 1, "bad input\n"),
    (ProgramSpec("python", (), Raise("KeyError", "k")), "", 1, "KeyError: 'k'\n"),
    (ProgramSpec("python", (), InputEOF()), "", 1, "EOFError: EOF when reading a line\n"),
    (ProgramSpec("python", (Write("stdout", "never\n"),), SyntaxErr()), "", 1, "SyntaxError: invalid syntax\n"),
    (ProgramSpec("python", (), MemoryHit()), "", 1, "MemoryError\n"),
    (ProgramSpec("python", (Write("stderr", "e"),), Signal(2)), "", 130, "KeyboardInterrupt\n"),
    (ProgramSpec("bash", (Write("stdout", "ran\n"),), SyntaxErr()), "ran\n", 2, "unexpected end of file\n"),
    (ProgramSpec("bash", (), CommandNotFound()), "", 127, "command not found\n"),
    (ProgramSpec("bash", (Write("stderr", "e"),), Signal(15)), "", 143, "e"),
    (ProgramSpec("python", (Write("stdout", "x", 1500),), Exit(0)), "x" * CAP, 0, ""),
    (ProgramSpec("python", (Write("stderr", "y", 1500),), Raise("ValueError", "cut")), "", 1, "y"),
])
def test_literal_specs_render_to_programs_that_do_what_they_say(
        spec: ProgramSpec, output: str, exit_code: int, error_end: str) -> None:
    result = check(spec)
    assert (result["output"], result["exit_code"]) == (output, exit_code)
    assert str(result["error"]).endswith(error_end)


def test_the_first_line_of_every_program_is_harmless() -> None:
    """A deployment preamble goes on line 1 (``system_under_test.defects``): no result may depend on it."""
    assert ProgramSpec("python", (), Raise("ValueError", "x")).code.splitlines()[0] == "import sys"
    assert ProgramSpec("bash", (), SyntaxErr()).code.splitlines()[-1] == "if true; then"
