"""The operator: carries out a scenario's migration transitions while the workload runs.

Where the nemesis breaks things, the operator moves the platform along the plan (seed 000, Q7), the
way the team would: through the gateway's admin endpoint (``PUT /api/admin/split``) and, for a
decommission or a rollback, by stopping or starting workers through the stack's component handles.
One thread runs the schedule against the workload's clock; each transition is recorded as an
``invoke`` and its completion (process ``operator``, ``f = "transition"``): ``ok`` with what was
applied and measured, or ``fail`` with why (the admin endpoint refused, a safe drain timed out).

- ``split``: ``celery_percentage``.
- ``phase2``: ``celery_percentage`` and ``fallback`` (naive | safe).
- ``decommission``: ``accept_legacy = false`` and ``celery_percentage = 100``, then the drain:
  *naive* waits until the legacy list is empty (the plan's ``while legacy_queue.size() > 0``);
  *safe* also waits until no live legacy worker holds a job (``legacy:inhand``; an entry of a worker
  that died is reported, not waited for: its job died with it), three polls in a row (a pop and its
  in-hand entry are two commands). Then the legacy workers are stopped (SIGTERM: the legacy worker
  has no handler, so a job in hand dies with it) and the result is verified: which legacy
  evaluations are still not terminal (``unaccounted``). A safe drain that times out does not stop
  anything and fails the transition.
- ``rollback``: ``celery_percentage`` (0 by default), ``fallback = none``, ``accept_legacy = true``,
  and the legacy workers a decommission stopped are started again; with ``stop_workers`` the Celery
  workers are stopped afterwards (their backlog strands).

Components the operator stopped are in ``stopped``: the runner's supervisor must not restart them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import redis as redis_lib

from harness.chaos.nemesis import start_again
from harness.chaos.observe import read_records
from harness.chaos.transitions import OPERATOR, Transition
from harness.client import ClientError, GatewayClient
from harness.history import History
from harness.stack.protocol import Stack
from harness.vocabulary import LEGACY_INHAND as INHAND_KEY
from harness.vocabulary import LEGACY_QUEUE, TERMINAL

POLL_S = 0.1


class MigrationError(Exception):
    """A transition could not be carried out; its message is the op's error."""


