"""The harness command as a user runs it: up --detach, status, down, and the main job."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests


def harness(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.mark.stack  # `harness up --detach` starts one
def test_up_detach_then_status_then_down_leaves_nothing_running(tmp_path: Path) -> None:
    env = {**os.environ, "HARNESS_STATE": str(tmp_path / "stack.json"), "HARNESS_REPORTS": str(tmp_path)}
    up = harness("up", "--detach", "--no-flower", "--legacy-workers", "1", env=env)
    try:
        _check_detached_stack(up, env)
    finally:
        harness("down", env=env)  # a failed assertion must not leave the detached stack running


def _check_detached_stack(up: subprocess.CompletedProcess[str], env: dict[str, str]) -> None:
    assert up.returncode == 0, up.stdout + up.stderr
    assert "components healthy" in up.stdout and "gateway docs" in up.stdout and "harness down" in up.stdout
    assert "healthy  celery-worker-1" in up.stdout  # progress, one line per component
    gateway = next(line.split()[-1] for line in up.stdout.splitlines() if line.startswith("gateway docs"))
    assert requests.get(gateway, timeout=5).status_code == 200
    status = harness("status", env=env)
    assert status.returncode == 0 and "9/9 components healthy" in status.stdout, status.stdout
    again = harness("up", "--detach", env=env)
    assert again.returncode == 3 and "already running" in again.stderr
    down = harness("down", env=env)
    assert down.returncode == 0 and "stopped the detached stack" in down.stdout
    assert harness("status", env=env).returncode == 1
    try:
        requests.get(gateway, timeout=2)
        raise AssertionError("the gateway still answers after `harness down`")
    except requests.ConnectionError:
        pass


def test_a_bad_option_value_is_refused_with_the_rule(tmp_path: Path) -> None:
    env = {**os.environ, "HARNESS_STATE": str(tmp_path / "stack.json"), "HARNESS_REPORTS": str(tmp_path)}
    result = harness("up", "--celery-percentage", "150", env=env)
    assert result.returncode == 3 and "celery_percentage must be within 0..100, got 150" in result.stderr
