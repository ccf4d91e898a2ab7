"""Load shapes (Locust ``LoadTestShape``), selected with ``LOAD_SHAPE`` before the locustfile is imported.

``StepLoadShape`` (``LOAD_SHAPE=step``, ``harness load --shape step``) climbs to ``--users`` in
``--steps`` equal steps spread over ``--run-time`` (``--duration`` for ``harness load``), holding each
step for ``run_time / steps`` seconds, and stops at the end of the run time. It reads Locust's common
options (``use_common_options``), so the web UI's user count, spawn rate and run time drive it too;
without a run time (web UI, left empty) each step lasts 30 s and the peak holds until stopped.

A shape runs on the master only; in distributed mode workers just follow it. Imported only in the
Locust process.
"""

from __future__ import annotations

from locust import LoadTestShape

from harness.load.config import step_plan

DEFAULT_STEP_S = 30.0


class StepLoadShape(LoadTestShape):
    """``steps`` equal steps up to ``num_users`` over ``run_time``; ``None`` (stop) once the run time is over."""

    use_common_options = True

    def tick(self) -> tuple[int, float] | None:
        assert self.runner is not None
        options = self.runner.environment.parsed_options
        users = int(getattr(options, "num_users", None) or 1)
        rate = float(getattr(options, "spawn_rate", None) or 1.0)
        run_time = getattr(options, "run_time", None)
        steps = int(getattr(options, "steps", None) or 5)
        elapsed = self.get_run_time()
        if run_time and elapsed >= float(run_time):
            return None
        step_s = float(run_time) / steps if run_time else DEFAULT_STEP_S
        return step_plan(elapsed, users=users, steps=steps, step_s=step_s), rate
