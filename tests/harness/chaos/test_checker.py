"""The queue checker on literal histories, the allowances it derives, and the history it reads."""

from __future__ import annotations

import threading
from typing import Any

import pandas as pd
import pytest

from harness.chaos.allowances import (
    RULES,
    AllowanceError,
    Allowances,
    FaultEvent,
    allowances_for,
    effects,
    faults_in,
)
from harness.chaos.checker import PRECEDENCE, CheckerError, check
from harness.generate.programs import Exit, ProgramSpec, Write, expect
from harness.history import History, HistoryError, Op, from_frame, pairs, to_frame
from harness.stack.config import StackConfig

# -- literal building blocks ---------------------------------------------------------------------------


def ops(*entries: tuple[Any, ...]) -> list[Op]:
    """(process, type, eval_id, value[, error]) per op, f="submit"; index and time are the position."""
    out = []
    for i, (process, type_, eval_id, value, *error) in enumerate(entries):
        out.append(Op(i, float(i), process, type_, "submit", eval_id, None, value, error[0] if error else None))
    return out


def acked(process: int, eval_id: str, *routes: str) -> list[tuple[Any, ...]]:
    return [(process, "invoke", None, {"marker": f"m-{eval_id}"}),
            (process, "ok", eval_id, {"eval_id": eval_id, "routes": list(routes)})]


def ran(eval_id: str, path: str, attempt: int = 1, started_at: float = 1.0, exit_code: int = 0,
        executor: str | None = None) -> dict[str, Any]:
    executor = executor or ("executor-3" if path == "celery" else "executor-1")
    return {"eval_id": eval_id, "path": path, "attempt": attempt, "executor_id": executor,
            "started_at": started_at, "finished_at": started_at + 0.5, "exit_code": exit_code,
            "outcome": "completed" if exit_code == 0 else "failed", "timed_out": False, "truncated": False,
            "duration_ms": 500.0}


def result(status: str = "completed", exit_code: int | None = 0, output: str = "hi\n") -> dict[str, Any]:
    return {"status": status, "output": output, "error": "" if status != "error" else "dead-lettered",
            "exit_code": exit_code, "timed_out": False, "truncated": False}


def record(eval_id: str, code: str = "print('hi')", **results: dict[str, Any]) -> dict[str, Any]:
    return {"eval_id": eval_id, "code": f"{code}  # m-{eval_id}", "routes": list(results), "results": results,
            "done": all(r["status"] in ("completed", "failed", "timeout", "error") for r in results.values())}


def classes(res: Any) -> dict[tuple[str, str], str]:
    return {(r.eval_id, r.path): r.cls for r in res.table.itertuples()}


# -- Jepsen total-queue semantics ------------------------------------------------------------------------


def test_an_execution_on_another_paths_executor_is_misrouted_and_names_the_executor() -> None:
    history = ops(*acked(0, "a", "celery"), *acked(1, "b", "legacy"), *acked(2, "c", "celery"))
    ledger = [ran("a", "celery", executor="executor-1"), ran("b", "legacy", executor="executor-3"),
              ran("c", "celery")]
    records = {i: record(i, **{p: result()}) for i, p in (("a", "celery"), ("b", "legacy"), ("c", "celery"))}

    res = check(history, ledger, records)

    assert classes(res) == {("a", "celery"): "misrouted", ("b", "legacy"): "misrouted", ("c", "celery"): "ok"}
    detail = res.table.set_index("eval_id").loc["a", "detail"]
    assert "executor-1 does not serve the celery path" in detail and "executor-3" in detail
    violations = res.violations({})
    assert {(v.path, v.invariant, v.count) for v in violations} == {("celery", "misrouted", 1),
                                                                    ("legacy", "misrouted", 1)}


def test_routing_is_not_checked_when_the_deployment_declares_no_executors() -> None:
    history = ops(*acked(0, "a", "celery"))
    res = check(history, [ran("a", "celery", executor="gpu-box-7")], {"a": record("a", celery=result())},
                routing=None)
    assert classes(res) == {("a", "celery"): "ok"}


