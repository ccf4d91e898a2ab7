"""The stage fields of a load row (``harness.load.rows.stages_of``) and their columns in the requests frame.

Pure: literal records and times, no Locust (``harness.load.rows`` does not import it) and no stack.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from harness.load.frames import REQUEST_COLUMNS, read_rows, requests_frame
from harness.load.rows import COLUMNS, STAGE_FIELDS, make_row, stages_of

QUEUED, STARTED = 1_000.000, 1_000.004  # 4 ms in the queue
FLOAT_STAGES = ("submit_ms", "queue_ms", "execution_ms", "delivery_ms", "cpu_ms")


def result(**over: Any) -> dict[str, Any]:
    base = {"status": "completed", "output": "ok\n", "error": "", "exit_code": 0, "timed_out": False,
            "truncated": False, "duration_ms": 120.5, "executor_id": "executor-1", "attempts": 1,
            "queued_at": QUEUED, "started_at": STARTED, "finished_at": STARTED + 0.125,
            "cpu_ms": 31.25, "peak_rss_kb": 9_876}
    return {**base, **over}


def record(results: dict[str, dict[str, Any]], *, done: bool = True) -> dict[str, Any]:
    return {"eval_id": "e1", "language": "python", "code": "print('ok')", "routes": list(results), "priority": 5,
            "batch": False, "timeout_s": None, "created_at": QUEUED, "results": results, "done": done,
            "fallback": None}


def test_a_single_path_record_is_split_into_its_stages() -> None:
    # Seen 130 ms after the attempt began: 120.5 ms of execution leaves 9.5 ms for delivery.
    stages = stages_of(record({"legacy": result()}), "legacy", submit_ms=2.5, seen_wall=STARTED + 0.130)

    assert list(stages) == list(STAGE_FIELDS)
    assert stages["submit_ms"] == 2.5
    assert stages["queue_ms"] == pytest.approx(4.0, abs=1e-6)
    assert stages["execution_ms"] == 120.5
    assert stages["delivery_ms"] == pytest.approx(9.5, abs=1e-6)
    assert stages["cpu_ms"] == 31.25
    assert stages["peak_rss_kb"] == 9_876 and isinstance(stages["peak_rss_kb"], int)


def test_a_celery_result_retried_counts_the_earlier_attempts_as_queueing() -> None:
    # started_at is the attempt that produced the result: 1.5 s after the gateway enqueued it.
    rec = record({"celery": result(attempts=3, started_at=QUEUED + 1.5, duration_ms=50.0, executor_id="executor-3")})
    stages = stages_of(rec, "celery", submit_ms=3.0, seen_wall=QUEUED + 1.5 + 0.053)

    assert stages["queue_ms"] == pytest.approx(1500.0, abs=1e-6)
    assert stages["delivery_ms"] == pytest.approx(3.0, abs=1e-6)


def test_a_failed_user_program_still_has_its_stages() -> None:
    stages = stages_of(record({"celery": result(status="failed", exit_code=1)}), "celery", submit_ms=1.0,
                       seen_wall=STARTED + 0.2)
    assert stages["execution_ms"] == 120.5 and stages["delivery_ms"] == pytest.approx(79.5, abs=1e-6)


def test_delivery_only_a_rounding_error_below_zero_becomes_zero() -> None:
    rec = record({"legacy": result()})
    rounding = stages_of(rec, "legacy", submit_ms=1.0, seen_wall=STARTED + 0.1205 - 0.0004)  # -0.4 ms
    skewed = stages_of(rec, "legacy", submit_ms=1.0, seen_wall=STARTED + 0.1205 - 0.005)  # -5 ms: clocks
    assert rounding["delivery_ms"] == 0.0
    assert skewed["delivery_ms"] == pytest.approx(-5.0, abs=1e-6)


@pytest.mark.parametrize(("missing", "none"), [
    ("started_at", {"queue_ms", "delivery_ms"}),
    ("queued_at", {"queue_ms"}),
    ("duration_ms", {"execution_ms", "delivery_ms"}),
    ("cpu_ms", {"cpu_ms"}),
    ("peak_rss_kb", {"peak_rss_kb"}),
])
def test_a_missing_timestamp_or_value_leaves_only_the_fields_that_need_it_empty(missing: str,
                                                                                 none: set[str]) -> None:
    for absent in ({missing: None}, "drop"):
        res = result(**absent) if isinstance(absent, dict) else {k: v for k, v in result().items() if k != missing}
        stages = stages_of(record({"legacy": res}), "legacy", submit_ms=2.0, seen_wall=STARTED + 0.13)
        assert {k for k, v in stages.items() if v is None} == none, absent


def test_a_platform_error_has_no_execution_but_keeps_its_queueing() -> None:
    res = result(status="error", error="executor unreachable", duration_ms=None, exit_code=None, cpu_ms=None,
                 peak_rss_kb=None)
    stages = stages_of(record({"legacy": res}), "legacy", submit_ms=2.0, seen_wall=STARTED + 3.0)
    assert stages["queue_ms"] == pytest.approx(4.0, abs=1e-6) and stages["submit_ms"] == 2.0
    assert stages["execution_ms"] is None and stages["delivery_ms"] is None


def test_no_client_read_time_means_no_delivery() -> None:
    stages = stages_of(record({"legacy": result()}), "legacy", submit_ms=2.0, seen_wall=None)
    assert stages["delivery_ms"] is None and stages["execution_ms"] == 120.5


@pytest.mark.parametrize(("rec", "path"), [
    pytest.param(record({"legacy": result(), "celery": result(executor_id="executor-3")}), "both", id="dual-write"),
    pytest.param(record({"legacy": result(), "celery": result(executor_id="executor-3")}), "legacy",
                 id="dual-write-named-as-one-path"),
    pytest.param(record({"legacy": result(status="running", duration_ms=None, finished_at=None)}, done=False),
                 "legacy", id="not-done"),
    pytest.param(record({"legacy": result(status="running")}, done=True), "legacy", id="not-terminal"),
    pytest.param(record({"celery": result()}), "legacy", id="record-moved-to-another-path"),
    pytest.param(None, "legacy", id="no-record"),
])
def test_anything_but_one_path_that_reached_a_terminal_result_has_no_stages(rec: dict[str, Any] | None,
                                                                             path: str) -> None:
    stages = stages_of(rec, path, submit_ms=2.0, seen_wall=STARTED + 0.13)
    assert list(stages) == list(STAGE_FIELDS)
    assert all(v is None for v in stages.values()), stages


def test_the_stages_travel_from_a_request_event_context_into_the_row() -> None:
    stages = stages_of(record({"celery": result()}), "celery", submit_ms=2.0, seen_wall=STARTED + 0.13)
    row = make_row(request_type="E2E", name="celery", response_time=140.0, response_length=3, exception=None,
                   start_time=QUEUED, end_time=QUEUED + 0.14, context={"path": "celery", **stages}, test_run=1)
    assert {k: row[k] for k in STAGE_FIELDS} == stages  # type: ignore[literal-required]
    submit = make_row(request_type="POST", name="submit", response_time=2.0, response_length=40, exception=None,
                      start_time=QUEUED, end_time=QUEUED + 0.002, context={"path": "celery"}, test_run=1)
    assert all(submit[k] is None for k in STAGE_FIELDS)  # type: ignore[literal-required]
    assert set(STAGE_FIELDS) <= set(COLUMNS)


def _row(start: float, kind: str, name: str, **more: Any) -> dict[str, Any]:
    return {"time": start, "end_time": start + 0.01, "request_type": kind, "name": name,
            "path": name if kind == "E2E" else "legacy", "response_time_ms": 10.0, "ok": True,
            "response_length": 0, "worker": "w", "test_run": 1, **more}


def _assert_stage_dtypes(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == list(REQUEST_COLUMNS)
    for name in FLOAT_STAGES:
        assert frame[name].dtype == "float64", (name, frame[name].dtype)
    assert frame["peak_rss_kb"].dtype == "Int64"


def test_a_frame_of_rows_without_stages_still_has_numeric_stage_columns(tmp_path: Path) -> None:
    # Rows as an older run (or a run with only dual-write evaluations) wrote them: no stage keys, or None.
    rows = [_row(100.0, "POST", "submit"), _row(100.1, "E2E", "both"),
            _row(100.2, "E2E", "legacy", **dict.fromkeys(STAGE_FIELDS))]
    frame = requests_frame(rows)
    _assert_stage_dtypes(frame)
    assert frame[list(STAGE_FIELDS)].isna().all().all()

    (tmp_path / "rows").mkdir()
    (tmp_path / "rows" / "requests-h-1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    frame.to_parquet(tmp_path / "load_requests.parquet", index=False)
    _assert_stage_dtypes(pd.read_parquet(tmp_path / "load_requests.parquet"))
    _assert_stage_dtypes(read_rows(tmp_path / "rows"))


def test_a_frame_keeps_the_stage_values_with_their_types(tmp_path: Path) -> None:
    stages = stages_of(record({"legacy": result()}), "legacy", submit_ms=2.5, seen_wall=STARTED + 0.13)
    frame = requests_frame([_row(100.0, "POST", "submit"), _row(100.1, "E2E", "legacy", **stages)])
    frame.to_parquet(tmp_path / "load_requests.parquet", index=False)
    back = pd.read_parquet(tmp_path / "load_requests.parquet")

    _assert_stage_dtypes(back)
    e2e = back[back["request_type"] == "E2E"].iloc[0]
    assert e2e["queue_ms"] == pytest.approx(4.0, abs=1e-6) and e2e["execution_ms"] == 120.5
    assert e2e["delivery_ms"] == pytest.approx(9.5, abs=1e-6) and e2e["peak_rss_kb"] == 9_876
    assert back.loc[back["request_type"] == "POST", list(STAGE_FIELDS)].isna().all().all()


def test_whether_the_user_forced_the_path_travels_into_the_frame(tmp_path: Path) -> None:
    """The gate's split accuracy counts only what the gateway routed: a forced row says so."""
    rows = [make_row(request_type="E2E", name=path, response_time=50.0, response_length=0, exception=None,
                     start_time=1.0, end_time=1.05, context={"path": path, "forced": forced}, test_run=1)
            for path, forced in (("legacy", True), ("celery", False))]
    rows.append(make_row(request_type="POST", name="submit", response_time=5.0, response_length=0, exception=None,
                         start_time=1.0, end_time=1.005, context=None, test_run=1))
    frame = requests_frame(rows)
    assert str(frame["forced"].dtype) == "boolean"
    assert frame["forced"].tolist()[:2] == [True, False] and pd.isna(frame["forced"].iloc[2])
