"""Phase 2's fallback: a Celery-routed evaluation goes to legacy when its Celery publish fails.

The plan writes it as ``try: submit_to_celery(task) except CeleryError: submit_to_legacy(task)``. Any
failed publish falls back, including one whose outcome is unknown: a publish whose reply was lost, or
that timed out, may have landed, and then Celery runs the evaluation as well. The fallback is one
step on the main Redis (a Lua script): the record's routes become ``["legacy"]``, ``result:celery``
is removed, ``result:legacy`` is queued, ``fallback`` says why and when, and the legacy job is queued.

- ``naive``: exactly that, as the plan writes it; both paths may run the evaluation.
- ``safe``: the record was marked ``exactly_once`` before the publish (see system_under_test/claims.py),
  the legacy job carries the mark, and the step first checks the idempotency key: if Celery already
  holds the evaluation's claim the publish evidently landed and there is no fallback at all
  (``landed``: the record keeps routes ``["celery"]``). Otherwise whichever path claims it first
  runs it, and only that one.

Only an evaluation routed to Celery alone falls back: a dual-write one (``both``) is already queued on
legacy, and a failed publish rolls it back as before. Nothing falls back while ``accept_legacy`` is
false (phase 3): then a failed publish is a 503, as with ``none``.
"""

from __future__ import annotations

import json
import time
from typing import Literal

from redis import Redis

from system_under_test.contract import LEGACY_QUEUE, Fallback, FallbackMode, claim_key, record_key
from system_under_test.store import queued_result

Outcome = Literal["fell back", "landed", "gone"]

# KEYS: record, claim, legacy queue. ARGV: routes, result:legacy, fallback, exactly_once (0/1), the legacy
# job, check the claim first (0/1).
_FALL_BACK = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 'gone' end
if ARGV[6] == '1' and redis.call('GET', KEYS[2]) == 'celery' then return 'landed' end
redis.call('HDEL', KEYS[1], 'result:celery')
redis.call('HSET', KEYS[1], 'routes', ARGV[1], 'result:legacy', ARGV[2], 'fallback', ARGV[3])
if ARGV[4] == '1' then redis.call('HSET', KEYS[1], 'exactly_once', '1') end
redis.call('LPUSH', KEYS[3], ARGV[5])
return 'fell back'
"""


class FallbackWriter:
    def __init__(self, redis: Redis) -> None:
        self._script = redis.register_script(_FALL_BACK)

    def fall_back(self, eval_id: str, *, mode: FallbackMode, exc: BaseException, queued_at: float,
                  job: str) -> tuple[Outcome, Fallback]:
        """Send the evaluation to legacy (``job``: its legacy payload); raises RedisError if the main
        Redis is unreachable (then nothing changed)."""
        fallback: Fallback = {"from": "celery", "mode": mode, "reason": f"{exc.__class__.__name__}: {exc}",
                              "at": time.time()}
        safe = "1" if mode == "safe" else "0"
        raw = self._script(keys=[record_key(eval_id), claim_key(eval_id), LEGACY_QUEUE],
                           args=[json.dumps(["legacy"]), json.dumps(queued_result(queued_at)), json.dumps(fallback),
                                 safe, job, safe])
        outcome = raw.decode() if isinstance(raw, bytes) else str(raw)
        if outcome not in ("fell back", "landed", "gone"):
            raise AssertionError(f"the fallback script answered {outcome!r}")
        return outcome, fallback  # type: ignore[return-value]
