"""The history of a run: every operation, in Jepsen's format, in the order it happened.

Chaos records its workload, probes and faults here; parity records its submissions here too, so
every part's operations read the same way (``harness.client.recorded`` records one call).

An ``Op`` is one entry. Client operations are recorded twice: an ``invoke`` when the client starts
one, then one completion from the same process: ``ok`` (it happened), ``fail`` (it certainly did
not happen) or ``info`` (unknown: a timeout or a reset connection; the operation may still take
effect at any later time). For a submission (``f="submit"``):

- ``invoke``: ``path`` is the forced route (``"legacy"`` / ``"celery"``) or None (dual-write or the
  split decides); ``value`` says what was sent, e.g. ``{"route": "both", "program": "sleep",
  "priority": 5, "marker": "m-17"}``. ``marker`` is a string unique to the submission that also
  appears in its code: it is how the checker recognises the evaluation of an ``info`` submission,
  whose id the client never learnt.
- ``ok``: the gateway accepted it; ``eval_id`` is set and ``value`` is the gateway's answer
  (``{"eval_id": ..., "routes": [...]}``).
- ``fail``: certainly not accepted (a 4xx, or a 503 after the gateway rolled the submission back).
- ``info``: unknown (timeout, connection reset). Like Jepsen, a client that gets ``info`` should go
  on as a new process: the old one may still be in flight.

Fault operations come from the nemesis: ``process="nemesis"``, ``type="info"``, ``f="start"`` when
a fault is injected and ``f="stop"`` when it is healed, ``value={"fault": name, "kind": kind,
"target": target, ...}``, so reports can line faults up with client operations.

``History`` is the thread-safe recorder (indexes and times are assigned under one lock; ``time``
is seconds since the history started). ``to_frame`` / ``from_frame`` convert to and from a pandas
frame with one row per op (``value`` as a JSON string), which is how ``history.parquet`` is stored.
In a frame ``process`` is a string; a process name made only of digits would read back as a
number, so ``Op`` refuses such names.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import pandas as pd

from harness.errors import HarnessError
from harness.vocabulary import PATHS

OpType = Literal["invoke", "ok", "fail", "info"]
Completion = Literal["ok", "fail", "info"]
OP_TYPES: tuple[str, ...] = get_args(OpType)
NEMESIS = "nemesis"
COLUMNS: tuple[str, ...] = ("index", "time", "process", "type", "f", "eval_id", "path", "value", "error")


class HistoryError(HarnessError):
    """An op or a history is malformed."""


@dataclass(frozen=True)
class Op:
    index: int
    time: float
    process: str | int
    type: OpType
    f: str
    eval_id: str | None = None
    path: str | None = None
    value: dict[str, Any] | None = field(default=None, compare=True, hash=False)
    error: str | None = None

    def __post_init__(self) -> None:
        if self.type not in OP_TYPES:
            raise HistoryError(f"op {self.index}: type must be one of {', '.join(OP_TYPES)}, got {self.type!r}")
        if self.path is not None and self.path not in PATHS:
            raise HistoryError(f"op {self.index}: path must be one of {', '.join(PATHS)} or None, got {self.path!r}")
        if isinstance(self.process, str) and self.process.isdigit():
            raise HistoryError(f"op {self.index}: process {self.process!r} is all digits; use the int "
                               f"{int(self.process)} or a name with a letter in it")

    @property
    def is_nemesis(self) -> bool:
        return self.process == NEMESIS


class History:
    """A thread-safe recorder of ops. ``clock`` is monotonic seconds (injectable for tests)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._start = clock()
        self._ops: list[Op] = []
        self._lock = threading.Lock()

    def _append(self, **fields: Any) -> Op:
        with self._lock:
            op = Op(index=len(self._ops), time=self._clock() - self._start, **fields)
            self._ops.append(op)
        return op

    def invoke(self, process: str | int, f: str, *, eval_id: str | None = None, path: str | None = None,
               value: dict[str, Any] | None = None) -> Op:
        """Record the start of a client operation and return it (pass it to ``complete``)."""
        return self._append(process=process, type="invoke", f=f, eval_id=eval_id, path=path, value=value)

    def complete(self, invoke: Op, type: Completion, *, eval_id: str | None = None,
                 value: dict[str, Any] | None = None, error: str | None = None) -> Op:
        """Record the completion of ``invoke``; process, f, path and (by default) eval_id are copied.

        Raises HistoryError if ``invoke`` is not an invoke or ``type`` is not a completion.
        """
        if invoke.type != "invoke":
            raise HistoryError(f"complete() needs an invoke op, got a {invoke.type!r} op (index {invoke.index})")
        if type not in ("ok", "fail", "info"):
            raise HistoryError(f"a completion is ok, fail or info, got {type!r}")
        return self._append(process=invoke.process, type=type, f=invoke.f,
                            eval_id=eval_id if eval_id is not None else invoke.eval_id,
                            path=invoke.path, value=value, error=error)

    def nemesis_start(self, fault: str, kind: str, target: str, **extra: Any) -> Op:
        """Record that a fault was injected."""
        return self._append(process=NEMESIS, type="info", f="start",
                            value={"fault": fault, "kind": kind, "target": target, **extra})

    def nemesis_stop(self, fault: str, kind: str, target: str, **extra: Any) -> Op:
        """Record that a fault was healed (or that healing was attempted: put the problem in ``extra``)."""
        return self._append(process=NEMESIS, type="info", f="stop",
                            value={"fault": fault, "kind": kind, "target": target, **extra})

    @property
    def ops(self) -> tuple[Op, ...]:
        with self._lock:
            return tuple(self._ops)

    def to_frame(self) -> pd.DataFrame:
        return to_frame(self.ops)


