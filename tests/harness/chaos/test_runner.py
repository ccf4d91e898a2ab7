"""The runner's parts without a real stack: queue inspection and quiesce on a real Redis, the findings
table and verdicts from literal inputs, retrying a start lost to a port race, and clean-up on errors
and on Ctrl-C (faults healed, stack stopped, history written)."""

from __future__ import annotations

import _thread
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
import redis as redis_lib
from kombu import Connection, Exchange, Producer, Queue

from harness.chaos.findings import (
    config_summary,
    evaluate,
    findings_markdown,
    findings_table,
    write,
    write_combined,
)
from harness.chaos.observe import inspect_queues, quiesce
from harness.chaos.platform import task_id
from harness.chaos.result import ScenarioResult, replay_commands
from harness.chaos.runner import base_config, run_scenario
from harness.chaos.scenario import load_scenario
from harness.chaos.workload import plan
from harness.errors import StackError
from harness.history import History
from harness.run import RunFolder
from system_under_test.store import LEGACY_QUEUE, EvaluationStore

SCENARIO = """\
title = "kill a Celery worker"
description = "literal scenario for the runner's unit tests"
finding = "written by hand after measuring"

[stack]
celery_workers = 2
visibility_timeout_s = 4
restore_interval_s = 1
restore_throttle = 1
retry_backoff_s = 0.5

[workload]
routes = ["legacy", "celery"]
rate = 2.0
duration_s = 2
program = "quick"

[[faults]]
name = "kill worker"
at_s = 0.5
kind = "kill"
target = "celery-worker-1"
duration_s = 0.5

[quiesce]
timeout_s = 30

[expect.celery]
lost = "allowance"
stuck = "allowance"
duplicated = 0

[expect.legacy]
lost = "report"
stuck = "report"
"""


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "kill-worker.toml"
    path.write_text(SCENARIO)
    return path


# -- the brokers after quiesce -----------------------------------------------------------------------------


def test_inspect_queues_reads_every_priority_list_unacked_and_the_dead_letters(
        redis_server: Callable[..., str]) -> None:
    broker_url, main_url = redis_server(), redis_server()
    options = {"priority_steps": list(range(10)), "sep": ":", "queue_order_strategy": "priority"}
    with Connection(broker_url, transport_options=options) as conn:
        producer = Producer(conn.channel())
        queue = Queue("evaluation", Exchange("evaluation"), "evaluation")
        for task_id, priority in (("t-high", 0), ("t-low", 8)):
            producer.publish({"x": 1}, routing_key="", exchange="", priority=priority, declare=[queue],
                             headers={"id": task_id, "task": "tasks.evaluate_code"}, serializer="json")
            producer.publish({"x": 1}, routing_key="evaluation", exchange="", priority=priority,
                             headers={"id": task_id, "task": "tasks.evaluate_code"}, serializer="json")
    broker = redis_lib.Redis.from_url(broker_url)
    message = broker.lindex("evaluation:8", 0)
    broker.hset("unacked", "tag-1", json.dumps([json.loads(message), "", "evaluation"]))
    broker.lpush("celery:dlq", json.dumps({"eval_id": "t-dead", "attempts": 4}))
    main = redis_lib.Redis.from_url(main_url)
    main.lpush(LEGACY_QUEUE, json.dumps({"eval_id": "l-1", "code": "print(1)"}))
    found = inspect_queues(main, broker, ["evaluation", "batch"])
    assert set(found["celery_queued"]) == {"evaluation", "evaluation:8"}
    assert set(found["celery_queued"]["evaluation:8"]) == {"t-low"}
    assert found["celery_unacked"] == ["t-low"]
    assert found["dead_letters"] == [{"eval_id": "t-dead", "attempts": 4}]
    assert found["legacy_queued"] == ["l-1"] and found["problems"] == []


def test_task_ids_come_from_the_message_headers() -> None:
    msg = {"body": "e30=", "headers": {"id": "abc"}, "properties": {"correlation_id": "abc"}}
    assert task_id(json.dumps(msg)) == "abc"
    assert task_id(json.dumps([msg, "", "evaluation"])) == "abc"
    assert task_id("not json") is None


