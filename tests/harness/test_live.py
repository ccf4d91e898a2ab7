"""The live view of both queues (``harness.live``) and ``harness watch``.

First the pure part (``summarise`` and the feed's window, on literal events and a clock of our
own), then the reads of one refresh on two real redis-servers (the platform's store publishes the
events; the queue keys are the ones the platform uses; a Redis that goes away and comes back),
then the whole command against the session's stack: plain lines when piped, a live table on a
(pseudo-)terminal, and the errors that name what is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import re
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
import requests

from harness.chaos.migration import INHAND_KEY
from harness.chaos.platform import UNACKED_KEY, queue_keys
from harness.live import (
    EventFeed,
    FeedView,
    Levels,
    LiveError,
    Terminal,
    cells,
    open_sources,
    read_snapshot,
    summarise,
)
from harness.stack.ports import free_port
from harness.vocabulary import DLQ_KEY, LEGACY_QUEUE
from harness.vocabulary import Path as Path_
from harness.watch import main as watch_main
from system_under_test.redis_server import find_redis_server, redis_argv
from system_under_test.store import EvaluationStore, queued_result

ROOT = Path(__file__).resolve().parents[2]
QUEUES = ("high_priority", "evaluation", "batch", "maintenance")
NO_GATEWAY = "http://127.0.0.1:9"  # discard: nothing answers


def event(eval_id: str, path: str, status: str, at: float) -> bytes:
    return json.dumps({"eval_id": eval_id, "path": path, "status": status, "attempts": 1, "at": at}).encode()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# -- pure: the snapshot from what was read ---------------------------------------------------------------


def test_rates_and_percentiles_cover_the_window_and_errors_are_counted_apart() -> None:
    done = tuple(Terminal(received=95.0 + i, at=95.0 + i, eval_id=f"l{i}", path="legacy", status="completed")
                 for i in range(4))
    failed_program = Terminal(99.5, 99.5, "c1", "celery", "failed")  # the user's program failed: a completion
    platform_error = Terminal(99.6, 99.6, "c2", "celery", "error")
    feed = FeedView(started=0.0, terminal=(*done, failed_program, platform_error), running={"celery": 1},
                    errors={"celery": 3}, events=20)
    created = {"l0": 94.9, "l1": 95.8, "l2": 96.8, "l3": 97.6, "c1": 99.0, "c2": 99.0}

    snap = summarise(feed, created, Levels(legacy_queued=5, legacy_in_hand=0, celery_queued=2, unacked=1,
                                          dead_letters=0), None, now=100.0, window_s=10.0)
    legacy, celery = snap.path("legacy"), snap.path("celery")

    assert legacy.completed_per_s == pytest.approx(0.4) and celery.completed_per_s == pytest.approx(0.1)
    assert legacy.p50_ms == pytest.approx(200.0) and legacy.p95_ms == pytest.approx(370.0)  # 100, 200, 200, 400 ms
    assert celery.p50_ms == pytest.approx(500.0)  # the error's time is not an evaluation's end-to-end time
    assert (legacy.errors, celery.errors) == (0, 3)
    assert (legacy.queued, celery.queued, celery.unacked, celery.dead_letters) == (5, 2, 1, 0)
    assert (legacy.unacked, legacy.dead_letters) == (None, None)  # legacy has neither: not zero, not applicable
    assert (legacy.in_hand, celery.in_hand) == (0, 1)
    assert snap.events == 20 and snap.problems == () and snap.window_s == 10.0


def test_while_the_view_starts_the_rate_is_over_the_time_it_has_watched() -> None:
    feed = FeedView(started=98.0, terminal=(Terminal(99.0, 99.0, "a", "celery", "completed"),) * 4)
    snap = summarise(feed, {}, Levels(), None, now=100.0, window_s=10.0)
    assert snap.window_s == 2.0 and snap.path("celery").completed_per_s == 2.0
    assert snap.path("celery").p50_ms is None  # no record's created_at known yet: no end-to-end time
    early = summarise(FeedView(started=99.9, terminal=()), {}, Levels(), None, now=100.0, window_s=10.0)
    assert early.path("legacy").completed_per_s is None  # not "0.0": nothing can be said after 0.1 s
    soon = summarise(FeedView(started=98.8, terminal=(Terminal(99.0, 99.0, "a", "celery", "completed"),)), {},
                     Levels(), None, now=100.0, window_s=10.0)
    assert soon.window_s == pytest.approx(1.2) and soon.path("celery").completed_per_s == pytest.approx(1 / 1.2)


def test_legacy_work_in_hand_is_at_least_the_platforms_own_count() -> None:
    feed = FeedView(started=0.0, terminal=(), running={"legacy": 1})
    assert summarise(feed, {}, Levels(legacy_in_hand=3), None, now=1.0, window_s=10).path("legacy").in_hand == 3
    assert summarise(feed, {}, Levels(legacy_in_hand=0), None, now=1.0, window_s=10).path("legacy").in_hand == 1


def test_the_routed_share_counts_a_dual_write_for_both_paths() -> None:
    stats = {"routed": {"legacy": 30, "celery": 10, "both": 10},
             "split": {"celery_percentage": 25.0, "dual_write": False, "celery_enabled": True, "routing": "random"}}
    snap = summarise(FeedView(0.0, ()), {}, Levels(), stats, now=1.0, window_s=10)
    assert (snap.path("legacy").routed, snap.path("celery").routed) == (40, 20)
    assert snap.path("legacy").routed_share == pytest.approx(80.0)
    assert snap.path("celery").routed_share == pytest.approx(40.0)
    assert snap.celery_percentage == 25.0 and snap.dual_write is False
    unknown = summarise(FeedView(0.0, (), problem="event bus gone"), {}, Levels(), None, now=1.0, window_s=10,
                        problems=("gateway unreadable",))
    assert unknown.path("celery").routed is None and unknown.path("celery").routed_share is None
    assert unknown.problems == ("gateway unreadable", "event bus gone")
    assert unknown.celery_percentage is None


def test_cells_show_unknown_as_a_dash_and_the_share_beside_the_count() -> None:
    stats = {"routed": {"legacy": 1, "celery": 3, "both": 0}, "split": {}}
    view = summarise(FeedView(0.0, ()), {}, Levels(celery_queued=7), stats, now=1.0, window_s=10).path("celery")
    text = cells(view)
    assert text["routed"] == "3 (75 %)" and text["queued"] == "7" and text["p50_ms"] == "–"
    assert text["oracle_disagreements"] == "–" and text["completed_per_s"] == "0.0"


def test_the_feed_keeps_the_window_follows_running_and_ignores_what_is_not_an_event() -> None:
    clock = Clock(1000.0)
    feed = EventFeed(redis_lib.Redis(), window_s=10.0, clock=clock)  # not started: fed by hand
    feed.feed(event("a", "legacy", "running", 999.0))
    feed.feed(event("b", "celery", "running", 999.0))
    feed.feed(event("b", "celery", "completed", 1000.0))
    feed.feed(event("c", "celery", "error", 1000.0))
    for junk in (b"not json", b"{}", event("d", "rabbitmq", "completed", 1.0), b'{"eval_id": "e"}'):
        feed.feed(junk)
    view = feed.view()
    assert view.running == {"legacy": 1} and view.errors == {"celery": 1} and view.events == 4
    assert [(t.eval_id, t.status) for t in view.terminal] == [("b", "completed"), ("c", "error")]

    feed.remember_created({"b": 999.5})
    clock.now = 1010.5  # both terminal events are now older than the window
    assert feed.view().terminal == () and feed.created() == {}
    feed.feed(event("a", "legacy", "queued", 1010.0))  # a retry puts it back on the queue: no longer in hand
    assert feed.view().running == {}


# -- real redis-servers -----------------------------------------------------------------------------------


class RedisServer:
    """A real redis-server on a fixed port that can be stopped and started again on that port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.TemporaryDirectory(prefix="live-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = redis_argv(port=self.port, binary=find_redis_server(), workdir=self._dir.name)
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        client = redis_lib.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis_lib.ConnectionError:
                assert time.monotonic() < deadline, f"redis-server on {self.port} did not start"
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None


@pytest.fixture
def two_redis() -> Iterator[tuple[RedisServer, RedisServer]]:
    """(main Redis, Celery broker), both real and empty; stopped at the end."""
    servers = (RedisServer(), RedisServer())
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()
            server._dir.cleanup()


def _until(probe: Callable[[], Any], timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if found := probe():
            return found
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout_s} s")


def test_one_refresh_reads_both_brokers_in_one_pipeline_each(two_redis: tuple[RedisServer, RedisServer]) -> None:
    main_server, broker_server = two_redis
    main, broker = redis_lib.Redis.from_url(main_server.url), redis_lib.Redis.from_url(broker_server.url)
    store = EvaluationStore(main)
    main.lpush(LEGACY_QUEUE, "job-1", "job-2", "job-3")
    main.hset(INHAND_KEY, mapping={"legacy-worker-1": json.dumps({"eval_id": "x", "since": 1.0})})
    keys = queue_keys(QUEUES)
    broker.lpush("evaluation", "m1", "m2")
    broker.lpush(keys[keys.index("evaluation") + 3], "m3")  # a message at priority step 3
    broker.lpush("batch", "m4")
    broker.hset(UNACKED_KEY, mapping={"tag-1": "[]", "tag-2": "[]"})
    broker.lpush(DLQ_KEY, "dead")

    with open_sources(main_server.url, broker_server.url, NO_GATEWAY, QUEUES, window_s=10.0) as src:
        assert src.feed.wait_subscribed()
        read_snapshot(src)  # connects (a new connection also sends CLIENT SETINFO: not a refresh's cost)
        created = time.time() - 0.25
        paths: tuple[tuple[str, Path_], ...] = (("e1", "legacy"), ("e2", "celery"), ("e3", "celery"))
        for eval_id, path in paths:
            main.hset(f"eval:{eval_id}", mapping={"id": eval_id, "created_at": repr(created),
                                                  f"result:{path}": json.dumps(queued_result(created))})
            store.set_result(eval_id, path, {**queued_result(created), "status": "running"})
        store.set_result("e2", "celery", {**queued_result(created), "status": "completed"})
        store.set_result("e1", "legacy", {**queued_result(created), "status": "completed"})
        _until(lambda: src.feed.view().events == 5)
        time.sleep(max(0.0, src.feed.started + 1.05 - time.time()))  # a rate needs a second of watching
        before = main.info("stats")["total_commands_processed"], broker.info("stats")["total_commands_processed"]
        snap = read_snapshot(src)
        after = main.info("stats")["total_commands_processed"], broker.info("stats")["total_commands_processed"]

    legacy, celery = snap.path("legacy"), snap.path("celery")
    assert (legacy.queued, legacy.in_hand) == (3, 1)
    assert (celery.queued, celery.in_hand, celery.unacked, celery.dead_letters) == (4, 1, 2, 1)
    assert legacy.p50_ms is not None and 200 < legacy.p50_ms < 5000  # created 0.25 s before the event
    assert celery.completed_per_s and legacy.completed_per_s
    assert len(snap.problems) == 1 and snap.problems[0].startswith(f"gateway {NO_GATEWAY}/api/stats unreadable")
    # One refresh: LLEN + HLEN + one HGET per new completion on the main Redis; 40 LLEN + HLEN + LLEN on the
    # broker (INFO itself counts once between the two readings).
    assert after[0] - before[0] == 2 + 2 + 1
    assert after[1] - before[1] == len(keys) + 2 + 1


def test_a_redis_that_goes_away_is_named_and_the_feed_comes_back_with_it(
        two_redis: tuple[RedisServer, RedisServer]) -> None:
    main_server, broker_server = two_redis
    with open_sources(main_server.url, broker_server.url, NO_GATEWAY, QUEUES) as src:
        assert src.feed.wait_subscribed()
        main_server.stop()
        broker_server.stop()
        snap = read_snapshot(src)
        assert snap.path("legacy").queued is None and snap.path("celery").dead_letters is None
        assert any(p.startswith("main Redis unreadable") for p in snap.problems)
        assert any(p.startswith("Celery broker unreadable") for p in snap.problems)
        _until(lambda: src.feed.view().problem)
        assert "event bus evaluations:events unreadable" in str(src.feed.view().problem)

        main_server.start()
        broker_server.start()
        assert _until(src.feed.wait_subscribed, timeout_s=15)
        redis_lib.Redis.from_url(main_server.url).publish("evaluations:events", event("z", "celery", "completed",
                                                                                       time.time()))
        _until(lambda: src.feed.view().terminal)
        again = read_snapshot(src)
        assert again.path("legacy").queued == 0 and again.path("celery").dead_letters == 0
        assert not [p for p in again.problems if "Redis" in p or "event bus" in p]


def test_watch_needs_a_stack_or_all_three_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HARNESS_REPORTS", str(tmp_path))  # no detached stack here
    assert watch_main(["--duration", "1"]) == 3
    assert "no stack is running to watch: start one with `harness up --detach`" in capsys.readouterr().err
    assert watch_main(["--stack-url", "http://127.0.0.1:8000", "--main-redis", "redis://127.0.0.1:1/0"]) == 3
    assert "--stack-url needs --celery-broker too" in capsys.readouterr().err
    assert watch_main(["--stack-url", "http://127.0.0.1:8000", "--main-redis", "redis://127.0.0.1:1/0",
                       "--celery-broker", "redis://127.0.0.1:1/0"]) == 3
    assert "the main Redis at 127.0.0.1:1 does not answer" in capsys.readouterr().err
    assert watch_main(["--main-redis", "http://x"]) == 3
    assert "expected a redis:// URL" in capsys.readouterr().err
    assert watch_main(["--interval", "0"]) == 3
    assert watch_main(["--name", "nope"]) == 3
    assert "no stack named 'nope' is running (running: none)" in capsys.readouterr().err


def test_watch_finds_the_detached_stack_by_its_state_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.stack import state as stacks
    from harness.watch import add_parser, resolve

    monkeypatch.setenv("HARNESS_REPORTS", str(tmp_path))
    endpoints = {"gateway": "http://127.0.0.1:1", "main_redis": "redis://127.0.0.1:2/0",
                 "celery_redis": "redis://127.0.0.1:3/0"}
    stacks.write({"name": "a", "pid": os.getpid(), "run_dir": str(tmp_path), "launcher": "processes",
                  "endpoints": endpoints, "components": []})
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    assert resolve(parser.parse_args(["watch"])) == ("http://127.0.0.1:1", "redis://127.0.0.1:2/0",
                                                     "redis://127.0.0.1:3/0")
    stacks.write({"name": "b", "pid": os.getpid(), "run_dir": str(tmp_path), "launcher": "processes",
                  "endpoints": {**endpoints, "gateway": "http://127.0.0.1:4"}, "components": []})
    with pytest.raises(LiveError, match=r"2 stacks are running \(a, b\): choose one with --name"):
        resolve(parser.parse_args(["watch"]))
    assert resolve(parser.parse_args(["watch", "--name", "b"]))[0] == "http://127.0.0.1:4"


# -- the command on the session's stack ---------------------------------------------------------------------


def _submit(gateway: str, n: int) -> list[str]:
    ids = []
    for i in range(n):
        resp = requests.post(f"{gateway}/api/eval", json={"code": f"print({i})", "language": "python"}, timeout=10)
        resp.raise_for_status()
        ids.append(resp.json()["eval_id"])
    return ids


def _last_frame(output: str) -> str:
    """The last table a live view drew, without terminal control sequences."""
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output).replace("\r", "")
    return "both queues" + text.split("both queues")[-1]


