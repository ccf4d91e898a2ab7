"""Switchable candidate defects for the Celery path, to prove the parity suite's power.

Off by default. ``CELERY_CANDIDATE_DEFECTS=drop_trailing_newline,merge_stderr`` turns defects on in
the Celery worker; each one changes the executor's answer the way a plausible migration bug would
before the result is stored. The legacy path never applies them. A parity suite that cannot catch
every one of these has no power; one that flags a divergence with all of them off cries wolf.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Body = dict[str, Any]


def _drop_trailing_newline(body: Body) -> Body:
    out = body["output"]
    return {**body, "output": out[:-1] if out.endswith("\n") else out}


def _merge_stderr(body: Body) -> Body:
    return {**body, "output": body["output"] + body["error"], "error": ""}


def _signal_exit_code(body: Body) -> Body:
    # Reports a signal death the Python way (-N) instead of the shell way (128 + N).
    code = body["exit_code"]
    return {**body, "exit_code": 128 - code} if 128 < code < 160 else body


def _output_cap(body: Body) -> Body:
    # Applies the output cap at 4000 bytes instead of the executor's own cap.
    raw = body["output"].encode()
    if len(raw) <= 4000:
        return body
    return {**body, "output": raw[:4000].decode("utf-8", errors="replace"), "truncated": True}


def _unicode_reencode(body: Body) -> Body:
    # A classic: decoding UTF-8 bytes as Latin-1 somewhere in the pipeline.
    return {**body, "output": body["output"].encode("utf-8").decode("latin-1")}


DEFECTS: dict[str, Callable[[Body], Body]] = {
    "drop_trailing_newline": _drop_trailing_newline,
    "merge_stderr": _merge_stderr,
    "signal_exit_code": _signal_exit_code,
    "output_cap": _output_cap,
    "unicode_reencode": _unicode_reencode,
}


# Defects of the Celery path's behaviour rather than of its answer: the platform's promises broken
# (harness/chaos/promises.py must catch each). The task checks for them by name.
BEHAVIOUR: dict[str, str] = {
    "retry_fixed_countdown": "every retry waits the first countdown (no exponential backoff)",
    "no_dead_letter": "a task that exhausts its retries is not pushed to celery:dlq",
    "rabbitmq_priority": "the gateway sends the API priority as it is (RabbitMQ: higher is more urgent), where "
                         "Redis takes 0 as the most urgent",
    "swallow_soft_time_limit": "the pool's soft-timeout signal is ignored during the executor call, so the soft "
                               "time limit never stops a task",
}


def parse(names: list[str]) -> list[str]:
    unknown = [n for n in names if n not in DEFECTS and n not in BEHAVIOUR]
    if unknown:
        raise ValueError(f"CELERY_CANDIDATE_DEFECTS names unknown defects {unknown}; "
                         f"known: {sorted([*DEFECTS, *BEHAVIOUR])}")
    return names


def apply(names: list[str], body: Body) -> Body:
    for name in names:
        if name in DEFECTS:
            body = DEFECTS[name](body)
    return body
