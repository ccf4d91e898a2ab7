"""The chaos workload: the plan from a seed, the oracle of its programs, and the recording client."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from harness.chaos.scenario import PrioritySchedule, Workload
from harness.chaos.workload import (
    WorkloadRunner,
    marker,
    plan,
    program,
    threads_for,
)
from harness.history import History, pairs


def workload(**changes: Any) -> Workload:
    fields: dict[str, Any] = {"routes": ("legacy", "celery"), "rate": 4.0, "duration_s": 3.0, "program": "quick",
                              "sleep_s": 0.5, "priority": 5}
    return Workload(**{**fields, **changes})


def test_the_plan_is_bounded_by_rate_and_duration_and_spaced_by_the_rate() -> None:
    subs = plan(workload(rate=4.0, duration_s=3.0), seed=1, token="abcd0123", output_cap=65536)
    assert len(subs) == 12
    assert [s.at_s for s in subs] == [k / 4.0 for k in range(12)]
    assert all(s.at_s < 3.0 for s in subs)


def test_the_plan_is_the_same_for_the_same_seed_and_differs_for_another() -> None:
    w = workload(program="mixed", rate=10.0, duration_s=5.0)
    first = plan(w, seed=7, token="abcd0123", output_cap=65536)
    again = plan(w, seed=7, token="abcd0123", output_cap=65536)
    other = plan(w, seed=8, token="abcd0123", output_cap=65536)
    assert [s.program for s in first] == [s.program for s in again]
    assert [s.program for s in first] != [s.program for s in other]
    assert {s.program for s in first} == {"quick", "sleep", "fail"}


def test_routes_go_round_robin_and_dual_sends_both() -> None:
    subs = plan(workload(routes=("legacy", "celery", "dual")), seed=0, token="abcd0123", output_cap=65536)
    assert [s.route for s in subs[:6]] == ["legacy", "celery", "both"] * 2
    assert [s.path for s in subs[:3]] == ["legacy", "celery", None]
    assert subs[2].request().body()["route"] == "both"


def test_priority_schedule_and_batch_are_honoured() -> None:
    w = workload(routes=("celery",), rate=2.0, duration_s=4.0, priority=PrioritySchedule(1, 9, 2.0), batch=True)
    subs = plan(w, seed=0, token="abcd0123", output_cap=65536)
    assert [s.priority for s in subs] == [1, 1, 1, 1, 9, 9, 9, 9]
    assert all(s.request().body()["batch"] is True for s in subs)


def test_markers_are_unique_and_none_is_a_substring_of_another() -> None:
    marks = [marker("abcd0123", k) for k in range(2000)]
    assert len(set(marks)) == len(marks)
    assert not any(marks[1] in m for m in marks[10:20]) and marks[1] not in marks[11]
    assert all(m not in other for m in marks[:30] for other in marks[:30] if other != m)


@pytest.mark.parametrize("kind", ["quick", "sleep", "fail"])
def test_each_program_matches_its_oracle_when_run(kind: str) -> None:
    code, expected = program(kind, marker("abcd0123", 5), sleep_s=0.05, output_cap=65536)
    assert marker("abcd0123", 5) in code
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    status = "completed" if run.returncode == 0 else "failed"
    result = {"status": status, "output": run.stdout, "error": run.stderr, "exit_code": run.returncode,
              "timed_out": False, "truncated": False}
    assert expected.differences(result) == []


def test_a_program_that_sleeps_near_the_executor_limit_asks_for_more_time() -> None:
    subs = plan(workload(program="sleep", sleep_s=4.0), seed=0, token="abcd0123", output_cap=65536,
                executor_timeout_s=5.0)
    assert subs[0].timeout_s == 9.0 and subs[0].request().body()["timeout_s"] == 9.0
    quick = plan(workload(program="sleep", sleep_s=0.5), seed=0, token="abcd0123", output_cap=65536,
                 executor_timeout_s=5.0)
    assert quick[0].timeout_s is None and "timeout_s" not in quick[0].request().body()


def test_threads_grow_with_the_rate_within_bounds() -> None:
    assert threads_for(workload(rate=1.0)) == 2
    assert threads_for(workload(rate=16.0)) == 9
    assert threads_for(workload(rate=200.0)) == 16


# -- the client against a scripted gateway ----------------------------------------------------------------


class Gateway:
    """A tiny HTTP server that answers POST /api/eval from a script, and counts requests in flight."""

    def __init__(self, answers: list[tuple[int, Any, float]]) -> None:
        self.answers = answers
        self.calls: list[tuple[float, dict[str, Any]]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    n = len(outer.calls)
                    outer.calls.append((time.monotonic(), body))
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                status, answer, delay = outer.answers[n % len(outer.answers)]
                time.sleep(delay)
                # done before the answer goes out: once it has, the client's next request may arrive
                # before this thread would count this one finished (measured: 4 in flight with 3 threads)
                with outer.lock:
                    outer.in_flight -= 1
                try:
                    data = json.dumps(answer if answer is not None else {"eval_id": f"e{n}", "routes": ["celery"]})
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data.encode())
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Gateway:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def history() -> Iterator[History]:
    yield History()


def test_every_submission_is_recorded_as_invoke_then_ok_fail_or_info(history: History) -> None:
    answers = [(201, None, 0.0), (503, {"hint": "nothing was queued; retry"}, 0.0), (500, {"error": "x"}, 0.0),
               (201, None, 1.0)]  # the last one outlasts the client's timeout: info
    subs = plan(workload(routes=("celery",), rate=20.0, duration_s=0.4), seed=0, token="abcd0123", output_cap=65536)
    with Gateway(answers) as gw:
        stats = WorkloadRunner(gw.url, history, subs, threads=1, duration_s=0.4, request_timeout_s=0.3).run()
    done = [(i.value["slot"], d.type if d else None) for i, d in pairs(history.ops)]
    assert done == [(0, "ok"), (1, "fail"), (2, "info"), (3, "info"), (4, "ok"), (5, "fail"), (6, "info"),
                    (7, "info")]
    assert (stats.ok, stats.fail, stats.info, stats.submitted) == (2, 2, 4, 8)
    oks = [op for op in history.ops if op.type == "ok"]
    assert oks[0].eval_id == "e0" and oks[0].value == {"eval_id": "e0", "routes": ["celery"]}
    invokes = [op for op in history.ops if op.type == "invoke"]
    assert all(op.value and op.value["marker"].startswith("chaos-abcd0123-") for op in invokes)


def test_after_an_info_the_thread_goes_on_as_a_new_process(history: History) -> None:
    subs = plan(workload(routes=("celery",), rate=20.0, duration_s=0.2), seed=0, token="abcd0123", output_cap=65536)
    with Gateway([(500, {"error": "x"}, 0.0)]) as gw:
        WorkloadRunner(gw.url, history, subs, threads=2, duration_s=0.2).run()
    processes = [op.process for op in history.ops if op.type == "invoke"]
    assert len(set(processes)) == len(processes)  # every info moved its thread to a fresh process
    pairs(history.ops)  # and the history still pairs up


def test_no_submission_starts_before_its_slot_and_in_flight_is_bounded_by_the_threads(history: History) -> None:
    subs = plan(workload(routes=("celery",), rate=10.0, duration_s=1.0), seed=0, token="abcd0123", output_cap=65536)
    with Gateway([(201, None, 0.35)]) as gw:
        t0 = time.monotonic()
        stats = WorkloadRunner(gw.url, history, subs, threads=3, duration_s=1.0).run(t0)
        assert gw.max_in_flight <= 3 and stats.max_in_flight <= 3
        for (at, body), sub in zip(sorted(gw.calls, key=lambda c: c[0]), subs, strict=False):
            assert at - t0 >= sub.at_s - 0.01, body
    assert stats.submitted + stats.skipped == len(subs) == 10


def test_a_refused_connection_is_a_fail_because_nothing_was_sent(history: History) -> None:
    subs = plan(workload(routes=("celery",), rate=10.0, duration_s=0.1), seed=0, token="abcd0123", output_cap=65536)
    with Gateway([(201, None, 0.0)]) as gw:
        url = gw.url
    stats = WorkloadRunner(url, history, subs, threads=1, duration_s=0.1, request_timeout_s=1).run()
    assert stats.fail == 1
    assert [op.type for op in history.ops] == ["invoke", "fail"]


def test_stopping_the_workload_stops_new_submissions(history: History) -> None:
    subs = plan(workload(routes=("celery",), rate=2.0, duration_s=10.0), seed=0, token="abcd0123", output_cap=65536)
    stop = threading.Event()
    with Gateway([(201, None, 0.0)]) as gw:
        runner = WorkloadRunner(gw.url, history, subs, threads=2, duration_s=10.0)
        threading.Timer(0.8, stop.set).start()
        started = time.monotonic()
        stats = runner.run(stop=stop)
    assert time.monotonic() - started < 3
    assert stats.submitted <= 3
    pairs(history.ops)