def _watch_argv(stack: Any, *more: str) -> list[str]:
    ep = stack.endpoints
    return [sys.executable, "-m", "harness", "watch", "--stack-url", ep.gateway, "--main-redis", ep.main_redis,
            "--celery-broker", ep.celery_redis, *more]


def test_a_snapshot_of_the_running_stack_shows_both_paths(stack: Any) -> None:
    ep = stack.endpoints
    with open_sources(ep.main_redis, ep.celery_redis, ep.gateway, stack.config.celery_queues, window_s=60) as src:
        assert src.feed.wait_subscribed()
        ids = _submit(ep.gateway, 24)

        def both_done() -> Any:
            snap = read_snapshot(src)
            done = all(v.completed_per_s and v.p50_ms is not None for v in snap.paths)
            return snap if done and not snap.problems else None

        snap = _until(both_done, timeout_s=60)
    stats = requests.get(f"{ep.gateway}/api/stats", timeout=5).json()["routed"]
    assert snap.path("legacy").routed == stats["legacy"] + stats["both"]
    assert snap.path("celery").routed == stats["celery"] + stats["both"]
    assert sum(v.routed_share or 0 for v in snap.paths) == pytest.approx(100.0 + 100.0 * stats["both"] / sum(
        stats.values()))
    assert all(v.errors == 0 and v.dead_letters in (0, None) for v in snap.paths)
    assert snap.path("legacy").p95_ms >= snap.path("legacy").p50_ms > 0  # type: ignore[operator]
    assert len(ids) == 24


