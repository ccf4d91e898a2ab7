"""The dispatcher over a real HTTP gateway stand-in: a half that never arrives is missing by the evaluation's
deadline (not after a minute), every operation is in the history, and a refused submission says why."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from harness.history import pairs
from harness.parity.compare import Observation, ParityConfig, compare
from harness.parity.dispatch import DUAL, Dispatcher, DispatchError, Submission

DONE = {"status": "completed", "output": "hi\n", "error": "", "exit_code": 0, "timed_out": False, "truncated": False}


class Gateway(BaseHTTPRequestHandler):
    """Accepts every dual-write; legacy's result is there at once, Celery's never arrives."""

    refuse = False
    count = 0

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        if Gateway.refuse:
            self._send(422, {"detail": "bad", "problems": [{"field": "timeout_s", "rule": "must be <= 60"}]})
            return
        Gateway.count += 1
        self._send(201, {"eval_id": f"e{Gateway.count}", "routes": ["legacy", "celery"]})

    def do_GET(self) -> None:  # noqa: N802
        eval_id = self.path.split("/")[-1].split("?")[0]
        time.sleep(0.1)  # a long poll that learns nothing new
        self._send(200, {"eval_id": eval_id, "routes": ["legacy", "celery"], "done": False, "created_at": 0,
                         "results": {"legacy": DONE, "celery": {"status": "queued"}}})


@pytest.fixture
def gateway() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        Gateway.refuse = False


def test_a_half_that_never_arrives_is_missing_by_the_evaluation_deadline(gateway: str) -> None:
    with Dispatcher(gateway, default_timeout_s=0.5, queue_allowance_s=1.0) as dispatcher:
        started = time.monotonic()
        out = dispatcher.run([Submission("print('hi')", "python")], DUAL)[0]
        elapsed = time.monotonic() - started
    assert 1.4 < elapsed < 5.0  # the deadline is 0.5 s + 1.0 s, not a minute
    assert not out.done and out.results["celery"] == {"status": "queued"}
    cmp = compare(Observation.from_result("e1", "legacy", out.results["legacy"]),
                  Observation.from_result("e1", "celery", out.results["celery"]), ParityConfig.load())
    assert (cmp.cls, cmp.missing) == ("missing", ("celery",))
    ops = [(invoke.f, invoke.type, done.type if done else None) for invoke, done in pairs(dispatcher.history.ops)]
    assert ops == [("submit", "invoke", "ok"), ("read", "invoke", "ok")]
    read = dispatcher.history.ops[-1]
    assert read.eval_id == "e1" and read.value == {"done": False, "missing": ["celery"]}


def test_a_program_with_its_own_timeout_waits_that_long_plus_the_allowance(gateway: str) -> None:
    with Dispatcher(gateway, default_timeout_s=30.0, queue_allowance_s=0.5) as dispatcher:
        assert dispatcher.deadline_s(Submission("x", "bash", 1.0)) == 1.5
        assert dispatcher.deadline_s(Submission("x", "bash")) == 30.5


def test_a_refused_submission_quotes_the_gateway_and_is_a_fail_in_the_history(gateway: str) -> None:
    Gateway.refuse = True
    with Dispatcher(gateway) as dispatcher, pytest.raises(DispatchError) as info:
        dispatcher.run([Submission("x", "bash", 99.0)], DUAL)
    assert "refused" in str(info.value) and "must be <= 60" in str(info.value)
    assert [op.type for op in dispatcher.history.ops] == ["invoke", "fail"]


def test_an_unreachable_gateway_is_named() -> None:
    with Dispatcher("http://127.0.0.1:9") as dispatcher, pytest.raises(DispatchError) as info:
        dispatcher.run([Submission("x", "bash")], DUAL)
    assert "http://127.0.0.1:9" in str(info.value) and "is the stack running" in str(info.value)
