"""Both paths complete an evaluation end to end and store results of the same shape."""

from __future__ import annotations

import requests

from harness.client import wait_terminal
from harness.stack.processes import ProcessesStack

PROGRAM = "import sys\nprint('héllo')\nprint('oops', file=sys.stderr)\nsys.exit(7)"
RESULT_FIELDS = {"status", "output", "error", "exit_code", "timed_out", "truncated", "duration_ms",
                 "executor_id", "attempts", "queued_at", "started_at", "finished_at", "cpu_ms", "peak_rss_kb"}


def submit(stack: ProcessesStack, **body: object) -> str:
    assert stack.endpoints is not None
    resp = requests.post(stack.endpoints.gateway + "/api/eval",
                         json={"code": PROGRAM, "language": "python", **body}, timeout=10)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["eval_id"])


def test_legacy_path_runs_on_executor_1_or_2(stack: ProcessesStack) -> None:
    assert stack.endpoints is not None
    record = wait_terminal(stack.endpoints.gateway, submit(stack, route="legacy"))
    assert record["routes"] == ["legacy"] and set(record["results"]) == {"legacy"}
    result = record["results"]["legacy"]
    assert set(result) == RESULT_FIELDS
    assert (result["status"], result["output"], result["error"], result["exit_code"]) == (
        "failed", "héllo\n", "oops\n", 7)
    assert result["executor_id"] in ("executor-1", "executor-2")
    assert result["queued_at"] <= result["started_at"] <= result["finished_at"]
    assert result["cpu_ms"] > 0 and result["peak_rss_kb"] > 0  # passed through from the executor


def test_celery_path_runs_on_executor_3(stack: ProcessesStack) -> None:
    assert stack.endpoints is not None
    record = wait_terminal(stack.endpoints.gateway, submit(stack, route="celery"))
    result = record["results"]["celery"]
    assert set(result) == RESULT_FIELDS
    assert (result["status"], result["output"], result["exit_code"], result["executor_id"], result["attempts"]) == (
        "failed", "héllo\n", 7, "executor-3", 1)
    assert result["cpu_ms"] > 0 and result["peak_rss_kb"] > 0


def test_dual_write_keeps_both_results_and_they_agree(stack: ProcessesStack) -> None:
    assert stack.endpoints is not None
    record = wait_terminal(stack.endpoints.gateway, submit(stack, route="both"))
    legacy, celery = record["results"]["legacy"], record["results"]["celery"]
    compared = ("status", "output", "error", "exit_code", "timed_out", "truncated")
    assert {k: legacy[k] for k in compared} == {k: celery[k] for k in compared}


def test_legacy_workers_use_both_executors_round_robin(stack: ProcessesStack) -> None:
    assert stack.endpoints is not None
    ids = [submit(stack, route="legacy", code="print(1)") for _ in range(8)]
    used = {wait_terminal(stack.endpoints.gateway, i)["results"]["legacy"]["executor_id"] for i in ids}
    assert used == {"executor-1", "executor-2"}


def test_bash_runs_on_both_paths(stack: ProcessesStack) -> None:
    assert stack.endpoints is not None
    record = wait_terminal(stack.endpoints.gateway, submit(stack, route="both", language="bash",
                                                           code="printf 'a\\nb'; exit 2"))
    assert [(r["output"], r["exit_code"]) for r in record["results"].values()] == [("a\nb", 2)] * 2


def test_flower_sees_the_celery_tasks_without_a_login(stack: ProcessesStack) -> None:
    assert stack.endpoints is not None and stack.endpoints.flower is not None
    eval_id = submit(stack, route="celery", code="print(1)")
    wait_terminal(stack.endpoints.gateway, eval_id)
    import time

    deadline = time.monotonic() + 10
    info: dict = {}
    while time.monotonic() < deadline:
        resp = requests.get(f"{stack.endpoints.flower}/api/task/info/{eval_id}", timeout=5)
        if resp.status_code == 200 and resp.json().get("state") == "SUCCESS":
            info = resp.json()
            break
        time.sleep(0.2)
    assert info.get("name") == "tasks.evaluate_code" and info.get("state") == "SUCCESS"
