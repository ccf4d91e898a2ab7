"""Load smoke: short headless Locust runs through the session's stack, Locust in a subprocess.

The pytest process must never import Locust (gevent would patch it), so everything goes through
``harness.load.run_headless``, which runs ``python -m locust -f harness/load/locustfile.py``.
The last tests are pure (options, the step plan, the per-second frame) and run in milliseconds.
"""

from __future__ import annotations

import sys
from typing import Any

import pandas as pd
import pytest

from harness.load import LoadError, LoadOptions, run_headless
from harness.load.config import step_plan
from harness.load.frames import REQUEST_COLUMNS, STATS_COLUMNS, per_second, requests_frame, summarise
from harness.run import RunFolder


@pytest.mark.load
def test_a_short_headless_run_reaches_both_paths_without_failures(stack: Any, run_folder: RunFolder) -> None:
    summary = run_headless(stack.endpoints.gateway, run_folder, users=5, spawn_rate=5, duration_s=10)

    assert "locust" not in sys.modules, "the pytest process imported Locust"
    assert summary.failures == 0, summary.failure_messages
    assert summary.locust_exit_code == 0
    assert summary.evaluations.get("legacy", 0) > 0 and summary.evaluations.get("celery", 0) > 0, summary.evaluations
    assert summary.oracle_mismatches == 0
    assert not summary.unfinished, "evaluations still in flight 30 s after a light run"
    for path in ("legacy", "celery"):
        assert len(summary.e2e_ms[path]) == summary.evaluations[path]
        assert all(ms > 0 for ms in summary.e2e_ms[path])
    assert sum(summary.routed.values()) == summary.submits

    requests = pd.read_parquet(run_folder.path / "load_requests.parquet")
    assert list(requests.columns) == list(REQUEST_COLUMNS)
    assert set(requests["request_type"]) == {"POST", "E2E"}
    assert set(requests.loc[requests["request_type"] == "POST", "name"]) == {"submit"}
    assert set(requests.loc[requests["request_type"] == "E2E", "name"]) == {"legacy", "celery"}
    assert requests["ok"].all()  # and so no row is "unfinished" either
    e2e = requests[requests["request_type"] == "E2E"]
    assert set(e2e["eval_id"]) <= set(requests.loc[requests["request_type"] == "POST", "eval_id"])
    assert (e2e["path"] == e2e["name"]).all()
    assert set(e2e["status"]) <= {"completed", "failed"}  # user programs may fail; the platform did not
    assert requests["priority"].between(0, 9).all()
    assert set(requests["language"]) <= {"python", "bash"}
    assert (requests["end_time"] >= requests["time"]).all()
    assert requests["response_time_ms"].gt(0).all()

    stats = pd.read_parquet(run_folder.path / "load_stats.parquet")
    assert list(stats.columns) == list(STATS_COLUMNS)
    assert stats["requests"].sum() == len(requests)
    assert stats["failures"].sum() == 0
    assert (stats["p50_ms"] <= stats["p95_ms"]).all() and (stats["p95_ms"] <= stats["p99_ms"]).all()
    assert (run_folder.path / "load" / "locust_stats.csv").exists()
    assert (run_folder.path / "load.json").exists()


@pytest.mark.load
def test_a_forced_route_sends_every_evaluation_down_that_path(stack: Any, run_folder: RunFolder) -> None:
    summary = run_headless(stack.endpoints.gateway, run_folder.path / "forced-celery", users=2, spawn_rate=2,
                           duration_s=4, route="celery", think_time_s=0.2)

    assert summary.failures == 0, summary.failure_messages
    assert set(summary.evaluations) == {"celery"} and summary.evaluations["celery"] > 0
    assert set(summary.routed) == {"celery"}


def test_a_headless_run_must_be_bounded() -> None:
    with pytest.raises(LoadError, match="duration_s must be within"):
        LoadOptions(users=5, spawn_rate=1, duration_s=0)
    with pytest.raises(LoadError, match="users must be within"):
        LoadOptions(users=0, spawn_rate=1, duration_s=10)
    with pytest.raises(LoadError, match="route must be one of"):
        LoadOptions(users=1, spawn_rate=1, duration_s=10, route="celry")  # type: ignore[arg-type]


def test_the_step_plan_climbs_in_equal_steps_and_holds_the_peak() -> None:
    plan = [step_plan(t, users=10, steps=5, step_s=4.0) for t in (0, 3.9, 4.0, 8, 12, 16, 19.9, 100)]
    assert plan == [2, 2, 4, 6, 8, 10, 10, 10]


def row(start: float, ms: float, kind: str, name: str, ok: bool = True, **more: Any) -> dict[str, Any]:
    return {"time": start, "end_time": start + ms / 1000, "request_type": kind, "name": name,
            "path": name if kind == "E2E" else "legacy", "response_time_ms": ms, "ok": ok,
            "response_length": 0, "worker": "w", "test_run": 1, **more}


def test_per_second_stats_count_each_request_in_the_second_it_ended() -> None:
    requests = requests_frame([row(100.0, 10, "POST", "submit"), row(100.2, 1500, "E2E", "legacy"),
                               row(100.5, 20, "POST", "submit", ok=False), row(101.1, 300, "E2E", "legacy")])
    stats = per_second(requests)

    assert list(stats.columns) == list(STATS_COLUMNS)
    got = {(r.second, r.request_type, r.name): (r.requests, r.failures) for r in stats.itertuples()}
    assert got == {(0, "POST", "submit"): (2, 1), (1, "E2E", "legacy"): (2, 0)}
    assert stats.loc[stats["request_type"] == "POST", "path"].isna().all()


def test_evaluations_in_flight_at_the_end_are_counted_apart_not_dropped_nor_failed() -> None:
    requests = requests_frame([
        row(100.0, 10, "POST", "submit"), row(100.0, 10, "POST", "submit"), row(100.0, 10, "POST", "submit"),
        row(100.0, 400, "E2E", "legacy", status="completed", batch=False),
        row(100.0, 900, "E2E", "celery", ok=False, status="error", batch=False, exception="PlatformError: x"),
        row(100.0, 9000, "E2E", "celery", ok=False, status="unfinished", batch=True, exception="Unfinished: ..."),
    ])
    summary = summarise(requests)

    assert summary.evaluations == {"celery": 1, "legacy": 1}
    assert summary.errors == {"celery": 1, "legacy": 0}
    assert summary.e2e_ms == {"celery": (), "legacy": (400.0,)}
    assert summary.unfinished == {"celery": 1} and summary.unfinished_batch == {"celery": 1}
    assert summary.failures == 1 and summary.failure_messages == {"PlatformError: x": 1}
    assert per_second(requests)["requests"].sum() == 5
