"""The execution ledger: one JSON line per execution, appended before the response is sent.

The ledger lives outside both Redis instances, so it is the harness's ground truth for "was this
evaluation executed, and how many times": Flower and the Celery result backend are only observed
signals. Each row is one execution (eval id, path, attempt, executor, start, end, exit code,
outcome). Rows are written with a single ``write`` on an ``O_APPEND`` descriptor, so concurrent
writers never interleave within a line.
"""

from __future__ import annotations

import json
import os
import threading

from system_under_test.contract import ExecutionOutcome as Outcome
from system_under_test.contract import LedgerRow

__all__ = ["Ledger", "LedgerRow", "Outcome", "read_ledger"]


class Ledger:
    def __init__(self, path: str, *, fsync: bool = False) -> None:
        self.path = path
        self.fsync = fsync
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._lock = threading.Lock()

    def append(self, row: LedgerRow) -> None:
        line = (json.dumps(row, separators=(",", ":")) + "\n").encode()
        with self._lock:
            os.write(self._fd, line)
            if self.fsync:
                os.fsync(self._fd)

    def rows(self, eval_id: str | None = None) -> list[LedgerRow]:
        return read_ledger(self.path, eval_id=eval_id)

    def close(self) -> None:
        os.close(self._fd)


def read_ledger(path: str, *, eval_id: str | None = None) -> list[LedgerRow]:
    """Every complete row of a ledger file (a torn last line from a crash is skipped)."""
    rows: list[LedgerRow] = []
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if not line.endswith("\n"):
                    break
                row = json.loads(line)
                if eval_id is None or row["eval_id"] == eval_id:
                    rows.append(row)
    except FileNotFoundError:
        pass
    return rows
