"""The platform's broker layout, in one place: how Celery (kombu) keeps its queues on celery-redis.

Everything the harness reads off the brokers goes through here, so a deployment with another layout
changes one module: the key of a queue at each priority step (kombu: ``<queue><sep><step>``, step 0
is the bare queue name), the hash of unacked messages, the transport options a client needs to talk
to the workers' remote control (the separator), and how a stored message names its task (= the
evaluation id). The platform's own keys (the legacy list, the records, the dead-letter list, the
event channel) are in ``harness.vocabulary``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

KOMBU_SEP = ":"  # system_under_test/tasks.py broker_transport_options["sep"]
PRIORITY_STEPS = range(10)  # ... ["priority_steps"]
UNACKED_KEY = "unacked"  # kombu's hash of delivered, not yet acknowledged messages
TRANSPORT_OPTIONS: dict[str, Any] = {"sep": KOMBU_SEP}  # enough for remote control (inspect) replies


def queue_keys(queues: Sequence[str]) -> list[str]:
    """Every Redis list a Celery queue uses, one per priority step."""
    return [q if pri == 0 else f"{q}{KOMBU_SEP}{pri}" for q in queues for pri in PRIORITY_STEPS]


def task_id(message: Any) -> str | None:
    """The Celery task id (= eval id) of a kombu message stored in Redis (a queue entry or an
    ``unacked`` entry ``[message, exchange, routing_key]``); None when it is not one."""
    try:
        data = json.loads(message)
    except (TypeError, ValueError):
        return None
    if isinstance(data, list) and data:
        data = data[0] if isinstance(data[0], dict) else json.loads(data[0])
    headers = data.get("headers") or {} if isinstance(data, dict) else {}
    found = headers.get("id") or (data.get("properties") or {}).get("correlation_id")
    return str(found) if found else None