def _record(main: redis_lib.Redis, eval_id: str, code: str, status: str) -> None:
    store = EvaluationStore(main)
    main.hset(f"eval:{eval_id}", mapping=store.record_fields(eval_id, code=code, language="python",
                                                              routes=["celery"], priority=5, batch=False,
                                                              timeout_s=None, created_at=time.time()))
    store.set_result(eval_id, "celery", {"status": status, "attempts": 1})  # type: ignore[typeddict-item]


def _acked(history: History, eval_id: str) -> None:
    invoke = history.invoke(0, "submit", path="celery", value={"marker": eval_id})
    history.complete(invoke, "ok", eval_id=eval_id, value={"eval_id": eval_id, "routes": ["celery"]})


def test_quiesce_ends_when_everything_is_terminal_settles_or_times_out(redis_server: Callable[..., str]) -> None:
    main = redis_lib.Redis.from_url(redis_server())
    broker = redis_lib.Redis.from_url(redis_server())
    history = History()
    _acked(history, "e1")
    _record(main, "e1", "print('chaos-abcd0123-000001.')", "completed")
    assert quiesce(main, broker, history, "abcd0123", timeout_s=5, settle_s=1, queues=["evaluation"]) == \
        "every accepted evaluation terminal, nothing queued or unacked"
    broker.hset("unacked", "tag", "[]")  # a copy still held somewhere: terminal is not enough
    assert quiesce(main, broker, history, "abcd0123", timeout_s=0.8, settle_s=0.2, queues=["evaluation"]) == \
        "timed out with every accepted evaluation terminal but 1 message(s) still queued or unacked"
    broker.delete("unacked")

    _acked(history, "e2")
    _record(main, "e2", "print('chaos-abcd0123-000002.')", "running")
    started = time.monotonic()
    reason = quiesce(main, broker, history, "abcd0123", timeout_s=10, settle_s=0.6, queues=["evaluation"])
    assert reason.startswith("settled with 1 evaluation(s) not terminal") and time.monotonic() - started < 3

    broker.lpush("evaluation", "{}")  # something could still run it: no settling, wait for the deadline
    started = time.monotonic()
    reason = quiesce(main, broker, history, "abcd0123", timeout_s=1.0, settle_s=0.2, queues=["evaluation"])
    assert reason == "timed out with 1 evaluation(s) not terminal" and time.monotonic() - started >= 1.0


def test_quiesce_keeps_supervising_and_a_late_restart_lets_the_queued_work_finish(redis_server: Callable[..., str]) -> None:
    # A worker that dies seconds after the heal (Celery's shutdown after a broker restart) was not restarted
    # by a supervisor that looked once, and its queue read as stuck. The tick is the supervisor: here it
    # "starts a worker" on its second call, which takes the queued message and completes the record.
    main = redis_lib.Redis.from_url(redis_server())
    broker = redis_lib.Redis.from_url(redis_server())
    history = History()
    _acked(history, "e1")
    _record(main, "e1", "print('chaos-abcd0123-000001.')", "queued")
    broker.lpush("evaluation", "{}")
    # nobody watching: the queued message waits for a worker that is gone
    assert quiesce(main, broker, history, "abcd0123", timeout_s=0.6, settle_s=0.2, queues=["evaluation"]) == \
        "timed out with 1 evaluation(s) not terminal"
    calls: list[float] = []

    def supervisor() -> bool:
        calls.append(time.monotonic())
        if len(calls) == 2:  # the worker is found dead and started again; it runs what was queued
            broker.delete("evaluation")
            EvaluationStore(main).set_result("e1", "celery", {"status": "completed", "attempts": 1})  # type: ignore[typeddict-item]
            return True
        return False

    reason = quiesce(main, broker, history, "abcd0123", timeout_s=5, settle_s=0.3, queues=["evaluation"],
                     tick=supervisor, tick_s=0.2)
    assert reason == "every accepted evaluation terminal, nothing queued or unacked"
    assert len(calls) >= 2


# -- verdicts, notes and the findings table ------------------------------------------------------------------