def pairs(ops: Iterable[Op]) -> list[tuple[Op, Op | None]]:
    """Each client invoke with its completion (the next completion of the same process).

    An invoke still open at the end of the history is paired with None (treat it as ``info``).
    Nemesis ops are skipped. Raises HistoryError for a completion without an open invoke, or a
    second invoke on a process that has one open.
    """
    open_: dict[str | int, Op] = {}
    out: list[tuple[Op, Op | None]] = []
    slot: dict[int, int] = {}  # invoke index -> position in out
    for op in ops:
        if op.is_nemesis:
            continue
        if op.type == "invoke":
            if op.process in open_:
                raise HistoryError(f"op {op.index}: process {op.process!r} invoked again while op "
                                   f"{open_[op.process].index} is still open")
            open_[op.process] = op
            slot[op.index] = len(out)
            out.append((op, None))
            continue
        invoke = open_.pop(op.process, None)
        if invoke is None:
            raise HistoryError(f"op {op.index}: {op.type} on process {op.process!r} has no open invoke")
        out[slot[invoke.index]] = (invoke, op)
    return out


# -- frames -------------------------------------------------------------------------------------------


def to_frame(ops: Sequence[Op]) -> pd.DataFrame:
    """One row per op, columns ``COLUMNS``; ``value`` is a JSON string, ``process`` a string."""
    rows = [{
        "index": op.index, "time": op.time, "process": str(op.process), "type": op.type, "f": op.f,
        "eval_id": op.eval_id, "path": op.path,
        "value": None if op.value is None else json.dumps(op.value, sort_keys=True), "error": op.error,
    } for op in ops]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return frame.astype({"index": "int64", "time": "float64"})


def _text(value: Any) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return str(value)


def from_frame(frame: pd.DataFrame) -> list[Op]:
    """The ops of a frame written by ``to_frame`` (also after a parquet round trip)."""
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise HistoryError(f"a history frame needs columns {list(COLUMNS)}; missing {missing}")
    ops = []
    for row in frame.to_dict("records"):
        process = str(row["process"])
        value = _text(row["value"])
        ops.append(Op(
            index=int(row["index"]), time=float(row["time"]),
            process=int(process) if process.isdigit() else process,
            type=row["type"], f=str(row["f"]), eval_id=_text(row["eval_id"]), path=_text(row["path"]),
            value=None if value is None else json.loads(value), error=_text(row["error"]),
        ))
    return ops
