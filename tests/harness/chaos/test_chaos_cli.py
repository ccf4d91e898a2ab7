"""``harness chaos``: arguments, resolving scenario names and files, and refusing broken files up front."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from harness.chaos.cli import add_parser, main, resolve, scenarios_dir

SCENARIOS = scenarios_dir()  # the checkout's: the tests run from it


def test_add_parser_gives_scenarios_seed_and_stack() -> None:
    parser = argparse.ArgumentParser(prog="harness")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["chaos", "legacy-worker-kill", "x.toml", "--seed", "4", "--stack", "containers"])
    assert (args.scenarios, args.seed, args.stack) == (["legacy-worker-kill", "x.toml"], 4, "containers")
    defaults = parser.parse_args(["chaos"])
    assert (defaults.scenarios, defaults.seed, defaults.stack) == ([], 0, "processes")
    with pytest.raises(SystemExit):
        parser.parse_args(["chaos", "--stack", "external"])


def test_scenarios_resolve_by_name_or_path_and_default_to_all() -> None:
    by_name = resolve(["legacy-worker-kill"])
    by_path = resolve([str(SCENARIOS / "legacy-worker-kill.toml")])
    assert by_name[0].name == by_path[0].name == "legacy-worker-kill"
    assert len(resolve([])) == len(list(SCENARIOS.glob("*.toml")))


def test_unknown_names_and_broken_files_exit_3_before_anything_starts(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-scenario"]) == 3
    assert "no such scenario file or name" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text('title = "x"\ndescription = "y"\n[workload]\nroutes = ["celery"]\nrate = 1\nduration_s = 1\n'
                   'program = "quik"\n')
    assert main([str(bad), "legacy-worker-kill"]) == 3
    err = capsys.readouterr().err
    assert f"{bad}: workload.program: 'quik' is not one of quick, sleep, mixed (did you mean 'quick'?)" in err
    assert f"{bad}: expect: missing (required)" in err
