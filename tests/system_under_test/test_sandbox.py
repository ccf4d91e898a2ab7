"""The sandbox enforces every limit and leaks nothing of the service into the submission."""

from __future__ import annotations

import os

import pytest

from system_under_test.executor.sandbox import Limits, Sandbox, UnsupportedLanguage

LIMITS = Limits(timeout_s=2.0, cpu_s=3, memory_bytes=128 * 1024 * 1024, max_procs=32,
                file_bytes=1024 * 1024, output_bytes=4096)


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(concurrency=2, uid_base=63000)


def test_python_and_bash_run_and_report_output_and_exit_code(sandbox: Sandbox) -> None:
    py = sandbox.run("import sys\nprint('out')\nprint('err', file=sys.stderr)\nsys.exit(4)", "python", LIMITS)
    sh = sandbox.run("echo out; echo err >&2; exit 5", "bash", LIMITS)
    assert (py.output, py.error, py.exit_code, py.timed_out) == ("out\n", "err\n", 4, False)
    assert (sh.output, sh.error, sh.exit_code) == ("out\n", "err\n", 5)


def test_unknown_language_is_refused(sandbox: Sandbox) -> None:
    with pytest.raises(UnsupportedLanguage, match="ruby"):
        sandbox.run("puts 1", "ruby", LIMITS)


def test_wall_clock_timeout_kills_the_whole_process_group(sandbox: Sandbox) -> None:
    result = sandbox.run("sleep 30 & sleep 30; echo never", "bash", LIMITS)
    assert result.timed_out and result.exit_code == 137 and "never" not in result.output
    assert result.duration_ms < 2000 + 1500


def test_cpu_time_limit_stops_a_busy_loop(sandbox: Sandbox) -> None:
    result = sandbox.run("while True: pass", "python", Limits(timeout_s=10, cpu_s=1))
    assert not result.timed_out
    assert result.exit_code in (128 + 9, 128 + 24)  # SIGXCPU at the soft limit, SIGKILL at the hard


def test_memory_limit_makes_a_large_allocation_fail(sandbox: Sandbox) -> None:
    result = sandbox.run("x = bytearray(512 * 1024 * 1024)\nprint('allocated')", "python", LIMITS)
    assert result.exit_code == 1 and "MemoryError" in result.error and "allocated" not in result.output


def test_fork_bomb_is_contained_and_leaves_no_process_behind(sandbox: Sandbox) -> None:
    result = sandbox.run(":(){ :|:& };:", "bash", LIMITS)
    assert result.duration_ms < 5000
    if os.geteuid() == 0:
        leftover = [p for p in os.listdir("/proc") if p.isdigit() and _uid_of(p) in (63000, 63001)]
        assert leftover == []
    after = sandbox.run("echo still fine", "bash", LIMITS)
    assert after.output == "still fine\n"


def test_output_flood_is_capped_and_flagged(sandbox: Sandbox) -> None:
    result = sandbox.run("import sys\nsys.stdout.write('x' * 100000)\nsys.stderr.write('y' * 10)", "python", LIMITS)
    assert result.truncated and len(result.output) == 4096 and result.error == "y" * 10
    assert result.exit_code == 0


def test_output_exactly_at_the_cap_is_not_truncated(sandbox: Sandbox) -> None:
    result = sandbox.run("import sys; sys.stdout.write('x' * 4096)", "python", LIMITS)
    assert not result.truncated and len(result.output) == 4096


def test_file_size_limit_stops_a_large_write(sandbox: Sandbox) -> None:
    result = sandbox.run("open('big', 'wb').write(b'0' * (2 * 1024 * 1024))", "python", LIMITS)
    assert result.exit_code == 1 and "File too large" in result.error


def test_environment_is_scrubbed(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVICE_SECRET", "hunter2")
    result = sandbox.run("import os; print(sorted(os.environ))", "python", LIMITS)
    assert "SERVICE_SECRET" not in result.output and "hunter2" not in result.output
    assert eval(result.output) == ["HOME", "LANG", "LC_ALL", "PATH", "PYTHONDONTWRITEBYTECODE",
                                   "PYTHONIOENCODING", "TMPDIR"]


def test_no_stdin_and_a_fresh_working_directory_that_is_removed(sandbox: Sandbox) -> None:
    result = sandbox.run("import os, sys; print(sys.stdin.read() == ''); print(os.getcwd()); "
                         "print(os.listdir('.'))", "python", LIMITS)
    lines = result.output.splitlines()
    assert lines[0] == "True" and lines[2] == "['main.py']"
    assert not os.path.exists(lines[1])


@pytest.mark.skipif(os.geteuid() != 0, reason="the uid drop needs root; as a user there is no other uid")
def test_as_root_the_submission_cannot_read_the_service_environment(sandbox: Sandbox) -> None:
    result = sandbox.run(f"print(open('/proc/{os.getpid()}/environ').read())", "python", LIMITS)
    assert result.exit_code == 1 and "PermissionError" in result.error


@pytest.mark.skipif(os.geteuid() != 0, reason="the network namespace needs root")
def test_as_root_the_submission_has_no_network_not_even_loopback(sandbox: Sandbox) -> None:
    import socket

    with socket.socket() as listener:  # a server the submission would reach without the namespace
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        code = ("import socket\ns = socket.socket()\ns.settimeout(1)\n"
                f"s.connect(('127.0.0.1', {port}))\nprint('connected')")
        result = sandbox.run(code, "python", LIMITS)
    assert result.exit_code == 1 and "connected" not in result.output
    assert "Network is unreachable" in result.error


def test_a_signal_death_reports_128_plus_the_signal(sandbox: Sandbox) -> None:
    result = sandbox.run("import os, signal; os.kill(os.getpid(), signal.SIGTERM)", "python", LIMITS)
    assert result.exit_code == 128 + 15


def _uid_of(pid: str) -> int:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except FileNotFoundError:
        return -1