def _literal_result(tmp_path: Path, scenario_file: Path, *, celery_lost: int, legacy_stuck: int) -> ScenarioResult:
    """A result as run_scenario would build it, from a literal history, ledger and records."""
    scenario = load_scenario(scenario_file)
    base = base_config(3)
    result = ScenarioResult(scenario, 3, "processes", tmp_path, scenario.stack_config(base))
    subs = plan(scenario.workload, seed=3, token="abcd0123", output_cap=65536)
    history = History()
    records: dict[str, dict[str, Any]] = {}
    ledger: list[dict[str, Any]] = []
    lost = stuck = 0
    for sub in subs:
        eval_id = uuid.uuid4().hex
        invoke = history.invoke(sub.index, "submit", path=sub.path, value=sub.invoke_value())
        history.complete(invoke, "ok", eval_id=eval_id, value={"eval_id": eval_id, "routes": [sub.path]})
        out = {"status": "completed", "output": sub.marker + "\n", "error": "", "exit_code": 0,
               "timed_out": False, "truncated": False, "started_at": 1.0, "queued_at": 0.5,
               "finished_at": 1.5}
        row = {"eval_id": eval_id, "path": sub.path, "attempt": 1, "executor_id": "executor-3" if sub.path == "celery" else "executor-1",
               "started_at": 1.0, "exit_code": 0}
        if sub.path == "celery" and lost < celery_lost:
            lost += 1
            out = {**out, "status": "running", "exit_code": None}
            row = {}
        elif sub.path == "legacy" and stuck < legacy_stuck:
            stuck += 1
            out = {**out, "status": "running", "exit_code": None}
        if row:
            ledger.append(row)
        records[eval_id] = {"eval_id": eval_id, "code": sub.code, "routes": [sub.path], "results": {sub.path: out},
                            "priority": 5}
    history.nemesis_start("kill worker", "kill", "celery-worker-1")
    history.nemesis_stop("kill worker", "kill", "celery-worker-1")
    result.queues = {"celery_queued": {}, "celery_unacked": [], "dead_letters": [], "legacy_queued": []}
    result.timings["elapsed_s"] = 12.5
    evaluate(result, history, ledger, records, set(), subs, base, time.time() - 5, [0.1])
    return result


def test_a_celery_loss_within_the_allowance_passes_and_a_legacy_loss_is_a_finding(tmp_path: Path,
                                                                                  scenario_file: Path) -> None:
    result = _literal_result(tmp_path, scenario_file, celery_lost=1, legacy_stuck=1)
    assert result.passed and not result.gate_violations
    outcomes = dict(zip(result.findings["path"], result.findings["outcome"], strict=True))
    assert outcomes == {"celery": "held", "legacy": "finding"} and result.outcome == "finding"
    row = result.findings.set_index("path").loc["celery"]
    assert (row["lost"], row["acked"], row["submitted"], row["ok"]) == (1, 2, 2, 1)
    notes = " ".join(result.path_notes["legacy"])
    assert "reported, not gated: stuck 1" in notes
    assert "did not reproduce: the configuration allows stuck up to 2, measured 0" in " ".join(
        result.path_notes["celery"])
    assert result.notes[0] == "written by hand after measuring"


def test_a_celery_loss_beyond_its_bound_fails_with_the_replay_commands(tmp_path: Path,
                                                                        scenario_file: Path) -> None:
    scenario_file.write_text(SCENARIO.replace('[expect.celery]\nlost = "allowance"', "[expect.celery]\nlost = 1"))
    result = _literal_result(tmp_path, scenario_file, celery_lost=2, legacy_stuck=0)
    assert not result.passed
    assert [(v.path, v.invariant, v.count, v.bound) for v in result.gate_violations] == [("celery", "lost", 2, 1)]
    assert result.findings.set_index("path").loc["celery", "outcome"] == "failed" and result.outcome == "failed"
    text = result.explain()
    assert "VIOLATION celery: lost 2 > 1" in text
    assert f"harness chaos {scenario_file} --seed 3" in text
    assert "test_scenario[kill-worker]' -m chaos --seed 3" in text


