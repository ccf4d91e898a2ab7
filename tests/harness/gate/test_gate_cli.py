"""``harness gate --evidence``: stored runs in, a verdict and its files out, with the right exit code."""

from __future__ import annotations

import argparse
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main
from harness.gate.decide import Status
from harness.gate.evidence import collect, error_class
from harness.gate.plan import Step
from harness.run import RunFolder


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
    # load_requests.parquet stores the times as timestamps: the same evidence, in epoch seconds
    frame = pd.DataFrame(rows)
    frame["time"] = pd.to_datetime(frame["time"], unit="s", utc=True)
    frame.to_parquet(tmp_path / "load_requests.parquet")
    stamped = collect([tmp_path]).latency
    assert stamped is not None and stamped.stages_ms["legacy"]["submitted_at"] == [1.0, 2.0]
    assert stamped.stages_ms["legacy"]["overhead"] == [15.0, 12.0]


def test_parity_programs_count_for_the_error_rate_on_both_paths(tmp_path: Path) -> None:
    frame = observations(10)
    frame["population"] = "mix:parity-v1"
    frame.loc[3, "celery_status"] = "error"
    frame.loc[4, "legacy_status"] = "queued"  # never finished
    frame.to_parquet(tmp_path / "observations.parquet")
    parity = collect([tmp_path]).parity
    assert parity is not None
    assert {p: tuple(c) for p, c in parity.errors.items()} == {"legacy": (10, 1), "celery": (10, 1)}


@pytest.fixture(autouse=True)
def _reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_REPORTS", str(tmp_path / "reports"))


def gate_folder(tmp_path: Path) -> Path:
    """The run folder the gate wrote (the newest under HARNESS_REPORTS)."""
    return max((tmp_path / "reports").glob("*/verdict.json"), key=lambda p: p.stat().st_mtime).parent


