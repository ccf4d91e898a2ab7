"""The harness command as a user runs it: named stacks with up --detach, status and down, and no secret stored."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import requests


def harness(*args: str, env: dict[str, str], timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def gateway_of(up: subprocess.CompletedProcess[str]) -> str:
    assert up.returncode == 0, up.stdout + up.stderr
    docs = next(line.split()[-1] for line in up.stdout.splitlines() if line.startswith("gateway docs"))
    return docs.removesuffix("/docs")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.stack  # `harness up --detach` starts two
def test_two_named_stacks_run_at_once_and_down_stops_each_leaving_nothing(tmp_path: Path) -> None:
    secret = "tok-" + os.urandom(8).hex()
    env = {**os.environ, "HARNESS_REPORTS": str(tmp_path / "reports")}
    small = ["--no-flower", "--legacy-workers", "1"]
    try:
        a = harness("up", "--detach", "--name", "a", "--admin-token", secret, *small, env=env)
        b = harness("up", "--detach", "--name", "b", *small, env=env)
        gateways = {"a": gateway_of(a), "b": gateway_of(b)}
        assert "healthy  celery-worker-1" in a.stdout and "harness down --name a" in a.stdout
        assert requests.get(gateways["a"] + "/health", timeout=5).status_code == 200
        # the secret is the gateway's token, and it is nowhere in what the harness stored
        owner = json.loads((tmp_path / "reports" / ".stacks" / "a.json").read_text())["pid"]
        assert secret not in Path(f"/proc/{owner}/cmdline").read_text(), "the token is on a command line"
        put = requests.put(gateways["a"] + "/api/admin/split", json={"celery_percentage": 60},
                           headers={"Authorization": f"Bearer {secret}"}, timeout=5)
        assert put.status_code == 200, put.text

        status = harness("status", env=env)
        assert status.returncode == 0, status.stdout + status.stderr
        assert "stack 'a'" in status.stdout and "stack 'b'" in status.stdout
        assert status.stdout.count("9/9 components healthy") == 2, status.stdout
        only_b = harness("status", "--name", "b", env=env)
        assert "stack 'b'" in only_b.stdout and "stack 'a'" not in only_b.stdout

        again = harness("up", "--detach", "--name", "a", env=env)
        assert again.returncode == 3 and "a stack named 'a' is already running" in again.stderr
        ambiguous = harness("down", env=env)
        assert ambiguous.returncode == 3 and "2 stacks are running (a, b)" in ambiguous.stderr

        down_a = harness("down", "--name", "a", env=env)
        assert down_a.returncode == 0 and "stopped the detached stack 'a'" in down_a.stdout
        with pytest.raises(requests.ConnectionError):
            requests.get(gateways["a"] + "/health", timeout=2)
        assert requests.get(gateways["b"] + "/health", timeout=5).status_code == 200  # b is untouched
        after = harness("status", env=env)
        assert "stack 'a'" not in after.stdout and "stack 'b'" in after.stdout
    finally:
        down = harness("down", "--all", env=env)  # a failed assertion must not leave a stack running
    assert down.returncode == 0 and "stopped the detached stack 'b'" in down.stdout
    assert harness("status", env=env).returncode == 1
    with pytest.raises(requests.ConnectionError):
        requests.get(gateways["b"] + "/health", timeout=2)

    reports = tmp_path / "reports"
    stored = [p for p in reports.rglob("*") if p.is_file()]
    assert any(p.name == "run.json" for p in stored) and any(p.suffix == ".log" for p in stored)
    leaking = [p for p in stored if secret.encode() in p.read_bytes()]
    assert not leaking, f"the admin token is stored in {leaking}"
    for run_json in (p for p in stored if p.name == "run.json"):
        assert json.loads(run_json.read_text())["config"]["admin_token"] == "<set; not stored>"
    for run in (p for p in reports.iterdir() if p.is_dir() and p.name != ".stacks"):
        assert mode(run) == mode(run / "logs") == mode(run / "ledger") == 0o700
    assert mode(reports / ".stacks") == 0o700
    assert all(mode(p) == 0o600 for p in (reports / ".stacks").iterdir())