def test_a_total_queue_history_sorts_attempts_into_ok_lost_duplicated_recovered_and_unexpected() -> None:
    history = ops(
        *acked(0, "a", "celery"),                      # runs once: ok
        *acked(1, "b", "celery"),                      # never runs: lost
        *acked(2, "c", "celery"),                      # runs twice: duplicated
        (3, "invoke", None, {"marker": "m-d"}),        # times out, but ran: recovered
        (3, "info", None, None, "timeout"),
        (4, "invoke", None, {"marker": "m-x"}),        # times out, nothing ever seen: unknown, not lost
        (4, "info", None, None, "connection reset"),
    )
    ledger = [ran("a", "celery"), ran("c", "celery", 1, 1.0), ran("c", "celery", 1, 9.0), ran("d", "celery"),
              ran("z", "celery")]                      # z: executed, never attempted: unexpected
    records = {"a": record("a", celery=result()), "b": record("b", celery=result("queued", None)),
               "c": record("c", celery=result()), "d": record("d", celery=result())}

    res = check(history, ledger, records)

    assert classes(res) == {("a", "celery"): "ok", ("b", "celery"): "lost", ("c", "celery"): "duplicated",
                            ("d", "celery"): "recovered", ("z", "celery"): "unexpected"}
    assert (res.attempts, res.acknowledged, res.failed, res.indeterminate) == (5, 3, 0, 2)
    assert [op.value for op in res.unmatched] == [{"marker": "m-x"}]
    assert res.counts["celery"].as_dict() == {"ok": 1, "recovered": 1, "lost": 1, "duplicated": 1,
                                              "unexpected": 1, "stuck": 0, "wrong": 0, "error": 0, "unknown": 0,
                                              "misrouted": 0}
    assert res.counts["legacy"].as_dict() == dict.fromkeys(res.counts["legacy"].as_dict(), 0)
    assert res.table.set_index("eval_id").loc["c", "executions"] == 2


def test_the_same_ledger_row_read_twice_is_one_execution_not_a_duplicate() -> None:
    row = ran("a", "celery")
    res = check(ops(*acked(0, "a", "celery")), [row, dict(row)], {"a": record("a", celery=result())})
    assert classes(res) == {("a", "celery"): "ok"}


def test_under_dual_write_an_evaluation_is_classified_once_per_path() -> None:
    res = check(ops(*acked(0, "a", "legacy", "celery")), [ran("a", "legacy")],
                {"a": record("a", legacy=result(), celery=result("queued", None))})
    assert classes(res) == {("a", "legacy"): "ok", ("a", "celery"): "lost"}
    assert res.counts["legacy"].ok == 1 and res.counts["celery"].lost == 1


def test_an_evaluation_executed_on_a_path_it_was_not_routed_to_is_unexpected_there() -> None:
    res = check(ops(*acked(0, "a", "legacy")), [ran("a", "legacy"), ran("a", "celery")],
                {"a": record("a", legacy=result())})
    assert classes(res) == {("a", "legacy"): "ok", ("a", "celery"): "unexpected"}
    assert "routed to legacy only" in res.table.set_index("path").loc["celery", "detail"]


# -- fail and info submissions ---------------------------------------------------------------------------


def test_a_failed_submit_that_still_ran_is_unexpected_not_recovered() -> None:
    history = ops((0, "invoke", None, {"marker": "m-a"}), (0, "fail", None, None, "503 celery broker unreachable"))
    res = check(history, [ran("a", "celery")], {"a": record("a", celery=result())})
    assert classes(res) == {("a", "celery"): "unexpected"}
    row = res.table.iloc[0]
    assert row["submit"] == "fail" and "its submit failed (op 1: 503 celery broker unreachable)" in row["detail"]
    assert res.failed == 1


