"""What a submission can see: as root, its working directory, a private /tmp, a read-only system,
its own processes, and nothing else of the host; as a user, the weaker mode says what it is."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from system_under_test.executor.sandbox import Execution, Limits, Sandbox

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="the namespaces and the uid drop need root "
                                                         "(the executor's weaker mode is tested below)")
LIMITS = Limits(timeout_s=5.0, cpu_s=5, memory_bytes=256 * 1024 * 1024, max_procs=32, output_bytes=65536)
CHECKOUT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox(concurrency=2, uid_base=63010)
    yield box
    box.close()


def _py(sandbox: Sandbox, code: str) -> Execution:
    result = sandbox.run(code, "python", LIMITS)
    assert result.exit_code == 0, result.error
    return result


@ROOT_ONLY
def test_as_root_the_isolation_is_the_namespaces_and_says_so(sandbox: Sandbox) -> None:
    assert sandbox.isolation == "namespaces"
    assert "own mount, PID, network" in sandbox.describe()
    sandbox.check()


@ROOT_ONLY
def test_the_root_holds_only_the_system_the_working_directory_and_a_private_tmp(sandbox: Sandbox) -> None:
    result = _py(sandbox, "import os\nprint(sorted(os.listdir('/')))\nprint(os.listdir('/tmp') == "
                          "[os.path.basename(os.getcwd())])\nprint(sorted(os.listdir('/dev')))")
    top, tmp, dev = result.output.splitlines()
    assert set(eval(top)) <= {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "sbin", "tmp", "usr"}
    assert tmp == "True"
    assert eval(dev) == ["fd", "full", "null", "random", "shm", "stderr", "stdin", "stdout", "urandom", "zero"]


@ROOT_ONLY
def test_the_host_does_not_exist_for_the_submission(sandbox: Sandbox) -> None:
    paths = [str(CHECKOUT / "README.md"), str(CHECKOUT / "pyproject.toml"), str(CHECKOUT / "reports"), "/root",
             "/home", "/work", "/etc/shadow", "/var", "/opt", f"/proc/{os.getpid()}"]
    result = _py(sandbox, f"import os\nprint([p for p in {paths!r} if os.path.exists(p)])")
    assert result.output == "[]\n"


@ROOT_ONLY
def test_nothing_outside_the_working_directory_and_tmp_is_writable(sandbox: Sandbox) -> None:
    code = ("import errno\nfor p in ['/x', '/usr/x', '/etc/x', '/dev/x', '/proc/x', 'here', '/tmp/there', '/dev/shm/s']:\n"
            "    try:\n        open(p, 'w').write('1')\n        print(p, 'ok')\n"
            "    except OSError as exc:\n        print(p, errno.errorcode[exc.errno])")
    lines = dict(line.split() for line in _py(sandbox, code).output.splitlines())
    assert lines == {"/x": "EROFS", "/usr/x": "EROFS", "/etc/x": "EROFS", "/dev/x": "EROFS", "/proc/x": "ENOENT",
                     "here": "ok", "/tmp/there": "ok", "/dev/shm/s": "ok"}
    assert not Path("/tmp/there").exists()


@ROOT_ONLY
def test_the_submission_sees_its_own_processes_only(sandbox: Sandbox) -> None:
    code = ("import os\nchild = os.fork()\nif child == 0:\n    import time; time.sleep(5); os._exit(0)\n"
            "mine = {os.getpid(), child}\nseen = {int(p) for p in os.listdir('/proc') if p.isdigit()}\n"
            "print(seen == mine, os.getpid(), os.getppid(), os.path.exists('/proc/1'))\nos.kill(child, 9)")
    assert _py(sandbox, code).output == "True 2 1 False\n"  # the init (PID 1, root) is hidden too


@ROOT_ONLY
def test_a_concurrent_execution_is_invisible(sandbox: Sandbox) -> None:
    victim: list[Execution] = []
    thread = threading.Thread(target=lambda: victim.append(sandbox.run(
        "import os, time\nopen('secret', 'w').write('s')\nos.chmod('.', 0o755)\ntime.sleep(1.5)", "python", LIMITS)))
    thread.start()
    time.sleep(0.5)
    snoop = _py(sandbox, "import glob, os\nprint([p for p in glob.glob('/tmp/*/secret') + glob.glob('/tmp/crucible-*')"
                         " if p != os.getcwd()])")
    thread.join()
    assert victim[0].exit_code == 0
    assert snoop.output == "[]\n"


@ROOT_ONLY
def test_what_programs_need_still_works(sandbox: Sandbox) -> None:
    py = _py(sandbox, "import json, sqlite3, ssl, decimal, multiprocessing as mp, getpass, socket\n"
                      "with mp.Pool(2) as pool:\n    print(pool.map(abs, [-1, -2]))\n"
                      "print(getpass.getuser(), socket.gethostname(), len(open('/dev/urandom', 'rb').read(8)))")
    assert py.output == "[1, 2]\nsandbox sandbox 8\n"
    sh = sandbox.run("id -un; ls / | grep -c usr; echo hi | sed s/hi/ho/ | tr a-z A-Z; cat /dev/null; date -u +%Y > y;"
                     " wc -c < y; echo $HOME | grep -c crucible", "bash", LIMITS)
    assert (sh.output, sh.error, sh.exit_code) == ("sandbox\n1\nHO\n5\n1\n", "", 0)


@ROOT_ONLY
def test_no_network_not_even_loopback(sandbox: Sandbox) -> None:
    with socket.socket() as listener:  # a server the submission would reach without the namespace
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = sandbox.run("import socket\ns = socket.socket()\ns.settimeout(1)\n"
                             f"s.connect(('127.0.0.1', {port}))\nprint('connected')", "python", LIMITS)
    assert result.exit_code == 1 and "connected" not in result.output
    assert "Network is unreachable" in result.error


@ROOT_ONLY
def test_with_the_namespaces_off_the_host_stays_visible_as_before() -> None:
    box = Sandbox(concurrency=1, uid_base=63020, namespaces=False)
    try:
        assert box.isolation == "uid" and "SANDBOX_NAMESPACES=false" in box.describe()
        result = box.run(f"import os\nprint(os.path.exists('{CHECKOUT}/README.md'), os.path.exists('/proc/1'))\n"
                         f"print(open('/proc/{os.getpid()}/environ').read())", "python", LIMITS)
        # the checkout is visible to the slot's uid wherever its folders let others through (a clone in a
        # mktemp folder, mode 0700, does not); the host's processes always are
        reachable = all(os.stat(folder).st_mode & 0o001 for folder in (CHECKOUT, *CHECKOUT.parents))
        assert result.output == f"{reachable} True\n"
        assert "PermissionError" in result.error  # uid drop, no mount namespace
    finally:
        box.close()


def test_without_root_or_slot_uids_the_weaker_mode_is_used_and_named() -> None:
    box = Sandbox(concurrency=1, uid_base=None)
    try:
        assert box.isolation == "user" and "WEAKER" in box.describe()
        result = box.run("import os\nprint(os.getuid())", "python", LIMITS)
        assert result.output == f"{os.getuid()}\n"
    finally:
        box.close()