def test_a_celery_loss_the_scenario_declares_known_is_a_known_failure_everywhere_it_is_stored(
        tmp_path: Path, scenario_file: Path) -> None:
    scenario_file.write_text(SCENARIO.replace('[expect.celery]\nlost = "allowance"', "[expect.celery]\nlost = 1")
                             + '\n[known_failure]\ninvariants = ["lost"]\nreason = "kombu drops a message in flight"\n')
    result = _literal_result(tmp_path, scenario_file, celery_lost=2, legacy_stuck=0)
    assert result.outcome == "known-failure" and result.known and not result.passed
    row = result.findings.set_index("path").loc["celery"]
    assert (row["outcome"], row["known_failure"], list(row["violations"])) == (
        "known-failure", "kombu drops a message in flight", ["lost 2 > 1"])
    write(result, History(), [], set())
    stored = json.loads((tmp_path / "result.json").read_text())
    assert (stored["outcome"], stored["outcomes"]["celery"]) == ("known-failure", "known-failure")
    assert stored["known_failure"] == "kombu drops a message in flight"
    scenario_file.write_text(SCENARIO.replace('[expect.celery]\nlost = "allowance"', "[expect.celery]\nlost = 1")
                             + '\n[known_failure]\ninvariants = ["duplicated"]\nreason = "another defect"\n')
    other = _literal_result(tmp_path, scenario_file, celery_lost=2, legacy_stuck=0)
    assert other.outcome == "failed"  # a violation the known failure does not declare is a failure


def test_the_findings_table_and_markdown_show_counts_verdicts_and_notes(tmp_path: Path,
                                                                        scenario_file: Path) -> None:
    result = _literal_result(tmp_path, scenario_file, celery_lost=1, legacy_stuck=1)
    table = findings_table(result.findings)
    assert table.splitlines()[0].startswith("| scenario | path | configuration | acked | refused | ok |")
    assert "| kill-worker | celery | early ack, vt 4s, prefetch 4x2, 2 worker(s)" in table
    text = findings_markdown([result])
    assert "## kill-worker: kill a Celery worker" in text and "reported, not gated" in text
    written = write_combined([result, result], tmp_path / "all")
    assert written.read_text().startswith("# Chaos findings")
    assert len(pd.read_parquet(tmp_path / "all" / "findings.parquet")) == 4


def test_config_summary_and_replay_commands(scenario_file: Path) -> None:
    cfg = base_config(0).replace(acks_late=True, reject_on_worker_lost=True, celery_redis_policy="noeviction",
                                 celery_redis_maxmemory="8mb")
    assert config_summary(cfg, "celery") == ("acks_late+reject_on_worker_lost, vt 3600s, prefetch 4x2, 1 worker(s), "
                                             "retries 3x0.5s, noeviction 8mb")
    assert config_summary(cfg, "legacy") == "2 legacy workers, no ack, no retry"
    scenario = load_scenario(scenario_file)
    cli, pytest_cmd = replay_commands(scenario, 9, "containers")
    assert cli.startswith("harness chaos ") and cli.endswith("--seed 9 --stack containers")
    assert "test_scenario[kill-worker]" in pytest_cmd and "--seed 9 --stack containers" in pytest_cmd


# -- starting, failing and Ctrl-C -------------------------------------------------------------------------------


class FailingStack:
    def __init__(self, message: str) -> None:
        self.message = message

    def __enter__(self) -> Any:
        raise StackError(self.message)

    def __exit__(self, *exc: object) -> None:
        pass


def test_a_stack_that_cannot_start_is_an_error_with_its_files_written(tmp_path: Path, scenario_file: Path) -> None:
    result = run_scenario(load_scenario(scenario_file), opener=lambda c, r, s: FailingStack("no redis-server"),
                          run_folder=RunFolder.create(tmp_path), seed=0)
    assert not result.passed and "no redis-server" in result.errors[0]
    assert set(result.findings["outcome"]) == {"error"} and result.outcome == "error"
    for name in ("history.parquet", "executions.parquet", "findings.parquet", "findings.md", "result.json"):
        assert (result.folder / name).exists(), name
    assert "replay:" in result.explain()


def test_two_runs_with_one_folder_name_never_share_a_folder(tmp_path: Path, scenario_file: Path) -> None:
    run = RunFolder.create(tmp_path)
    folders = [run_scenario(load_scenario(scenario_file), opener=lambda c, r, s: FailingStack("no redis-server"),
                            run_folder=run, seed=seed, folder="same").folder for seed in (0, 1, 2)]
    assert [f.name for f in folders] == ["same", "same-2", "same-3"]  # a ledger is appended to: never mixed