def test_a_rolled_back_submit_that_ran_without_a_record_is_unexpected() -> None:
    history = ops((0, "invoke", None, {"marker": "m-a"}), (0, "fail", None, None, "503"))
    res = check(history, [ran("a", "legacy")], {})
    assert classes(res) == {("a", "legacy"): "unexpected"}
    assert "no submission in the history matches it" in res.table.iloc[0]["detail"]


def test_an_info_submit_that_never_ran_is_never_lost() -> None:
    unmatched = check(ops((0, "invoke", None, {"marker": "m-a"}), (0, "info", None, None, "timeout")), [], {})
    assert unmatched.table.empty and len(unmatched.unmatched) == 1

    accepted = check(ops((0, "invoke", None, {"marker": "m-a"}), (0, "info", None, None, "timeout")), [],
                     {"a": record("a", celery=result("queued", None))})
    assert classes(accepted) == {("a", "celery"): "unknown"}
    assert accepted.counts["celery"].lost == 0 and not accepted.unmatched


def test_an_invoke_left_open_at_the_end_counts_as_info() -> None:
    res = check(ops((0, "invoke", None, {"marker": "m-a"})), [ran("a", "celery")],
                {"a": record("a", celery=result())})
    assert classes(res) == {("a", "celery"): "recovered"} and res.indeterminate == 1


def test_an_ok_submit_without_an_eval_id_is_rejected() -> None:
    with pytest.raises(CheckerError, match="op 1: an ok submit needs an eval_id"):
        check(ops((0, "invoke", None, None), (0, "ok", None, {"routes": ["celery"]})), [], {})


# -- stuck, wrong, error -----------------------------------------------------------------------------------


def test_not_terminal_is_stuck_when_executed_or_still_queued_and_lost_otherwise() -> None:
    history = ops(*acked(0, "ran", "celery"), *acked(1, "waits", "celery"), *acked(2, "gone", "celery"))
    records = {i: record(i, celery=result("running" if i == "ran" else "queued", None)) for i in ("ran", "waits")}
    res = check(history, [ran("ran", "celery")], records, queued={"celery": ["waits"]})
    assert classes(res) == {("ran", "celery"): "stuck", ("waits", "celery"): "stuck", ("gone", "celery"): "lost"}
    detail = res.table.set_index("eval_id")["detail"]
    assert "executed 1x" in detail["ran"] and "the record says 'running'" in detail["ran"]
    assert "still queued" in detail["waits"]
    assert "its record is gone" in detail["gone"]


def test_wrong_covers_the_oracle_the_ledger_and_a_result_without_an_execution() -> None:
    spec = ProgramSpec("python", (Write("stdout", "hi\n"),), Exit(0))
    oracle = expect(spec, output_cap=65536)
    history = ops(*acked(0, "good", "celery"), *acked(1, "bad", "celery"), *acked(2, "code", "celery"),
                  *acked(3, "ghost", "celery"))
    ledger = [ran("good", "celery"), ran("bad", "celery"), ran("code", "celery", exit_code=0)]
    records = {"good": record("good", celery=result()), "bad": record("bad", celery=result(output="HI\n")),
               "code": record("code", celery=result("failed", 3)), "ghost": record("ghost", celery=result())}
    res = check(history, ledger, records, expected={"good": oracle, "bad": oracle})
    assert classes(res) == {("good", "celery"): "ok", ("bad", "celery"): "wrong", ("code", "celery"): "wrong",
                            ("ghost", "celery"): "wrong"}
    detail = res.table.set_index("eval_id")["detail"]
    assert "oracle in output" in detail["bad"]
    assert "exit code 3, but the ledger recorded [0]" in detail["code"]
    assert "no execution" in detail["ghost"]


def test_status_error_is_counted_as_error_even_without_an_execution() -> None:
    res = check(ops(*acked(0, "a", "celery")), [], {"a": record("a", celery=result("error", None))})
    assert classes(res) == {("a", "celery"): "error"} and res.counts["celery"].error == 1


# -- precedence ----------------------------------------------------------------------------------------------


def test_the_precedence_order_is_the_documented_one() -> None:
    assert PRECEDENCE == ("unexpected", "misrouted", "lost", "stuck", "unknown", "wrong", "error", "duplicated", "recovered",
                          "ok")


