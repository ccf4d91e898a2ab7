"""The configuration the Celery workers actually run with, read from them, and compared with the intended one.

A scenario says how the stack should be configured (``[stack]``); what it measures is only worth
anything if the running workers really use that configuration (an environment variable that is not
read, a typo in a setting, a deployment that overrides it). Celery's remote control answers for each
worker: ``inspect conf`` (its settings), ``inspect stats`` (its pool's concurrency) and
``inspect registered`` (each task's ``max_retries``). ``read_effective`` asks every worker through
the broker; ``differences`` compares with the intended ``StackConfig`` and names each setting that
differs, which makes the run an ``error`` (what it measured is not about the configuration it names).
A setting a worker does not report is not compared (``unknown``), never assumed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from harness.chaos.platform import TRANSPORT_OPTIONS
from harness.stack.config import StackConfig

# intended StackConfig field -> how to read it from one worker's answers (conf, stats, registered)
Reader = Callable[[Mapping[str, Any], Mapping[str, Any], list[str]], Any]
SETTINGS: Mapping[str, tuple[str, Reader]] = {
    "acks_late": ("task_acks_late", lambda c, s, r: c.get("task_acks_late")),
    "reject_on_worker_lost": ("task_reject_on_worker_lost", lambda c, s, r: c.get("task_reject_on_worker_lost")),
    "prefetch_multiplier": ("worker_prefetch_multiplier", lambda c, s, r: c.get("worker_prefetch_multiplier")),
    "visibility_timeout_s": ("broker_transport_options.visibility_timeout",
                             lambda c, s, r: (c.get("broker_transport_options") or {}).get("visibility_timeout")),
    "task_time_limit_s": ("task_time_limit", lambda c, s, r: c.get("task_time_limit")),
    "task_soft_time_limit_s": ("task_soft_time_limit", lambda c, s, r: c.get("task_soft_time_limit")),
    "celery_concurrency": ("pool max-concurrency", lambda c, s, r: (s.get("pool") or {}).get("max-concurrency")),
    "max_retries": ("tasks.evaluate_code max_retries", lambda c, s, r: _task_attr(r, "tasks.evaluate_code",
                                                                                   "max_retries")),
}


def _task_attr(registered: list[str], task: str, attr: str) -> Any:
    for line in registered:
        if line.startswith(task + " "):
            found = re.search(rf"\b{attr}=(\S+?)[\],\s]", line + " ")
            return None if found is None else int(found.group(1)) if found.group(1).isdigit() else found.group(1)
    return None


def read_effective(broker_url: str, *, timeout_s: float = 1.5) -> dict[str, dict[str, Any]]:
    """Per worker: the intended-config names it reports (see ``SETTINGS``); {} when no worker answers
    a ping within ``timeout_s``. The questions after the ping return as soon as every worker answered."""
    from celery import Celery

    app = Celery("harness-inspect", broker=broker_url)
    app.conf.broker_transport_options = TRANSPORT_OPTIONS
    try:
        workers = sorted(app.control.inspect(timeout=timeout_s).ping() or {})
        if not workers:
            return {}
        inspect = app.control.inspect(destination=workers, limit=len(workers), timeout=2 * timeout_s)
        conf = inspect.conf(with_defaults=True) or {}
        stats = inspect.stats() or {}
        registered = inspect.registered("max_retries") or {}
    finally:
        app.close()
    out: dict[str, dict[str, Any]] = {}
    for worker in sorted(set(conf) | set(stats)):
        c, s, r = conf.get(worker) or {}, stats.get(worker) or {}, list(registered.get(worker) or [])
        out[worker] = {name: reader(c, s, r) for name, (_, reader) in SETTINGS.items()}
    return out


def differences(intended: StackConfig, effective: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One line per worker and setting whose running value differs from the intended one (a worker's
    concurrency is its own in the topology: ``StackConfig.celery_worker_specs``)."""
    concurrency = {name: c for name, _, c in intended.celery_worker_specs()}
    out = []
    for worker, settings in effective.items():
        for name, value in settings.items():
            want = getattr(intended, name)
            if name == "celery_concurrency":
                want = concurrency.get(worker.split("@", 1)[0], want)
            if value is None:
                continue  # not reported: unknown, not compared
            same = float(value) == float(want) if isinstance(want, float) and not isinstance(value, bool) \
                else value == want
            if not same:
                out.append(f"{worker} runs with {SETTINGS[name][0]} = {value!r}, the scenario asked for "
                           f"{name} = {want!r}")
    return out
