"""Reports from synthetic run folders: the frames, the charts, the three writers and the command."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from harness.gate import ErrorCount, Evidence, LatencyEvidence, ParityEvidence, decide, load_thresholds
from harness.history import History
from harness.report import build_frames, build_reports, charts, read_run, render_html, render_junit
from harness.report.cli import main
from harness.report.frames import (
    ReportError,
    chaos_executions,
    chaos_operations,
    fault_windows,
    latency_percentiles,
    latency_samples,
    mismatch_samples,
    parity_classes,
    parity_fields,
    throughput,
)
from harness.report.html import diff_html

T0 = 1_800_000_000.0  # epoch seconds of the synthetic load run

# -- literal run folders --------------------------------------------------------------------------------------


def observation(cls: str = "matched", *, code: str = "print('hi')\n", language: str = "python", legacy: str = "hi\n",
                celery: str | None = None, differing: str = "", candidate_wrong: str = "", control_wrong: str = "",
                failing: bool | None = None, ms: tuple[float, float] = (20.0, 25.0)) -> dict[str, Any]:
    """One row of observations.parquet as harness.parity.suite.observations_frame writes it."""
    row: dict[str, Any] = {
        "eval_ids": f"e-{abs(hash((code, cls))) % 10**8}", "plan": "both", "language": language,
        "lines": len(code.splitlines()), "code": code, "spec": "{}", "cls": cls,
        "failing": failing if failing is not None else cls in ("mismatched", "wrong"), "noise_checked": cls != "matched",
        "differing": differing, "control_wrong": control_wrong, "candidate_wrong": candidate_wrong,
        "normaliser_hits": json.dumps({"temp-path": 1}),
    }
    for path, output, duration in (("legacy", legacy, ms[0]), ("celery", legacy if celery is None else celery, ms[1])):
        row.update({f"{path}_status": "completed", f"{path}_output": output, f"{path}_error": "",
                    f"{path}_exit_code": 0, f"{path}_timed_out": False, f"{path}_truncated": False,
                    f"{path}_duration_ms": duration})
    row.update({"oracle_status": "completed", "oracle_output": legacy, "oracle_exit_code": 0,
                "oracle_timed_out": False, "oracle_truncated": False})
    return row


def observations() -> pd.DataFrame:
    return pd.DataFrame([
        observation(), observation(code="print(1)\n", legacy="1\n"),
        observation("noise", code="import random\n", failing=False),
        observation("mismatched", code="import sys\nsys.stdout.write('hello\\n')\n", legacy="hello\n", celery="hello",
                    differing="output", candidate_wrong="output"),
        observation("mismatched", code="import sys\nsys.stdout.write('hello\\n')\n", legacy="hello\n", celery="hello",
                    differing="output", candidate_wrong="output"),  # the shrinker's re-check of the same program
        observation("mismatched", code="import sys\n\nsys.stdout.write('a much longer hello\\n')\n",
                    legacy="a much longer hello\n", celery="a much longer hello", differing="output",
                    candidate_wrong="output"),
        observation("wrong", code="printf 'x'\n", language="bash", legacy="x", celery="x", candidate_wrong="exit_code",
                    control_wrong="exit_code"),
    ])


def load_requests() -> pd.DataFrame:
    """Two paths over 3 seconds: submissions (POST) and evaluations followed to their end (E2E)."""
    rows = []
    for i in range(30):
        path = ("legacy", "celery")[i % 2]
        start = T0 + i * 0.1
        e2e_ms = 100.0 + i if path == "legacy" else 150.0 + i
        rows.append({"time": start, "end_time": start + 0.01, "request_type": "POST", "name": "submit", "path": path,
                     "response_time_ms": 10.0, "ok": True})
        rows.append({"time": start, "end_time": start + e2e_ms / 1000, "request_type": "E2E", "name": path,
                     "path": path, "response_time_ms": e2e_ms, "ok": i != 29})  # the last one failed
    frame = pd.DataFrame(rows)
    for column in ("time", "end_time"):
        frame[column] = pd.to_datetime(frame[column], unit="s", utc=True)  # as harness.load.frames stores them
    return frame


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def chaos_history() -> pd.DataFrame:
    """A probe, two submissions before a fault, one (unknown outcome) during it, the heal."""
    clock = Clock()
    h = History(clock)
    probe = h.invoke("probe-celery", "probe", path="celery", value={"probe": "before"})
    clock.now = 0.05
    h.complete(probe, "ok", eval_id="p1", value={"eval_id": "p1", "routes": ["celery"]})
    for n, (eval_id, path) in enumerate((("a", "legacy"), ("b", "celery"))):
        clock.now = 1.0 + n
        op = h.invoke(n, "submit", path=path, value={"marker": f"m-{eval_id}"})
        clock.now += 0.02
        h.complete(op, "ok", eval_id=eval_id, value={"eval_id": eval_id, "routes": [path]})
    clock.now = 3.0
    h.nemesis_start("kill worker", "kill", "celery-worker-1")
    op = h.invoke(2, "submit", value={"marker": "m-c"})  # dual-write: no forced path
    clock.now = 3.5
    h.complete(op, "info", error="timeout")
    clock.now = 5.0
    h.nemesis_stop("kill worker", "kill", "celery-worker-1")
    h.nemesis_start("partition", "disable", "celery-executor-3")  # never healed in this history
    clock.now = 6.0
    return h.to_frame()


def ledger() -> pd.DataFrame:
    """Wall-clock executions: probe p1 and b start 10 ms after their invokes; b runs twice."""
    wall = T0 + 100
    rows = [("p1", "celery", 1, 0.01), ("a", "legacy", 1, 1.2), ("b", "celery", 1, 2.01), ("b", "celery", 2, 4.0)]
    return pd.DataFrame([{"eval_id": e, "path": p, "attempt": a, "executor_id": "executor-3", "started_at": wall + t,
                          "finished_at": wall + t + 0.5, "exit_code": 0, "outcome": "completed"} for e, p, a, t in rows])


def evaluations() -> pd.DataFrame:
    return pd.DataFrame([
        {"eval_id": "a", "path": "legacy", "cls": "ok", "submit": "ok", "executions": 1, "status": "completed",
         "detail": "status 'completed'"},
        {"eval_id": "b", "path": "celery", "cls": "duplicated", "submit": "ok", "executions": 2, "status": "completed",
         "detail": "executed 2x"},
        {"eval_id": "c", "path": "celery", "cls": "lost", "submit": "info", "executions": 0, "status": None,
         "detail": "never executed"},
    ])


def findings(scenario: str, outcomes: dict[str, str], errors: tuple[str, ...] = ()) -> pd.DataFrame:
    """findings.parquet as harness.chaos.findings writes it: one row per path."""
    broke = ("failed", "known-failure")
    return pd.DataFrame([{
        "scenario": scenario, "path": path, "config": "-", "stack": "processes", "seed": 0, "submitted": 3, "acked": 2,
        "failed": 0, "info": 1, "ok": 1, "recovered": 0, "lost": int(outcome in broke), "duplicated": 1,
        "unexpected": 0, "stuck": 0, "wrong": 0, "error": 0, "unknown": 0, "misrouted": 0, "max_executions": 2,
        "dead_lettered": 0, "still_queued": 0, "recovery_s": 0.5, "outcome": outcome,
        "known_failure": "kombu drops it" if outcome == "known-failure" else None,
        "violations": ["lost 1 > 0"] if outcome in broke else [], "notes": [], "errors": list(errors),
        "elapsed_s": 10.0} for path, outcome in outcomes.items()])


def verdict_doc(*, latency_shift_ms: float = 0.0) -> dict[str, Any]:
    """A real Verdict.to_dict(): parity fails its critical field, latency passes, the rest is missing."""
    rng = np.random.default_rng(0)
    samples = {p: (rng.normal(200, 20, 300) + (latency_shift_ms if p == "celery" else 0)).tolist()
               for p in ("legacy", "celery")}
    evidence = Evidence(parity=ParityEvidence(400, 1, {"exit_code": 1}, {"legacy": 0, "celery": 0}, 0),
                        latency=LatencyEvidence(samples, {"legacy": ErrorCount(300, 0), "celery": ErrorCount(300, 0)}))
    return decide(evidence, 10, 25, load_thresholds()).to_dict()


def write_run(folder: Path, *, parity: bool = True, load: bool = True, chaos: bool = True,
              verdict: dict[str, Any] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run.json").write_text(json.dumps({"run_id": folder.name, "seed": 7, "launcher": "processes",
                                                 "config": {"celery_percentage": 50}, "versions": {"python": "3"}}))
    if parity:
        observations().to_parquet(folder / "observations.parquet", index=False)
    if load:
        requests = load_requests()
        requests.to_parquet(folder / "load_requests.parquet", index=False)
    if chaos:
        for name, outcomes, errors in (("worker-kill", {"legacy": "held", "celery": "failed"}, ()),
                                       ("broker-latency", {"celery": "held"}, ()),
                                       ("partition", {"celery": "known-failure"}, ()),
                                       ("broken", {"celery": "error"}, ("stack did not start",))):
            scenario = folder / "chaos" / name
            scenario.mkdir(parents=True)
            chaos_history().to_parquet(scenario / "history.parquet", index=False)
            ledger().to_parquet(scenario / "executions.parquet", index=False)
            evaluations().to_parquet(scenario / "evaluations.parquet", index=False)
            findings(name, outcomes, errors).to_parquet(scenario / "findings.parquet", index=False)
            (scenario / "result.json").write_text(json.dumps({
                "scenario": name, "errors": list(errors), "seed": 7, "description": f"the claim of {name}",
                "config": {"celery": "early ack, vt 4s"}, "replay": [f"harness chaos {name} --seed 7"]}))
    if verdict is not None:
        (folder / "verdict.json").write_text(json.dumps(verdict))
    return folder


# -- frames ----------------------------------------------------------------------------------------------------


def test_parity_classes_count_programs_in_scientists_order_with_failures() -> None:
    classes = parity_classes(observations())
    assert list(classes["cls"]) == ["matched", "mismatched", "noise", "wrong"]
    assert list(classes["programs"]) == [2, 3, 1, 1]
    assert list(classes["failing"]) == [0, 3, 0, 1]
    assert classes["share"].sum() == pytest.approx(1.0)


def test_parity_fields_count_differences_and_oracle_disagreements_per_field() -> None:
    fields = parity_fields(observations()).set_index("field")
    assert fields.loc["output", "differing"] == 3 and fields.loc["output", "candidate_wrong"] == 3
    assert fields.loc["exit_code", "control_wrong"] == 1 and fields.loc["exit_code", "differing"] == 0
    assert "status" not in fields.index  # fields nobody disagreed on are left out


def test_mismatch_samples_are_distinct_programs_smallest_first_one_per_kind_before_repeats() -> None:
    samples = mismatch_samples(observations(), limit=3)
    assert samples.attrs["total"] == 3  # the re-checked duplicate counts once
    assert samples["code"].is_unique
    assert list(samples["language"]) == ["bash", "python", "python"]  # one of each kind first, smallest first
    assert samples.iloc[1]["code"] == "import sys\nsys.stdout.write('hello\\n')\n"  # the smaller python one


def test_latency_is_per_measure_and_path_from_successful_requests_with_the_gates_percentiles() -> None:
    table = latency_percentiles(latency_samples(load_requests(), observations()))
    keys = list(zip(table["measure"], table["path"], strict=True))
    assert keys == [("end-to-end", "legacy"), ("end-to-end", "celery"), ("submit", "legacy"), ("submit", "celery"),
                    ("execution", "legacy"), ("execution", "celery")]
    e2e = table[(table["measure"] == "end-to-end") & (table["path"] == "celery")].iloc[0]
    celery_ok = [150.0 + i for i in range(1, 29, 2)]  # i = 29 failed and is left out
    assert e2e["n"] == len(celery_ok)
    assert e2e["p50"] == pytest.approx(np.percentile(celery_ok, 50))
    assert e2e["p99"] == pytest.approx(np.percentile(celery_ok, 99))


def test_throughput_counts_completions_per_second_they_ended_and_submissions_per_path() -> None:
    tp = throughput(load_requests())
    completed = tp[tp["kind"] == "completed"].groupby("path")[["requests", "failures"]].sum()
    assert completed.loc["legacy", "requests"] == 15 and completed.loc["celery", "failures"] == 1
    submitted = tp[tp["kind"] == "submitted"]
    assert submitted["requests"].sum() == 30 and list(submitted["second"].unique()) == [0, 1, 2]


def test_throughput_falls_back_to_load_stats() -> None:
    stats = pd.DataFrame({"second": [0, 0, 1], "request_type": ["E2E", "POST", "E2E"], "name": ["celery", "submit", "celery"],
                          "path": ["celery", None, "celery"], "requests": [4, 6, 5], "failures": [0, 0, 1]})
    tp = throughput(None, stats)
    assert list(tp[tp["kind"] == "completed"]["requests"]) == [4, 5]
    assert tp[tp["kind"] == "submitted"]["path"].tolist() == ["unrouted"]


def test_fault_windows_pair_starts_with_stops_and_leave_an_unhealed_fault_open() -> None:
    windows = fault_windows(chaos_history())
    assert list(windows["fault"]) == ["kill worker", "partition"]
    assert windows.iloc[0]["start"] == 3.0 and windows.iloc[0]["stop"] == 5.0
    assert np.isnan(windows.iloc[1]["stop"])


def test_chaos_operations_time_each_op_and_mark_what_the_checker_flagged() -> None:
    ops = chaos_operations(chaos_history(), evaluations())
    assert list(ops["f"]) == ["probe", "submit", "submit", "submit"]
    assert list(ops["path"]) == ["celery", "legacy", "celery", "dual"]
    assert list(ops["outcome"]) == ["ok", "ok", "ok", "info"]
    assert ops.iloc[3]["duration_ms"] == pytest.approx(500)
    assert list(ops["cls"].fillna("-")) == ["-", "-", "duplicated", "-"]  # c never got an id: not matched


def test_chaos_executions_are_aligned_on_the_history_clock() -> None:
    ops = chaos_operations(chaos_history(), evaluations())
    execs = chaos_executions(ops, ledger())
    assert execs["time"].tolist() == pytest.approx([0.0, 1.19, 2.0, 3.99])  # the probe started at its invoke
    assert execs["repeat"].tolist() == [False, False, False, True]
    assert chaos_executions(ops, ledger().assign(eval_id="unknown")).empty  # nothing in common: no timeline


def test_read_run_refuses_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no such run folder"):
        read_run(tmp_path / "nope")


def test_chaos_scenarios_read_the_stored_outcome_of_every_scenario_worst_path_first(tmp_path: Path) -> None:
    f = build_frames(read_run(write_run(tmp_path / "run", parity=False, load=False)))
    outcomes = dict(zip(f.chaos_scenarios["scenario"], f.chaos_scenarios["outcome"], strict=True))
    assert outcomes == {"broken": "error", "broker-latency": "held", "worker-kill": "failed",
                        "partition": "known-failure"}
    detail = f.chaos_scenarios.set_index("scenario")["detail"]
    assert "lost 1 > 0" in detail["worker-kill"] and "stack did not start" in detail["broken"]
    assert "known failure: kombu drops it" in detail["partition"]
    assert len(f.chaos_findings) == 5  # one row per scenario and path


def test_findings_without_an_outcome_word_are_unknown_never_held(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    old = findings("old-run", {"celery": "held"}).drop(columns=["outcome"]).assign(verdict="pass")
    old.to_parquet(run / "findings.parquet", index=False)
    f = build_frames(read_run(run))
    assert f.chaos_scenarios.iloc[0]["outcome"] is None
    case = ET.fromstring(render_junit(f)).find(".//testcase[@name='old-run']")
    assert case is not None and case.find("skipped") is not None


def test_a_run_level_combined_findings_table_is_read_for_scenarios_without_a_folder(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    pd.concat([findings("only-here", {"celery": "held"})]).to_parquet(run / "findings.parquet", index=False)
    f = build_frames(read_run(run))
    assert list(f.chaos_scenarios["scenario"]) == ["only-here"] and f.chaos_scenarios.iloc[0]["outcome"] == "held"


# -- charts ----------------------------------------------------------------------------------------------------


def test_charts_are_none_without_data_and_svg_with_it() -> None:
    empty = latency_samples(None, None)
    assert charts.latency_chart(empty, latency_percentiles(empty), "load", "end-to-end") is None
    assert charts.throughput_chart(throughput(None)) is None
    assert charts.timeline_chart("x", chaos_operations(None), fault_windows(None)) is None
    assert charts.parity_fields_chart(parity_fields(pd.DataFrame([observation()]))) is None
    chart = charts.throughput_chart(throughput(load_requests()))
    assert chart is not None and chart.svg.lstrip().startswith("<?xml") and "<svg" in chart.svg
    assert "legacy 15 completed" in chart.alt


def test_paths_keep_their_colours_everywhere() -> None:
    assert charts.path_colour("legacy") != charts.path_colour("celery")
    assert charts.path_colour("both") == charts.path_colour("dual")
    assert charts.path_colour("somewhere") == charts.path_colour("somewhere")


# -- writers ---------------------------------------------------------------------------------------------------


SECTIONS = ("verdict", "parity", "latency", "throughput", "chaos", "run")


def sections(page: str) -> set[str]:
    return set(re.findall(r'<section id="([a-z]+)"', page))


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], dict[str, str]]:
    """A run folder with every part, its reports built once: (folder, verdict.json, {output: text})."""
    doc = verdict_doc()
    run = write_run(tmp_path_factory.mktemp("full") / "run", verdict=doc)
    return run, doc, {key: path.read_text() for key, path in build_reports(run).items()}


def test_the_html_report_has_every_section_with_a_verdict_at_the_top(full: tuple[Path, dict[str, Any],
                                                                              dict[str, str]]) -> None:
    page = full[2]["report.html"]
    assert sections(page) == set(SECTIONS)
    assert page.index('id="verdict"') < page.index('id="parity"') < page.index('id="chaos"')
    assert "celery is wrong: the paths differ on output" in page and 'class="del"' in page  # a sample with its diff
    assert "the claim of worker-kill" in page and "harness chaos worker-kill --seed 7" in page
    assert "<th class=num>stuck</th>" in page  # a bounded class is shown at zero too
    assert page.count("<img ") == 2 + 3 + 1 + 4  # parity (2), latency (3), throughput, a timeline per scenario
    assert "kill worker" in page and "not healed" in page


def test_the_html_report_is_self_contained(full: tuple[Path, dict[str, Any], dict[str, str]]) -> None:
    page = full[2]["report.html"]
    assert "<script" not in page and "<link" not in page and "@import" not in page and "url(" not in page
    assert not re.findall(r'(?:src|href)="(?!data:|#)', page)  # images are data URIs, links are anchors


def test_the_html_report_omits_absent_parts(tmp_path: Path) -> None:
    page = render_html(build_frames(read_run(write_run(tmp_path / "run", load=False, chaos=False))))
    assert sections(page) == {"parity", "latency", "run"}  # latency: the executors' duration_ms only
    assert "End-to-end" not in page and "Throughput" not in page and "Chaos" not in page
    empty = tmp_path / "empty"
    empty.mkdir()
    page = render_html(build_frames(read_run(empty)))
    assert sections(page) == set() and "holds no evidence yet" in page and "<img" not in page


def test_an_unreadable_file_is_reported_and_the_rest_still_shown(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", load=False, chaos=False)
    (run / "verdict.json").write_text("{not json")
    (run / "load_requests.parquet").write_bytes(b"not parquet")
    data = read_run(run)
    assert len(data.problems) == 2 and data.verdict is None and data.load_requests is None
    page = render_html(build_frames(data))
    assert "could not be read" in page and "load_requests.parquet" in page and 'id="parity"' in page


def test_diffs_show_the_invisible_difference_around_the_first_differing_character() -> None:
    legacy, celery = diff_html("line\n" * 100 + "end\n", "line\n" * 100 + "end")
    assert legacy.endswith('end<span class="del"><span class="ws">↵</span>\n</span>')
    assert celery.endswith("end") and "… 485 characters …" in celery
    assert diff_html("a<b", "a>b") == ('a<span class="del">&lt;</span>b', 'a<span class="ins">&gt;</span>b')


def test_junit_has_failures_exactly_for_fail_criteria_and_failed_chaos_or_parity(
        full: tuple[Path, dict[str, Any], dict[str, str]]) -> None:
    _, doc, texts = full
    root = ET.fromstring(texts["junit.xml"])
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    gate = suites["gate"]
    failed = {c.get("name") for c in gate.iter("testcase") if c.find("failure") is not None}
    assert failed == {c["name"] for c in doc["criteria"] if c["status"] == "FAIL"} == {"critical fields"}
    skipped = {c.get("name") for c in gate.iter("testcase") if c.find("skipped") is not None}
    assert skipped == {c["name"] for c in doc["criteria"] if c["status"] == "INCONCLUSIVE"}
    assert gate.get("tests") == str(len(doc["criteria"])) and gate.get("failures") == "1"
    chaos = {c.get("name"): c for c in suites["chaos"].iter("testcase")}
    assert chaos["worker-kill"].find("failure") is not None and chaos["broken"].find("error") is not None
    assert len(chaos["broker-latency"]) == 0 or chaos["broker-latency"].find("failure") is None
    assert chaos["worker-kill"].get("time") == "10.000"  # the scenario's own time, not 0
    xfail = chaos["partition"].find("skipped")  # a known failure: an xfail, as pytest reports it
    assert xfail is not None and xfail.get("type") == "pytest.xfail" and "kombu drops it" in xfail.get("message", "")
    parity = next(suites["parity"].iter("testcase"))
    assert "4 of 7 programs" in parity.find("failure").get("message", "")  # type: ignore[union-attr]
    assert root.get("failures") == "3" and root.get("errors") == "1"


def test_junit_without_a_verdict_or_evidence_is_an_empty_but_valid_document(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    root = ET.fromstring(render_junit(build_frames(read_run(tmp_path / "run"))))
    assert root.tag == "testsuites" and root.get("tests") == "0" and not list(root)


def test_the_markdown_summary_leads_with_the_verdict(full: tuple[Path, dict[str, Any], dict[str, str]]) -> None:
    _, doc, texts = full
    text = texts["summary.md"]
    assert text.startswith(f"# Run run: {doc['verdict']}\n\n{doc['headline']}")
    for heading in ("## Parity", "## Latency", "## Throughput", "## Chaos"):
        assert heading in text
    assert "| worker-kill | failed |" in text and "| partition | known-failure |" in text


# -- build_reports and the command -----------------------------------------------------------------------------


def test_build_reports_rebuilds_the_same_three_files_from_the_stored_data(
        full: tuple[Path, dict[str, Any], dict[str, str]]) -> None:
    run, _, first = full
    written = build_reports(run)
    assert written == {name: run / name for name in ("summary.md", "report.html", "junit.xml")}
    assert {k: p.read_text() for k, p in written.items()} == first  # deterministic, charts included
    assert not list(run.glob(".*.tmp"))


def test_the_command_prints_the_paths_and_explains_a_missing_folder(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    run = write_run(tmp_path / "run", parity=False, load=False, chaos=False, verdict=verdict_doc())
    assert main([str(run)]) == 0
    assert capsys.readouterr().out.split() == [str(run / n) for n in ("summary.md", "report.html", "junit.xml")]
    assert main([str(tmp_path / "missing")]) == 3
    assert "no such run folder" in capsys.readouterr().err


def test_the_command_finds_a_run_id_under_the_reports_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    write_run(tmp_path / "20260101-000000-abcd", parity=False, load=False, chaos=False)
    monkeypatch.setenv("HARNESS_REPORTS", str(tmp_path))
    assert main(["20260101-000000-abcd"]) == 0
    assert "20260101-000000-abcd/report.html" in capsys.readouterr().out


# -- the gate's stages, noise floor and rounds ----------------------------------------------------------------


def gate_blocks(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with the ``stages``, ``noise_floor`` and ``sequential`` blocks ``harness gate`` writes."""
    def summary(n: int, p50: float, lower: float | None, upper: float | None) -> dict[str, Any]:
        return {"n": n, "p50": p50, "p95": 2 * p50, "lower": lower, "upper": upper}

    stages = {path: {key: summary(n, p50 + shift, p50 + shift - 1, p50 + shift + 1) for key, p50 in (
        ("submit", 4.9), ("queue", 2.4), ("execution", 20.5), ("delivery", 9.9), ("overhead", 16.8),
        ("end_to_end", 52.1), ("cpu_ms", 12.1), ("peak_rss_kb", 10828.0))}
        for path, n, shift in (("legacy", 418, 0.0), ("celery", 428, 16.0))}
    stages["celery"]["queue"]["upper"] = None  # an infinite bound
    looks = [{"round": 1, "elapsed_s": 61.3, "statuses": {"parity mismatch rate": "INCONCLUSIVE",
                                                          "latency (queueing + delivery)": "INCONCLUSIVE"},
              "samples": {"parity mismatch rate": 160, "latency (queueing + delivery)": 210}},
             {"round": 2, "elapsed_s": 102.8, "statuses": {"parity mismatch rate": "PASS",
                                                           "latency (queueing + delivery)": "FAIL"},
              "samples": {"parity mismatch rate": 320, "latency (queueing + delivery)": None}}]
    return {**doc, "stages": stages,
            "noise_floor": {"latency (queueing + delivery)": 1.032, "execution time": 0.3265, "resources": None},
            "sequential": {"method": "anytime-valid confidence sequences", "plan": {"parity_pairs": 304},
                           "max_time_s": 900.0, "looks": looks, "rounds": 2,
                           "stopped": "decided: a criterion failed", "elapsed_s": 102.8}}


