"""StackConfig: one typed configuration for every component of the stack.

Defaults are the platform's (and Celery's own) so that the harness finds what production would:
early ack, prefetch 4, visibility timeout 3600 s, celery-redis with ``maxmemory 256mb`` and
``allkeys-lru``. Scenarios and tests override what they need. ``celery_env``, ``gateway_env`` and
``executor_env`` turn the configuration into each role's environment variables, the same names the
platform uses, and ``celery_worker_specs`` says which Celery workers run (both launchers and the
effective-configuration check read it).

Celery worker topology (``celery_topology``):

- ``single`` (default): ``celery_workers`` workers, each serving ``celery_queues`` with
  ``celery_concurrency`` processes;
- ``plan``: the platform's plan (seed 000, Q3): ``celery-worker-1`` on ``high_priority`` with 4,
  ``celery-worker-2`` on ``batch`` with 1, ``celery-worker-3`` on ``evaluation,high_priority`` with 2.
  ``celery_workers``, ``celery_concurrency`` and ``celery_queues`` are then not used; nothing serves
  ``maintenance``, as in the plan.
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.errors import StackError

Routing = Literal["random", "sticky"]
FallbackMode = Literal["none", "naive", "safe"]  # the gateway's CELERY_FALLBACK (phase 2)
CeleryTopology = Literal["single", "plan"]
WorkerSpec = tuple[str, tuple[str, ...], int]  # (component name, queues, concurrency)
# seed 000, Q3: the platform's specialised Celery workers.
PLAN_TOPOLOGY: tuple[WorkerSpec, ...] = (
    ("celery-worker-1", ("high_priority",), 4),
    ("celery-worker-2", ("batch",), 1),
    ("celery-worker-3", ("evaluation", "high_priority"), 2),
)
CELERY_QUEUES = ("high_priority", "evaluation", "batch", "maintenance")
MaxmemoryPolicy = Literal["noeviction", "allkeys-lru", "volatile-lru", "allkeys-random", "volatile-ttl"]


@dataclass(frozen=True)
class StackConfig:
    # split
    celery_enabled: bool = True
    celery_percentage: float = 50.0
    routing: Routing = "random"
    dual_write: bool = False
    # the migration's later phases: phase 2's fallback, phase 3's ACCEPT_LEGACY_TASKS
    fallback: FallbackMode = "none"
    accept_legacy: bool = True
    # random per stack: a published default would be a password anyone knows (give one to reach it by hand)
    # never starting with "-": `--admin-token -x...` would read as an option (it did, once in a few dozen stacks)
    admin_token: str = field(default_factory=lambda: "t" + secrets.token_urlsafe(18))
    # Celery delivery
    acks_late: bool = False
    reject_on_worker_lost: bool = False
    visibility_timeout_s: float = 3600.0
    prefetch_multiplier: int = 4
    restore_interval_s: float = 10.0
    restore_throttle: int = 10
    max_retries: int = 3
    retry_backoff_s: float = 60.0
    task_time_limit_s: float = 300.0
    task_soft_time_limit_s: float = 270.0
    candidate_defects: tuple[str, ...] = ()
    # Redis
    celery_redis_maxmemory: str | None = "256mb"
    celery_redis_policy: MaxmemoryPolicy = "allkeys-lru"
    main_redis_maxmemory: str | None = None
    main_redis_policy: MaxmemoryPolicy = "noeviction"
    # executors
    executor_timeout_s: float = 10.0
    executor_memory_mb: int = 256
    executor_output_bytes: int = 65536
    executor_concurrency: int = 4
    executor_max_procs: int = 64
    # the executor the Celery workers call: executor-3 as deployed; another one is a misconfiguration
    # the routing invariant must catch (misrouted)
    celery_executor: str = "executor-3"
    # counts
    legacy_workers: int = 2
    celery_workers: int = 1
    celery_concurrency: int = 2
    celery_queues: tuple[str, ...] = CELERY_QUEUES
    celery_topology: CeleryTopology = "single"
    flower: bool = True
    fault_proxy: bool = True
    gateway_port: int = 0  # 0: a free port
    flower_port: int = 0
    seed: int = 0
    ready_timeout_s: float = 30.0
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if not 0 <= self.celery_percentage <= 100:
            problems.append(f"celery_percentage must be within 0..100, got {self.celery_percentage}")
        if self.routing not in ("random", "sticky"):
            problems.append(f"routing must be 'random' or 'sticky', got {self.routing!r}")
        for name in ("legacy_workers", "celery_workers", "celery_concurrency", "executor_concurrency"):
            if getattr(self, name) < 0 or (name != "legacy_workers" and getattr(self, name) < 1):
                problems.append(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("gateway_port", "flower_port"):
            if not 0 <= getattr(self, name) <= 65535:
                problems.append(f"{name} must be within 0..65535 (0 = any free port), got {getattr(self, name)}")
        if self.celery_executor not in ("executor-1", "executor-2", "executor-3"):
            problems.append(f"celery_executor must be executor-1, executor-2 or executor-3, got {self.celery_executor!r}")
        if self.fallback not in ("none", "naive", "safe"):
            problems.append(f"fallback must be 'none', 'naive' or 'safe', got {self.fallback!r}")
        if not self.celery_enabled and not self.accept_legacy:
            problems.append("celery_enabled=False with accept_legacy=False leaves no path for new work; set one "
                            "of them to True")
        if self.celery_topology not in ("single", "plan"):
            problems.append(f"celery_topology must be 'single' or 'plan' (seed 000 Q3's three workers), "
                            f"got {self.celery_topology!r}")
        unknown_queues = [q for q in self.celery_queues if q not in CELERY_QUEUES]
        if unknown_queues or not self.celery_queues:
            problems.append(f"celery_queues must be a non-empty selection of {list(CELERY_QUEUES)}, "
                            f"got {list(self.celery_queues)}")
        if self.visibility_timeout_s <= 0:
            problems.append(f"visibility_timeout_s must be > 0, got {self.visibility_timeout_s}")
        if problems:
            raise StackError("invalid StackConfig: " + "; ".join(problems))

    @classmethod
    def from_options(cls, **options: Any) -> StackConfig:
        """Build from keyword options, rejecting unknown names with the list of known ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise StackError(f"unknown stack option(s) {unknown}; known options: {sorted(known)}")
        return cls(**options)

    @classmethod
    def for_tests(cls, **options: Any) -> StackConfig:
        """The platform's defaults with short test timeouts: an executor limit of 5 s and a first
        retry after 0.5 s, so a timeout or a retried outage costs seconds, not minutes (what parity,
        chaos, the gate and the pytest fixture start from)."""
        return cls.from_options(**{"executor_timeout_s": 5.0, "retry_backoff_s": 0.5, **options})

    def replace(self, **changes: Any) -> StackConfig:
        return dataclasses.replace(self.from_options(**{**self.as_dict(), **changes}))

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def celery_worker_specs(self) -> list[WorkerSpec]:
        """The Celery workers to run: (component name, queues, concurrency) each, by ``celery_topology``."""
        if self.celery_topology == "plan":
            return list(PLAN_TOPOLOGY)
        return [(f"celery-worker-{i}", tuple(self.celery_queues), self.celery_concurrency)
                for i in range(1, self.celery_workers + 1)]

    # -- environment per role ----------------------------------------------------------------------

    def celery_env(self) -> dict[str, str]:
        return {
            "CELERY_ACKS_LATE": str(self.acks_late).lower(),
            "CELERY_REJECT_ON_WORKER_LOST": str(self.reject_on_worker_lost).lower(),
            "CELERY_VISIBILITY_TIMEOUT": str(self.visibility_timeout_s),
            "CELERY_PREFETCH_MULTIPLIER": str(self.prefetch_multiplier),
            "CELERY_RESTORE_INTERVAL": str(self.restore_interval_s),
            "CELERY_RESTORE_THROTTLE": str(self.restore_throttle),
            "CELERY_MAX_RETRIES": str(self.max_retries),
            "CELERY_RETRY_BACKOFF_S": str(self.retry_backoff_s),
            "CELERY_TASK_TIME_LIMIT": str(self.task_time_limit_s),
            "CELERY_TASK_SOFT_TIME_LIMIT": str(self.task_soft_time_limit_s),
            "CELERY_CANDIDATE_DEFECTS": ",".join(self.candidate_defects),
        }

    def gateway_env(self) -> dict[str, str]:
        return {
            "CELERY_ENABLED": str(self.celery_enabled).lower(),
            "CELERY_PERCENTAGE": str(self.celery_percentage),
            "SPLIT_ROUTING": self.routing,
            "DUAL_WRITE": str(self.dual_write).lower(),
            "CELERY_FALLBACK": self.fallback,
            "ACCEPT_LEGACY_TASKS": str(self.accept_legacy).lower(),
            "ADMIN_TOKEN": self.admin_token,
            "GATEWAY_SEED": str(self.seed),
            "MAX_TIMEOUT_S": str(max(60.0, self.executor_timeout_s)),
            "CELERY_CANDIDATE_DEFECTS": ",".join(self.candidate_defects),
        }

    def executor_env(self) -> dict[str, str]:
        return {
            "EXECUTOR_TIMEOUT_S": str(self.executor_timeout_s),
            "EXECUTOR_MEMORY_MB": str(self.executor_memory_mb),
            "EXECUTOR_OUTPUT_BYTES": str(self.executor_output_bytes),
            "EXECUTOR_CONCURRENCY": str(self.executor_concurrency),
            "EXECUTOR_MAX_PROCS": str(self.executor_max_procs),
        }
