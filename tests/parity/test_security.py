"""Hostile submissions: both paths contain them the same way, and the stack stays healthy after.

Each program goes through dual-write, so legacy (executor-1/2) and Celery (executor-3) see the same
code. For each: both results are terminal, the two observations match after the declared
normalisers (same containment, same error), the containment itself holds (what must fail did
fail), and afterwards no sandbox process is left and the gateway still completes a probe on both
paths.

The attacks come in two kinds. The resource attacks (fork bombs, memory bomb, output flood, endless
loop, network) are contained in every mode. The isolation attacks (the harness's admin token, the
checkout, the run folder and its ledger, other evaluations, other processes, writes outside the
working directory, processes that outlive the evaluation) are contained by the root sandbox's mount
and PID namespaces; an executor that is not root runs the weaker mode, which does not claim them, so
there they are skipped with that reason rather than passed.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import requests

from harness.client import wait_terminal
from harness.parity.compare import Observation, ParityConfig, compare
from harness.run import PROJECT_ROOT

pytestmark = pytest.mark.security

AS_ROOT = os.geteuid() == 0
KEEPALIVE = "31.4159"  # the argument of the sleeps that try to outlive their evaluation
PROBE_TIMEOUT_S = 60.0
Result = Mapping[str, Any]


@dataclass(frozen=True)
class Attack:
    language: str
    code: str  # @NAME@ placeholders are filled from the running stack (see ``_fill``)
    timeout_s: float
    contained: Callable[[Result], bool]
    isolation: bool = False  # contained by the root sandbox's namespaces, not by the weaker mode
    # A bash fork bomb's output and exit race the process limit (how many "fork: retry" lines, whether
    # the last wait sees a failure), so run to run it differs even on one path: its containment is
    # asserted on both paths, its parity is not.
    racy: bool = False


def _failed_with(exception: str) -> Callable[[Result], bool]:
    return lambda r: r["exit_code"] == 1 and exception in r["error"] and r["output"] == ""


def _invisible(r: Result) -> bool:
    """Every /proc entry the program tried was absent, not merely unreadable."""
    lines = r["output"].splitlines()
    return r["exit_code"] == 0 and bool(lines) and all(line.endswith("FileNotFoundError") for line in lines)


def _writes_stayed_inside(r: Result) -> bool:
    outcomes = dict(line.rsplit(": ", 1) for line in r["output"].splitlines())
    outside = [target for target in outcomes if not target.startswith(("/tmp/", "../"))]
    return r["exit_code"] == 0 and len(outcomes) == 6 and all(outcomes[t] != "ok" for t in outside)


_TRY_PROC = """import os
for pid in [1, os.getppid(), *@EXECUTOR_PIDS@]:
    for name in ("cmdline", "environ"):
        try:
            open(f"/proc/{pid}/{name}", "rb").read()
            print(f"/proc/{pid}/{name}: readable")
        except OSError as exc:
            print(f"/proc/{pid}/{name}: {type(exc).__name__}")
"""

_WRITE_OUTSIDE = """import os
targets = ["/tmp/crucible-escape-@TAG@", "../escape-@TAG@", "@CHECKOUT@/escape-@TAG@", "/etc/escape-@TAG@",
           "/usr/escape-@TAG@", "/escape-@TAG@"]
for target in targets:
    try:
        with open(target, "w") as fh:
            fh.write("escaped")
        print(f"{target}: ok")
    except OSError as exc:
        print(f"{target}: {type(exc).__name__}")
