"""``harness gate --evidence``: stored runs in, a verdict and its files out, with the right exit code."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main
from harness.gate.evidence import collect, error_class


def observations(n: int, mismatched: dict[int, dict[str, str]] | None = None) -> pd.DataFrame:
    rows = []
    for i in range(n):
        bad = (mismatched or {}).get(i)
        rows.append({
            "cls": "mismatched" if bad else "matched", "failing": bool(bad), "differing": bad["differing"] if bad else "",
            "legacy_status": "failed", "celery_status": bad.get("celery_status", "failed") if bad else "failed",
            "legacy_error": "Traceback\nValueError: x\n", "celery_error": bad["celery_error"] if bad else
            "Traceback\nValueError: x\n", "control_wrong": "", "candidate_wrong": "",
        })
    return pd.DataFrame(rows)


def test_error_class_is_the_exception_on_the_last_line() -> None:
    assert error_class("Traceback (most recent call last):\n  ...\nMemoryError\n") == "MemoryError"
    assert error_class("Traceback\nKeyError: 'a'\n") == "KeyError"
    assert error_class("bash: fork: retry\n") is None
    assert error_class(None) is None


def test_a_changed_exception_class_counts_as_an_error_class_mismatch(tmp_path: Path) -> None:
    observations(300, {7: {"differing": "error", "celery_error": "Traceback\nMemoryError\n"}}).to_parquet(
        tmp_path / "observations.parquet")
    evidence = collect([tmp_path])
    assert evidence.parity is not None
    assert (evidence.parity.n, evidence.parity.mismatches) == (300, 1)
    assert evidence.parity.mismatches_by_field == {"error": 1, "error_class": 1}


def test_load_rows_still_in_flight_at_the_end_are_kept_as_unfinished_not_dropped(tmp_path: Path) -> None:
    rows = [{"request_type": "E2E", "name": path, "status": status, "response_time_ms": ms}
            for path, status, ms in [("legacy", "completed", 100.0), ("legacy", "failed", 120.0),
                                     ("celery", "completed", 110.0), ("celery", "error", 90.0),
                                     ("celery", "unfinished", 4000.0), ("celery", "unfinished", 3500.0),
                                     ("both", "completed", 99.0)]]
    rows.append({"request_type": "POST", "name": "submit", "status": None, "response_time_ms": 5.0})
    pd.DataFrame(rows).to_parquet(tmp_path / "load_requests.parquet")
    latency = collect([tmp_path]).latency
    assert latency is not None
    assert latency.samples_ms == {"legacy": [100.0, 120.0], "celery": [110.0]}
    assert latency.unfinished_ms == {"legacy": [], "celery": [4000.0, 3500.0]}
    assert {p: tuple(c) for p, c in latency.errors.items()} == {"legacy": (2, 0), "celery": (2, 1)}


def test_load_rows_give_stages_and_resources_per_path_in_submission_order(tmp_path: Path) -> None:
    rows = [{"request_type": "E2E", "name": path, "status": "completed", "time": t, "response_time_ms": e2e,
             "submit_ms": 2.0, "queue_ms": q, "execution_ms": x, "delivery_ms": d, "cpu_ms": 20.0 + t,
             "peak_rss_kb": 9000 + t}
            for path, t, e2e, q, x, d in [("celery", 3, 130.0, 10.0, 100.0, 18.0), ("legacy", 2, 112.0, 4.0, 100.0, 6.0),
                                          ("legacy", 1, 120.0, 5.0, 105.0, 8.0)]]
    rows.append({"request_type": "E2E", "name": "celery", "status": "completed", "time": 4, "response_time_ms": 99.0,
                 "execution_ms": None})  # measured before stages were: a latency sample, no stages
    pd.DataFrame(rows).to_parquet(tmp_path / "load_requests.parquet")
    latency = collect([tmp_path]).latency
    assert latency is not None
    assert latency.samples_ms["legacy"] == [120.0, 112.0]  # sorted by submission time
    assert latency.stages_ms["legacy"]["queue"] == [5.0, 4.0]
    assert latency.stages_ms["legacy"]["overhead"] == [15.0, 12.0]  # end-to-end − execution
    assert latency.stages_ms["celery"]["overhead"] == [30.0]
    assert latency.resources["celery"]["cpu_ms"] == [23.0]


def test_parity_programs_count_for_the_error_rate_on_both_paths(tmp_path: Path) -> None:
    frame = observations(10)
    frame["population"] = "mix:parity-v1"
    frame.loc[3, "celery_status"] = "error"
    frame.loc[4, "legacy_status"] = "queued"  # never finished
    frame.to_parquet(tmp_path / "observations.parquet")
    parity = collect([tmp_path]).parity
    assert parity is not None
    assert {p: tuple(c) for p, c in parity.errors.items()} == {"legacy": (10, 1), "celery": (10, 1)}


def test_gate_on_stored_evidence_fails_on_one_critical_mismatch_and_writes_its_verdict(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    observations(400, {3: {"differing": "exit_code", "celery_error": "Traceback\nValueError: x\n"}}).to_parquet(
        tmp_path / "observations.parquet")
    code = main(["gate", "--current", "50", "--target", "75", "--evidence", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1
    assert out.lstrip().startswith("FAIL: may not move the split 50 % → 75 %")
    verdict = json.loads((tmp_path / "verdict.json").read_text())
    assert verdict["verdict"] == "FAIL"
    assert (tmp_path / "report.html").is_file() and (tmp_path / "junit.xml").is_file()


def test_gate_with_too_little_evidence_is_inconclusive_never_pass(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    observations(20).to_parquet(tmp_path / "observations.parquet")
    assert main(["gate", "--current", "50", "--target", "75", "--evidence", str(tmp_path)]) == 2
    assert capsys.readouterr().out.lstrip().startswith("INCONCLUSIVE")


def test_gate_refuses_a_missing_run_folder_and_a_backwards_step(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gate", "--current", "50", "--target", "75", "--evidence", str(tmp_path / "nope")]) == 3
    assert "no such run folder" in capsys.readouterr().err
    assert main(["gate", "--current", "75", "--target", "50", "--evidence", str(tmp_path)]) == 3


def test_rollout_moves_on_pass_and_rolls_back_to_the_previous_step_on_fail(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import harness.gate.cli as gate_cli
    from harness.gate.decide import Verdict

    monkeypatch.setenv("HARNESS_REPORTS", str(tmp_path))
    monkeypatch.setattr(gate_cli, "gather", lambda *args, **kwargs: gate_cli.Rounds({}, 1.0))  # decided below
    verdicts = iter(["PASS", "FAIL", "PASS"])
    steps_seen: list[tuple[float, float]] = []

    def fake_decide(evidence: object, current: float, target: float, thresholds: object) -> Verdict:
        steps_seen.append((current, target))
        v = next(verdicts)
        return Verdict(v, {"PASS": 0, "FAIL": 1}[v], f"{v}: {current:g} → {target:g}", (), {}, current, target)

    monkeypatch.setattr(gate_cli, "decide", fake_decide)
    assert main(["rollout", "--steps", "10,25,50,75"]) == 1
    out = capsys.readouterr().out
    assert steps_seen == [(10, 25), (25, 50)]  # stopped at the first FAIL
    assert "split moved to 25 %" in out and "rolled back to the previous step, 10 %" in out
    assert len(list(tmp_path.glob("*/verdict.json"))) == 2


def known_failure_run(folder: Path) -> Path:
    """A run folder holding gateway-broker-resets as the chaos findings store a known failure."""
    from harness.chaos.scenario import load_scenario
    from harness.run import PROJECT_ROOT

    scenario = load_scenario(PROJECT_ROOT / "scenarios" / "chaos" / "gateway-broker-resets.toml")
    assert scenario.known_failure is not None
    part = folder / "chaos" / scenario.name
    part.mkdir(parents=True)
    pd.DataFrame([{"scenario": scenario.name, "path": "celery", "outcome": "known-failure",
                   "known_failure": scenario.known_failure.reason, "violations": ["unexpected 1 > 0"],
                   "notes": [], "errors": [], "ok": 38, "unexpected": 1}]).to_parquet(part / "findings.parquet")
    return folder


def chaos_criterion(folder: Path) -> dict[str, object]:
    verdict = json.loads((folder / "verdict.json").read_text())
    return next(c for c in verdict["criteria"] if c["name"] == "chaos invariants") | {"headline": verdict["headline"]}


def test_a_known_failure_given_as_evidence_never_passes_the_chaos_criterion(tmp_path: Path) -> None:
    run = known_failure_run(tmp_path / "run")
    assert main(["gate", "--current", "50", "--target", "75", "--evidence", str(run), "--collect", "chaos"]) == 1
    chaos = chaos_criterion(run)
    assert chaos["status"] == "FAIL" and "known failure in gateway-broker-resets" in str(chaos["detail"])
    case = ET.fromstring((run / "junit.xml").read_text()).find(".//testsuite[@name='chaos']/testcase")
    assert case is not None and case.find("skipped").get("type") == "pytest.xfail"  # type: ignore[union-attr]
    assert "| gateway-broker-resets | known-failure |" in (run / "summary.md").read_text()


def test_a_known_failure_accepted_in_the_thresholds_passes_the_chaos_criterion_and_says_so(tmp_path: Path) -> None:
    from harness.gate.decide import DEFAULT_THRESHOLDS

    run = known_failure_run(tmp_path / "run")
    thresholds = tmp_path / "thresholds.toml"
    thresholds.write_text(DEFAULT_THRESHOLDS.read_text().replace(
        "accepted_known_failures = {}",
        'accepted_known_failures = { gateway-broker-resets = "the duplicate run is idempotent for our users" }'))
    main(["gate", "--current", "50", "--target", "75", "--evidence", str(run), "--thresholds", str(thresholds)])
    chaos = chaos_criterion(run)
    assert chaos["status"] == "PASS"
    assert "accepting the known failure of gateway-broker-resets" in str(chaos["headline"])
    assert "accepting the known failure of gateway-broker-resets (the duplicate run is idempotent" in str(
        chaos["detail"])
