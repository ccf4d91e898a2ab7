"""The load run's options, validated before anything starts; shared by the parent and the Locust process.

This module never imports Locust: the pytest process and ``harness load`` import it to build the
Locust command line, and the Locust process imports it for the names of the environment variables
and the step plan. Locust itself runs in a subprocess (``python -m locust -f harness/load/locustfile.py``)
because importing it monkey-patches the whole process with gevent.

What the parent passes to the Locust process:

- Locust options on the command line (users, spawn rate, run time, web or headless, distributed
  mode) and the harness's own options added to Locust's parser (``--route``, ``--think-time``,
  ``--e2e-timeout``, ``--batch-size``, ``--seed``, ``--steps``, ``--output-cap``). The master
  forwards the latter to its workers, and the web UI shows them under "Custom parameters".
- What must be decided before the locustfile is imported, or per machine, as environment variables:
  ``LOAD_SHAPE`` (``step`` selects ``StepLoadShape``), ``LOAD_MODE`` (``follow`` or ``submit``)
  and ``LOAD_ROWS_DIR`` (where each Locust process writes its per-request rows as JSONL).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from harness.errors import HarnessError

# "control": half of the evaluations forced to legacy, the rest left to the gateway's split; at a split of
# 100 % that keeps a control group on legacy for the gate (the forced ones are marked in the rows)
Route = Literal["legacy", "celery", "both", "control"]
Shape = Literal["step"]
Mode = Literal["follow", "submit"]

ROUTES: tuple[str, ...] = ("legacy", "celery", "both", "control")
SHAPES: tuple[str, ...] = ("step",)
MODES: tuple[str, ...] = ("follow", "submit")

ENV_ROWS_DIR = "LOAD_ROWS_DIR"
ENV_SHAPE = "LOAD_SHAPE"
ENV_MODE = "LOAD_MODE"

MAX_USERS = 10_000
MAX_DURATION_S = 6 * 3600.0
MAX_PROCESSES = 64


class LoadError(HarnessError):
    """A load run could not be set up, did not finish, or produced nothing to read."""


@dataclass(frozen=True)
class LoadOptions:
    """One load run. ``users``, ``spawn_rate`` and ``duration_s`` bound it; ``validate`` says what is wrong."""

    users: int
    spawn_rate: float
    duration_s: float
    shape: Shape | None = None
    steps: int = 5
    route: Route | None = None
    mode: Mode = "follow"
    think_time_s: float = 1.0
    e2e_timeout_s: float = 120.0
    batch_size: int = 8
    seed: int = 0
    output_cap: int = 65536
    stop_timeout_s: float = 30.0
    processes: int | None = None  # Locust's --processes: one master and N local workers

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise LoadError("invalid load options: " + "; ".join(problems))

    def problems(self) -> list[str]:
        found: list[str] = []
        if not 1 <= self.users <= MAX_USERS:
            found.append(f"users must be within 1..{MAX_USERS}, got {self.users}")
        if not 0 < self.spawn_rate <= MAX_USERS or not math.isfinite(self.spawn_rate):
            found.append(f"spawn_rate must be > 0 users per second (and <= {MAX_USERS}), got {self.spawn_rate}")
        if not 1 <= self.duration_s <= MAX_DURATION_S:
            found.append(f"duration_s must be within 1..{MAX_DURATION_S:.0f} seconds, got {self.duration_s}")
        if self.shape is not None and self.shape not in SHAPES:
            found.append(f"shape must be one of {list(SHAPES)} or None, got {self.shape!r}")
        if not 1 <= self.steps <= 100:
            found.append(f"steps must be within 1..100, got {self.steps}")
        if self.route is not None and self.route not in ROUTES:
            found.append(f"route must be one of {list(ROUTES)} or None (the gateway's split), got {self.route!r}")
        if self.mode not in MODES:
            found.append(f"mode must be one of {list(MODES)}, got {self.mode!r}")
        if not 0 <= self.think_time_s <= 600:
            found.append(f"think_time_s must be within 0..600, got {self.think_time_s}")
        if not 1 <= self.e2e_timeout_s <= 3600:
            found.append(f"e2e_timeout_s must be within 1..3600, got {self.e2e_timeout_s}")
        if not 1 <= self.batch_size <= 100:
            found.append(f"batch_size must be within 1..100, got {self.batch_size}")
        if self.output_cap < 1:
            found.append(f"output_cap must be >= 1 byte, got {self.output_cap}")
        if not 0 <= self.stop_timeout_s <= 600:
            found.append(f"stop_timeout_s must be within 0..600, got {self.stop_timeout_s}")
        if self.processes is not None and not (self.processes == -1 or 1 <= self.processes <= MAX_PROCESSES):
            found.append(f"processes must be -1 (one per core) or within 1..{MAX_PROCESSES}, got {self.processes}")
        return found

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def custom_args(self) -> list[str]:
        """The harness's own Locust options (see ``locustfile.add_arguments``)."""
        return ["--route", self.route or "split", "--think-time", str(self.think_time_s),
                "--e2e-timeout", str(self.e2e_timeout_s), "--batch-size", str(self.batch_size),
                "--seed", str(self.seed), "--steps", str(self.steps), "--output-cap", str(self.output_cap)]

    def env(self) -> dict[str, str]:
        return {ENV_SHAPE: self.shape or "", ENV_MODE: self.mode}


def step_plan(elapsed_s: float, *, users: int, steps: int, step_s: float) -> int:
    """Users wanted ``elapsed_s`` into a step load: ``steps`` equal steps of ``step_s`` up to ``users``.

    Step k (1-based) runs ``ceil(users * k / steps)`` users; after the last step the peak holds.
    """
    if users < 1 or steps < 1 or step_s <= 0:
        raise ValueError(f"step_plan needs users >= 1, steps >= 1, step_s > 0; got {users}, {steps}, {step_s}")
    k = min(int(max(elapsed_s, 0.0) // step_s) + 1, steps)
    return max(1, math.ceil(users * k / steps))
