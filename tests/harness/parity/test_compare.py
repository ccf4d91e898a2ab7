"""Comparison of observations: classes, normalisers with counted hits, and config validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.generate.programs import Exit, ProgramSpec, Write, expect
from harness.parity.compare import IgnoreRule, Observation, ParityConfig, ParityError, compare

CONFIG = ParityConfig.load()
BASE = {"status": "failed", "output": "hi\n", "error": "", "exit_code": 3, "timed_out": False, "truncated": False}


def obs(path: str, **changes: object) -> Observation:
    return Observation("e1", path, {**BASE, **changes})  # type: ignore[arg-type]


def test_identical_results_match() -> None:
    result = compare(obs("legacy"), obs("celery"), CONFIG)
    assert (result.cls, result.differing) == ("matched", ())


def test_temp_paths_in_tracebacks_are_normalised_and_every_hit_is_counted() -> None:
    tb = 'Traceback (most recent call last):\n  File "/tmp/crucible-{}/main.py", line 1\nValueError: x\n'
    result = compare(obs("legacy", error=tb.format("ab12")), obs("celery", error=tb.format("zz99")), CONFIG)
    assert result.cls == "matched"
    assert result.hits == {"temp-path": 2, "executor-id": 0, "executor-url": 0, "pid": 0, "slot-uid": 0}
    assert "/tmp/crucible-<tmp>/main.py" in result.control["error"]


def test_a_different_exit_code_is_a_mismatch_naming_the_field() -> None:
    result = compare(obs("legacy"), obs("celery", exit_code=-9), CONFIG)
    assert (result.cls, result.differing) == ("mismatched", ("exit_code",))


def test_a_dropped_trailing_newline_is_a_mismatch() -> None:
    result = compare(obs("legacy"), obs("celery", output="hi"), CONFIG)
    assert (result.cls, result.differing) == ("mismatched", ("output",))


def test_a_control_that_disagrees_with_itself_makes_the_evaluation_noise() -> None:
    result = compare(obs("legacy"), obs("celery", output="other"), CONFIG, control_again=obs("legacy", output="x"))
    assert result.cls == "noise"


def test_a_candidate_that_disagrees_with_the_oracle_is_wrong() -> None:
    oracle = expect(ProgramSpec("python", (Write("stdout", "hi\n"),), Exit(3)), output_cap=65536)
    assert compare(obs("legacy"), obs("celery"), CONFIG, oracle=oracle).cls == "matched"
    both_wrong = compare(obs("legacy", exit_code=4), obs("celery", exit_code=4), CONFIG, oracle=oracle)
    assert both_wrong.cls == "wrong" and both_wrong.control_wrong == ("exit_code",)


def test_an_ignore_rule_turns_a_mismatch_into_ignored_not_matched() -> None:
    config = ParityConfig(CONFIG.normalisers, (IgnoreRule("stderr-wording", "error", "reviewed"),))
    result = compare(obs("legacy", error="a"), obs("celery", error="b"), config)
    assert (result.cls, result.differing) == ("ignored", ("error",))
    assert compare(obs("legacy"), obs("celery", exit_code=9), config).cls == "mismatched"


@pytest.mark.parametrize("text, message", [
    ('[[normaliser]]\nname = "x"\n', "normaliser[0] is missing ['fields', 'pattern', 'replacement', 'reason']"),
    ('[[normaliser]]\nname="x"\nfields=["exit_code"]\npattern="a"\nreplacement=""\nreason="r"\n',
     "normaliser[0].fields may name only 'output' and 'error', got ['exit_code']"),
    ('[[normaliser]]\nname="x"\nfields=["output"]\npattern="("\nreplacement=""\nreason="r"\n',
     "normaliser[0].pattern is not a regular expression"),
    ("[[normaliser]\n", "cannot read the parity configuration"),
])
def test_a_broken_configuration_names_the_file_and_the_place(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "normalisers.toml"
    path.write_text(text)
    with pytest.raises(ParityError) as info:
        ParityConfig.load(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_a_path_without_a_terminal_result_is_missing_and_named() -> None:
    result = compare(obs("legacy"), obs("celery", status="queued", output=None), CONFIG)
    assert (result.cls, result.missing, result.differing) == ("missing", ("celery",), ())
    nothing = compare(Observation.from_result("e1", "legacy", {}), obs("celery"), CONFIG)
    assert (nothing.cls, nothing.missing) == ("missing", ("legacy",))


def test_the_oracle_names_the_wrong_path_even_when_it_is_the_control() -> None:
    oracle = expect(ProgramSpec("python", (Write("stdout", "hi\n"),), Exit(3)), output_cap=65536)
    legacy_wrong = compare(obs("legacy", output="hi"), obs("celery"), CONFIG, oracle=oracle)
    assert legacy_wrong.cls == "mismatched" and legacy_wrong.wrong_paths() == ("legacy",)
    celery_wrong = compare(obs("legacy"), obs("celery", output="hi"), CONFIG, oracle=oracle)
    assert celery_wrong.cls == "wrong" and celery_wrong.wrong_paths() == ("celery",)
    no_oracle = compare(obs("legacy", output="a"), obs("celery", output="b"), CONFIG)
    assert no_oracle.cls == "mismatched" and no_oracle.wrong_paths() == ()


def test_slot_uids_are_normalised_but_root_is_not() -> None:
    a = compare(obs("legacy", output="ids: uid=1000064 gid=1000064 groups=1000064\n"),
                obs("celery", output="ids: uid=1000131 gid=1000131 groups=1000131\n"), CONFIG)
    assert a.cls == "matched" and a.hits["slot-uid"] == 6
    root = compare(obs("legacy", output="ids: uid=61065 gid=61065\n"), obs("celery", output="ids: uid=0 gid=0\n"),
                   CONFIG)
    assert root.differing == ("output",)
