"""The oracle is right: generated programs, run in the real sandbox, give exactly the expected result."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from harness.generate.programs import (
    Exit,
    ExitMessage,
    MemoryHit,
    ProgramSpec,
    Raise,
    Signal,
    SyntaxErr,
    Timeout,
    Write,
    expect,
    program_specs,
)
from system_under_test.executor.sandbox import Limits, Sandbox
from system_under_test.store import status_of

CAP = 1000
LIMITS = Limits(timeout_s=0.5, cpu_s=2, output_bytes=CAP)
SANDBOX = Sandbox(concurrency=1, uid_base=63100)


def run(spec: ProgramSpec) -> dict[str, object]:
    result = SANDBOX.run(spec.code, spec.language, LIMITS)
    return {**result.__dict__, "status": status_of(result.exit_code, result.timed_out)}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program_specs(output_cap=CAP, slow=False))
def test_generated_programs_give_the_result_their_oracle_predicts(spec: ProgramSpec) -> None:
    result = run(spec)
    assert expect(spec, output_cap=CAP).differences(result) == [], (spec.code, result)


@pytest.mark.parametrize("spec", [
    ProgramSpec("python", (Write("stdout", "before\n"),), Timeout()),
    ProgramSpec("bash", (Write("stdout", "before\n"),), Timeout()),
], ids=["python", "bash"])
def test_a_timeout_keeps_what_was_written_before_it(spec: ProgramSpec) -> None:
    result = run(spec)
    assert expect(spec, output_cap=CAP).differences(result) == [], result
    assert result["output"] == "before\n" and result["exit_code"] == 137


@pytest.mark.parametrize("spec, output, exit_code, error_end", [
    (ProgramSpec("python", (Write("stdout", "hi\n"),), Exit(3)), "hi\n", 3, ""),
    (ProgramSpec("python", (), ExitMessage("bad input")), "", 1, "bad input\n"),
    (ProgramSpec("python", (), Raise("KeyError", "k")), "", 1, "KeyError: 'k'\n"),
    (ProgramSpec("python", (Write("stdout", "never\n"),), SyntaxErr()), "", 1, "SyntaxError: invalid syntax\n"),
    (ProgramSpec("python", (), MemoryHit()), "", 1, "MemoryError\n"),
    (ProgramSpec("bash", (Write("stdout", "ran\n"),), SyntaxErr()), "ran\n", 2, "`fi'\n"),
    (ProgramSpec("bash", (Write("stderr", "e"),), Signal(15)), "", 143, "e"),
    (ProgramSpec("python", (Write("stdout", "x", 1500),), Exit(0)), "x" * CAP, 0, ""),
])
def test_literal_specs_render_to_programs_that_do_what_they_say(
        spec: ProgramSpec, output: str, exit_code: int, error_end: str) -> None:
    result = run(spec)
    assert (result["output"], result["exit_code"]) == (output, exit_code)
    assert str(result["error"]).endswith(error_end)
    assert expect(spec, output_cap=CAP).differences(result) == []