"""

_KEEP_ALIVE = """nohup sleep @KEEPALIVE@ >/dev/null 2>&1 &
setsid sleep @KEEPALIVE@ >/dev/null 2>&1 &
( trap '' TERM HUP INT; sleep @KEEPALIVE@ ) >/dev/null 2>&1 &
python3 -c 'import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execvp("sleep", ["sleep", "@KEEPALIVE@"])' >/dev/null 2>&1
echo started
"""

ATTACKS: dict[str, Attack] = {
    # -- resources: contained in every mode ----------------------------------------------------------
    "fork bomb (python)": Attack("python", "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n"
                                 "        pass\n", 2.0, lambda r: r["status"] == "timeout"),
    # The main process outlives the bomb by a second, so the bomb meets the process limit (once the
    # main process ends, the rest is killed at once).
    "fork bomb (bash)": Attack("bash", ":(){ :|:& };:\nsleep 1\n", 2.0,
                               lambda r: r["status"] in ("completed", "timeout", "failed") and "fork" in r["error"],
                               racy=True),
    "memory bomb": Attack("python", "hog = []\nwhile True:\n    hog.append(bytearray(10**7))\n", 5.0,
                          lambda r: r["exit_code"] == 1 and "MemoryError" in r["error"]),
    "output flood": Attack("python", "while True:\n    print('x' * 1000)\n", 1.0,
                           lambda r: r["truncated"] and r["timed_out"] and len(r["output"]) <= 65536),
    "endless loop": Attack("python", "while True:\n    pass\n", 1.0, lambda r: r["timed_out"] and r["exit_code"] == 137),
    "reads its own environment": Attack(
        "python", "import os\nprint(sorted(os.environ))\n", 5.0,
        lambda r: r["output"].strip() == "['HOME', 'LANG', 'LC_ALL', 'PATH', 'PYTHONDONTWRITEBYTECODE', "
                                         "'PYTHONIOENCODING', 'TMPDIR']"),
    "opens a network connection to the platform's Redis": Attack(
        "python", "import socket\ns = socket.create_connection(('127.0.0.1', @REDIS_PORT@), timeout=2)\n"
                  "s.sendall(b'FLUSHALL\\r\\n')\nprint(s.recv(100))\n", 5.0,
        lambda r: r["exit_code"] == 1 and "Network is unreachable" in r["error"], isolation=True),
    # -- isolation: the root sandbox's mount and PID namespaces --------------------------------------
    "reads the service's environment": Attack(
        "python", "import os\nprint(open(f'/proc/{os.getppid()}/environ').read())\n", 5.0,
        _failed_with("FileNotFoundError"), isolation=True),
    "reads a root-only file": Attack("python", "print(open('/etc/shadow').read())\n", 5.0,
                                     _failed_with("FileNotFoundError"), isolation=True),
    "reads the admin token from run.json (the grep of the issue)": Attack(
        "bash", "grep -ho '\"admin_token\": *\"[^\"]*\"' @CHECKOUT@/reports/*/run.json @RUN_JSON@\n", 5.0,
        lambda r: r["exit_code"] == 2 and r["output"] == "" and "No such file or directory" in r["error"],
        isolation=True),
    "reads the admin token from the stack's environment": Attack(
        "python", "import glob\nfound = set()\nfor path in glob.glob('/proc/*/environ') + glob.glob('/proc/*/cmdline'):\n"
                  "    try:\n        data = open(path, 'rb').read()\n    except OSError:\n        continue\n"
                  "    found.update(e for e in data.split(b'\\0') if b'ADMIN_TOKEN' in e or b'@TOKEN@' in e)\n"
                  "print(sorted(found))\n", 5.0,
        lambda r: r["exit_code"] == 0 and r["output"] == "[]\n", isolation=True),
    "reads the checkout": Attack(
        "python", "for path in ['@CHECKOUT@/README.md', '@CHECKOUT@/pyproject.toml', '/app/pyproject.toml']:\n"
                  "    try:\n        print(path, len(open(path).read()))\n    except OSError as exc:\n"
                  "        print(path, type(exc).__name__)\n", 5.0,
        lambda r: r["exit_code"] == 0 and r["output"].count("FileNotFoundError") == 3, isolation=True),
    "reads the run folder's ledger": Attack(
        "python", "import os\nprint(os.listdir('@LEDGER@'))\nprint(open('@LEDGER@/executor-1.jsonl').read()[:200])\n",
        5.0, _failed_with("FileNotFoundError"), isolation=True),
    "lists processes": Attack(
        "python", "import os\nprint(sorted(int(p) for p in os.listdir('/proc') if p.isdigit() and int(p) != os.getpid()))\n",
        5.0, lambda r: r["exit_code"] == 0 and r["output"] == "[]\n", isolation=True),
    "reads other processes' command lines and environments": Attack("python", _TRY_PROC, 5.0, _invisible,
                                                                    isolation=True),
    "writes outside its working directory": Attack("python", _WRITE_OUTSIDE, 5.0, _writes_stayed_inside,
                                                   isolation=True),
    "keeps processes alive after the evaluation ends": Attack(
        "bash", _KEEP_ALIVE, 5.0, lambda r: r["status"] == "completed" and r["output"] == "started\n",
        isolation=True),
}


def _executor_pids(stack: Any) -> list[int]:
    pids = []
    for i in (1, 2, 3):
        pid = getattr(stack.component(f"executor-{i}"), "pid", None)
        if isinstance(pid, int):
            pids.append(pid)
    return pids


def _fill(code: str, stack: Any, tag: str) -> str:
    run = stack.run.path
    fills = {
        "@REDIS_PORT@": str(urlparse(stack.endpoints.main_redis).port), "@CHECKOUT@": str(PROJECT_ROOT),
        "@RUN_JSON@": str(run / "run.json"), "@LEDGER@": str(run / "ledger"), "@TOKEN@": stack.config.admin_token,
        "@EXECUTOR_PIDS@": repr(_executor_pids(stack)), "@KEEPALIVE@": KEEPALIVE, "@TAG@": tag,
    }
    for key, value in fills.items():
        code = code.replace(key, value)
    return code


def _submit(gateway: str, code: str, language: str, timeout_s: float) -> str:
    resp = requests.post(f"{gateway}/api/eval", json={"code": code, "language": language, "route": "both",
                                                       "timeout_s": timeout_s}, timeout=30)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["eval_id"])


def _both_results(gateway: str, eval_id: str, timeout_s: float) -> tuple[Result, Result]:
    record = wait_terminal(gateway, eval_id, timeout_s=timeout_s + PROBE_TIMEOUT_S)
    assert record["done"], record
    return record["results"]["legacy"], record["results"]["celery"]


def _assert_same_on_both_paths(name: str, eval_id: str, legacy: Result, celery: Result) -> None:
    comparison = compare(Observation.from_result(eval_id, "legacy", legacy),
                         Observation.from_result(eval_id, "celery", celery), ParityConfig.load())
    assert comparison.cls == "matched", f"{name}: the paths differ on {comparison.differing}: {legacy} vs {celery}"


def _sandbox_processes(uids: range) -> list[str]:
    """Processes running as any of the stack's sandbox uids."""
    out = subprocess.run(["ps", "-eo", "uid=,pid=,comm="], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if int(line.split()[0]) in uids]


