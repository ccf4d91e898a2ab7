"""The platform's promises on literal records, events and dead letters; and the effective configuration."""

from __future__ import annotations

from typing import Any

from harness.chaos.effective import differences
from harness.chaos.promises import Promised, attempt_starts, check_promises
from harness.stack.config import StackConfig

PROMISED = Promised(max_retries=3, retry_backoff_s=0.5, time_limit_s=10, soft_time_limit_s=8)


def celery(eval_id: str, status: str = "completed", attempts: int = 1, error: str = "", started: float = 1.0,
           finished: float = 1.2, priority: int = 5, queued: float = 0.5) -> dict[str, Any]:
    return {"eval_id": eval_id, "priority": priority, "results": {"celery": {
        "status": status, "attempts": attempts, "error": error, "queued_at": queued, "started_at": started,
        "finished_at": finished}}}


def running(eval_id: str, *starts: float) -> list[dict[str, Any]]:
    return [{"eval_id": eval_id, "path": "celery", "status": "running", "attempts": a, "at": at}
            for a, at in enumerate(starts, 1)]


def broken(records: dict[str, Any], events: list[dict[str, Any]] = (), dlq: list[dict[str, Any]] = (),  # type: ignore[assignment]
           promised: Promised = PROMISED) -> dict[str, tuple[str, ...]]:
    return {p: ids for p, (ids, _) in check_promises(records, list(events), list(dlq), promised).broken.items()}


def test_an_exhausted_task_with_exponential_retries_in_the_dead_letter_list_keeps_every_promise() -> None:
    records = {"a": celery("a", "error", 4, "dead-lettered after 4 attempts: refused"), "b": celery("b")}
    events = running("a", 0.0, 0.51, 1.55, 3.6) + running("b", 0.0)
    assert broken(records, events, [{"eval_id": "a", "attempts": 4}]) == {}
    assert attempt_starts(events)["a"] == {1: 0.0, 2: 0.51, 3: 1.55, 4: 3.6}


def test_a_fixed_countdown_breaks_the_spacing_from_the_second_retry_on() -> None:
    records = {"a": celery("a", "error", 4, "dead-lettered after 4 attempts")}
    events = running("a", 0.0, 0.5, 1.0, 1.5)  # 0.5 s each time instead of 0.5, 1, 2
    assert broken(records, events, [{"eval_id": "a", "attempts": 4}]) == {"retry-spacing": ("a",)}


def test_an_empty_dead_letter_list_a_stray_entry_and_a_short_retry_count_are_each_caught() -> None:
    records = {"a": celery("a", "error", 4, "dead-lettered after 4 attempts"), "b": celery("b"),
               "c": celery("c", "error", 2, "dead-lettered after 2 attempts")}
    found = broken(records, dlq=[{"eval_id": "b", "attempts": 4}, {"eval_id": "c", "attempts": 2}])
    assert found == {"dead-letter": ("b", "a"), "retry-count": ("c",)}


def test_an_attempt_past_the_time_limit_is_a_broken_promise_unless_it_ended_in_error_within_the_hard_limit() -> None:
    records = {"ran-on": celery("ran-on", finished=1.0 + 15), "soft": celery("soft", finished=1.0 + 11),
               "stopped": celery("stopped", "error", finished=1.0 + 11, error="task soft time limit exceeded")}
    assert broken(records) == {"time-limit": ("ran-on", "soft")}


def test_priority_order_is_checked_only_where_the_scenario_states_a_share() -> None:
    backlog = {f"b{i}": celery(f"b{i}", priority=1, queued=float(i), started=10.0 + i) for i in range(5)}
    urgent = {f"u{i}": celery(f"u{i}", priority=9, queued=6.0 + i, started=20.0 + i) for i in range(4)}  # after all
    records = {**backlog, **urgent}
    assert broken(records) == {}
    claim = Promised(3, 0.5, 10, 8, priority_overtake_min=0.75)
    assert set(broken(records, promised=claim)["priority-order"]) == set(urgent)
    overtaking = {f"u{i}": celery(f"u{i}", priority=9, queued=6.0 + i, started=11.0 + i / 10) for i in range(4)}
    assert broken({**backlog, **overtaking}, promised=claim) == {}


def test_a_promise_marked_report_is_not_a_violation_and_others_are() -> None:
    checked = check_promises({"a": celery("a", "error", 4, "dead-lettered after 4 attempts")}, [], [], PROMISED)
    assert [v.invariant for v in checked.violations({})] == ["dead-letter"]
    assert checked.violations({"dead-letter": None}) == []


def test_the_effective_configuration_is_compared_setting_by_setting_and_unknown_is_not_compared() -> None:
    cfg = StackConfig(acks_late=True, prefetch_multiplier=1, visibility_timeout_s=30)
    running_ = {"w1@h": {"acks_late": True, "prefetch_multiplier": 1, "visibility_timeout_s": 30,
                         "celery_concurrency": None},
                "w2@h": {"acks_late": False, "prefetch_multiplier": 4, "visibility_timeout_s": 30.0}}
    assert differences(cfg, running_) == [
        "w2@h runs with task_acks_late = False, the scenario asked for acks_late = True",
        "w2@h runs with worker_prefetch_multiplier = 4, the scenario asked for prefetch_multiplier = 1"]