def test_the_reports_show_latency_by_stage_the_noise_floor_and_the_rounds(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", parity=False, load=False, chaos=False, verdict=gate_blocks(verdict_doc()))
    texts = {key: path.read_text() for key, path in build_reports(run).items()}
    page, md = texts["report.html"], texts["summary.md"]
    verdict = page[page.index('<section id="verdict"'):page.index("</section>")]
    assert "<h3>Latency by stage</h3>" in verdict and "<h3>How the evidence was gathered</h3>" in verdict
    assert "<th>legacy median [CS]</th>" not in verdict  # numeric columns are right-aligned
    assert "<th class=num>legacy median [CS]</th><th class=num>celery median [CS]</th>" in verdict
    assert "<th class=num>n legacy</th><th class=num>n celery</th>" in verdict
    labels = re.findall(r"<tr><td>(?:<b>)?([^<]+)", verdict[verdict.index("Latency by stage"):])[:8]
    assert labels == ["submit", "queue", "execution", "delivery", "queueing + delivery", "end-to-end",
                      "CPU time (ms)", "peak memory (KiB)"]
    assert '16.8 <span class="cs">[15.8, 17.8]</span>' in verdict and '32.8 <span class="cs">[31.8, 33.8]</span>' in verdict
    assert '18.4 <span class="cs">[17.4, ∞]</span>' in verdict  # a null bound is an infinite one
    assert "10828 " in verdict and ">418<" in verdict and ">428<" in verdict
    assert ("The latency criterion judges queueing + delivery (end-to-end − execution), the stage the migration "
            "changes; execution is judged apart: both paths run the same executor code.") in verdict
    assert ("A/A noise floor: latency (queueing + delivery) 1.0 ms, execution time 0.3 ms, resources not measured"
            in verdict and "what the machine&#x27;s own variation makes of no difference at all" in verdict)
    assert "2 rounds with a look after each, 102.8 s in all (at most 900 s); stopped: decided: a criterion failed." \
        in verdict
    looks = verdict[verdict.index("How the evidence was gathered"):]
    assert "<th>parity mismatch rate</th><th>latency (queueing + delivery)</th>" in looks
    assert looks.count('class="pill INCONCLUSIVE"') == 2 and looks.count('class="pill FAIL"') == 1
    assert '<span class="pill PASS">PASS</span><br><span class=note>n 320</span>' in looks
    assert "| **queueing + delivery** | 16.8 [15.8, 17.8] | 32.8 [31.8, 33.8] | 418 | 428 |" in md
    assert "| queue | 2.4 [1.4, 3.4] | 18.4 [17.4, ∞] | 418 | 428 |" in md
    assert "A/A noise floor: latency (queueing + delivery) 1.0 ms, execution time 0.3 ms" in md
    assert "| 2 | 102.8 | PASS (n 320) | **FAIL** |" in md and "## How the evidence was gathered" in md


def test_a_verdict_without_the_blocks_shows_none_of_them(tmp_path: Path) -> None:
    doc = {k: v for k, v in verdict_doc().items() if k not in ("stages", "noise_floor", "sequential")}
    for name, verdict in (("old", doc), ("empty", {**doc, "stages": {}, "noise_floor": {}, "sequential": {}})):
        run = write_run(tmp_path / name, parity=False, load=False, chaos=False, verdict=verdict)
        texts = {key: path.read_text() for key, path in build_reports(run).items()}
        for text in (texts["report.html"], texts["summary.md"]):
            assert 'id="verdict"' in text or text.startswith("# Run")
            assert "Latency by stage" not in text and "A/A noise floor:" not in text
            assert "How the evidence was gathered" not in text and "median [CS]" not in text


def test_the_criteria_of_a_full_run_link_to_the_sections_showing_their_evidence(tmp_path: Path) -> None:
    doc = verdict_doc()
    doc["criteria"].append({"name": "transition (phase2)", "status": "PASS", "observed": "0", "threshold": "0",
                            "sample_size": 3, "bound": "", "detail": ""})
    run = write_run(tmp_path / "run", verdict=doc)
    built = build_reports(run)
    page, md = built["report.html"].read_text(), built["summary.md"].read_text()
    body = page.split("</nav>", 1)[1]
    links = {name: target for target, name in re.findall(r'<a href="#([a-z]+)">([^<]+)</a>', body)}
    assert set(links.values()) <= sections(page)
    assert links["parity mismatch rate"] == "parity" and links["critical fields"] == "parity"
    assert links["latency (queueing + delivery)"] == "latency" and links["error rate"] == "latency"
    assert links["chaos invariants"] == "chaos" and links["transition (phase2)"] == "chaos"
    md_links = dict(re.findall(r"\[([^\]]+)\]\(#([a-z]+)\)", md))
    assert md_links == {name: target for name, target in links.items()}
    assert "Load settings" not in page and "Load settings" not in md  # no load.json in this folder
