"""The candidate defects: each changes what it claims to, and the code-level ones change nothing else.

A code defect (a deployment difference of executor-3, put on the program's first line) must leave
every program that does not look at what it changes exactly as it was: same output, error and exit
code (the generator's programs never report their first line). Checked in the real sandbox.
"""

from __future__ import annotations

import os
import re

import pytest
from hypothesis import HealthCheck, given, settings

from harness.generate.programs import (
    Background,
    Exit,
    FileRoundTrip,
    InputEOF,
    ProgramSpec,
    ReadStdin,
    Report,
    Write,
    program_specs,
)
from system_under_test import defects
from system_under_test.executor.sandbox import Limits, Sandbox

SANDBOX = Sandbox(concurrency=1, uid_base=90000 + os.getpid() % 20000)
LIMITS = Limits(timeout_s=3.0, cpu_s=4, output_bytes=65536)
CODE_DEFECTS = sorted(n for n, d in defects.DEFECTS.items() if d.code)
# What each code defect is seen by: programs with any of these steps are left out of the "changes
# nothing else" property, and the first one must show it.
SEEN_BY = {
    "stdin_closed": (ReadStdin("all"),),
    "lower_file_limit": (FileRoundTrip("big.bin", "0123456789abcdef" * 4, 16448),),
    "executor3_umask": (Report("umask"),),
    "executor3_timezone": (Report("timezone"),),
    "executor3_extra_variable": (Report("variables"),),
    "wait_for_children": (Write("stdout", "main\n"), Background("writes-late")),
}


def run(code: str, language: str) -> tuple[object, ...]:
    r = SANDBOX.run(code, language, LIMITS)
    return r.output, _error(r.error), r.exit_code, r.timed_out


def _error(text: str) -> str:
    return re.sub(r"/tmp/crucible-[A-Za-z0-9_]+", "<tmp>", text)


def test_every_code_defect_says_what_sees_it() -> None:
    assert set(SEEN_BY) == set(CODE_DEFECTS)


@pytest.mark.parametrize("name", CODE_DEFECTS)
@pytest.mark.parametrize("language", ["python", "bash"])
def test_a_code_defect_is_seen_by_the_program_that_looks(name: str, language: str) -> None:
    spec = ProgramSpec(language, SEEN_BY[name], Exit(0))  # type: ignore[arg-type]
    changed = defects.apply_code([name], spec.code, language)
    assert run(changed, language) != run(spec.code, language)


@pytest.mark.slow
@pytest.mark.parametrize("name", CODE_DEFECTS)
def test_a_code_defect_changes_nothing_else(name: str) -> None:
    kinds = {type(s) for s in SEEN_BY[name]} | {Report}
    reads_stdin = (InputEOF,) if name == "stdin_closed" else ()

    @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(program_specs(output_cap=65536, slow=False).filter(
        lambda s: not any(type(step) in kinds for step in s.steps) and not isinstance(s.ending, reads_stdin)))
    def quiet(spec: ProgramSpec) -> None:
        changed = defects.apply_code([name], spec.code, spec.language)
        assert changed.count("\n") >= spec.code.count("\n")
        assert run(changed, spec.language) == run(spec.code, spec.language), changed

    quiet()


def test_result_and_timeout_defects_change_what_they_name() -> None:
    body = {"output": "a \r\n\x00" + "x" * 70000, "error": "e\t\n", "exit_code": 143, "timed_out": False,
            "truncated": True}
    assert defects.apply(["strip_nul"], body)["output"].startswith("a \r\nx")
    assert defects.apply(["universal_newlines"], body)["output"].startswith("a \n\x00")
    assert defects.apply(["strip_trailing_blanks"], body)["error"] == "e\n"
    assert defects.apply(["signal_exit_code"], body)["exit_code"] == -15
    assert len(defects.apply(["stderr_cap"], {**body, "error": "y" * 5000})["error"]) == 4000
    assert defects.apply(["blank_output_dropped"], {**body, "output": "\n"})["output"] == ""
    cut = "x" * 65535 + "\ufffd"
    assert defects.apply(["cap_at_character"], {**body, "output": cut})["output"] == "x" * 65535
    assert defects.apply_timeout(["timeout_slack"], 1.0) == 2.0 and defects.apply_timeout(["timeout_slack"], None) is None


def test_an_unknown_defect_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="known: "):
        defects.parse(["no_such_defect"])
