"""The conformance suite against another server: ``TOXIPROXY_URL`` pointing to a separate process.

No real ``toxiproxy-server`` exists on this machine, so "another server" is our fault proxy
started as a subprocess (``python -m harness.faultproxy --port 0``), the way a user would
point the suite at a real Toxiproxy or at a new build of ours. The suite runs in a child
pytest with the extras deselected, exactly as the README tells users to run it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import requests

from .conftest import HERE, LOCKUP_SKIP
from .test_cli import ROOT, running

pytestmark = pytest.mark.slow
ONLY_TOXIPROXY = "faultproxy_api and not faultproxy_extra"


def child_pytest(marks: str, env: dict[str, str], junit: Path | None = None, *extra: str) -> str:
    command = [sys.executable, "-m", "pytest", str(HERE), "-q", "-p", "no:cacheprovider", "-m", marks, *extra]
    if junit is not None:
        command += ["--junitxml", str(junit)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return result.stdout


def test_the_suite_passes_against_a_fault_proxy_in_another_process_and_leaves_nothing(tmp_path: Path) -> None:
    clean_env = {key: value for key, value in os.environ.items() if key != "TOXIPROXY_URL"}
    listed = child_pytest(ONLY_TOXIPROXY, clean_env, None, "--collect-only")
    expected = sum(1 for line in listed.splitlines() if "::" in line)
    assert expected >= 100, listed[-2000:]
    with running() as (_proc, url):
        env = {**clean_env, "TOXIPROXY_URL": url}
        junit = tmp_path / "junit.xml"
        child_pytest(ONLY_TOXIPROXY, env, junit)
        suite = ET.parse(junit).getroot().find("testsuite")
        assert suite is not None
        counts = {key: int(suite.get(key, "0")) for key in ("tests", "failures", "errors", "skipped")}
        assert counts == {"tests": expected, "failures": 0, "errors": 0, "skipped": 0}
        lockup = child_pytest("toxiproxy_lockup", env, None, "-rs")
        assert "1 skipped" in lockup and LOCKUP_SKIP[:60] in lockup.replace("\n", "")
        assert requests.get(url + "/proxies", timeout=5).json() == {}  # every test cleaned up after itself