class FakeGateway:
    """Accepts every submission; a probe's record is completed with the text its code prints."""

    def __init__(self) -> None:
        self.codes: dict[str, str] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                eval_id = uuid.uuid4().hex
                outer.codes[eval_id] = body["code"]
                self._send(201, {"eval_id": eval_id, "routes": [body["route"]]})

            def do_GET(self) -> None:  # noqa: N802
                eval_id = self.path.split("?")[0].rsplit("/", 1)[1]
                printed = re.search(r"print\('(.*)'\)", outer.codes.get(eval_id, ""))
                out = (printed.group(1) + "\n") if printed else ""
                self._send(200, {"done": True, "results": {
                    p: {"status": "completed", "output": out} for p in ("legacy", "celery")}})

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Worker:
    name = "celery-worker-1"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause(self) -> None:
        self.calls.append("pause")

    def resume(self) -> None:
        self.calls.append("resume")

    def alive(self) -> bool:
        return True


class FakeStack:
    def __init__(self, gateway: str, main: str, broker: str) -> None:
        self.endpoints = SimpleNamespace(gateway=gateway, main_redis=main, celery_redis=broker, proxy_api=None)
        self.worker = Worker()
        self.stopped = False

    def __enter__(self) -> FakeStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped = True

    def component(self, name: str) -> Worker:
        return self.worker

    def describe(self) -> list[dict[str, Any]]:
        return [{"component": "celery-worker-1"}]


@pytest.fixture
def fake_gateway() -> Iterator[FakeGateway]:
    gw = FakeGateway()
    yield gw
    gw.close()


def test_ctrl_c_mid_run_heals_every_fault_stops_the_stack_and_keeps_the_history(
        tmp_path: Path, redis_server: Callable[..., str], fake_gateway: FakeGateway) -> None:
    text = SCENARIO.replace('kind = "kill"', 'kind = "pause"').replace("duration_s = 0.5", "duration_s = 30") \
        .replace('routes = ["legacy", "celery"]', 'routes = ["celery"]').replace("duration_s = 2\n", "duration_s = 20\n") \
        .replace('[expect.legacy]\nlost = "report"\nstuck = "report"\n', "")
    path = tmp_path / "pause.toml"
    path.write_text(text)
    stack = FakeStack(fake_gateway.url, redis_server(), redis_server())
    threading.Timer(3.5, _thread.interrupt_main).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_scenario(load_scenario(path), opener=lambda c, r, s: stack, run_folder=RunFolder.create(tmp_path), seed=0)
    assert time.monotonic() - started < 15
    assert stack.worker.calls == ["pause", "resume"] and stack.stopped
    history = pd.read_parquet(next(tmp_path.glob("*/chaos/pause/history.parquet")))
    nemesis = history[history["process"] == "nemesis"]
    assert list(nemesis["f"]) == ["start", "stop"]
    result = json.loads(next(tmp_path.glob("*/chaos/pause/result.json")).read_text())
    assert "interrupted" in result["errors"][0]


def test_repeated_runs_turn_each_count_into_a_rate_with_an_interval(tmp_path: Path, scenario_file: Path) -> None:
    from harness.chaos.repeat import outcome_over, rates

    runs = [_literal_result(tmp_path / str(i), scenario_file, celery_lost=lost, legacy_stuck=0)
            for i, lost in enumerate((1, 0, 2, 0))]
    found = {(r.path, r.name): r for r in rates(runs)}
    lost = found[("celery", "lost")]
    assert (lost.hits, lost.runs, lost.most) == (2, 4, 2)
    assert str(lost).startswith("celery: lost > 0 in 2 of 4 runs (95% CI 7%–93%")
    assert found[("legacy", "lost")].hits == 0  # a zero is the assurance the runs give: always stated
    assert outcome_over(runs) == "held"
    text = findings_markdown(runs)
    assert "## Over the runs" in text and "lost > 0 in 2 of 4 runs" in text