def _processes_with(text: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if text in line]


def _assert_stack_healthy(stack: Any) -> None:
    """Nothing of the program survives, and both paths still work."""
    gateway = stack.endpoints.gateway
    uids = getattr(stack, "sandbox_uids", None)
    if AS_ROOT and uids is not None:
        assert _sandbox_processes(uids) == []
    assert _processes_with(f"sleep {KEEPALIVE}") == []
    assert requests.get(f"{gateway}/health", timeout=10).status_code == 200
    probe = _submit(gateway, "print('ok')", "python", 10.0)
    after = wait_terminal(gateway, probe, timeout_s=PROBE_TIMEOUT_S)
    assert {p: r["output"] for p, r in after["results"].items()} == {"legacy": "ok\n", "celery": "ok\n"}


def _escape_targets(tag: str) -> list[Path]:
    """Where the write-outside attack would have left a file on this host, had it escaped."""
    import tempfile

    return [Path(f"/tmp/crucible-escape-{tag}"), Path(tempfile.gettempdir()) / f"escape-{tag}",
            PROJECT_ROOT / f"escape-{tag}", Path(f"/etc/escape-{tag}"), Path(f"/usr/escape-{tag}"),
            Path(f"/escape-{tag}")]


@pytest.mark.parametrize("name", list(ATTACKS))
def test_hostile_program_is_contained_the_same_way_on_both_paths(name: str, stack) -> None:  # type: ignore[no-untyped-def]
    attack = ATTACKS[name]
    if attack.isolation and not AS_ROOT:
        pytest.skip("the executors are not root: their weaker sandbox (own user, host filesystem, processes and "
                    "network visible) does not claim this; run the tests as root (as CI does)")
    tag = uuid.uuid4().hex[:8]
    gateway = stack.endpoints.gateway
    eval_id = _submit(gateway, _fill(attack.code, stack, tag), attack.language, attack.timeout_s)
    try:
        legacy, celery = _both_results(gateway, eval_id, attack.timeout_s)
        for path, result in (("legacy", legacy), ("celery", celery)):
            assert attack.contained(result), f"{name} was not contained on {path}: {result}"
        if not attack.racy:
            _assert_same_on_both_paths(name, eval_id, legacy, celery)
        escaped = [str(p) for p in _escape_targets(tag) if p.exists()]
        assert escaped == [], f"{name}: files written outside the sandbox are on the host: {escaped}"
        _assert_stack_healthy(stack)
    finally:
        for path in _escape_targets(tag):
            path.unlink(missing_ok=True)


@pytest.mark.skipif(not AS_ROOT, reason="the weaker sandbox (executors not root) shares the host's temp directory")
def test_a_program_cannot_see_another_evaluations_working_directory(stack) -> None:  # type: ignore[no-untyped-def]
    """A careless victim opens its working directory to everyone; a concurrent program still sees nothing."""
    gateway = stack.endpoints.gateway
    victim = _submit(gateway, "import os, time\nopen('secret.txt', 'w').write('TOPSECRET')\n"
                              "os.chmod('.', 0o755)\nos.chmod('secret.txt', 0o644)\ntime.sleep(4)\n", "python", 10.0)
    deadline = time.monotonic() + 30
    while True:  # both paths' copies of the victim are running (and have had time to write)
        results = requests.get(f"{gateway}/api/eval/{victim}", timeout=10).json()["results"]
        if all(r["status"] == "running" for r in results.values()):
            break
        assert time.monotonic() < deadline, f"the victim did not start on both paths: {results}"
        time.sleep(0.05)
    time.sleep(0.5)
    snoop = ("import glob, os\nmine = os.getcwd()\n"
             "others = [p for p in glob.glob(os.path.join(os.path.dirname(mine), 'crucible-*')) if p != mine]\n"
             "print(len(others))\nprint([open(f).read() for p in others for f in glob.glob(p + '/secret.txt')])\n")
    attacker = _submit(gateway, snoop, "python", 5.0)
    legacy, celery = _both_results(gateway, attacker, 5.0)
    for path, result in (("legacy", legacy), ("celery", celery)):
        assert result["output"] == "0\n[]\n", f"another evaluation's directory was visible on {path}: {result}"
    _assert_same_on_both_paths("snoop", attacker, legacy, celery)
    victims = _both_results(gateway, victim, 10.0)
    assert [r["status"] for r in victims] == ["completed", "completed"], victims
    _assert_stack_healthy(stack)
