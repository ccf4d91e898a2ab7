"""The terminal: progress as a live line on a terminal, plain lines in a log, and verdict colours."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
import time

import pytest

from harness.terminal import progress, styled


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_piped_progress_is_plain_lines_with_the_count_and_the_last_one_at_the_end(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = io.StringIO()
    with progress("parity: programs checked", 40, stream=out, plain_every_s=0.0) as shown:
        shown.update(12)
        shown.update(40, note="done")
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("  parity: programs checked: 12/40 after ")
    assert lines[-1].startswith("  parity: programs checked: 40/40 after ") and lines[-1].endswith("(done)")
    assert "\033[" not in out.getvalue()


def test_on_a_terminal_progress_is_drawn_live_unless_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = Tty()
    with progress("chaos: scenarios", 3, stream=out) as shown:
        shown.update(1)
        time.sleep(0.2)
    assert "chaos: scenarios" in out.getvalue() and "\033[" in out.getvalue()
    assert styled("PASS", Tty()) == "\033[1;32mPASS\033[0m" and styled("PASS", io.StringIO()) == "PASS"
    monkeypatch.setenv("NO_COLOR", "1")
    plain = Tty()
    with progress("chaos: scenarios", 3, stream=plain, plain_every_s=0.0) as shown:
        shown.update(2)
    assert "\033[" not in plain.getvalue() and "chaos: scenarios: 2/3" in plain.getvalue()


@pytest.mark.stack  # `harness parity` starts one
@pytest.mark.slow
def test_harness_parity_shows_progress_on_a_terminal_and_checks_exactly_its_samples(tmp_path: object) -> None:
    leader, follower = pty.openpty()
    env = {**os.environ, "HYPOTHESIS_PROFILE": "dev", "COLUMNS": "120"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen([sys.executable, "-m", "harness", "parity", "--samples", "40"], stdin=subprocess.DEVNULL,
                            stdout=follower, stderr=follower, env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=300)
    os.close(leader)
    text = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0, text[-2000:]
    assert "parity: programs checked" in text  # the live line, drawn while it ran
    assert "40 programs checked in" in text  # the budget, exactly
    assert "\033[1;32mPASS\033[0m" in text


@pytest.mark.stack  # `harness parity` starts one
@pytest.mark.slow
def test_ctrl_c_during_harness_parity_keeps_every_batch_checked_and_the_report_says_so(tmp_path: object) -> None:
    import json
    import signal
    from pathlib import Path

    import pandas as pd

    reports = Path(str(tmp_path))
    env = {**os.environ, "HYPOTHESIS_PROFILE": "dev", "HARNESS_REPORTS": str(reports)}
    proc = subprocess.Popen([sys.executable, "-m", "harness", "parity", "--samples", "2000"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                            cwd=str(reports), text=True)
    try:
        deadline = time.monotonic() + 180
        observed: list[Path] = []
        while time.monotonic() < deadline and not observed and proc.poll() is None:
            observed = list(reports.rglob("observations.parquet"))
            time.sleep(0.5)
        assert observed, "no batch was stored while the run went on"
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out[-2000:]
    run = observed[0].parent
    kept = pd.read_parquet(run / "observations.parquet")
    assert len(kept) > 0 and json.loads((run / "parity.json").read_text())["interrupted"] is True
    assert "Interrupted" in (run / "report.html").read_text() and "they are kept" in out
