"""From per-request rows to frames and a summary: pure functions of stored data (no Locust, no I/O but reads).

- ``read_rows(folder)``: every ``*.jsonl`` the Locust processes wrote (``harness.load.rows``), as one
  ``requests`` frame with fixed columns and types (``REQUEST_COLUMNS``), sorted by time;
- ``per_second(requests)``: one row per second of the run and request kind: ``second`` (since the
  first request started), ``time``, ``request_type``, ``name``, ``path`` (the path for E2E rows,
  ``None`` for submissions), ``requests``, ``failures``, ``p50_ms``/``p95_ms``/``p99_ms``. A request
  counts in the second it *ended*, as in Locust's own charts, so E2E requests per second is the
  completion throughput;
- ``summarise(requests)``: a ``LoadSummary`` with per-path counts, errors and E2E latency samples.

Rows with status ``unfinished`` (an evaluation still in flight when Locust stopped its user) are not
requests that ended: they stay out of the per-second statistics, the errors and the latency
samples, and are counted on their own (``LoadSummary.unfinished``), since the slowest evaluations
are the likeliest to be among them.

Percentiles here are exact (from every row), unlike Locust's own, which are bucketed to about two
significant digits.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.load.rows import COLUMNS

REQUEST_COLUMNS: tuple[str, ...] = COLUMNS
STATS_COLUMNS: tuple[str, ...] = ("second", "time", "request_type", "name", "path", "requests", "failures",
                                  "p50_ms", "p95_ms", "p99_ms")
UNFINISHED = "unfinished"
_DTYPES: dict[str, str] = {
    "request_type": "string", "name": "string", "path": "string", "response_time_ms": "float64", "ok": "bool",
    "eval_id": "string", "status": "string", "http_status": "Int64", "priority": "Int64", "batch": "boolean",
    "language": "string", "program": "string", "oracle_ok": "boolean", "forced": "boolean", "server_ms": "float64",
    "submit_ms": "float64", "queue_ms": "float64", "execution_ms": "float64", "delivery_ms": "float64",
    "cpu_ms": "float64", "peak_rss_kb": "Int64",
    "response_length": "int64", "exception": "string", "worker": "string", "test_run": "int64",
}


def read_rows(folder: Path) -> pd.DataFrame:
    """Every row of every ``*.jsonl`` in ``folder`` (a torn last line, from a killed process, is skipped)."""
    records: list[dict[str, Any]] = []
    for path in sorted(Path(folder).glob("*.jsonl")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    records.append(json.loads(line))
                except ValueError:
                    continue
    return requests_frame(records)


def requests_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows as a frame with ``REQUEST_COLUMNS`` in order; ``time``/``end_time`` as UTC timestamps."""
    frame = pd.DataFrame.from_records(records, columns=list(REQUEST_COLUMNS))
    for name in ("time", "end_time"):
        frame[name] = pd.to_datetime(frame[name].astype("float64"), unit="s", utc=True)
    frame = frame.astype(_DTYPES)
    return frame.sort_values("time", kind="stable").reset_index(drop=True)