def test_watch_prints_plain_lines_when_piped_and_stops_by_itself(stack: Any) -> None:
    _submit(stack.endpoints.gateway, 6)
    started = time.monotonic()
    done = subprocess.run(_watch_argv(stack, "--duration", "3", "--interval", "0.5"), cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 30
    lines = done.stdout.splitlines()
    legacy = [line for line in lines if " legacy " in line]
    celery = [line for line in lines if " celery " in line]
    assert len(legacy) >= 4 and len(celery) >= 4, done.stdout  # one per path and refresh
    assert "dead letters –" in legacy[-1] and "unacked –" in legacy[-1]
    assert "routed (share)" in celery[-1] and "\x1b[" not in done.stdout


def test_watch_draws_a_live_table_on_a_terminal_and_plain_lines_with_no_color(stack: Any) -> None:
    def on_a_terminal(extra: dict[str, str]) -> str:
        primary, secondary = pty.openpty()
        env = {**{k: v for k, v in os.environ.items() if k != "NO_COLOR"}, "COLUMNS": "160", **extra}
        env.pop("LINES", None)
        proc = subprocess.Popen(_watch_argv(stack, "--duration", "2"), cwd=ROOT, stdout=secondary,
                                stderr=secondary, stdin=subprocess.DEVNULL, env=env)
        os.close(secondary)
        out = b""
        try:
            while True:
                ready, _, _ = select.select([primary], [], [], 30)
                if not ready:
                    break
                try:
                    chunk = os.read(primary, 65536)
                except OSError:  # the other end closed: the process is done
                    break
                if not chunk:
                    break
                out += chunk
        finally:
            os.close(primary)
            assert proc.wait(30) == 0
        return out.decode("utf-8", "replace")

    wide = on_a_terminal({})
    assert "\x1b[" in wide and "both queues" in wide
    frame = _last_frame(wide)
    assert re.search(r"path +queued +in hand +completed/s +p50 ms +p95 ms +errors +dead letters +unacked +routed", frame)
    assert re.search(r"legacy +\d+ +\d+ ", frame) and re.search(r"celery +\d+ +\d+ ", frame), frame
    narrow = _last_frame(on_a_terminal({"COLUMNS": "80"}))  # one column per path: it fits 80 columns
    assert re.search(r"legacy +celery", narrow) and re.search(r"in hand +\d+ +\d+", narrow), narrow
    assert max(len(line) for line in narrow.splitlines()) <= 80
    plain = on_a_terminal({"NO_COLOR": "1"})
    assert "\x1b[" not in plain and " legacy queued " in plain and " celery queued " in plain
