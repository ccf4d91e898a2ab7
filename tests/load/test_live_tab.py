"""The Locust web UI's "Both queues" tab, as a user sees it: ``harness load --web``, then headless Chromium.

``harness load --web`` starts its own stack and the Locust UI; Chromium presses Start, opens the tab's
address as the command prints it and reads the table the UI renders from ``/stats/requests``. The rows must name both paths, show
live numbers (evaluations completed and routed on each path) and change while the page stays open
(the UI polls every 2 s). The screenshot goes to the test's folder, or to ``HARNESS_SCREENSHOTS``
when set (the README's picture comes from there). The pure part (the rows from a snapshot, the
counts a worker reports to its master) is tested at the end without a browser.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from harness.live import COLUMNS, FeedView, Levels, summarise
from harness.load.webui import Counts, live_env, rows
from harness.stack.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
ROWS_JS = """(() => {
  const rows = [...document.querySelectorAll('table tbody tr')]
    .map(tr => [...tr.querySelectorAll('td')].map(td => td.innerText.trim()));
  return rows.length ? rows : null;
})()"""


class HarnessLoadWeb:
    """``harness load --web`` in its own process group; its output is collected line by line."""

    def __init__(self, tmp: Path, port: int) -> None:
        env = {**os.environ, "HARNESS_REPORTS": str(tmp / "reports"), "PYTHONUNBUFFERED": "1"}
        argv = [sys.executable, "-m", "harness", "load", "--web", "--web-port", str(port), "--users", "6",
                "--spawn-rate", "6", "--think-time", "0.3", "--duration", "120s", "--stop-timeout", "2"]
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True, text=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for_line(self, pattern: str, timeout_s: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if match := re.search(pattern, line):
                    return match
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"no line matching {pattern!r}; output:\n" + "\n".join(self.lines[-40:]))

    def stop(self) -> int:
        """SIGTERM (harness load stops Locust, then the stack), SIGKILL to the group after 90 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(90)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
        return self.proc.wait(10)


def _numbers(row: list[str]) -> dict[str, str]:
    return dict(zip([key for key, _ in COLUMNS], row, strict=True))


def _routed(cell: str) -> int:
    return int(cell.split()[0]) if cell[:1].isdigit() else 0


@pytest.mark.load
@pytest.mark.stack
@pytest.mark.slow
def test_the_locust_tab_shows_both_paths_live_in_chromium(chromium: Any, tmp_path: Path) -> None:
    port = free_port()
    web = HarnessLoadWeb(tmp_path, port)
    try:
        url = web.wait_for_line(r"Locust web UI\s+(http://127\.0\.0\.1:\d+)", timeout_s=120).group(1)
        gateway = web.wait_for_line(r"gateway docs\s+(http://\S+)/docs", timeout_s=5).group(1)
        tab_url = web.wait_for_line(r"both queues\s+(http://\S+)", timeout_s=5).group(1)
        assert tab_url == f"{url}/?tab=queues"

        failure_shot = tmp_path / "failure.png"
        chromium.goto(url)
        chromium.wait_for("!!document.querySelector('form button[type=submit]')")
        for _ in range(5):  # the form may be drawn before the UI listens to it: press Start until Locust runs
            chromium.evaluate("document.querySelector('form button[type=submit]')?.click()")
            if _running(url, timeout_s=6):
                break
        # Open the tab's own address, as printed. (The page that pressed Start was seen to fall back to the
        # start form now and then: Locust's UI takes its state from /stats/requests, which Locust caches 2 s.)
        chromium.goto(tab_url)
        tab = "[...document.querySelectorAll('[role=tab]')].find(t => t.innerText.trim().toUpperCase() === 'BOTH QUEUES')"
        assert chromium.wait_for(f"{tab}?.getAttribute('aria-selected')") == "true"
        heads = chromium.wait_for("(() => { const h = [...document.querySelectorAll('table thead th')]"
                                  ".map(th => th.innerText.trim()); return h.length ? h : null })()")
        assert heads == [title for _, title in COLUMNS]

        def both_live() -> dict[str, dict[str, str]] | None:
            table = {r[0]: _numbers(r) for r in chromium.evaluate(ROWS_JS) or [] if len(r) == len(COLUMNS)}
            paths = [table.get(p) for p in ("legacy", "celery")]
            if all(p and p["completed_per_s"] != "–" and float(p["completed_per_s"]) > 0 and _routed(p["routed"]) > 0 and p["p50_ms"] != "–"
                   for p in paths):
                return table
            return None

        first = _wait(both_live, timeout_s=60, what="both paths with completions and routed evaluations")
        assert [r[0] for r in chromium.evaluate(ROWS_JS)][:2] == ["legacy", "celery"]  # the control first
        for path in ("legacy", "celery"):
            row = first[path]
            assert row["queued"].isdigit() and row["in_hand"].isdigit() and row["errors"] == "0"
            assert float(row["p95_ms"]) >= float(row["p50_ms"]) > 0
            assert row["oracle_disagreements"] == "0" and row["unfinished"] == "0"
        assert first["legacy"]["dead_letters"] == first["legacy"]["unacked"] == "–"  # legacy has neither
        assert first["celery"]["dead_letters"].isdigit() and first["celery"]["unacked"].isdigit()
        shares = [int(re.search(r"\((\d+) %\)", first[p]["routed"]).group(1)) for p in ("legacy", "celery")]  # type: ignore[union-attr]
        assert 99 <= sum(shares) <= 101  # the gateway's split, one path per evaluation

        # Live: the same page, without a reload, shows more routed evaluations a few polls later.
        later = _wait(lambda: (t := both_live()) and _routed(t["celery"]["routed"]) + _routed(t["legacy"]["routed"])
                      > _routed(first["celery"]["routed"]) + _routed(first["legacy"]["routed"]) and t,
                      timeout_s=20, what="the numbers to change while the page stays open")
        stats = requests.get(f"{gateway}/api/stats", timeout=5).json()["routed"]
        assert _routed(later["legacy"]["routed"]) <= stats["legacy"] and _routed(later["celery"]["routed"]) <= stats["celery"]
        shots = Path(os.environ.get("HARNESS_SCREENSHOTS") or tmp_path)
        chromium.evaluate("window.scrollTo(0, 0)")
        assert chromium.screenshot(shots / "locust-both-queues.png", height=320).stat().st_size > 10_000
    except (AssertionError, TimeoutError, RuntimeError) as exc:
        chromium.screenshot(failure_shot)
        page = chromium.evaluate("location.href + '\\n' + document.body.innerText.slice(0, 1500)")
        raise AssertionError(f"{exc}\nthe page ({failure_shot}):\n{page}") from exc
    finally:
        code = web.stop()
    assert code in (0, 130), "\n".join(web.lines[-30:])
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/", timeout=2)  # Locust is gone
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{gateway}/health", timeout=2)  # and so is the stack