class Operator:
    """Runs ``transitions`` on ``stack`` from ``t0`` (monotonic); ``wait`` joins, ``stop`` cuts short."""

    def __init__(self, stack: Stack, history: History, transitions: tuple[Transition, ...], *, admin_token: str,
                 log: Callable[[str], None] | None = None) -> None:
        self.stack = stack
        self.history = history
        self.transitions = transitions
        self.client = GatewayClient(stack.endpoints.gateway, admin_token=admin_token)
        self.main = redis_lib.Redis.from_url(stack.endpoints.main_redis, socket_timeout=5, socket_connect_timeout=3)
        self.log = log or (lambda _msg: None)
        self.stopped: set[str] = set()
        self.errors: list[str] = []
        self.done = 0  # transitions carried out (ok or fail); fewer than planned at the end is an error
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, t0: float) -> None:
        if not self.transitions:
            return
        self._thread = threading.Thread(target=self._run, args=(t0,), name="operator", daemon=True)
        self._thread.start()

    def wait(self, timeout_s: float) -> bool:
        if self._thread is not None:
            self._thread.join(timeout_s)
            return not self._thread.is_alive()
        return True

    def stop(self) -> None:
        self._stop.set()
        self.wait(30)
        self.main.close()

    def _run(self, t0: float) -> None:
        for t in self.transitions:
            if self._stop.wait(max(0.0, t0 + t.at_s - time.monotonic())):
                return
            invoke = self.history.invoke(OPERATOR, "transition", value={**t.value(), "name": t.name})
            self.log(f"  move   {invoke.time:6.2f}s  {t.name}")
            try:
                value = getattr(self, f"_{t.kind}")(t)
            except (MigrationError, ClientError, redis_lib.RedisError) as exc:
                self.history.complete(invoke, "fail", error=str(exc)[:500])
                self.errors.append(f"{t.name}: {exc}")
                self.log(f"  move   FAILED {t.name}: {exc}")
                self.done += 1
                continue
            except Exception as exc:  # a bug, or a component that would not stop: never silent
                self.history.complete(invoke, "fail", error=f"{type(exc).__name__}: {exc}"[:500])
                self.errors.append(f"{t.name}: {type(exc).__name__}: {exc}")
                self.done += 1
                continue
            done = self.history.complete(invoke, "ok", value=value)
            self.done += 1
            self.log(f"  move   {done.time:6.2f}s  done {t.name}")

    # -- the moves ---------------------------------------------------------------------------------------

    def _split(self, t: Transition) -> dict[str, Any]:
        return {"split": self.client.set_split(celery_percentage=t.percentage)}

    def _phase2(self, t: Transition) -> dict[str, Any]:
        return {"split": self.client.set_split(celery_percentage=t.percentage, fallback=t.fallback)}

    def _rollback(self, t: Transition) -> dict[str, Any]:
        split = self.client.set_split(celery_percentage=t.percentage, fallback="none", accept_legacy=True)
        restarted = []
        for name in sorted(n for n in self.stopped if n.startswith("legacy-worker-")):
            start_again(self.stack.component(name))
            self.stopped.discard(name)
            restarted.append(name)
        stopped = self._stop_workers("celery-worker-") if t.stop_workers else []
        return {"split": split, "restarted": restarted, "stopped": stopped}

    def _decommission(self, t: Transition) -> dict[str, Any]:
        split = self.client.set_split(accept_legacy=False, celery_percentage=100)
        started = time.monotonic()
        quiet = 0
        while True:
            state = self._legacy_state()
            idle = state["queued"] == 0 if t.drain == "naive" else state["queued"] == 0 and state["in_hand"] == 0
            quiet = quiet + 1 if idle else 0
            if quiet >= (1 if t.drain == "naive" else 3):
                break
            if time.monotonic() - started > t.timeout_s:
                if t.drain == "safe":
                    raise MigrationError(f"the safe drain did not finish in {t.timeout_s:g}s ({state['queued']} "
                                         f"queued, {state['in_hand']} in a worker's hand, "
                                         f"{len(state['unfinished'])} not terminal): the legacy workers were left "
                                         "running")
                break
            time.sleep(POLL_S)
        drained_s = round(time.monotonic() - started, 3)
        in_hand_at_stop = state["in_hand"]
        stopped = self._stop_workers("legacy-worker-") if t.stop_workers else []
        after = self._legacy_state()
        return {"split": split, "drain": t.drain, "drained_s": drained_s, "in_hand_at_stop": in_hand_at_stop,
                "in_hand_of_dead_workers": state["dead"], "stopped": stopped,
                "unaccounted": after["unfinished"][:50], "unaccounted_count": len(after["unfinished"])}

    # -- helpers -----------------------------------------------------------------------------------------

    def _legacy_state(self) -> dict[str, Any]:
        queued = int(self.main.llen(LEGACY_QUEUE))
        holders = [h.decode() if isinstance(h, bytes) else str(h) for h in self.main.hkeys(INHAND_KEY)]
        dead = sorted(h for h in holders if not self._alive(h))
        in_hand = len(holders) - len(dead)
        unfinished = sorted(i for i, rec in read_records(self.main).items() if "legacy" in rec["routes"]
                            and (rec["results"].get("legacy") or {}).get("status") not in TERMINAL)
        return {"queued": queued, "in_hand": in_hand, "dead": dead, "unfinished": unfinished}

    def _alive(self, worker: str) -> bool:
        """Whether the legacy worker that holds a job still runs (unknown workers count as alive)."""
        try:
            return bool(self.stack.component(worker).alive())
        except Exception:
            return True

    def _stop_workers(self, prefix: str) -> list[str]:
        names = [row["component"] for row in self.stack.describe() if str(row["component"]).startswith(prefix)]
        for name in names:
            self.stack.component(name).terminate(grace_s=5.0)
            self.stopped.add(name)
        return names
