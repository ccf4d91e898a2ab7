"""What load was run (load.json, the gate's rounds, the program mix) and the criteria's links to their evidence."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from harness.report import build_reports
from harness.report.frames import criterion_section, load_settings, program_mix

T0 = 1_800_000_000.0


def load_doc(*, duration_s: float = 50, seed: int = 1, exit_code: int = 0, started: float = T0) -> dict[str, Any]:
    """load.json as harness.load.runner.run_locust writes it."""
    return {"gateway": "http://127.0.0.1:8000",
            "options": {"users": 16, "spawn_rate": 4.0, "duration_s": duration_s, "shape": None, "steps": 5,
                        "route": None, "mode": "follow", "think_time_s": 0.5, "e2e_timeout_s": 120.0, "batch_size": 8,
                        "seed": seed, "output_cap": 65536, "stop_timeout_s": 30.0, "processes": None},
            "command": ["python", "-m", "locust"], "started_at": started, "finished_at": started + duration_s + 0.5,
            "locust_exit_code": exit_code}


def requests() -> pd.DataFrame:
    """Eight evaluations (a POST and an E2E row each): 4 quick-python, 2 sleep (one python, one bash), 2 quick-bash;
    2 of them in a batch."""
    mix = [("quick-python", "python", False), ("quick-python", "python", False), ("quick-python", "python", True),
           ("quick-python", "python", False), ("sleep", "python", False), ("sleep", "bash", True),
           ("quick-bash", "bash", False), ("quick-bash", "bash", False)]
    rows = []
    for i, (program, language, batch) in enumerate(mix):
        path = ("legacy", "celery")[i % 2]
        for kind, name, ms in (("POST", "submit", 10.0), ("E2E", path, 100.0 + i)):
            rows.append({"time": T0 + i, "end_time": T0 + i + ms / 1000, "request_type": kind, "name": name,
                         "path": path, "response_time_ms": ms, "ok": True, "program": program, "language": language,
                         "priority": 0, "batch": batch, "status": "completed" if kind == "E2E" else None})
    frame = pd.DataFrame(rows)
    frame["batch"] = frame["batch"].astype("boolean")
    for column in ("time", "end_time"):
        frame[column] = pd.to_datetime(frame[column], unit="s", utc=True)
    return frame


def verdict() -> dict[str, Any]:
    names = ("parity mismatch rate", "critical fields", "oracle (wrong results)", "chaos invariants",
             "latency (queueing + delivery)", "execution time", "resources (CPU, peak memory)", "error rate",
             "split accuracy", "transition (phase2)")
    return {"verdict": "PASS", "headline": "PASS: go", "criteria": [
        {"name": n, "status": "PASS", "observed": "ok", "threshold": "t", "sample_size": 10, "bound": "b",
         "detail": "d"} for n in names]}


def run_folder(root: Path, *, load: bool = True, rounds: tuple[float, ...] = (), mix: bool = True,
               with_verdict: bool = False) -> Path:
    root.mkdir(parents=True)
    if mix:
        requests().to_parquet(root / "load_requests.parquet", index=False)
    if load:
        (root / "load.json").write_text(json.dumps(load_doc()))
    for k, seconds in enumerate(rounds, start=1):
        folder = root / "load-rounds" / f"{k:02d}"
        folder.mkdir(parents=True)
        (folder / "load.json").write_text(json.dumps(load_doc(duration_s=seconds, seed=k, started=T0 + 100 * k)))
    if with_verdict:
        (root / "verdict.json").write_text(json.dumps(verdict()))
    return root


def reports(folder: Path) -> tuple[str, str]:
    built = build_reports(folder)
    return built["report.html"].read_text(), built["summary.md"].read_text()


# -- frames ----------------------------------------------------------------------------------------------------


def test_load_settings_name_what_was_run_and_leave_out_what_the_file_does_not_say() -> None:
    rows = dict(load_settings(load_doc()))
    assert rows["users"] == "16" and rows["spawn rate"] == "4 users/s" and rows["duration"] == "50 s"
    assert rows["think time"] == "0.5 s" and rows["route"] == "split" and rows["seed"] == "1"
    assert rows["E2E timeout"] == "120 s" and rows["Locust exit code"] == "0" and rows["ran"].startswith("50.5 s from ")
    assert "shape" not in rows and "processes" not in rows  # null: the default
    assert load_settings(None) == [] and dict(load_settings({"options": {"users": 3}})) == {"users": "3"}


def test_load_settings_of_the_gates_rounds_sum_their_durations_and_list_them() -> None:
    rounds = [("01", load_doc(duration_s=20, seed=1)), ("02", load_doc(duration_s=30, seed=2, exit_code=1))]
    rows = dict(load_settings(load_doc(), rounds))
    assert rows["duration"] == "2 rounds of 20, 30 s (50 s in all)"
    assert rows["seed"] == "1, 2 (per round)" and rows["Locust exit code"] == "0, 1 (per round)"
    assert rows["users"] == "16"  # the rounds agree
    assert rows["rounds"] == "01: 20 s, seed 1, exit 0; 02: 30 s, seed 2, exit 1"
    same = dict(load_settings(None, [("01", load_doc(duration_s=25)), ("02", load_doc(duration_s=25))]))
    assert same["duration"] == "2 rounds of 25 s (50 s in all)"


def test_program_mix_counts_e2e_evaluations_per_program_and_language_with_the_batch_share() -> None:
    mix = program_mix(requests())
    programs = mix[mix["by"] == "program"]
    assert list(programs["value"]) == ["quick-python", "quick-bash", "sleep"]
    assert list(programs["evaluations"]) == [4, 2, 2] and list(programs["share"]) == [0.5, 0.25, 0.25]
    assert programs.set_index("value").loc["sleep", "languages"] == "bash, python"
    languages = mix[mix["by"] == "language"].set_index("value")["evaluations"].to_dict()
    assert languages == {"python": 5, "bash": 3}
    assert "priority" not in set(mix["by"])  # one priority only: nothing to tell
    assert mix.attrs == {"unit": "E2E evaluations", "total": 8, "batch": 2, "batch_known": 8}
    assert program_mix(None).empty and program_mix(requests().drop(columns=["program", "language"])).empty


def test_submissions_are_counted_when_no_evaluation_was_followed() -> None:
    mix = program_mix(requests().query("request_type == 'POST'"))
    assert mix.attrs["unit"] == "submissions" and mix.attrs["total"] == 8


def test_criteria_name_the_section_holding_their_evidence_when_the_report_has_it() -> None:
    every = {"parity", "latency", "throughput", "chaos"}
    assert criterion_section("parity mismatch rate", every) == "parity"
    assert criterion_section("oracle (wrong results)", every) == "parity"
    assert criterion_section("critical fields", every) == "parity"
    assert criterion_section("latency (queueing + delivery)", every) == "latency"
    assert criterion_section("split accuracy", {"throughput"}) == "throughput"
    assert criterion_section("transition (phase3)", every) == "chaos"
    assert criterion_section("chaos invariants", {"parity"}) is None
    assert criterion_section("something else", every) is None


# -- the reports -----------------------------------------------------------------------------------------------


def test_the_reports_show_the_load_settings_and_the_program_mix(tmp_path: Path) -> None:
    page, md = reports(run_folder(tmp_path / "run"))
    for text in (page, md):
        assert "Load settings" in text and "Program mix" in text
        assert "16 users/s" not in text  # the spawn rate is 4
        assert "4 users/s" in text and "0.5 s" in text and "Locust exit code" in text
        assert "quick-python" in text and "50.0 %" in text and "25.0 %" in text
        assert "python 62.5 % (5)" in text and "bash 37.5 % (3)" in text
        assert "25.0 % (2 of 8)" in text  # the batch submissions
        assert "rounds" not in text
    assert page.index("Load settings") < page.index("End-to-end latency per path")
    assert '<section id="latency"><h2>Load and latency per path</h2>' in page


def test_the_gates_rounds_are_shown_as_rounds(tmp_path: Path) -> None:
    page, md = reports(run_folder(tmp_path / "run", rounds=(20, 40)))
    for text in (page, md):
        assert "2 rounds of 20, 40 s (60 s in all)" in text
        assert "01: 20 s, seed 1, exit 0; 02: 40 s, seed 2, exit 0" in text


def test_a_run_without_load_json_has_no_load_settings(tmp_path: Path) -> None:
    page, md = reports(run_folder(tmp_path / "run", load=False))
    for text in (page, md):
        assert "Load settings" not in text and "Program mix" in text
    page, md = reports(run_folder(tmp_path / "bare", load=False, mix=False, with_verdict=True))
    for text in (page, md):
        assert "Load settings" not in text and "Program mix" not in text and "Latency" not in text
    assert 'href="#' not in page.split("</nav>", 1)[1]  # no section to link a criterion to
    assert "](#" not in md


def test_only_load_json_is_enough_for_a_load_section(tmp_path: Path) -> None:
    page, md = reports(run_folder(tmp_path / "run", mix=False))
    assert '<section id="latency">' in page and "Load settings" in page and "Program mix" not in page
    assert "## Latency" in md and "Load settings" in md


def test_the_criteria_link_to_sections_present_in_the_report(tmp_path: Path) -> None:
    page, md = reports(run_folder(tmp_path / "run", with_verdict=True))
    anchors = set(re.findall(r'<section id="([a-z]+)"', page))
    links = re.findall(r'<a href="#([a-z]+)">([^<]+)</a>', page.split("</nav>", 1)[1])
    assert links and {target for target, _ in links} <= anchors
    linked = dict((name, target) for target, name in links)
    assert linked["latency (queueing + delivery)"] == "latency" and linked["split accuracy"] == "latency"
    assert "parity mismatch rate" not in linked and "chaos invariants" not in linked  # no such sections here
    md_links = dict(re.findall(r"\[([^\]]+)\]\(#([a-z]+)\)", md))
    assert md_links["error rate"] == "latency" and "parity mismatch rate" not in md_links
    headings = {h.lower() for h in re.findall(r"^## (\w+)$", md, re.M)}
    assert set(md_links.values()) <= headings
