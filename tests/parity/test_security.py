"""Hostile submissions: both paths contain them the same way, and the stack stays healthy after.

Each program goes through dual-write, so legacy (executor-1/2) and Celery (executor-3) see the same
code. For each: both results are terminal, the two observations match after the declared
normalisers (same containment, same error), the containment itself holds (what must fail did
fail), and afterwards no sandbox process is left and the gateway still completes a probe on both
paths.
"""

from __future__ import annotations

import os
import subprocess
from urllib.parse import urlparse

import pytest
import requests

from harness.client import wait_terminal
from harness.parity.compare import Observation, ParityConfig, compare

pytestmark = pytest.mark.security

AS_ROOT = os.geteuid() == 0
REDIS_PORT = "{redis_port}"  # filled with the main Redis port of the running stack
# A bash fork bomb's output and exit race the process limit (how many "fork: retry" lines, whether
# the last wait sees a failure), so run to run it differs even on one path: its containment is
# asserted on both paths, its parity is not.
RACY = {"fork bomb (bash)"}

# name -> (language, code, timeout_s, check on each path's result)
HOSTILE = {
    "fork bomb (python)": ("python", "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n"
                           "        pass\n", 2.0, lambda r: r["status"] == "timeout"),
    "fork bomb (bash)": ("bash", ":(){ :|:& };:\nwait\n", 2.0,
                         lambda r: r["status"] in ("completed", "timeout", "failed") and "fork" in r["error"]),
    "memory bomb": ("python", "hog = []\nwhile True:\n    hog.append(bytearray(10**7))\n", 5.0,
                    lambda r: r["exit_code"] == 1 and "MemoryError" in r["error"]),
    "output flood": ("python", "while True:\n    print('x' * 1000)\n", 1.0,
                     lambda r: r["truncated"] and r["timed_out"] and len(r["output"]) <= 65536),
    "endless loop": ("python", "while True:\n    pass\n", 1.0, lambda r: r["timed_out"] and r["exit_code"] == 137),
    "reads the service's environment": (
        "python", "import os\nprint(open(f'/proc/{os.getppid()}/environ').read())\n", 5.0,
        lambda r: r["exit_code"] == 1 and "PermissionError" in r["error"] or not AS_ROOT),
    "reads its own environment": (
        "python", "import os\nprint(sorted(os.environ))\n", 5.0,
        lambda r: r["output"].strip() == "['HOME', 'LANG', 'LC_ALL', 'PATH', 'PYTHONDONTWRITEBYTECODE', "
                                         "'PYTHONIOENCODING', 'TMPDIR']"),
    "reads a root-only file": ("python", "print(open('/etc/shadow').read())\n", 5.0,
                               lambda r: r["exit_code"] == 1 and "PermissionError" in r["error"] or not AS_ROOT),
    "opens a network connection to the platform's Redis": (
        "python", "import socket\ns = socket.create_connection(('127.0.0.1', {redis_port}), timeout=2)\n"
                  "s.sendall(b'FLUSHALL\\r\\n')\nprint(s.recv(100))\n", 5.0,
        lambda r: r["exit_code"] == 1 and "Network is unreachable" in r["error"] or not AS_ROOT),
}


def _sandbox_processes(uids: range) -> list[str]:
    """Processes running as any of the stack's sandbox uids."""
    out = subprocess.run(["ps", "-eo", "uid=,pid=,comm="], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if int(line.split()[0]) in uids]


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_program_is_contained_the_same_way_on_both_paths(name: str, stack) -> None:  # type: ignore[no-untyped-def]
    language, code, timeout_s, contained = HOSTILE[name]
    gateway = stack.endpoints.gateway
    code = code.replace(REDIS_PORT, str(urlparse(stack.endpoints.main_redis).port))
    resp = requests.post(f"{gateway}/api/eval", json={"code": code, "language": language, "route": "both",
                                                       "timeout_s": timeout_s}, timeout=30)
    assert resp.status_code == 201, resp.text
    eval_id = resp.json()["eval_id"]
    record = wait_terminal(gateway, eval_id, timeout_s=timeout_s + 60)
    assert record["done"], record
    legacy, celery = record["results"]["legacy"], record["results"]["celery"]
    for path, result in (("legacy", legacy), ("celery", celery)):
        assert contained(result), f"{name} was not contained on {path}: {result}"
    if name in RACY:
        comparison = None
    else:
        comparison = compare(Observation.from_result(eval_id, "legacy", legacy),
                             Observation.from_result(eval_id, "celery", celery), ParityConfig.load())
    assert comparison is None or comparison.cls == "matched", \
        f"{name}: the paths differ on {comparison.differing}: {legacy} vs {celery}"

    # The stack is healthy afterwards: nothing of the program survives, and both paths still work.
    uids = getattr(stack, "sandbox_uids", None)
    if AS_ROOT and uids is not None:
        assert _sandbox_processes(uids) == []
    assert requests.get(f"{gateway}/health", timeout=10).status_code == 200
    probe = requests.post(f"{gateway}/api/eval", json={"code": "print('ok')", "language": "python", "route": "both"},
                          timeout=30).json()["eval_id"]
    after = wait_terminal(gateway, probe, timeout_s=60)
    assert {p: r["output"] for p, r in after["results"].items()} == {"legacy": "ok\n", "celery": "ok\n"}
