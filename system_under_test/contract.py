"""The platform's contract: the words and shapes a Crucible deployment shares with everyone who reads it.

Everything here is what a client, a worker, an executor or the harness may rely on, declared once:

- the two **paths** an evaluation can take (``legacy``: the Redis list and executor-1/2; ``celery``:
  Celery and executor-3) and the **routes** a submission may ask for (a path, or ``both``);
- a path's **status** (``queued`` → ``running`` → one of the terminal statuses);
- the **result** of a path (the parity surface) and the **record** of an evaluation as the gateway
  serves it (``GET /api/eval/{id}``);
- a **ledger row**: one execution as an executor appended it to its execution ledger;
- an **event**: one change of a path's result, as the event bus publishes it;
- the exit-code convention (a program killed by signal N reports ``128 + N``; a timeout 137);
- a **fallback**: what a record says when the gateway sent a Celery-routed evaluation to legacy
  after a failed Celery publish (phase 2 of the migration);
- the Redis keys and channels the platform uses (the legacy queue list, the evaluation records, the
  event channel, Celery's dead-letter list, the admin change history, the legacy workers' work in
  hand and the exactly-once claims).

Nothing here does I/O. ``store.py`` reads and writes records with these shapes; the harness imports
them through ``harness.vocabulary``.
"""

from __future__ import annotations

import signal
from typing import Literal, NotRequired, TypedDict, get_args

Path = Literal["legacy", "celery"]
PATHS: tuple[Path, ...] = get_args(Path)
Route = Literal["legacy", "celery", "both"]
ROUTES: tuple[Route, ...] = get_args(Route)
Language = Literal["python", "bash"]
LANGUAGES: tuple[Language, ...] = get_args(Language)

# Phase 2: what the gateway does when a Celery publish fails (none: roll back, 503; naive: fall back to
# legacy, as the plan writes it; safe: fall back with an exactly-once claim).
FallbackMode = Literal["none", "naive", "safe"]
FALLBACK_MODES: tuple[FallbackMode, ...] = get_args(FallbackMode)

Status = Literal["queued", "running", "completed", "failed", "timeout", "error"]
TerminalStatus = Literal["completed", "failed", "timeout", "error"]
STATUSES: tuple[Status, ...] = get_args(Status)
TERMINAL: frozenset[str] = frozenset(get_args(TerminalStatus))
# What an executor records for one execution: how the submission itself ended (``error`` is the
# platform's, never an execution's).
ExecutionOutcome = Literal["completed", "failed", "timeout"]
# Who asked an executor to run something: a path's worker, or a direct call (tests, benchmarks).
ExecutionPath = Literal["legacy", "celery", "direct"]

# Executors per path, as the platform is deployed (seed 003: Celery uses executor-3 only).
EXECUTORS: dict[Path, tuple[str, ...]] = {"legacy": ("executor-1", "executor-2"), "celery": ("executor-3",)}

SIGNAL_EXIT_BASE = 128
TIMEOUT_EXIT_CODE = SIGNAL_EXIT_BASE + int(signal.SIGKILL)  # 137

# Redis keys and channels.
LEGACY_QUEUE = "queue:evaluations"  # main Redis: the legacy path's list (LPUSH / BRPOP)
EVENTS_CHANNEL = "evaluations:events"  # main Redis: pub/sub of every result change
RECORD_PREFIX = "eval:"  # main Redis: one hash per evaluation
DLQ_KEY = "celery:dlq"  # celery-redis: tasks that exhausted their retries
ADMIN_CHANGES = "admin:changes"  # main Redis: list of every settings change, oldest first (AdminChange)
LEGACY_INHAND = "legacy:inhand"  # main Redis: hash, legacy worker id -> InHand, while it holds a popped job
CLAIM_PREFIX = "claim:"  # main Redis: ``claim:<eval_id>`` = the path that may execute an exactly-once evaluation
CLAIM_TTL_S = 86400


def record_key(eval_id: str) -> str:
    return f"{RECORD_PREFIX}{eval_id}"


def claim_key(eval_id: str) -> str:
    return f"{CLAIM_PREFIX}{eval_id}"


def exit_code_of(returncode: int) -> int:
    """The platform's exit code for a process's return code (``-N`` from a signal → ``128 + N``)."""
    return returncode if returncode >= 0 else SIGNAL_EXIT_BASE - returncode


def status_of(exit_code: int, timed_out: bool) -> ExecutionOutcome:
    """The status of a finished execution (``error`` is never an execution's own status)."""
    if timed_out:
        return "timeout"
    return "completed" if exit_code == 0 else "failed"


class Result(TypedDict, total=False):
    """One path's result; the parity surface of an evaluation."""

    status: Status
    output: str | None
    error: str | None
    exit_code: int | None
    timed_out: bool | None
    truncated: bool | None
    duration_ms: float | None
    executor_id: str | None
    attempts: int
    queued_at: float
    started_at: float | None
    finished_at: float | None
    # What the execution used (never compared by parity, like duration_ms): user + system CPU time
    # of all the submission's processes, and the largest peak resident set size among them (KiB).
    cpu_ms: float | None
    peak_rss_kb: int | None


# A record's ``fallback``: the Celery publish failed (``reason``: the exception's text) at ``at`` (epoch
# seconds) and the gateway sent the evaluation to legacy instead, in ``mode`` naive or safe. ``from`` is
# a keyword, hence the functional form.
Fallback = TypedDict("Fallback", {"from": Path, "mode": FallbackMode, "reason": str, "at": float})


class Record(TypedDict):
    """An evaluation as the gateway serves it: what was submitted and one result per routed path."""

    eval_id: str | None
    language: str | None
    code: str | None
    routes: list[Path]
    priority: int
    batch: bool
    timeout_s: float | None
    created_at: float
    results: dict[str, Result]  # by path name
    done: bool
    fallback: NotRequired[Fallback | None]  # null unless the evaluation fell back to legacy


class AdminChange(TypedDict):
    """One entry of ``ADMIN_CHANGES``: the settings a change set (all of them, with ``start``, when a
    gateway started), at ``at`` (epoch seconds)."""

    at: float
    changes: dict[str, object]
    start: NotRequired[bool]


class InHand(TypedDict):
    """A value of ``LEGACY_INHAND``: the evaluation a legacy worker has popped and not yet stored."""

    eval_id: str
    since: float


class Event(TypedDict):
    """One change of a path's result, as published on ``EVENTS_CHANNEL`` (``at``: the writer's clock)."""

    eval_id: str
    path: Path
    status: Status
    attempts: int
    at: float


class LedgerRow(TypedDict):
    """One execution, as an executor appended it to its ledger (the harness's ground truth)."""

    eval_id: str
    path: ExecutionPath
    attempt: int
    executor_id: str
    started_at: float
    finished_at: float
    exit_code: int
    outcome: ExecutionOutcome
    timed_out: bool
    truncated: bool
    duration_ms: float
    cpu_ms: NotRequired[float]  # as in Result; absent from rows written before they were measured
    peak_rss_kb: NotRequired[int]
