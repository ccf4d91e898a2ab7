"""Latency and throughput frames per path, from the load run and the parity programs.

``latency_samples``: one row per sample, from ``load_requests.parquet`` (``E2E`` rows, submission to
terminal result, per path; ``POST`` rows, the submission alone, by the path the gateway chose) and
the executors' ``duration_ms`` of the parity programs (``observations.parquet``);
``latency_percentiles``: their p50 / p95 / p99, interpolated as the gate does; ``throughput``:
completed evaluations (E2E rows, by the second they ended) and submissions per second per path,
from ``load_requests.parquet``, else from ``load_stats.parquet``. Pure functions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.gate.stats import percentiles
from harness.report._common import PATHS, _has, _seconds, _strings, sort_paths


def _load_kinds(requests: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """(measure, path) of each load row: ``end-to-end`` rows are named after their path, ``submit`` rows
    carry the path the gateway chose; other rows are measured by type and name."""
    kind = _strings(requests, "request_type", "")
    name = _strings(requests, "name", "requests")
    path = _strings(requests, "path", "unrouted")
    e2e = kind == "E2E"
    measure = pd.Series(np.where(e2e, "end-to-end", np.where(kind == "POST", "submit", (kind + " " + name).str.strip())),
                        index=requests.index)
    return measure, path.where(~e2e | (name == "requests"), name)


_MEASURES = ("end-to-end", "submit", "execution")  # the order the report shows them in


def latency_samples(requests: pd.DataFrame | None, obs: pd.DataFrame | None) -> pd.DataFrame:
    """One row per latency sample: ``source`` (``load`` or ``parity``), ``measure`` (``end-to-end``,
    ``submit``; ``execution`` for the parity programs' executor duration_ms), ``path``, ``latency_ms``.

    Only successful load requests count: a failure's time says nothing about the path's speed.
    """
    columns = ["source", "measure", "path", "latency_ms"]
    parts: list[pd.DataFrame] = []
    if _has(requests, "response_time_ms"):
        assert requests is not None
        rows = requests[requests["ok"].fillna(False).astype(bool)] if "ok" in requests.columns else requests
        measure, path = _load_kinds(rows)
        parts.append(pd.DataFrame({"source": "load", "measure": measure, "path": path,
                                   "latency_ms": pd.to_numeric(rows["response_time_ms"], errors="coerce")}))
    if obs is not None and not obs.empty:
        for path_ in PATHS:
            column = f"{path_}_duration_ms"
            if column in obs.columns:
                parts.append(pd.DataFrame({"source": "parity", "measure": "execution", "path": path_,
                                           "latency_ms": pd.to_numeric(obs[column], errors="coerce")}))
    if not parts:
        return pd.DataFrame(columns=columns)
    frame = pd.concat(parts, ignore_index=True)
    frame = frame[np.isfinite(frame["latency_ms"].astype("float64"))]
    return frame[columns].reset_index(drop=True)


def latency_percentiles(samples: pd.DataFrame) -> pd.DataFrame:
    """n, p50, p95, p99, mean and max per (source, measure, path), interpolated as the gate does."""
    columns = ["source", "measure", "path", "n", "p50", "p95", "p99", "mean", "max"]
    rows = []
    if not samples.empty:
        for (source, measure, path), group in samples.groupby(["source", "measure", "path"], sort=False):
            values = group["latency_ms"].astype("float64").to_numpy()
            p = percentiles(values)
            rows.append([source, measure, path, p.n, p.p50, p.p95, p.p99, float(values.mean()), float(values.max())])
    frame = pd.DataFrame(rows, columns=columns)
    rank = {m: i for i, m in enumerate(_MEASURES)}
    frame = frame.sort_values("measure", key=lambda s: s.map(lambda m: rank.get(m, len(rank))), kind="stable")
    return sort_paths(frame, ["measure"])


def throughput(requests: pd.DataFrame | None, stats: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per second of the load run: ``completed`` evaluations per path (E2E rows, in the second they
    ended, as Locust counts) and ``submitted`` ones per chosen path, each with its failures.

    From ``load_requests.parquet`` (seconds since the first request started); else from
    ``load_stats.parquet`` (its ``second``, ``request_type``, ``name`` and ``path`` columns).
    Without request types every row counts as ``completed`` in its path.
    """
    columns = ["second", "kind", "path", "requests", "failures"]
    if _has(requests, "time"):
        assert requests is not None
        measure, path = _load_kinds(requests)
        start = _seconds(requests["time"])
        end = _seconds(requests["end_time"]) if "end_time" in requests.columns else start
        ok = requests["ok"].fillna(False).astype(bool) if "ok" in requests.columns else pd.Series(True, index=start.index)
        frame = pd.DataFrame({"second": np.floor(end - np.floor(start.min())), "measure": measure, "path": path,
                              "requests": 1, "failures": (~ok).astype(int)})
    elif _has(stats, "second", "requests"):
        assert stats is not None
        measure, path = _load_kinds(stats)
        second = _seconds(stats["second"])
        frame = pd.DataFrame({"second": second - second.min(), "measure": measure, "path": path,
                              "requests": pd.to_numeric(stats["requests"], errors="coerce").fillna(0),
                              "failures": pd.to_numeric(stats["failures"], errors="coerce").fillna(0)
                              if "failures" in stats.columns else 0})
    else:
        return pd.DataFrame(columns=columns)
    has_kinds = (frame["measure"] == "end-to-end").any() or (frame["measure"] == "submit").any()
    frame["kind"] = frame["measure"].map({"end-to-end": "completed", "submit": "submitted"})
    if not has_kinds:
        frame["kind"] = "completed"
    frame = frame.dropna(subset=["second", "kind"])
    out = frame.groupby(["second", "kind", "path"]).agg(requests=("requests", "sum"), failures=("failures", "sum"))
    out = out.reset_index().astype({"second": "int64", "requests": "int64", "failures": "int64"})
    return out[columns].sort_values(["kind", "second", "path"]).reset_index(drop=True)