@pytest.mark.parametrize(("case", "ledger", "status", "cls"), [
    ("unexpected beats duplicated", [1.0, 2.0], "completed", "unexpected"),
    ("stuck beats duplicated", [1.0, 2.0], "running", "stuck"),
    ("wrong beats duplicated", [1.0, 2.0], "wrong-output", "wrong"),
    ("error beats duplicated", [1.0, 2.0], "error", "error"),
    ("duplicated beats ok", [1.0, 2.0], "completed", "duplicated"),
])
def test_when_several_classes_apply_the_first_in_precedence_wins(case: str, ledger: list[float], status: str,
                                                                  cls: str) -> None:
    spec = ProgramSpec("python", (Write("stdout", "hi\n"),), Exit(0))
    history = [] if case.startswith("unexpected") else ops(*acked(0, "a", "celery"))
    res_value = (result(output="bye\n") if status == "wrong-output" else
                 result(status, 0 if status in ("completed",) else None))
    res = check(history, [ran("a", "celery", 1, t) for t in ledger], {"a": record("a", celery=res_value)},
                expected={"a": expect(spec, output_cap=65536)})
    assert classes(res) == {("a", "celery"): cls}, case


def test_duplicated_beats_recovered_for_an_info_submit_that_ran_twice() -> None:
    history = ops((0, "invoke", None, {"marker": "m-a"}), (0, "info", None, None, "timeout"))
    res = check(history, [ran("a", "celery", 1, 1.0), ran("a", "celery", 2, 5.0)], {"a": record("a", celery=result())})
    assert classes(res) == {("a", "celery"): "duplicated"}


# -- allowances ----------------------------------------------------------------------------------------------

CFG = StackConfig(celery_concurrency=2, prefetch_multiplier=4, max_retries=3, retry_backoff_s=0.5,
                  visibility_timeout_s=4, legacy_workers=2)


def test_without_faults_nothing_is_allowed() -> None:
    for allow in allowances_for(CFG, []).values():
        assert (allow.lost, allow.duplicated, allow.stuck, allow.wrong, allow.unexpected, allow.error,
                allow.executions) == (0, 0, 0, 0, 0, 0, 1)


def test_a_celery_worker_kill_with_early_ack_may_lose_its_running_tasks_but_not_duplicate() -> None:
    celery = allowances_for(CFG, [FaultEvent("kill", "celery-worker-1")])["celery"]
    assert (celery.lost, celery.stuck, celery.duplicated) == (2, 2, 0)
    assert "early ack" in celery.reasons[0]


def test_a_celery_worker_kill_with_acks_late_may_duplicate_prefetch_times_concurrency_and_lose_nothing() -> None:
    cfg = CFG.replace(acks_late=True, reject_on_worker_lost=True)
    celery = allowances_for(cfg, [FaultEvent("kill", "celery-worker-1")] * 2)["celery"]
    assert (celery.lost, celery.stuck, celery.duplicated, celery.executions) == (0, 0, 16, 3)


def test_a_pool_child_kill_is_requeued_only_with_acks_late_and_reject_on_worker_lost() -> None:
    child = [FaultEvent("kill-pool-child", "celery-worker-1")]
    assert allowances_for(CFG.replace(acks_late=True), child)["celery"].lost == 1
    both = allowances_for(CFG.replace(acks_late=True, reject_on_worker_lost=True), child)["celery"]
    assert (both.lost, both.duplicated) == (0, 1)


def test_a_pause_duplicates_reserved_tasks_only_when_longer_than_the_visibility_timeout() -> None:
    assert allowances_for(CFG, [FaultEvent("pause", "celery-worker-1", 3.0)])["celery"].duplicated == 0
    assert allowances_for(CFG, [FaultEvent("pause", "celery-worker-1", 6.0)])["celery"].duplicated == 8
    assert allowances_for(CFG.replace(prefetch_multiplier=0),
                          [FaultEvent("pause", "celery-worker-1", 6.0)])["celery"].duplicated is None


