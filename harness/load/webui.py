"""The "Both queues" tab of the Locust web UI: the live view of ``harness.live``, beside Locust's own tabs.

Locust (2.4x) lets a locustfile extend its web UI: ``template_args["extended_tabs"]`` adds a tab,
``["extended_tables"]`` gives the tab a table (its columns), and an ``after_request`` hook adds
``extended_stats`` rows to ``/stats/requests``, which the UI polls every 2 s while a test runs. The
rows here are one per path: queued, in a worker's hand, completed per second, end-to-end p50/p95,
errors, dead letters, unacked, routed share (from the platform, as ``harness watch`` shows them),
and what only the load run knows: results disagreeing with the program's oracle and evaluations
still in flight when Locust stopped its users (``COUNTS``, filled in by ``harness.load.users``).

The tab reads the platform where ``harness load --web`` says (``live_env``): the main Redis
(``LIVE_MAIN_REDIS_URL``), the Celery broker (``LIVE_CELERY_BROKER_URL``) and its queues
(``LIVE_CELERY_QUEUES``); the gateway is Locust's host. Without the two Redis URLs (Locust started
by hand) the tab says which variables to set. In distributed mode the workers send their counts to
the master with their stats reports. Locust and ``harness.live`` are imported only inside functions:
``harness load`` imports ``live_env`` from here without patching its process with gevent, and a
Locust process without the web UI (headless, or a worker) never loads the live view (nor pandas).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from harness.stack.config import StackConfig

if TYPE_CHECKING:
    from harness.live import Snapshot, Sources

TAB = "queues"
TITLE = "Both queues"
ENV_MAIN_REDIS = "LIVE_MAIN_REDIS_URL"
ENV_BROKER = "LIVE_CELERY_BROKER_URL"
ENV_QUEUES = "LIVE_CELERY_QUEUES"
REFRESH_S = 1.0  # a snapshot serves every browser polling within this time
_REPORT_KEY = "harness_live"


def live_env(main_redis: str, celery_broker: str, queues: Iterable[str]) -> dict[str, str]:
    """The environment that tells the Locust process where the tab reads (empty URLs: left out)."""
    env = {ENV_QUEUES: ",".join(queues)}
    if main_redis and celery_broker:
        env.update({ENV_MAIN_REDIS: main_redis, ENV_BROKER: celery_broker})
    return env


class Counts:
    """Per path, since the test started: results disagreeing with the oracle, evaluations unfinished."""

    def __init__(self) -> None:
        self.oracle: Counter[str] = Counter()
        self.unfinished: Counter[str] = Counter()

    def disagree(self, paths: Iterable[str]) -> None:
        self.oracle.update(paths)

    def not_finished(self, paths: Iterable[str]) -> None:
        self.unfinished.update(paths)

    def reset(self) -> None:
        self.oracle.clear()
        self.unfinished.clear()

    def take(self) -> dict[str, dict[str, int]]:
        """What a worker sends with its report (then forgets: the master adds them up)."""
        sent = {"oracle": dict(self.oracle), "unfinished": dict(self.unfinished)}
        self.reset()
        return sent

    def add(self, sent: Mapping[str, Mapping[str, int]] | None) -> None:
        if sent:
            self.oracle.update(sent.get("oracle", {}))
            self.unfinished.update(sent.get("unfinished", {}))


COUNTS = Counts()


def rows(snapshot: Snapshot | None, counts: Counts, problem: str | None = None) -> list[dict[str, str]]:
    """The tab's rows: one per path, then one per problem (its text in the first column)."""
    from harness.live import COLUMNS, cells

    out: list[dict[str, str]] = []
    if snapshot is not None:
        for view in snapshot.paths:
            text = cells(view)
            text["oracle_disagreements"] = str(counts.oracle.get(view.path, 0))
            text["unfinished"] = str(counts.unfinished.get(view.path, 0))
            out.append({"name": f"{len(out)} {view.path}", **text})  # the UI sorts rows by name: legacy first
        problems = list(snapshot.problems)
    else:
        problems = []
    if problem:
        problems.append(problem)
    for message in problems:
        out.append({"name": f"{len(out)} problem", **{key: "" for key, _ in COLUMNS}, "path": f"problem: {message}"})
    return out


def _template_args() -> dict[str, Any]:
    from harness.live import COLUMNS

    return {"extended_tabs": [{"title": TITLE, "key": TAB}],
            "extended_tables": [{"key": TAB, "structure": [{"key": key, "title": title} for key, title in COLUMNS]}]}


class LiveTab:
    """The tab's data source in the Locust process that serves the web UI (one event feed, closed on quit)."""

    def __init__(self, gateway: str, env: Mapping[str, str]) -> None:
        self.gateway = gateway
        self.main, self.broker = env.get(ENV_MAIN_REDIS, ""), env.get(ENV_BROKER, "")
        queues = tuple(q for q in env.get(ENV_QUEUES, "").split(",") if q) or StackConfig().celery_queues
        self.problem = None if self.main and self.broker else (
            f"the tab needs {ENV_MAIN_REDIS} and {ENV_BROKER} (the main Redis and the Celery broker): "
            "`harness load --web` sets them; set them yourself when you start Locust by hand")
        from harness.live import open_sources

        self._context = open_sources(self.main, self.broker, gateway, queues) if self.problem is None else None
        self._sources: Sources | None = None
        self._last: tuple[float, Snapshot] | None = None

    def start(self) -> None:
        if self._context is not None:
            self._sources = self._context.__enter__()

    def stop(self) -> None:
        if self._context is not None and self._sources is not None:
            self._sources = None
            self._context.__exit__(None, None, None)

    def snapshot(self) -> Snapshot | None:
        if self._sources is None:
            return None
        now = time.monotonic()
        if self._last is None or now - self._last[0] >= REFRESH_S:
            from harness.live import read_snapshot

            self._last = (now, read_snapshot(self._sources))
        return self._last[1]

    def rows(self) -> list[dict[str, str]]:
        return rows(self.snapshot(), COUNTS, self.problem)


def install(environment: Any) -> LiveTab | None:
    """Install the tab on a Locust environment at its ``init`` event; on a worker only its reports.

    Returns the tab's data source where the web UI runs (None elsewhere).
    """
    from locust.runners import MasterRunner, WorkerRunner

    events = environment.events
    if isinstance(environment.runner, WorkerRunner):
        events.report_to_master.add_listener(lambda client_id, data, **_: data.update({_REPORT_KEY: COUNTS.take()}))
        return None
    if isinstance(environment.runner, MasterRunner):
        events.worker_report.add_listener(lambda client_id, data, **_: COUNTS.add(data.get(_REPORT_KEY)))
    events.test_start.add_listener(lambda **_: COUNTS.reset())
    web_ui = environment.web_ui
    if web_ui is None:
        return None
    tab = LiveTab(environment.host or "", os.environ)
    web_ui.template_args.update(_template_args())

    from flask import request

    @web_ui.app.after_request
    def _extend_stats(response: Any) -> Any:
        if request.path != "/stats/requests" or response.status_code != 200:
            return response
        body = response.get_json(silent=True) or {}
        body["extended_stats"] = [{"key": TAB, "data": tab.rows()}]
        response.set_data(json.dumps(body))
        return response

    tab.start()
    events.quitting.add_listener(lambda **_: tab.stop())
    return tab


__all__ = ["COUNTS", "ENV_BROKER", "ENV_MAIN_REDIS", "ENV_QUEUES", "TAB", "Counts", "LiveTab", "install",
           "live_env", "rows"]
