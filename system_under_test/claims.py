"""Exactly-once claims: which path may execute an evaluation that must not run twice.

Phase 2's safe fallback sends a Celery-routed evaluation to legacy when its Celery publish fails.
A publish that failed only on the way back (the reply lost, a timeout) did land, so both paths may
then hold the same evaluation. Such a record carries ``exactly_once`` = ``1`` (and its legacy job
``"exactly_once": true``), and before executing it a worker of either path claims it on the main
Redis with ``SET claim:<eval_id> <path> NX EX 86400``:

- the claim is won (or already held by the worker's own path, as on a Celery retry or redelivery,
  whose own delivery rules then apply): execute as usual;
- the Celery task loses it: it skips the evaluation (no execution, no result);
- the legacy worker loses it (the ambiguous publish had landed and Celery ran first): it makes the
  record say so, in one step: ``result:legacy`` removed, routes ``["celery"]``; no execution.

The gateway marks the record before it publishes (a Celery task may run before the publish call
returns, so a mark written only after the failure would come too late for it to see), and it does
not fall back at all if Celery already holds the claim (gateway/fallback.py). Naive mode has no
claims: both paths may run the evaluation, which is the hazard the harness measures.
"""

from __future__ import annotations

import json

from redis import Redis

from system_under_test.contract import CLAIM_TTL_S, Path, claim_key, record_key

# The legacy worker lost the claim: the record now says Celery has the evaluation. Only while the
# record exists, as every worker write (a rolled-back submission stays gone).
_YIELD_TO_CELERY = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[1], 'result:legacy')
redis.call('HSET', KEYS[1], 'routes', ARGV[1])
return 1
"""


def is_exactly_once(redis: Redis, eval_id: str) -> bool:
    """Whether the record asks for exactly-once execution (one HGET)."""
    return redis.hget(record_key(eval_id), "exactly_once") in (b"1", "1")


def claim(redis: Redis, eval_id: str, path: Path) -> tuple[bool, str | None]:
    """Claim ``eval_id`` for ``path``: (won, holder). Held by ``path`` already counts as won."""
    for _ in range(2):  # the key may expire between the SET and the GET
        if redis.set(claim_key(eval_id), path, nx=True, ex=CLAIM_TTL_S):
            return True, path
        raw = redis.get(claim_key(eval_id))
        if raw is not None:
            holder = raw.decode() if isinstance(raw, bytes) else str(raw)
            return holder == path, holder
    return False, None


def yield_to_celery(redis: Redis, eval_id: str) -> bool:
    """The legacy worker lost the claim to Celery: drop ``result:legacy``, routes ``["celery"]``.

    False if the record no longer exists.
    """
    script = redis.register_script(_YIELD_TO_CELERY)
    return bool(script(keys=[record_key(eval_id)], args=[json.dumps(["celery"])]))