def test_an_executor_3_outage_allows_retries_and_errors_only_beyond_the_backoff_budget() -> None:
    short = allowances_for(CFG, [FaultEvent("component-down", "executor-3", 2.0)])["celery"]  # budget 3.5 s
    long = allowances_for(CFG, [FaultEvent("component-down", "executor-3", 10.0)])["celery"]
    assert (short.error, short.executions, short.duplicated) == (0, 4, 0)
    assert long.error is None
    link = allowances_for(CFG, [FaultEvent("disable", "celery-executor-3", 2.0)])["celery"]
    assert (link.duplicated, link.executions) == (None, 4)


def test_legacy_loses_at_most_the_job_in_hand_per_worker_kill() -> None:
    allow = allowances_for(CFG, [FaultEvent("kill", "legacy-worker-1"), FaultEvent("kill", "legacy-worker-2")])
    assert (allow["legacy"].lost, allow["legacy"].stuck, allow["legacy"].executions) == (2, 2, 1)
    assert allow["celery"].lost == 0


def test_redis_faults_follow_persistence_and_eviction_policy() -> None:
    assert allowances_for(CFG, [FaultEvent("restart", "celery-redis")])["celery"].lost is None
    assert allowances_for(CFG, [FaultEvent("memory-pressure", "celery-redis", 5.0)])["celery"].lost is None
    no_evict = CFG.replace(celery_redis_policy="noeviction")
    assert allowances_for(no_evict, [FaultEvent("memory-pressure", "celery-redis", 5.0)])["celery"].lost == 0


def test_slow_toxics_allow_nothing_and_unknown_targets_are_rejected() -> None:
    slow = allowances_for(CFG, [FaultEvent("toxic", "celery-worker-celery-redis", 5.0, "latency")])["celery"]
    assert (slow.lost, slow.duplicated) == (0, 0)
    cut = allowances_for(CFG, [FaultEvent("toxic", "celery-worker-celery-redis", 5.0, "timeout")])["celery"]
    assert cut.duplicated == 8
    with pytest.raises(AllowanceError, match="no allowance rule for a 'kill' fault on 'nowhere'"):
        allowances_for(CFG, [FaultEvent("kill", "nowhere")])


def test_faults_are_read_from_the_nemesis_ops_of_a_history() -> None:
    history = [
        Op(0, 1.0, "nemesis", "info", "start", value={"fault": "f", "kind": "pause", "target": "celery-worker-1"}),
        Op(1, 2.0, "nemesis", "info", "start",
           value={"fault": "g", "kind": "toxic", "target": "gateway-celery-redis", "toxic": {"type": "reset_peer"}}),
        Op(2, 7.5, "nemesis", "info", "stop", value={"fault": "f", "kind": "pause", "target": "celery-worker-1"}),
    ]
    assert faults_in(history) == [FaultEvent("pause", "celery-worker-1", 6.5),
                                  FaultEvent("toxic", "gateway-celery-redis", None, "reset_peer")]


# -- violations ------------------------------------------------------------------------------------------------


def _mixed() -> Any:
    history = ops(*acked(0, "a", "celery"), *acked(1, "b", "celery"), *acked(2, "c", "celery"),
                  *acked(3, "d", "legacy"))
    ledger = [ran("a", "celery"), ran("c", "celery", 1, 1.0), ran("c", "celery", 1, 5.0), ran("c", "celery", 1, 9.0)]
    records = {"a": record("a", celery=result()), "c": record("c", celery=result()),
               "d": record("d", legacy=result("queued", None))}
    return check(history, ledger, records)  # celery: a ok, b lost, c duplicated 3x; legacy: d lost


