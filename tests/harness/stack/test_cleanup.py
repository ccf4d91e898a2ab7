"""SIGTERM stops every tracked stack and unwinds like Ctrl-C, also through Hypothesis (which would take
any other exception raised inside a test for a failure and replay it, running more work after the stack
is gone), and the command exits 143."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from hypothesis import given, settings, strategies as st
    from harness.commands import run_command
    from harness.stack import cleanup

    class Stack:
        def stop(self):
            print("stopped", flush=True)

    calls = []

    @settings(max_examples=50, database=None, deadline=None)
    @given(st.integers())
    def search(x):
        calls.append(x)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    def command(_args):
        cleanup.track(Stack())
        search()
        return 0

    try:
        code = run_command(command, None)
    finally:
        print(f"calls {len(calls)}", flush=True)
    sys.exit(code)
""")


def test_sigterm_inside_a_hypothesis_search_stops_the_stack_at_once_and_exits_143(tmp_path: Path) -> None:
    script = tmp_path / "term.py"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).parents[3])
    assert done.returncode == 143, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "stopped" and "calls 2" in lines, done.stdout  # no replay, no third example
    assert "interrupted" in done.stderr