def per_second(requests: pd.DataFrame) -> pd.DataFrame:
    """Requests, failures and exact p50/p95/p99 per second (by end time) and (request_type, name)."""
    if requests.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in STATS_COLUMNS})
    start = requests["time"].min().floor("s")
    requests = requests[requests["status"].fillna("") != UNFINISHED]
    if requests.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in STATS_COLUMNS})
    frame = requests.assign(second=((requests["end_time"] - start).dt.total_seconds() // 1).astype("int64"),
                            failed=~requests["ok"])
    grouped = frame.groupby(["second", "request_type", "name"], sort=True, observed=True)
    stats = grouped.agg(requests=("ok", "size"), failures=("failed", "sum"),
                        p50_ms=("response_time_ms", lambda s: s.quantile(0.50)),
                        p95_ms=("response_time_ms", lambda s: s.quantile(0.95)),
                        p99_ms=("response_time_ms", lambda s: s.quantile(0.99))).reset_index()
    stats["time"] = start + pd.to_timedelta(stats["second"], unit="s")
    stats["path"] = stats["name"].where(stats["request_type"] == "E2E", None)
    stats = stats.astype({"requests": "int64", "failures": "int64", "path": "string"})
    return stats[list(STATS_COLUMNS)]


@dataclass(frozen=True)
class LoadSummary:
    """What one load run measured, read back from its rows.

    ``evaluations``/``errors``/``e2e_ms`` are per path (``legacy``, ``celery``, and ``both`` for
    ``--route both``): E2E rows, the failed ones among them (platform errors: status ``error``,
    ``lost``, ``stuck``; a user's program failing is not one), and the E2E latency of the successful
    ones in ms. ``unfinished`` counts evaluations still in flight when the run stopped (in none of
    the former; ``unfinished_batch`` of them with ``batch: true``). ``routed`` counts accepted
    submissions by the path the gateway chose.
    """

    submits: int
    submit_failures: int
    submit_ms: tuple[float, ...]
    routed: Mapping[str, int]
    evaluations: Mapping[str, int]
    errors: Mapping[str, int]
    e2e_ms: Mapping[str, tuple[float, ...]]
    oracle_mismatches: int
    span_s: float  # from the first request's start to the last one's end
    failure_messages: Mapping[str, int] = field(default_factory=dict)
    unfinished: Mapping[str, int] = field(default_factory=dict)
    unfinished_batch: Mapping[str, int] = field(default_factory=dict)
    requests_path: Path | None = None
    stats_path: Path | None = None
    locust_exit_code: int | None = None

    @property
    def failures(self) -> int:
        return self.submit_failures + sum(self.errors.values())

    def throughput(self, path: str) -> float:
        """Completed evaluations per second on ``path`` over the run's span."""
        return len(self.e2e_ms.get(path, ())) / self.span_s if self.span_s > 0 else 0.0


def summarise(requests: pd.DataFrame, **paths: Any) -> LoadSummary:
    """A ``LoadSummary`` of a ``requests`` frame (``paths``: requests_path, stats_path, locust_exit_code)."""
    submits = requests[requests["request_type"] == "POST"]
    left = (requests["request_type"] == "E2E") & (requests["status"].fillna("") == UNFINISHED)
    unfinished = requests[left]
    e2e = requests[(requests["request_type"] == "E2E") & ~left]
    accepted = submits[submits["ok"]]
    failed = requests[~requests["ok"] & ~left]
    names = sorted(str(n) for n in e2e["name"].dropna().unique())
    span = 0.0
    if not requests.empty:
        span = (requests["end_time"].max() - requests["time"].min()).total_seconds()
    return LoadSummary(
        submits=len(submits), submit_failures=int((~submits["ok"]).sum()),
        submit_ms=tuple(float(x) for x in submits.loc[submits["ok"], "response_time_ms"]),
        routed={str(k): int(v) for k, v in accepted["path"].value_counts().items()},
        evaluations={n: int((e2e["name"] == n).sum()) for n in names},
        errors={n: int(((e2e["name"] == n) & ~e2e["ok"]).sum()) for n in names},
        e2e_ms={n: tuple(float(x) for x in e2e.loc[(e2e["name"] == n) & e2e["ok"], "response_time_ms"])
                for n in names},
        oracle_mismatches=int((e2e["oracle_ok"] == False).sum()),  # noqa: E712 (nullable boolean)
        span_s=span,
        unfinished={str(k): int(v) for k, v in unfinished["name"].value_counts().items()},
        unfinished_batch={str(k): int(v) for k, v in
                          unfinished.loc[unfinished["batch"].fillna(False).astype(bool), "name"].value_counts().items()},
        failure_messages={str(k): int(v) for k, v in
                          failed["exception"].fillna("").str.split(" \\(", n=1, regex=True).str[0]
                          .value_counts().items()},
        **paths,
    )
