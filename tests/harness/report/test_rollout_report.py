"""The rollout report: rollout.html and rollout.md from a rollout document and its moves' run folders."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from harness.report.rollout import write_rollout_report

T0 = 1_800_000_000.0  # epoch seconds when the synthetic rollout started
PLAN = "10,25,50,75,phase2@90,100,decommission"
STEPS = [{"text": "10", "phase": 1, "percentage": 10.0, "procedure": None},
         {"text": "25", "phase": 1, "percentage": 25.0, "procedure": None},
         {"text": "50", "phase": 1, "percentage": 50.0, "procedure": None},
         {"text": "75", "phase": 1, "percentage": 75.0, "procedure": None},
         {"text": "phase2@90", "phase": 2, "percentage": 90.0, "procedure": "safe"},
         {"text": "100", "phase": 2, "percentage": 100.0, "procedure": "safe"},
         {"text": "decommission", "phase": 3, "percentage": 100.0, "procedure": "safe"}]


def load_rows(start: float, counts: dict[str, int], *, timestamps: bool = False) -> pd.DataFrame:
    """Locust rows: one POST and one E2E row per evaluation, E2E named after its path, spread over 20 s."""
    rows: list[dict[str, Any]] = []
    total = sum(counts.values())
    i = 0
    for path, n in counts.items():
        for _ in range(n):
            t = start + 20.0 * i / total
            rows.append({"time": t, "end_time": t + 0.05, "request_type": "POST", "name": "submit", "status": "accepted"})
            rows.append({"time": t, "end_time": t + 1.5, "request_type": "E2E", "name": path, "status": "completed"})
            i += 1
    frame = pd.DataFrame(rows)
    if timestamps:  # as the load runner stores them
        for column in ("time", "end_time"):
            frame[column] = pd.to_datetime(frame[column], unit="s", utc=True)
    return frame


def verdict(status: str, headline: str, observed: float | None = None) -> dict[str, Any]:
    values: dict[str, Any] = {"configured_percentage": 10.0, "routed": 40, "to_celery": 4}
    if observed is not None:
        values.update({"observed": observed, "lower": observed - 0.05, "upper": observed + 0.05})
    return {"verdict": status, "headline": headline, "current": 10.0, "target": 25.0,
            "criteria": [{"name": "parity mismatch rate", "status": "PASS", "observed": "0/40", "values": {}},
                         {"name": "split accuracy", "status": status, "observed": "x", "values": values}]}


def run_folder(root: Path, name: str, status: str, *, rows: pd.DataFrame | None, observed: float | None = None,
               report: bool = False) -> Path:
    run = root / "reports" / name
    run.mkdir(parents=True)
    (run / "verdict.json").write_text(json.dumps(verdict(status, f"{status}: gate of {name}", observed)))
    if rows is not None:
        rows.to_parquet(run / "load_requests.parquet")
    if report:
        (run / "report.html").write_text("<html></html>")
    return run


def move(frm: str, to: str, status: str, run: Path | str | None, start: float, end: float, action: str,
         kind: str = "split") -> dict[str, Any]:
    return {"from": frm, "to": to, "kind": kind, "verdict": status, "headline": f"{status}: may move {frm} → {to}",
            "run": None if run is None else str(run), "started_at": T0 + start, "finished_at": T0 + end,
            "action": action}


def rollout_doc(moves: list[dict[str, Any]], *, exit_code: int, final: str, end: float = 120.0) -> dict[str, Any]:
    return {"plan": PLAN, "steps": STEPS, "moves": moves, "started_at": T0, "finished_at": T0 + end,
            "exit_code": exit_code, "final_step": final}


def three_moves(tmp_path: Path) -> tuple[dict[str, Any], Path]:
    a = run_folder(tmp_path, "run-a", "PASS", rows=load_rows(T0 + 1, {"legacy": 27, "celery": 3}, timestamps=True),
                   observed=0.1, report=True)
    b = run_folder(tmp_path, "run-b", "PASS", rows=load_rows(T0 + 41, {"legacy": 15, "celery": 5, "both": 2}),
                   observed=0.245)
    c = tmp_path / "reports" / "run-c"  # the third move's run folder holds a verdict but no load requests
    c.mkdir(parents=True)
    (c / "verdict.json").write_text(json.dumps(verdict("FAIL", "FAIL: split inaccurate")))
    doc = rollout_doc([move("10", "25", "PASS", a, 0, 30, "split moved to 25 %"),
                       move("25", "50", "PASS", b, 40, 70, "split moved to 50 %"),
                       move("50", "75", "FAIL", c, 80, 110, "rolled back to 25 %")], exit_code=1, final="25")
    return doc, tmp_path / "reports" / "rollout-1"


def test_the_rollout_report_shows_every_move_in_order(tmp_path: Path) -> None:
    doc, folder = three_moves(tmp_path)
    written = write_rollout_report(folder, doc)
    assert list(written) == ["rollout.html", "rollout.md"]
    assert all(p.is_file() and p.parent == folder for p in written.values())
    page = written["rollout.html"].read_text()
    md = written["rollout.md"].read_text()

    # the outcome first: how far it got and what the exit code means, before the table and the chart
    assert "ended at step 25" in page and "exit code 1: a gate said FAIL" in page
    assert page.index("exit code 1") < page.index("<table") < page.index("<svg")
    # one row per move, in order, with its verdict pill, action and time taken
    body = page[page.index("<tbody>"):page.index("</tbody>")]
    rows = re.findall(r"<tr.*?</tr>", body)
    assert len(rows) == 3
    for row, label, status, action in zip(rows, ("10 → 25", "25 → 50", "50 → 75"), ("PASS", "PASS", "FAIL"),
                                          ("split moved to 25 %", "split moved to 50 %", "rolled back to 25 %"),
                                          strict=True):
        assert label in row and f'class="pill {status}"' in row and action in row and "30 s" in row
    assert re.findall(r'class="pill (\w+)"', body) == ["PASS", "PASS", "FAIL"]
    assert 'class=bad' in rows[2] and 'class=bad' not in rows[0]
    # links to each move's own report, relative to the rollout folder; the move without requests says so
    assert 'href="../run-a/report.html"' in rows[0]
    assert 'href="../run-b"' in rows[1]  # no report.html there: the run folder itself
    assert "no load evidence" in rows[2] and "no load evidence" not in rows[0] + rows[1]
    assert "30 completed" in rows[0] and "22 completed" in rows[1]
    # the timeline: one inline SVG whose alt text states the numbers (E2E rows only, POSTs not counted)
    assert page.count("<svg") == 1 and 'role="img"' in page
    alt = re.search(r'aria-label="([^"]*)"', page)
    assert alt is not None
    assert "3 moves" in alt.group(1) and "10 → 25 (split) PASS" in alt.group(1) and "50 → 75 (split) FAIL" in alt.group(1)
    assert "legacy (control) 42, celery (candidate) 8, both (dual-write) 2" in alt.group(1)
    assert "observed 24.5 %" in alt.group(1) and "configured 10 %" not in alt.group(1)
    assert "at 25 % configured" in alt.group(1)

    # markdown: the same table (each move named, in order), then the timeline's numbers
    lines = [line for line in md.splitlines() if line.startswith("| ") and "→" in line]
    assert [line.split(" | ")[1] for line in lines] == ["10 → 25", "25 → 50", "50 → 75"]
    assert "**FAIL**" in lines[2] and "[report](../run-a/report.html)" in lines[0] and "no load evidence" in lines[2]
    assert "exit code 1: a gate said FAIL" in md
    assert "## Timeline" in md and "legacy (control) 42, celery (candidate) 8, both (dual-write) 2 completed" in md


def test_a_missing_run_folder_renders_and_says_there_is_no_evidence(tmp_path: Path) -> None:
    a = run_folder(tmp_path, "run-a", "PASS", rows=load_rows(T0 + 1, {"legacy": 9, "celery": 1}))
    empty = run_folder(tmp_path, "run-e", "INCONCLUSIVE", rows=pd.DataFrame({"time": [], "end_time": []}))
    doc = rollout_doc([move("10", "25", "PASS", a, 0, 30, "split moved to 25 %"),
                       move("25", "50", "PASS", tmp_path / "reports" / "gone", 40, 70, "split moved to 50 %"),
                       move("50", "75", "INCONCLUSIVE", empty, 80, 110, "split stays at 50 %"),
                       {"from": "75", "to": "phase2@90", "kind": "phase2", "verdict": "INCONCLUSIVE"}],
                      exit_code=2, final="50")
    written = write_rollout_report(tmp_path / "rollout", doc)
    page = written["rollout.html"].read_text()
    md = written["rollout.md"].read_text()
    body = page[page.index("<tbody>"):page.index("</tbody>")]
    rows = re.findall(r"<tr.*?</tr>", body)
    assert len(rows) == 4
    assert "no load evidence" not in rows[0]
    assert all("no load evidence" in row for row in rows[1:])
    assert "run folder missing" in rows[1] and "href" not in rows[1]
    assert "exit code 2: a gate was INCONCLUSIVE" in page and "<svg" in page
    assert md.count("no load evidence") >= 3 and "75 → phase2@90" in md


def test_a_rollout_without_moves_says_so(tmp_path: Path) -> None:
    written = write_rollout_report(tmp_path, rollout_doc([], exit_code=0, final="10", end=0))
    page = written["rollout.html"].read_text()
    assert "has no moves" in page and "<svg" not in page and "<table" not in page
    assert "has no moves" in written["rollout.md"].read_text()


def test_a_sparse_document_does_not_crash(tmp_path: Path) -> None:
    written = write_rollout_report(tmp_path, {"moves": [{"from": "10", "to": "25"}, "junk"]})
    assert "10 → 25" in written["rollout.html"].read_text()
    assert "no run folder recorded" in written["rollout.md"].read_text()