def test_violations_name_the_path_the_invariant_the_count_and_the_evaluations() -> None:
    found = _mixed().violations({"celery": Allowances(reasons=("no fault",)), "legacy": Allowances(lost=None)})
    assert [(v.path, v.invariant, v.count, v.bound, v.eval_ids) for v in found] == [
        ("celery", "lost", 1, 0, ("b",)), ("celery", "duplicated", 1, 0, ("c",))]
    assert str(found[0]).startswith("celery: lost 1 > 0 allowed (b): acknowledged, never executed")
    assert "allowance: no fault" in str(found[0])


def test_duplicates_within_their_allowance_pass_but_the_executions_cap_still_holds() -> None:
    res = _mixed()
    assert not [v for v in res.violations({"celery": Allowances(lost=1, duplicated=1)}) if v.path == "celery"]
    capped = res.violations({"celery": Allowances(lost=1, duplicated=1, executions=2), "legacy": Allowances(lost=1)})
    assert [(v.invariant, v.count, v.bound, v.eval_ids) for v in capped] == [("executions", 3, 2, ("c",))]


def test_a_path_without_allowances_is_held_to_zero() -> None:
    found = _mixed().violations({"celery": Allowances(lost=None, duplicated=None)})
    assert [(v.path, v.invariant) for v in found] == [("legacy", "lost")]
    assert not _mixed().valid({"celery": Allowances(lost=None, duplicated=None)})


# -- the history ---------------------------------------------------------------------------------------------


def test_the_recorder_assigns_indexes_and_times_and_copies_the_invoke_into_its_completion() -> None:
    ticks = iter([100.0, 100.5, 101.0, 102.0, 103.0])
    h = History(clock=lambda: next(ticks))
    inv = h.invoke(0, "submit", path="celery", value={"marker": "m1"})
    done = h.complete(inv, "ok", eval_id="e1", value={"eval_id": "e1", "routes": ["celery"]})
    h.nemesis_start("kill worker", "kill", "celery-worker-1")
    h.nemesis_stop("kill worker", "kill", "celery-worker-1")
    assert [(o.index, o.time, o.type, o.f) for o in h.ops] == [
        (0, 0.5, "invoke", "submit"), (1, 1.0, "ok", "submit"), (2, 2.0, "info", "start"), (3, 3.0, "info", "stop")]
    assert (done.process, done.path, done.eval_id) == (0, "celery", "e1")
    assert h.ops[2].value == {"fault": "kill worker", "kind": "kill", "target": "celery-worker-1"}
    with pytest.raises(HistoryError, match="needs an invoke"):
        h.complete(done, "ok")


