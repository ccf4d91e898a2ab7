"""The sandbox enforces every limit, decides how an execution ended in one consistent way, and
reports what the submission used. (What the submission can see: ``test_sandbox_isolation.py``.)"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator

import pytest

from system_under_test.executor.sandbox import Limits, Sandbox, UnsupportedLanguage

LIMITS = Limits(timeout_s=2.0, cpu_s=3, memory_bytes=128 * 1024 * 1024, max_procs=32,
                file_bytes=1024 * 1024, output_bytes=4096)
UIDS = (63000, 63001)
AS_ROOT = os.geteuid() == 0


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox(concurrency=2, uid_base=UIDS[0])
    yield box
    box.close()


def _leftovers(marker: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "uid=,args="], capture_output=True, text=True, check=True).stdout
    # the whole command line, not a part of it: a host's own `sleep 540` is no leftover of `sleep 5`
    return [line for line in out.splitlines()
            if line.split(None, 1)[1:] == [marker] or (AS_ROOT and int(line.split()[0]) in UIDS)]


def test_python_and_bash_run_and_report_output_and_exit_code(sandbox: Sandbox) -> None:
    py = sandbox.run("import sys\nprint('out')\nprint('err', file=sys.stderr)\nsys.exit(4)", "python", LIMITS)
    sh = sandbox.run("echo out; echo err >&2; exit 5", "bash", LIMITS)
    assert (py.output, py.error, py.exit_code, py.timed_out) == ("out\n", "err\n", 4, False)
    assert (sh.output, sh.error, sh.exit_code) == ("out\n", "err\n", 5)


def test_unknown_language_is_refused(sandbox: Sandbox) -> None:
    with pytest.raises(UnsupportedLanguage, match="ruby"):
        sandbox.run("puts 1", "ruby", LIMITS)


def test_wall_clock_timeout_kills_the_whole_process_group(sandbox: Sandbox) -> None:
    result = sandbox.run("sleep 29.87 & sleep 29.87; echo never", "bash", LIMITS)
    assert result.timed_out and result.exit_code == 137 and "never" not in result.output
    assert result.duration_ms < 2000 + 1500
    assert _leftovers("sleep 29.87") == []  # a marker no other process on the machine has


def test_cpu_time_limit_stops_a_busy_loop(sandbox: Sandbox) -> None:
    result = sandbox.run("while True: pass", "python", Limits(timeout_s=10, cpu_s=1))
    assert not result.timed_out
    assert result.exit_code in (128 + 9, 128 + 24)  # SIGXCPU at the soft limit, SIGKILL at the hard


def test_memory_limit_makes_a_large_allocation_fail(sandbox: Sandbox) -> None:
    result = sandbox.run("x = bytearray(512 * 1024 * 1024)\nprint('allocated')", "python", LIMITS)
    assert result.exit_code == 1 and "MemoryError" in result.error and "allocated" not in result.output


def test_fork_bomb_is_contained_and_leaves_no_process_behind(sandbox: Sandbox) -> None:
    result = sandbox.run(":(){ :|:& };:\nsleep 1", "bash", LIMITS)  # the bomb has a second to grow
    assert "fork: retry" in result.error or "fork: Resource temporarily unavailable" in result.error
    assert result.duration_ms < 5000
    assert _leftovers("no marker: uids only") == []
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


def test_a_signal_death_reports_128_plus_the_signal(sandbox: Sandbox) -> None:
    result = sandbox.run("import os, signal; os.kill(os.getpid(), signal.SIGTERM)", "python", LIMITS)
    assert (result.exit_code, result.timed_out) == (128 + 15, False)


def test_signals_the_executor_ignores_still_end_a_submission() -> None:
    """An executor started by nohup ignores SIGHUP, one started as a background job of a script ignores
    SIGINT and SIGQUIT; ignored dispositions survive exec, so a submission's `kill -HUP $$` did nothing and
    both paths reported exit 0 (found by the gate: the oracle said 129). Every signal is default again."""
    ignored = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM)
    before = {sig: signal.signal(sig, signal.SIG_IGN) for sig in ignored}
    box = Sandbox(concurrency=1, uid_base=UIDS[0])
    try:  # the fork server starts with the first run, and inherits the ignored signals
        for sig in ignored:
            result = box.run(f"import os; os.kill(os.getpid(), {int(sig)})", "python", LIMITS)
            assert (result.exit_code, result.timed_out) == (128 + sig, False), sig.name
        result = box.run("kill -HUP $$; echo survived", "bash", LIMITS)
        assert (result.exit_code, result.output) == (129, "")
    finally:
        box.close()
        for sig, handler in before.items():
            signal.signal(sig, handler)


# -- how an execution ends: the main process's own result, or the deadline's --------------------------


def test_a_main_process_that_exits_before_its_deadline_keeps_its_code_though_a_child_lives_on(
        sandbox: Sandbox) -> None:
    """The issue's first program: legacy said timeout/3, Celery sometimes timeout/137."""
    results = [sandbox.run("(sleep 5.37 &); sleep 0.95; exit 3", "bash", Limits(timeout_s=1.0, cpu_s=2))
               for _ in range(3)]
    assert [(r.exit_code, r.timed_out) for r in results] == [(3, False)] * 3
    assert all(r.duration_ms < 1000 + 300 for r in results)  # the background sleep is not waited for
    assert _leftovers("sleep 5.37") == []


