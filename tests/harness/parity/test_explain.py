"""The failure screen names the path that is wrong per the oracle (either one) or the one whose result is missing;
counterexample files keep a spec or a raw program and read back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.generate.edges import edges_of
from harness.generate.programs import Exit, ProgramSpec, RawProgram, Write, expect
from harness.parity.compare import Observation, ParityConfig, compare
from harness.parity.explain import explain, load_counterexample, save_counterexample
from harness.parity.session import Check

CONFIG = ParityConfig.load()
SPEC = ProgramSpec("python", (Write("stdout", "hi\n"),), Exit(3))
RIGHT = {"status": "failed", "output": "hi\n", "error": "", "exit_code": 3, "timed_out": False, "truncated": False}


def check(legacy: dict[str, object], celery: dict[str, object], program: object = SPEC) -> Check:
    oracle = expect(program, output_cap=65536)  # type: ignore[arg-type]
    cmp = compare(Observation.from_result("e1", "legacy", legacy), Observation.from_result("e1", "celery", celery),
                  CONFIG, oracle=oracle)
    return Check(program, ("both",), ("e1",), {"legacy": legacy, "celery": celery}, cmp, oracle,  # type: ignore[arg-type]
                 True, edges_of(program, 65536))  # type: ignore[arg-type]


def marks(screen: str, field: str) -> str:
    return next(line for line in screen.splitlines() if line.strip().startswith(field + " "))


def test_a_wrong_legacy_is_named_as_the_wrong_path_and_marked_on_its_side() -> None:
    screen = explain(check({**RIGHT, "output": "hi"}, RIGHT))
    assert screen.splitlines()[0] == ("PARITY FAILURE: legacy is wrong: the paths differ on output (python, 3 lines)")
    row = marks(screen, "output")
    assert "≠" in row and row.index("✗") < row.index("'hi\\n'")  # the cross is on legacy's side, before celery's value


def test_a_wrong_celery_is_named_and_marked_on_its_side() -> None:
    screen = explain(check(RIGHT, {**RIGHT, "exit_code": 4, "status": "failed"}))
    assert screen.splitlines()[0].startswith("PARITY FAILURE: celery is wrong: the paths differ on exit_code")
    row = marks(screen, "exit_code")
    assert row.count("✗") == 1 and row.index("✗") > row.index("4")


def test_a_missing_half_is_reported_as_missing_with_its_last_status() -> None:
    screen = explain(check(RIGHT, {"status": "running"}))
    assert screen.splitlines()[0].startswith("PARITY FAILURE: celery result missing: no terminal result")
    assert "celery: no terminal result within the evaluation's deadline (last status: 'running')" in screen
    assert "flaky" not in screen


def test_without_an_oracle_nobody_is_blamed() -> None:
    raw = RawProgram("bash", "date +%N", None)
    screen = explain(check({**RIGHT, "output": "1\n"}, {**RIGHT, "output": "2\n"}, raw))
    assert "the paths differ on output (no oracle: neither is known to be right)" in screen.splitlines()[0]
    assert "✗" not in marks(screen, "output")


def test_counterexamples_keep_a_spec_or_a_raw_program(tmp_path: Path) -> None:
    saved = save_counterexample(check(RIGHT, {**RIGHT, "output": "hi"}), tmp_path, seed=7)
    assert saved.name.startswith("output-") and load_counterexample(saved)[:2] == (SPEC, ("both",))
    raw = RawProgram("bash", "(sleep 5 &); sleep 0.95; exit 3", 1.0)
    path = tmp_path / "timeout.json"
    path.write_text(json.dumps({"plan": ["both"], "submission": raw.to_dict()}))
    assert load_counterexample(path)[:2] == (raw, ("both",))


def test_the_kept_programs_read_as_raw_programs() -> None:
    folder = Path(__file__).parents[3] / "fixtures" / "parity" / "programs"
    for path in sorted(folder.glob("*.json")):
        program, plan, _ = load_counterexample(path)
        assert isinstance(program, RawProgram) and plan == ("both",)


def test_the_older_stored_form_of_a_spec_still_reads() -> None:
    fixture = Path(__file__).parents[3] / "fixtures" / "parity" / "exit_code-bd1437e2e1.json"
    program, plan, _ = load_counterexample(fixture)
    assert isinstance(program, ProgramSpec) and plan == ("both",)


@pytest.mark.parametrize("doc, message", [
    ({"plan": ["both"]}, "'spec' or 'submission'"),
    ({"plan": ["both"], "submission": {"language": "cobol", "code": "x"}}, "language must be one of"),
    ({"plan": ["both"], "submission": {"language": "bash", "code": "x", "timeout_s": -1}}, "timeout_s must be"),
    ({"plan": ["celery"], "spec": SPEC.to_dict()}, "is not [\"both\"]"),
])
def test_a_broken_counterexample_file_names_the_file_and_the_problem(tmp_path: Path, doc: dict[str, object],
                                                                      message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(HarnessError) as info:
        load_counterexample(path)
    assert str(path) in str(info.value) and message in str(info.value)
