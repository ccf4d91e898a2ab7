"""Every command refuses bad input with exit 3, a message naming the problem, and nothing started.

One test per command (``harness up/down/status/parity/chaos/load/gate/rollout/report/run/watch`` and
``fault-proxy``), each over its table of bad inputs: an abbreviated or unknown option, a missing one,
a number out of its range, a file or folder argument that is missing, a folder where a file is
expected (or the reverse), a file that is not UTF-8. Each case must exit 3 with the fragment in
stderr (and the usage line, for what the parser refuses), start no process (``subprocess.Popen`` is
forbidden while it runs) and create no run folder. The issue's four cases also run as a user runs
them, in a subprocess, with the process registry and the reports folder checked afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main as harness_main
from harness.faultproxy.__main__ import main as fault_proxy_main

Case = tuple[list[str], str, bool]  # argv, a fragment of stderr, whether the usage line is printed


class Files:
    """Bad inputs on disk: a folder, a missing path, a file that is not UTF-8, an ordinary file."""

    def __init__(self, root: Path) -> None:
        self.folder = root / "a-folder"
        self.folder.mkdir()
        self.missing = root / "missing.toml"
        self.latin1 = root / "latin1.toml"
        self.latin1.write_bytes('title = "caf\u00e9"\n'.encode("latin-1"))
        self.file = root / "a-file.txt"
        self.file.write_text("x\n")


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path)


@pytest.fixture
def refuse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
           ) -> Callable[[Callable[[list[str]], int], list[Case]], None]:
    """Run each case through ``main``; assert exit 3, the message, and that nothing started."""
    reports = tmp_path / "reports"
    monkeypatch.setenv("HARNESS_REPORTS", str(reports))
    started: list[Any] = []

    def forbidden(*args: Any, **kwargs: Any) -> None:
        started.append(args)
        raise AssertionError(f"a process was started: {args}")

    monkeypatch.setattr(subprocess, "Popen", forbidden)

    def check(main: Callable[[list[str]], int], cases: list[Case]) -> None:
        for argv, fragment, usage in cases:
            code = main(argv)
            err = capsys.readouterr().err
            assert code == 3, f"{argv}: exit {code}, expected 3; stderr:\n{err}"
            assert fragment in err, f"{argv}: {fragment!r} not in stderr:\n{err}"
            assert ("usage:" in err) == usage, f"{argv}: usage line {'missing' if usage else 'unexpected'}:\n{err}"
            assert not started, f"{argv}: started {started}"
            assert not reports.exists() or not any(reports.iterdir()), f"{argv}: created {list(reports.iterdir())}"
    return check


def test_watch_refuses_bad_values_and_says_what_to_watch(refuse: Any) -> None:
    refuse(harness_main, [
        (["watch", "--interval", "0"], "--interval: expected a number >= 0.2 and <= 60, got 0", True),
        (["watch", "--window", "0.5"], "--window: expected a number >= 1 and <= 3600, got 0.5", True),
        (["watch", "--duration", "0"], "--duration: expected a duration of at least 1 s", True),
        (["watch", "--duration", "soon"], "not a duration: 'soon'", True),
        (["watch", "--main-redis", "http://127.0.0.1:6379"], "expected a redis:// URL", True),
        (["watch", "--stack-url", "ftp://gateway"], "expected an http:// or https:// URL", True),
        (["watch", "--name", "Bad Name"], "expected a stack name", True),
        (["watch", "--intervall", "1"], "did you mean --interval?", True),
        (["watch", "--queues", ","], "--queues: expected comma-separated queue names", True),
        (["watch"], "no stack is running to watch: start one with `harness up --detach`", False),
        (["watch", "--name", "a"], "no stack named 'a' is running (running: none)", False),
        (["watch", "--stack-url", "http://127.0.0.1:9"], "--stack-url needs --main-redis and --celery-broker too",
         False),
        (["watch", "--stack-url", "http://127.0.0.1:9", "--main-redis", "redis://127.0.0.1:9/0", "--celery-broker",
          "redis://127.0.0.1:9/0"], "the main Redis at 127.0.0.1:9 does not answer", False),
    ])


def test_up_refuses_abbreviations_and_values_out_of_range(refuse: Any) -> None:
    refuse(harness_main, [
        (["up", "--celery-percentag", "75"], "did you mean --celery-percentage?", True),
        (["up", "--celery-percentage", "150"], "--celery-percentage: expected a number >= 0 and <= 100, got 150", True),
        (["up", "--celery-percentage", "half"], "expected a number >= 0 and <= 100, got 'half'", True),
        (["up", "--gateway-port", "70000"], "--gateway-port: expected an integer >= 0 and <= 65535", True),
        (["up", "--celery-workers", "0"], "--celery-workers: expected an integer >= 1, got 0", True),
        (["up", "--executor-memory-mb", "8"], "expected an integer >= 16, got 8", True),
        (["up", "--executor-timeout-s", "0"], "--executor-timeout-s: expected a number >= 0.01", True),
        (["up", "--visibility-timeout-s", "inf"], "--visibility-timeout-s", True),
        (["up", "--routing", "round-robin"], "expected one of random, sticky", True),
        (["up", "--celery-redis-maxmemory", "lots"], "expected a Redis memory size", True),
        (["up", "--seed", "-1"], "--seed: expected an integer >= 0", True),
        (["up", "--name", "My Stack"], "--name: expected a stack name", True),
        (["up", "--detach", "--admin-token", ""], "--admin-token: expected a non-empty value", True),
        (["up", "--candidate-defects", "merge_stderr,nope"], "unknown 'nope'", True),
    ])


def test_down_and_status_refuse_bad_names_and_unknown_options(refuse: Any) -> None:
    refuse(harness_main, [
        (["down", "--name", "a", "--all"], "not allowed with argument --name", True),
        (["down", "--name", "../etc"], "expected a stack name", True),
        (["down", "--al"], "did you mean --all?", True),
        (["status", "--name", "UPPER"], "expected a stack name", True),
        (["status", "--all"], "unrecognized arguments: --all", True),
    ])


def test_parity_checks_samples_and_files_before_anything_starts(refuse: Any, files: Files) -> None:
    refuse(harness_main, [
        (["parity", "--samples", "0"], "--samples: expected an integer >= 1, got 0", True),
        (["parity", "--samples", "-1"], "--samples: expected an integer >= 1, got -1", True),
        (["parity", "--samples", "many"], "expected an integer >= 1, got 'many'", True),
        (["parity", "--sample", "5"], "did you mean --samples?", True),
        (["parity", "--replay", str(files.folder)], f"{files.folder} is a folder; expected a file", True),
        (["parity", "--replay", str(files.missing)], f"{files.missing}: no such file", True),
        (["parity", "--replay", str(files.latin1)], f"{files.latin1} is not UTF-8 text (byte 0xe9", True),
        (["parity", "--replay", str(files.file)], f"{files.file}: not a parity counterexample", False),
        (["parity", "--stack-url", "ftp://example"], "expected an http:// or https:// URL", True),
        (["parity", "--mode", "both"], "invalid choice: 'both'", True),
        (["parity", "--profile", "fast"], "unknown parity profile 'fast'", False),
        (["parity", "--celery-concurrency", "0"], "--celery-concurrency: expected an integer >= 1", True),
    ])


def test_chaos_names_each_scenario_it_cannot_read(refuse: Any, files: Files) -> None:
    refuse(harness_main, [
        (["chaos", str(files.folder)], f"{files.folder} is a folder; expected a file", False),
        (["chaos", str(files.latin1)], f"{files.latin1} is not UTF-8 text", False),
        (["chaos", "no-such-scenario"], "no-such-scenario: no such scenario file or name", False),
        (["chaos", "--seed", "-3"], "--seed: expected an integer >= 0", True),
        (["chaos", "--runs", "0"], "--runs: expected an integer >= 1, got 0", True),
        (["chaos", "--reports", str(files.file)], f"{files.file} is a file; expected a folder", True),
        (["chaos", "--stack", "external"], "invalid choice: 'external'", True),
        (["chaos", "--sed", "1"], "did you mean --seed?", True),
    ])


def test_load_checks_every_number_and_folder(refuse: Any, files: Files) -> None:
    bounded = ["load", "--headless", "--users", "2", "--spawn-rate", "1", "--duration", "5"]
    refuse(harness_main, [
        (["load", "--headless", "--users", "0", "--spawn-rate", "1", "--duration", "5"],
         "--users: expected an integer >= 1 and <= 10000, got 0", True),
        ([*bounded, "--spawn-rate", "0"], "--spawn-rate: expected a number > 0", True),
        ([*bounded, "--duration", "0"], "--duration: expected a duration of at least 1 s", True),
        ([*bounded, "--duration", "5x"], "not a duration: '5x'", True),
        ([*bounded, "--web-port", "0"], "--web-port: expected an integer >= 1 and <= 65535", True),
        ([*bounded, "--processes", "0"], "expected -1 (one per core) or 1..64, got 0", True),
        ([*bounded, "--batch-size", "0"], "--batch-size: expected an integer >= 1 and <= 100", True),
        ([*bounded, "--think-time", "-1"], "--think-time: expected a number >= 0 and <= 600", True),
        ([*bounded, "--master-bind-port", "99999"], "--master-bind-port", True),
        ([*bounded, "--user", "3"], "did you mean --users?", True),
        (["load", "--collect", str(files.file)], f"{files.file} is a file; expected a folder", True),
        (["load", "--collect", str(files.missing)], f"{files.missing}: no such run folder", True),
        (["load", "--headless", "--users", "2"], "--headless needs --spawn-rate, --duration", False),
        (["load"], "one of the arguments --web --headless --worker --collect is required", True),
    ])


def test_gate_checks_the_step_the_max_time_and_every_file_before_gathering(refuse: Any, files: Files) -> None:
    step = ["gate", "--current", "50", "--target", "75"]
    refuse(harness_main, [
        (["gate", "--current", "50"], "the following arguments are required: --target", True),
        (["gate", "--current", "150", "--target", "175"], "--current: expected a number >= 0 and <= 100", True),
        ([*step, "--max-time", "-1"], "--max-time: expected a number > 0, got -1", True),
        ([*step, "--max-time", "0"], "--max-time: expected a number > 0, got 0", True),
        ([*step, "--max-time", "nan"], "--max-time: expected a number > 0, got nan", True),
        ([*step, "--evidence", str(files.missing)], f"{files.missing}: no such run folder", True),
        ([*step, "--evidence", str(files.file)], f"{files.file} is a file; expected a folder", True),
        ([*step, "--thresholds", str(files.folder)], f"{files.folder} is a folder; expected a file", True),
        ([*step, "--thresholds", str(files.latin1)], f"{files.latin1} is not UTF-8 text", True),
        ([*step, "--collect", "parity,bogus"], "unknown 'bogus'", True),
        ([*step, "--chaos", str(files.folder)], f"{files.folder} is a folder; expected a file", False),
        ([*step, "--seed", "-1"], "--seed: expected an integer >= 0", True),
        ([*step, "--stack-url", "gateway:8000"], "expected an http:// or https:// URL", True),
        ([*step, "--max-tim", "2"], "did you mean --max-time?", True),
        (["gate", "--current", "75", "--target", "50"], "75", False),
    ])


def test_rollout_checks_its_steps_and_options_before_gathering(refuse: Any, files: Files) -> None:
    refuse(harness_main, [
        (["rollout"], "harness rollout needs exactly one of --steps 10,25,50 (split steps) and --plan", False),
        (["rollout", "--steps", "50,25"], "at least two increasing percentages within 0..100", True),
        (["rollout", "--steps", "10,x"], "percentages like 10,25,50,75,100", True),
        (["rollout", "--steps", "10,25", "--max-time", "0"], "--max-time: expected a number > 0", True),
        (["rollout", "--steps", "10,25", "--chaos", str(files.missing)], "no such scenario file or name", False),
        (["rollout", "--steps", "10,25", "--see", "2"], "did you mean --seed?", True),
    ])


def test_rollout_refuses_every_bad_plan_before_anything_starts(refuse: Any, files: Files) -> None:
    refuse(harness_main, [
        (["rollout", "--plan", "10,bogus"], "--plan: unknown step 'bogus' (step 2); a step is one of P (0..100)", False),
        (["rollout", "--plan", "10"], "--plan needs at least two steps", False),
        (["rollout", "--plan", "50,25"], "--plan: step '25': the percentage must rise from the previous step's 50 %",
         False),
        (["rollout", "--plan", "50,50", "--dry-run"], "the percentage must rise", False),
        (["rollout", "--plan", "75,phase2@90,phase2@95"], "phase 2 is entered once", False),
        (["rollout", "--plan", "75,phase2@90,decommission,100"], "step 'decommission' must be the last step", False),
        (["rollout", "--plan", "75,decommission"], "comes before phase 2: the plan drains legacy only once Celery is "
                                                   "primary", False),
        (["rollout", "--plan", "decommission,100"], "the first step is where the platform is now; it cannot be "
                                                    "decommission", False),
        (["rollout", "--plan", "75,phase2@90:fast"], "the procedure is 'safe' or 'naive', got 'fast'", False),
        (["rollout", "--plan", "75,150"], "step '150': the percentage must be within 0..100", False),
        (["rollout", "--plan", "10,25", "--steps", "10,25"], "harness rollout needs exactly one of --steps", False),
        (["rollout", "--plan", "10,25", "--steps", "10,25", "--dry-run"], "needs exactly one of", False),
        (["rollout", "--dry-run"], "harness rollout needs exactly one of --steps", False),
        (["rollout", "--plan", "75,phase2@90", "--chaos", str(files.missing)], "no such scenario file or name", False),
        (["rollout", "--plan", "75,phase2@90", "--max-time", "0"], "--max-time: expected a number > 0", True),
        (["rollout", "--pla", "75,phase2@90"], "did you mean --plan?", True),
    ])


def test_report_names_a_run_folder_it_cannot_read(refuse: Any, files: Files) -> None:
    refuse(harness_main, [
        (["report", str(files.missing)], f"{files.missing}: no such run folder", True),
        (["report", str(files.file)], f"{files.file} is a file; expected a folder", True),
        (["report"], "the following arguments are required: RUN_DIR", True),
    ])


def test_run_checks_its_percentages_and_seed(refuse: Any) -> None:
    refuse(harness_main, [
        (["run", "--current", "150"], "--current: expected a number >= 0 and <= 100, got 150", True),
        (["run", "--target", "x"], "--target: expected a number >= 0 and <= 100, got 'x'", True),
        (["run", "--seed", "-2"], "--seed: expected an integer >= 0", True),
        (["run", "--curren", "50"], "did you mean --current?", True),
        ([], "the following arguments are required: COMMAND", True),
        (["nope"], "invalid choice: 'nope'", True),
    ])


def test_fault_proxy_refuses_bad_options_and_config_files(refuse: Any, files: Files) -> None:
    refuse(fault_proxy_main, [
        (["--port", "70000"], "expected a port within 0..65535", True),
        (["--port", "-1"], "expected a port within 0..65535", True),
        (["--por", "1"], "unrecognized arguments: --por", True),
        (["--seed", "x"], "--seed: expected an integer, got 'x'", True),
        (["--config", str(files.folder)], f"{files.folder}: cannot read it", False),
        (["--config", str(files.missing)], f"{files.missing}: cannot read it", False),
    ])


@pytest.mark.parametrize("argv, fragment", [
    (["gate", "--current", "50"], "the following arguments are required: --target"),
    (["up", "--celery-percentag", "75"], "unrecognized arguments: --celery-percentag"),
    (["parity", "--samples", "0"], "--samples: expected an integer >= 1, got 0"),
    (["chaos", "{folder}"], "is a folder; expected a file"),
], ids=["gate-without-target", "up-abbreviated", "parity-no-samples", "chaos-a-folder"])
def test_as_a_user_runs_it_nothing_is_started(argv: list[str], fragment: str, tmp_path: Path) -> None:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    env = {**os.environ, "HARNESS_REPORTS": str(tmp_path / "reports"), "HARNESS_REGISTRY": str(tmp_path / "registry")}
    result = subprocess.run([sys.executable, "-m", "harness", *(a.format(folder=folder) for a in argv)],
                            capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert fragment in result.stderr
    assert not (tmp_path / "reports").exists(), "a run folder was created"
    assert not (tmp_path / "registry").exists(), "a stack process was started (it registered itself)"