def test_a_limit_below_the_minimum_counts_as_the_minimum_so_a_trivial_program_is_never_a_race(
        sandbox: Sandbox) -> None:
    """The issue's second program: 12 of 60 reported a timeout with exit code 3; 58 of 60 timed out
    without the minimum and 2 did not (measured): consistent, but a race the two paths would split."""
    results = {(r.exit_code, r.timed_out) for r in
               (sandbox.run("exit 3", "bash", Limits(timeout_s=0.001, cpu_s=2)) for _ in range(20))}
    assert results == {(3, False)}


def test_a_program_that_ends_just_before_its_deadline_is_not_a_timeout(sandbox: Sandbox) -> None:
    result = sandbox.run("sleep 0.4; exit 3", "bash", Limits(timeout_s=0.6, cpu_s=2))
    assert (result.exit_code, result.timed_out) == (3, False)


def test_a_program_that_would_end_just_after_its_deadline_is_killed_at_it(sandbox: Sandbox) -> None:
    result = sandbox.run("sleep 0.8; exit 3", "bash", Limits(timeout_s=0.6, cpu_s=2))
    assert (result.exit_code, result.timed_out) == (137, True)
    assert 600 <= result.duration_ms < 800


def test_background_children_are_killed_when_the_main_process_ends_and_change_nothing(sandbox: Sandbox) -> None:
    result = sandbox.run("(sleep 0.3; echo late) &\nsleep 31.71 &\necho early\nexit 4", "bash", LIMITS)
    assert (result.output, result.exit_code, result.timed_out) == ("early\n", 4, False)
    assert result.duration_ms < 300
    assert _leftovers("sleep 31.71") == []


def test_a_background_child_holding_the_output_open_does_not_delay_a_timeout(sandbox: Sandbox) -> None:
    result = sandbox.run("(trap '' TERM; sleep 31.72) &\nwhile :; do :; done", "bash", Limits(timeout_s=0.5, cpu_s=2))
    assert (result.exit_code, result.timed_out) == (137, True)
    assert result.duration_ms < 500 + 300
    assert _leftovers("sleep 31.72") == []


def test_a_main_process_killed_by_a_signal_reports_the_signal_not_a_timeout(sandbox: Sandbox) -> None:
    result = sandbox.run("sleep 31.73 &\nkill -KILL $$", "bash", LIMITS)
    assert (result.exit_code, result.timed_out) == (137, False)


# -- what the submission used ----------------------------------------------------------------------------

FIFTY_MB = "x = b'x' * (50 * 1024 * 1024)\n"
BURN_200_MS = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.2:\n    pass\n"


def test_peak_memory_is_the_submissions_own(sandbox: Sandbox) -> None:
    small = sandbox.run("print(1)", "python", LIMITS)
    big = sandbox.run(FIFTY_MB, "python", LIMITS)
    # Not the executor's (hundreds of MB when forked from it), not the fork server's (a few MB):
    assert 2 * 1024 <= small.peak_rss_kb < 30 * 1024
    assert 50 * 1024 <= big.peak_rss_kb < 50 * 1024 + 30 * 1024
    assert big.peak_rss_kb - small.peak_rss_kb >= 45 * 1024


def test_peak_memory_covers_the_processes_the_program_started(sandbox: Sandbox) -> None:
    result = sandbox.run(f"python3 -c \"{FIFTY_MB.strip()}\"\necho done", "bash", LIMITS)
    assert result.output == "done\n"
    assert 50 * 1024 <= result.peak_rss_kb < 50 * 1024 + 30 * 1024


def test_cpu_time_is_the_submissions_and_covers_its_children(sandbox: Sandbox) -> None:
    direct = sandbox.run(BURN_200_MS, "python", LIMITS)
    child = sandbox.run("python3 -c '" + BURN_200_MS.replace("'", '"') + "' &\nwait\n", "bash", LIMITS)
    idle = sandbox.run("sleep 0.3", "bash", LIMITS)
    assert 200 <= direct.cpu_ms < 200 + 250  # the burn plus an interpreter's start-up
    assert 200 <= child.cpu_ms < 200 + 250
    assert idle.cpu_ms < 100 and idle.duration_ms >= 300  # CPU time, not wall time


def test_resource_use_is_reported_for_a_timeout_too(sandbox: Sandbox) -> None:
    result = sandbox.run("while True: pass", "python", Limits(timeout_s=0.5, cpu_s=2))
    # a busy loop for 0.5 s of wall time: CPU time is measured, and can be no more than the wall time (one
    # thread) plus the accounting's slack; how much of it the loop got depends on what else the machine runs
    assert result.timed_out and 0 < result.cpu_ms < 900 and result.peak_rss_kb > 0


def test_a_fork_server_that_died_is_started_again(sandbox: Sandbox) -> None:
    import signal

    sandbox.run("exit 0", "bash", LIMITS)
    first = sandbox.fork_server.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    result = sandbox.run("echo again", "bash", LIMITS)
    assert result.output == "again\n" and sandbox.fork_server.pid not in (None, first)
