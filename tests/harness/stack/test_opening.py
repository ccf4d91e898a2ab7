"""``open_stack``: one way to open a stack; its refusals, and the retry of a start lost to a port race."""

from __future__ import annotations

from typing import Any

import pytest

from harness.errors import StackError
from harness.run import RunFolder
from harness.stack import opening
from harness.stack.config import StackConfig
from harness.stack.opening import check_kind, open_stack


class FakeStack:
    def __init__(self, problem: str | None = None) -> None:
        self.problem = problem
        self.stopped = False

    def __enter__(self) -> FakeStack:
        if self.problem:
            raise StackError(self.problem)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped = True


def test_a_start_lost_to_a_port_race_is_retried_with_fresh_ports_and_stopped_at_the_end(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    made: list[FakeStack] = []

    def launcher(*args: Any) -> FakeStack:
        made.append(FakeStack("fault-proxy: bind: address already in use" if len(made) < 2 else None))
        return made[-1]

    monkeypatch.setattr(opening, "_launcher", launcher)
    said: list[str] = []
    with open_stack("processes", StackConfig(), RunFolder.create(tmp_path), say=said.append) as stack:
        assert stack is made[-1] and not made[-1].stopped
    assert len(made) == 3 and made[-1].stopped
    assert len(said) == 2 and "lost a port race" in said[0]


def test_any_other_start_error_is_raised_at_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    made: list[FakeStack] = []
    monkeypatch.setattr(opening, "_launcher", lambda *a: made.append(FakeStack("gateway did not become healthy"))
                        or made[-1])
    with pytest.raises(StackError, match="did not become healthy"), \
            open_stack("processes", StackConfig(), RunFolder.create(tmp_path)):
        pass
    assert len(made) == 1


def test_kinds_are_checked_and_external_needs_a_url_and_is_refused_where_faults_are_needed(tmp_path: Any) -> None:
    with pytest.raises(StackError, match="unknown stack kind 'docker': expected one of processes, containers, external"):
        check_kind("docker")
    with pytest.raises(StackError, match="needs a stack whose processes the harness controls"):
        check_kind("external", controllable=True)
    with pytest.raises(StackError, match="--stack external needs the gateway URL"), \
            open_stack("external", StackConfig(), RunFolder.create(tmp_path)):
        pass


def test_the_test_configuration_has_short_timeouts_and_takes_changes() -> None:
    config = StackConfig.for_tests(seed=7, celery_percentage=75)
    assert (config.executor_timeout_s, config.retry_backoff_s, config.seed, config.celery_percentage) == (
        5.0, 0.5, 7, 75)
