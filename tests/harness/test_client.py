"""The gateway client: what a submission is sent as, how an answer is read, and how a call is recorded."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness.client import Answer, ClientError, EvalRequest, answer_of, record_of, recorded
from harness.history import History, pairs


@pytest.mark.parametrize(("status", "body", "expected"), [
    (201, {"eval_id": "e1", "routes": ["celery"]}, "ok"),
    (422, {"error": "invalid request", "problems": [{"field": "priority", "rule": "<= 9"}]}, "fail"),
    (503, {"error": "celery broker unreachable", "hint": "nothing was queued; retry when the backend is back"},
     "fail"),
    (503, {"error": "overloaded"}, "info"),
    (500, None, "info"),
    (502, None, "info"),
    (201, {"no": "eval id"}, "info"),
])
def test_answers_are_ok_fail_or_info(status: int, body: Any, expected: str) -> None:
    assert answer_of(status, body, json.dumps(body)).type == expected


def test_an_accepted_answer_carries_its_id_and_routes_and_a_refusal_its_problems() -> None:
    ok = answer_of(201, {"eval_id": "e1", "routes": ["legacy", "celery"]}, "")
    assert (ok.eval_id, ok.routes, ok.value) == ("e1", ("legacy", "celery"), {"eval_id": "e1",
                                                                             "routes": ["legacy", "celery"]})
    refused = answer_of(422, {"error": "invalid request", "problems": [{"field": "code", "rule": "empty"}]}, "x")
    assert refused.problems == ({"field": "code", "rule": "empty"},) and refused.value is None


def test_a_request_sends_only_what_was_set() -> None:
    assert EvalRequest("print(1)").body() == {"code": "print(1)", "language": "python"}
    assert EvalRequest("true", "bash", "both", 9, True, 1.5).body() == {
        "code": "true", "language": "bash", "route": "both", "priority": 9, "batch": True, "timeout_s": 1.5}


def test_a_record_is_read_whole_and_anything_else_is_refused() -> None:
    record = record_of({"eval_id": "e1", "routes": ["celery"], "results": {"celery": {"status": "completed"}},
                        "priority": 9, "created_at": 1.5})
    assert record["done"] and record["priority"] == 9 and record["results"]["celery"]["status"] == "completed"
    assert not record_of({"results": {"celery": {"status": "running"}}})["done"]
    with pytest.raises(ClientError, match="not an evaluation record"):
        record_of({"error": "not found"})


def test_a_recorded_call_is_an_invoke_and_its_completion_even_when_interrupted() -> None:
    history = History()
    done, answer = recorded(history, 1, "submit", lambda: Answer("ok", "e1", ("celery",), 201), path="celery",
                            value={"marker": "m"})
    assert (done.type, done.eval_id, done.value, answer.status) == ("ok", "e1", {"eval_id": "e1",
                                                                                   "routes": ["celery"]}, 201)

    def interrupted() -> Answer:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        recorded(history, 2, "submit", interrupted)
    assert [(i.process, d.type if d else None) for i, d in pairs(history.ops)] == [(1, "ok"), (2, "info")]
