"""What the gateway accepts and answers, as pydantic models: its OpenAPI schema is generated from them.

Request models are strict: JSON's types are taken as they are, never coerced (``priority: true``,
``batch: "yes"`` and ``dual_write: 0`` are 422s, not 1, True and False; only ``5.0`` is the integer 5,
as JSON Schema has it), and unknown fields are refused. The limits that are settings (the largest code and ``timeout_s``) go into the model that
:func:`submission_model` builds for one gateway, so the schema states them. Response models forbid
extra keys, and the gateway validates what it answers against them, so the schema cannot drift
from the answers.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from system_under_test import httperrors
from system_under_test.contract import FallbackMode, Language, Path, Status
from system_under_test.gateway.split import Override, Routing


def _integral(value: Any) -> Any:
    # JSON has one number type: 5.0 is the integer 5 (JSON Schema says so too); 5.5, true and "5" are not.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


JsonInt = Annotated[int, BeforeValidator(_integral)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubmissionFields(_Strict):
    """``POST /api/eval``; :func:`submission_model` adds this gateway's limits."""

    code: str = Field(min_length=1, description="the program to run")
    language: Language = Field(description="the program's language")
    priority: JsonInt = Field(default=5, ge=0, le=9, description="0 (lowest) .. 9 (most urgent; 8 and 9 take "
                                                             "Celery's high_priority queue)")
    batch: bool = Field(default=False, description="bulk submission: Celery's batch queue")
    timeout_s: float | None = Field(default=None, gt=0, allow_inf_nan=False,
                                    description="wall-clock limit for this run, in seconds")
    route: Override | None = Field(default=None, description="force legacy, celery or both (for tests); "
                                                             "null or absent: the split decides")


def submission_model(max_code_bytes: int, max_timeout_s: float) -> type[SubmissionFields]:
    """The submission model with one gateway's limits, as its schema states them.

    ``MAX_CODE_BYTES`` counts UTF-8 bytes, which JSON Schema cannot express: ``maxLength`` (characters)
    is set to the same number, a bound no accepted code exceeds, and a code within it whose UTF-8
    is longer still gets a 413 (documented there); ``x-maxBytes`` states the byte limit itself.
    """

    class Submission(SubmissionFields):
        code: str = Field(
            min_length=1, json_schema_extra={"maxLength": max_code_bytes, "x-maxBytes": max_code_bytes},
            description=f"the program to run: at most {max_code_bytes} bytes of UTF-8 (MAX_CODE_BYTES; "
                        f"more is a 413)")
        timeout_s: float | None = Field(
            default=None, gt=0, le=max_timeout_s, allow_inf_nan=False,
            description=f"wall-clock limit for this run, in seconds, at most {max_timeout_s:g} "
                        f"(MAX_TIMEOUT_S); null or absent: the executors' default")

    return Submission


class SplitUpdate(_Strict):
    """``PUT /api/admin/split``: the fields to change; null or absent leaves one as it is."""

    celery_enabled: bool | None = None
    celery_percentage: float | None = Field(default=None, ge=0, le=100, allow_inf_nan=False)
    routing: Routing | None = None
    dual_write: bool | None = None
    fallback: FallbackMode | None = None
    accept_legacy: bool | None = None


class Split(_Answer):
    celery_enabled: bool = Field(description="false sends everything to legacy (unless dual_write or route)")
    celery_percentage: float = Field(ge=0, le=100, description="share of evaluations sent to Celery")
    routing: Routing = Field(description="random, or sticky: a stable hash of the evaluation id")
    dual_write: bool = Field(description="every evaluation goes to both paths")
    fallback: FallbackMode = Field(description="phase 2, when a Celery publish fails: none (roll back, 503), naive "
                                               "(fall back to legacy, as the plan writes it) or safe (fall back; "
                                               "an exactly-once claim keeps it from running on both paths)")
    accept_legacy: bool = Field(description="phase 3: false sends nothing to legacy any more (ACCEPT_LEGACY_TASKS)")


class FallbackInfo(_Answer):
    """The Celery publish failed and the evaluation was sent to legacy instead."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: Path = Field(alias="from", description="the path whose publish failed: celery")
    mode: FallbackMode = Field(description="naive or safe")
    reason: str = Field(description="the publish's exception")
    at: float = Field(description="when the gateway fell back (epoch seconds)")


class Accepted(_Answer):
    eval_id: str = Field(description="the evaluation's id, for GET /api/eval/{eval_id}")
    routes: list[Path] = Field(min_length=1, max_length=2, description="the path(s) it was sent to")
    fallback: FallbackInfo | None = Field(default=None, description="set when it fell back to legacy")


class PathResult(_Answer):
    """One path's result: the parity surface of an evaluation."""

    status: Status
    output: str | None = Field(description="stdout")
    error: str | None = Field(description="stderr, or the platform's own error when status is error")
    exit_code: int | None = Field(description="128 + N for a program killed by signal N; 137 on timeout")
    timed_out: bool | None
    truncated: bool | None = Field(description="an output stream hit the executor's cap")
    duration_ms: float | None
    executor_id: str | None
    attempts: int = Field(ge=0)
    queued_at: float
    started_at: float | None
    finished_at: float | None
    cpu_ms: float | None = Field(default=None, description="user + system CPU time of the submission's processes")
    peak_rss_kb: int | None = Field(default=None, description="largest peak resident set size among them, KiB")


class Record(_Answer):
    eval_id: str
    language: Language
    code: str
    routes: list[Path] = Field(min_length=1, max_length=2)
    priority: int = Field(ge=0, le=9)
    batch: bool
    timeout_s: float | None
    created_at: float
    results: dict[Path, PathResult] = Field(description="one result per path in routes")
    done: bool = Field(description="every path's result is terminal")
    fallback: FallbackInfo | None = Field(default=None, description="set when it fell back to legacy")


class AdminChange(_Answer):
    at: float = Field(description="when (epoch seconds)")
    changes: dict[str, Any] = Field(description="the settings changed; all of them in a start entry")
    start: bool | None = Field(default=None, description="true: the settings a gateway started with")


class Routed(_Answer):
    legacy: int = Field(ge=0)
    celery: int = Field(ge=0)
    both: int = Field(ge=0)


class Stats(_Answer):
    routed: Routed = Field(description="routing decisions since the gateway started")
    split: Split


class Healthy(_Answer):
    status: Literal["ok"]
    backends: dict[str, str] = Field(description="main_redis and celery_broker: ok")


class Degraded(httperrors.ErrorBody):
    """``GET /health`` when a backend is unreachable (503)."""

    status: Literal["degraded"]
    backends: dict[str, str] = Field(description="main_redis and celery_broker: ok, or why not")