def test_the_recorder_is_safe_across_threads() -> None:
    h = History()

    def client(process: int) -> None:
        for _ in range(50):
            h.complete(h.invoke(process, "submit"), "info", error="timeout")

    threads = [threading.Thread(target=client, args=(p,)) for p in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [o.index for o in h.ops] == list(range(800))
    assert len(pairs(h.ops)) == 400 and all(done is not None for _, done in pairs(h.ops))


def test_a_history_round_trips_through_parquet(tmp_path: Any) -> None:
    h = History()
    inv = h.invoke(3, "submit", path="legacy", value={"marker": "m", "priority": 5})
    h.nemesis_start("cut", "toxic", "gateway-celery-redis", toxic={"type": "reset_peer"})
    h.complete(inv, "info", error="timeout")
    h.complete(h.invoke("client-b", "submit"), "ok", eval_id="e9", value={"eval_id": "e9", "routes": ["celery"]})
    frame = h.to_frame()
    assert list(frame.columns) == ["index", "time", "process", "type", "f", "eval_id", "path", "value", "error"]
    assert len(frame) == 5
    frame.to_parquet(tmp_path / "history.parquet")
    assert from_frame(pd.read_parquet(tmp_path / "history.parquet")) == list(h.ops)
    assert from_frame(to_frame([])) == []


def test_ops_refuse_bad_types_paths_and_all_digit_process_names() -> None:
    with pytest.raises(HistoryError, match="type must be one of"):
        Op(0, 0.0, 1, "done", "submit")  # type: ignore[arg-type]
    with pytest.raises(HistoryError, match="path must be one of"):
        Op(0, 0.0, 1, "invoke", "submit", path="both")
    with pytest.raises(HistoryError, match="all digits"):
        Op(0, 0.0, "7", "invoke", "submit")


def test_pairs_rejects_a_completion_without_an_open_invoke() -> None:
    with pytest.raises(HistoryError, match="has no open invoke"):
        pairs(ops((0, "ok", "a", None)))
    with pytest.raises(HistoryError, match="invoked again"):
        pairs(ops((0, "invoke", None, None), (0, "invoke", None, None)))


def test_every_allowance_rule_is_reachable_and_its_reason_fully_filled_in() -> None:
    """The rules are data: each row must be the first match for some fault, and read as a sentence."""
    cfgs = [CFG, CFG.replace(acks_late=True), CFG.replace(acks_late=True, reject_on_worker_lost=True),
            CFG.replace(celery_redis_policy="noeviction"), CFG.replace(main_redis_policy="allkeys-lru")]
    targets = ["celery-worker-1", "legacy-worker-1", "celery-redis", "main-redis", "executor-1", "executor-3",
               "gateway", "flower", "fault-proxy", "gateway-main-redis", "gateway-celery-redis", "legacy-main-redis",
               "celery-worker-celery-redis", "legacy-executor-1", "celery-executor-3"]
    kinds = ["kill", "terminate", "restart", "component-down", "pause", "kill-pool-child", "memory-pressure",
             "disable"]
    faults = [FaultEvent(k, t, d) for k in kinds for t in targets for d in (1.0, 100.0)]
    faults += [FaultEvent("toxic", t, 5.0, x) for t in targets for x in ("latency", "timeout")]
    used: set[int] = set()
    for cfg in cfgs:
        for fault in faults:
            try:
                found = effects(cfg, fault)
            except AllowanceError:
                continue
            for e in found:
                used.add(e.rule)
                assert "{" not in e.reason and e.reason.startswith(fault.name), e.reason
    assert used == set(range(len(RULES)))


# -- fallbacks (phase 2): exactly once overall ------------------------------------------------------------


def fell_back(eval_id: str, mode: str = "naive", routes: tuple[str, ...] = ("legacy",),
              **results: dict[str, Any]) -> dict[str, Any]:
    rec = record(eval_id, **results)
    rec["routes"] = list(routes)
    rec["fallback"] = {"from": "celery", "mode": mode, "reason": "ConnectionError: reset", "at": 1.0}
    return rec


def test_a_fallback_that_ran_once_on_legacy_is_ok_and_the_celery_side_has_no_row() -> None:
    history = ops(*acked(0, "a", "legacy"))
    res = check(history, [ran("a", "legacy")], {"a": fell_back("a", legacy=result())})
    assert classes(res) == {("a", "legacy"): "ok"}


def test_a_naive_fallback_whose_celery_publish_had_landed_runs_twice_and_is_duplicated_across_paths() -> None:
    history = ops(*acked(0, "a", "legacy"))
    records = {"a": fell_back("a", legacy=result(), celery=result())}
    res = check(history, [ran("a", "legacy"), ran("a", "celery")], records)
    assert classes(res) == {("a", "legacy"): "ok", ("a", "celery"): "duplicated"}
    assert "must run exactly once overall" in res.table.set_index("path").loc["celery", "detail"]


def test_a_safe_fallback_claimed_by_celery_belongs_to_celery_and_legacy_has_no_row() -> None:
    history = ops(*acked(0, "a", "legacy"))  # the gateway answered legacy; the claim moved it to Celery
    res = check(history, [ran("a", "celery")], {"a": fell_back("a", "safe", ("celery",), celery=result())})
    assert classes(res) == {("a", "celery"): "ok"}


def test_a_fallback_that_never_ran_anywhere_is_lost_on_the_path_it_belongs_to() -> None:
    history = ops(*acked(0, "a", "legacy"))
    res = check(history, [], {"a": fell_back("a", legacy=result("queued", None))})
    assert classes(res) == {("a", "legacy"): "lost"}
