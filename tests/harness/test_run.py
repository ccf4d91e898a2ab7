"""The workspace is found from the working directory, and a run folder keeps no secret and admits its owner only."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.run import RunFolder, redact_argv, reports_root, workspace
from harness.stack import process, state


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_workspace_is_the_nearest_folder_with_harness_toml_or_a_tool_harness_table(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARNESS_REPORTS", raising=False)
    deep = tmp_path / "project" / "tests" / "deep"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert workspace() == deep  # no marker anywhere: the working directory
    (tmp_path / "project" / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert workspace() == deep  # a pyproject.toml without [tool.harness] does not mark it
    (tmp_path / "project" / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.harness]\n')
    assert workspace() == tmp_path / "project"
    (tmp_path / "project" / "tests" / "harness.toml").write_text("")
    assert workspace() == tmp_path / "project" / "tests"  # the nearest one wins
    assert reports_root() == tmp_path / "project" / "tests" / "reports"
    monkeypatch.setenv("HARNESS_REPORTS", str(tmp_path / "elsewhere"))
    assert reports_root() == tmp_path / "elsewhere"
    assert state.state_dir() == tmp_path / "elsewhere" / ".stacks"


def test_a_broken_pyproject_on_the_way_up_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.harness\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(HarnessError, match=r"pyproject.toml: cannot be read as TOML"):
        workspace()


def test_the_checkout_is_its_own_workspace_from_any_folder_below_it(monkeypatch: pytest.MonkeyPatch) -> None:
    checkout = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(checkout / "tests" / "harness")
    assert workspace() == checkout


def test_run_json_keeps_only_that_a_secret_was_set_and_the_folder_is_owner_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["harness", "gate", "--admin-token", "s3cret-a", "--admin-token=s3cret-b",
                                      "--seed", "4"])
    run = RunFolder.create(tmp_path / "reports")
    written = run.write_run_json(seed=4, launcher="processes",
                                 config={"admin_token": "s3cret-c", "celery_percentage": 50.0})
    text = written.read_text()
    assert "s3cret" not in text
    doc = json.loads(text)
    assert doc["config"] == {"admin_token": "<set; not stored>", "celery_percentage": 50.0}
    assert doc["argv"] == ["harness", "gate", "--admin-token", "<set; not stored>",
                           "--admin-token=<set; not stored>", "--seed", "4"]
    assert mode(run.path) == mode(run.logs) == mode(run.ledger) == 0o700
    assert mode(written) == 0o600


def test_an_empty_token_is_stored_as_not_set_and_secret_options_can_be_left_out() -> None:
    from harness.run import redact_config, without_secret_options

    assert redact_config({"admin_token": ""}) == {"admin_token": None}
    assert redact_argv(["x", "--admin-token"]) == ["x", "--admin-token"]
    assert without_secret_options(["up", "--admin-token", "t", "--name", "a", "--admin-token=u", "--detach"]) == [
        "up", "--name", "a", "--detach"]


def test_the_process_registry_is_owner_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(process, "REGISTRY", tmp_path / "registry")
    process._register(1)
    files = list((tmp_path / "registry").iterdir())
    assert mode(tmp_path / "registry") == 0o700 and [mode(f) for f in files] == [0o600]


def test_a_state_file_is_owner_only_and_a_stale_one_is_dropped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_REPORTS", str(tmp_path))
    alive = state.write(state.StackState(name="a", pid=1, run_dir="r", launcher="processes",
                                         endpoints={"gateway": "http://127.0.0.1:1"}, components=[]))
    gone = state.write(state.StackState(name="b", pid=2 ** 22 + 1, run_dir="r", launcher="processes",
                                        endpoints={"gateway": "http://127.0.0.1:2"}, components=[]))
    assert mode(alive) == mode(gone) == 0o600 and mode(state.state_dir()) == 0o700
    assert list(state.running()) == ["a"]  # pid 1 runs; no pid is above pid_max (2**22)
    assert not gone.exists()