def _running(url: str, *, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException, ValueError):
            if requests.get(f"{url}/stats/requests", timeout=5).json().get("state") in ("spawning", "running"):
                return True
        time.sleep(0.5)
    return False


def _wait(probe, *, timeout_s: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if found := probe():
            return found
        time.sleep(0.5)
    raise AssertionError(f"the tab did not show {what} within {timeout_s:.0f} s")


# -- without a browser ----------------------------------------------------------------------------------


def test_the_tab_rows_put_the_control_first_and_add_what_only_the_load_run_knows() -> None:
    feed = FeedView(started=0.0, terminal=(), running={"celery": 2}, errors={"legacy": 1}, events=9)
    snapshot = summarise(feed, {}, Levels(legacy_queued=4, legacy_in_hand=1, celery_queued=0, unacked=0,
                                          dead_letters=3), None, now=100.0, window_s=10.0,
                         problems=("gateway http://127.0.0.1:9/api/stats unreadable (ConnectionError)",))
    counts = Counts()
    counts.disagree(["celery", "celery", "legacy"])
    counts.not_finished(["legacy"])

    got = rows(snapshot, counts)

    assert [r["name"] for r in got] == ["0 legacy", "1 celery", "2 problem"]
    assert got[0] | {"name": ""} == {"name": "", "path": "legacy", "queued": "4", "in_hand": "1",
                                     "completed_per_s": "0.0", "p50_ms": "–", "p95_ms": "–", "errors": "1",
                                     "dead_letters": "–", "unacked": "–", "routed": "–",
                                     "oracle_disagreements": "1", "unfinished": "1"}
    assert (got[1]["in_hand"], got[1]["dead_letters"], got[1]["oracle_disagreements"]) == ("2", "3", "2")
    assert got[2]["path"] == "problem: gateway http://127.0.0.1:9/api/stats unreadable (ConnectionError)"


def test_a_tab_without_redis_urls_says_which_variables_to_set() -> None:
    got = rows(None, Counts(), "the tab needs LIVE_MAIN_REDIS_URL and LIVE_CELERY_BROKER_URL")
    assert got == [{"name": "0 problem", **{key: "" for key, _ in COLUMNS},
                    "path": "problem: the tab needs LIVE_MAIN_REDIS_URL and LIVE_CELERY_BROKER_URL"}]
    assert live_env("", "", ["evaluation"]) == {"LIVE_CELERY_QUEUES": "evaluation"}
    assert live_env("redis://a/0", "redis://b/0", ["a", "b"]) == {
        "LIVE_CELERY_QUEUES": "a,b", "LIVE_MAIN_REDIS_URL": "redis://a/0", "LIVE_CELERY_BROKER_URL": "redis://b/0"}


def test_a_workers_counts_reach_the_master_once() -> None:
    worker, master = Counts(), Counts()
    worker.disagree(["celery"])
    worker.not_finished(["legacy", "celery"])
    master.add(worker.take())
    master.add(worker.take())  # nothing new since the last report

    assert dict(master.oracle) == {"celery": 1} and dict(master.unfinished) == {"legacy": 1, "celery": 1}
    assert not worker.oracle and not worker.unfinished