def test_gate_on_stored_evidence_fails_on_one_critical_mismatch_and_writes_its_verdict_in_a_run_of_its_own(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "parity-run"
    source.mkdir()
    observations(400, {3: {"differing": "exit_code", "celery_error": "Traceback\nValueError: x\n"}}).to_parquet(
        source / "observations.parquet")
    before = sorted(p.name for p in source.iterdir())
    code = main(["gate", "--current", "50", "--target", "75", "--evidence", str(source)])
    out = capsys.readouterr().out
    assert code == 1
    assert "\nFAIL: may not move the split 50 % → 75 %" in out
    assert sorted(p.name for p in source.iterdir()) == before  # the evidence folder is not written to
    run = gate_folder(tmp_path)
    verdict = json.loads((run / "verdict.json").read_text())
    assert verdict["verdict"] == "FAIL"
    assert (run / "report.html").is_file() and (run / "junit.xml").is_file()
    assert json.loads((run / "evidence.json").read_text())["sources"] == [str(source.resolve())]
    assert len(pd.read_parquet(run / "observations.parquet")) == 400  # the report's charts have the evidence


def test_gate_pools_several_stored_runs_and_keeps_both_copies_of_a_scenario(tmp_path: Path) -> None:
    first, second = known_failure_run(tmp_path / "a"), known_failure_run(tmp_path / "b")
    observations(200).to_parquet(first / "observations.parquet")
    observations(150).to_parquet(second / "observations.parquet")
    main(["gate", "--current", "50", "--target", "75", "--evidence", str(first), str(second)])
    run = gate_folder(tmp_path)
    assert len(pd.read_parquet(run / "observations.parquet")) == 350
    assert sorted(p.name for p in (run / "chaos").iterdir()) == ["gateway-broker-resets", "gateway-broker-resets-b"]


def test_gate_with_too_little_evidence_is_inconclusive_never_pass(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "run"
    source.mkdir()
    observations(20).to_parquet(source / "observations.parquet")
    assert main(["gate", "--current", "50", "--target", "75", "--evidence", str(source)]) == 2
    assert "\nINCONCLUSIVE" in capsys.readouterr().out


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
    assert "moved to 25\n" in out and "rolled back to the previous step, 10\n" in out
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


def chaos_criterion(tmp_path: Path) -> dict[str, object]:
    verdict = json.loads((gate_folder(tmp_path) / "verdict.json").read_text())
    return next(c for c in verdict["criteria"] if c["name"] == "chaos invariants") | {"headline": verdict["headline"]}


def test_a_known_failure_given_as_evidence_never_passes_the_chaos_criterion(tmp_path: Path) -> None:
    run = known_failure_run(tmp_path / "run")
    assert main(["gate", "--current", "50", "--target", "75", "--evidence", str(run), "--collect", "chaos"]) == 1
    chaos = chaos_criterion(tmp_path)
    assert chaos["status"] == "FAIL" and "known failure in gateway-broker-resets" in str(chaos["detail"])
    out = gate_folder(tmp_path)
    case = ET.fromstring((out / "junit.xml").read_text()).find(".//testsuite[@name='chaos']/testcase")
    assert case is not None and case.find("skipped").get("type") == "pytest.xfail"  # type: ignore[union-attr]
    assert "| gateway-broker-resets | known-failure |" in (out / "summary.md").read_text()


def test_a_known_failure_accepted_in_the_thresholds_passes_the_chaos_criterion_and_says_so(tmp_path: Path) -> None:
    from harness.gate.decide import DEFAULT_THRESHOLDS

    run = known_failure_run(tmp_path / "run")
    thresholds = tmp_path / "thresholds.toml"
    thresholds.write_text(DEFAULT_THRESHOLDS.read_text().replace(
        "accepted_known_failures = {}",
        'accepted_known_failures = { gateway-broker-resets = "the duplicate run is idempotent for our users" }'))
    main(["gate", "--current", "50", "--target", "75", "--evidence", str(run), "--thresholds", str(thresholds)])
    chaos = chaos_criterion(tmp_path)
    assert chaos["status"] == "PASS"
    assert "accepting the known failure of gateway-broker-resets" in str(chaos["headline"])
    assert "accepting the known failure of gateway-broker-resets (the duplicate run is idempotent" in str(
        chaos["detail"])


PLAN = "10,25,50,75,phase2@90,100,decommission"


def test_rollout_dry_run_prints_every_step_and_move_with_its_scenarios_and_starts_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import subprocess

    import harness.gate.cli as gate_cli

    monkeypatch.setenv("HARNESS_REPORTS", str(tmp_path / "reports"))
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: pytest.fail(f"a process was started: {a}"))
    monkeypatch.setattr(gate_cli, "gather", lambda *a, **k: pytest.fail("gathered on a dry run"))
    assert main(["rollout", "--plan", PLAN, "--dry-run"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    steps = {line.split()[0]: line.split()[1:] for line in lines[1:8]}
    assert steps == {"10": ["1", "10", "%", "-"], "25": ["1", "25", "%", "-"], "50": ["1", "50", "%", "-"],
                     "75": ["1", "75", "%", "-"], "phase2@90": ["2", "90", "%", "safe"],
                     "100": ["2", "100", "%", "safe"], "decommission": ["3", "100", "%", "safe"]}

    def move(name: str) -> str:
        (line,) = [x for x in lines if x.startswith(name + " ")]
        return line

    for split in ("10 → 25", "25 → 50", "50 → 75", "phase2@90 → 100"):
        assert move(split).endswith("celery-worker-kill-acks-late, executor-3-outage-recovers, celery-broker-latency")
    assert move("75 → phase2@90").endswith("celery-broker-latency, fallback-safe-reply-resets")
    assert move("100 → decommission").endswith("decommission-safe-drain, decommission-then-legacy-submission")
    assert "parity pairs" in move("50 → 75")
    assert "--max-time 170 s" in out
    assert not (tmp_path / "reports").exists()


def test_rollout_dry_run_of_naive_procedures_and_chosen_chaos(capsys: pytest.CaptureFixture[str],
                                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_REPORTS", str(tmp_path / "reports"))
    assert main(["rollout", "--plan", "75,phase2@90:naive,decommission:naive", "--dry-run", "--chaos",
                 "celery-broker-latency"]) == 0
    lines = capsys.readouterr().out.splitlines()
    (p2,) = [x for x in lines if x.startswith("75 → phase2@90:naive ")]
    (p3,) = [x for x in lines if x.startswith("phase2@90:naive → decommission:naive ")]
    assert p2.endswith("celery-broker-latency, fallback-naive-reply-resets, fallback-naive-broker-partition")
    assert p3.endswith("celery-broker-latency, decommission-naive-drain, decommission-then-legacy-submission")
    assert "executor-3-outage-recovers" not in p2
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize("argv, fragment", [
    (["--plan", "75,phase2@90,decommission,100"], "step 'decommission' must be the last step"),
    (["--plan", "75,decommission"], "comes before phase 2"),
    (["--plan", "10,25", "--steps", "10,25"], "needs exactly one of --steps"),
    ([], "needs exactly one of --steps"),
])
def test_rollout_refuses_a_bad_plan_with_exit_3_before_anything_starts(
        argv: list[str], fragment: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import harness.gate.cli as gate_cli

    monkeypatch.setenv("HARNESS_REPORTS", str(tmp_path / "reports"))
    monkeypatch.setattr(gate_cli, "gather", lambda *a, **k: pytest.fail("gathered for a bad plan"))
    assert main(["rollout", *argv]) == 3
    captured = capsys.readouterr()
    assert fragment in captured.err
    assert "rollout" not in captured.out
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize("report_module", [True, False], ids=["with-report", "without-report"])
def test_rollout_plan_gathers_transition_evidence_and_rolls_back_across_the_phase_on_fail(
        report_module: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    import harness.gate.cli as gate_cli
    from harness.gate.decide import Evidence, TransitionCheck, Verdict
    from harness.gate.plan import TRANSITION_SCENARIOS

    transition_names = {n for names in TRANSITION_SCENARIOS.values() for n in names}
    if not report_module:
        monkeypatch.setitem(sys.modules, "harness.report.rollout", None)  # its import fails: the fallback
    monkeypatch.setenv("HARNESS_REPORTS", str(tmp_path))
    gathered: list[tuple[float, float, str | None, list[str]]] = []

    def fake_gather(args: argparse.Namespace, run: RunFolder, thresholds: object, say: object,
                    state: Step | None = None) -> gate_cli.Rounds:
        chaos = list(args.chaos or [])
        gathered.append((args.current, args.target, state.text if state else None, chaos))
        for name in chaos:
            if name in transition_names:  # a transition scenario's findings, both paths, as the runner stores them
                part = run.path / "chaos" / name
                part.mkdir(parents=True)
                pd.DataFrame([{"scenario": name, "path": p, "outcome": "held", "duplicated": 0, "unexpected": 0,
                               "lost": 0, "stuck": 0, "violations": []} for p in ("legacy", "celery")]).to_parquet(
                    part / "findings.parquet")
        return gate_cli.Rounds({}, 1.0)

    verdicts: Iterator[Status] = iter(["PASS", "FAIL", "PASS"])
    seen: list[tuple[Evidence, float, float]] = []

    def fake_decide(evidence: Evidence, current: float, target: float, thresholds: object) -> Verdict:
        seen.append((evidence, current, target))
        v = next(verdicts)
        return Verdict(v, {"PASS": 0, "FAIL": 1}[v], f"{v}: {current:g} → {target:g}", (), {}, current, target)

    monkeypatch.setattr(gate_cli, "gather", fake_gather)
    monkeypatch.setattr(gate_cli, "decide", fake_decide)
    assert main(["rollout", "--plan", "75,phase2@90,100"]) == 1
    out = capsys.readouterr().out

    assert [(c, t, s) for c, t, s, _ in gathered] == [(75, 90, "75"), (90, 100, "phase2@90")]  # stopped at FAIL
    assert "fallback-safe-reply-resets" in gathered[0][3] and "fallback-safe-reply-resets" not in gathered[1][3]
    (p2_evidence, _, _), (split_evidence, _, _) = seen
    assert p2_evidence.transition is not None
    assert (p2_evidence.transition.move, p2_evidence.transition.kind) == ("75 → phase2@90", "phase2")
    assert p2_evidence.transition.checks == (TransitionCheck("fallback-safe-reply-resets", 0, 0, 0, "held"),)
    assert split_evidence.transition is None
    assert [(c, t) for _, c, t in seen] == [(75, 90), (90, 100)]

    assert "rollout 75 → phase2@90 → 100" in out
    assert "== 75 → phase2@90 (run" in out and "== phase2@90 → 100 (run" in out
    assert "moved to phase2@90\n" in out
    assert "rolled back to the previous step, 75\n" in out
    (doc_path,) = tmp_path.glob("*/rollout.json")
    doc = json.loads(doc_path.read_text())
    assert doc["plan"] == "75,phase2@90,100"
    assert doc["exit_code"] == 1 and doc["final_step"] == "75"
    assert [(m["from"], m["to"], m["kind"], m["verdict"]) for m in doc["moves"]] == [
        ("75", "phase2@90", "phase2", "PASS"), ("phase2@90", "100", "split", "FAIL")]
    assert doc["moves"][1]["action"] == "rolled back to the previous step, 75"
    assert [s["phase"] for s in doc["steps"]] == [1, 2, 2]
    for m in doc["moves"]:
        assert (Path(m["run"]) / "verdict.json").is_file()
    if not report_module:
        assert f"rollout.json: {doc_path}" in out


def test_rollout_plan_inconclusive_on_the_decommission_stays_and_exits_2(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    import harness.gate.cli as gate_cli
    from harness.gate.decide import Evidence, Thresholds, Verdict
    from harness.gate.decide import decide as real_decide

    monkeypatch.setitem(sys.modules, "harness.report.rollout", None)
    monkeypatch.setenv("HARNESS_REPORTS", str(tmp_path))
    monkeypatch.setattr(gate_cli, "gather", lambda *args, **kwargs: gate_cli.Rounds({}, 1.0))  # no findings at all
    seen: list[tuple[Evidence, float, float]] = []

    def spy(evidence: Evidence, current: float, target: float, thresholds: Thresholds) -> Verdict:
        seen.append((evidence, current, target))
        if evidence.transition is None:
            return Verdict("PASS", 0, "PASS", (), {}, current, target)
        return real_decide(evidence, current, target, thresholds)

    monkeypatch.setattr(gate_cli, "decide", spy)
    assert main(["rollout", "--plan", "phase2@90,100,decommission"]) == 2
    out = capsys.readouterr().out
    assert [(c, t) for _, c, t in seen] == [(90, 100), (100, 100)]
    last = seen[-1][0].transition
    assert last is not None and (last.kind, last.checks) == ("decommission", ())
    assert "stays at 100\n" in out
    doc = json.loads(next(tmp_path.glob("*/rollout.json")).read_text())
    assert doc["final_step"] == "100" and doc["moves"][-1]["verdict"] == "INCONCLUSIVE"


def test_the_split_counts_only_what_the_gateway_routed(tmp_path: Path) -> None:
    """At 100 % a control group is forced to legacy (--route control): those evaluations are latency and
    error evidence, not evidence about the split."""
    rows = [{"request_type": "E2E", "name": path, "status": "completed", "response_time_ms": 50.0, "forced": forced}
            for path, forced in [("legacy", True)] * 3 + [("celery", False)] * 4]
    pd.DataFrame(rows).to_parquet(tmp_path / "load_requests.parquet")
    evidence = collect([tmp_path], configured_percentage=100)
    assert evidence.split is not None and (evidence.split.routed, evidence.split.to_celery) == (4, 4)
    assert evidence.latency is not None and len(evidence.latency.samples_ms["legacy"]) == 3


def test_evidence_given_twice_or_drawn_with_the_same_seed_is_refused_and_evaluations_count_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        folder.mkdir()
        frame = observations(100)
        frame["language"], frame["code"] = "python", [f"print({i})" for i in range(100)]
        frame["eval_ids"] = [f"{folder.name}-{i}" for i in range(100)]
        frame.to_parquet(folder / "observations.parquet")
    step = ["gate", "--current", "50", "--target", "75", "--evidence"]
    assert main([*step, str(first), str(first)]) == 3
    assert "the same run folder twice" in capsys.readouterr().err
    assert main([*step, str(first), str(second)]) == 3
    assert "not independent draws" in capsys.readouterr().err
    # the same evaluations stored in a subfolder and at the top count once
    (first / "part").mkdir()
    (first / "observations.parquet").rename(first / "part" / "observations.parquet")
    frame = pd.read_parquet(first / "part" / "observations.parquet")
    frame.iloc[:10].to_parquet(first / "observations.parquet")
    main([*step, str(first)])
    assert len(pd.read_parquet(gate_folder(tmp_path) / "observations.parquet")) == 100
