"""Latency and throughput frames per path, from the load run and the parity programs.

``latency_samples``: one row per sample, from ``load_requests.parquet`` (``E2E`` rows, submission to
terminal result, per path; ``POST`` rows, the submission alone, by the path the gateway chose) and
the executors' ``duration_ms`` of the parity programs (``observations.parquet``);
``latency_percentiles``: their p50 / p95 / p99, interpolated as the gate does; ``throughput``:
completed evaluations (E2E rows, by the second they ended) and submissions per second per path,
from ``load_requests.parquet``, else from ``load_stats.parquet``; what load was run:
``load_settings`` (``load.json``, or the gate's ``load-rounds/<k>/load.json``) and ``program_mix``
(the evaluations per program, language and priority, and the share of batch submissions). Pure functions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

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


# -- what load was run: load.json and the mix of load_requests.parquet ---------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _joined(values: Sequence[Any], unit: str = "") -> str | None:
    """One value if every round agrees, else each round's (None where a round does not say)."""
    known = [v for v in values if v is not None]
    if not known:
        return None
    if len(values) > 1 and any(v != known[0] for v in values):
        return ", ".join("–" if v is None else _text(v) for v in values) + (f" {unit}" if unit else "") + " (per round)"
    return _text(known[0]) + (f" {unit}" if unit else "")


def _utc(epoch: Any) -> str | None:
    if not isinstance(epoch, int | float) or isinstance(epoch, bool) or not math.isfinite(epoch):
        return None
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _wall_s(doc: Mapping[str, Any]) -> float | None:
    start, end = doc.get("started_at"), doc.get("finished_at")
    if isinstance(start, int | float) and isinstance(end, int | float) and end >= start:
        return float(end - start)
    return None


def load_settings(load: Mapping[str, Any] | None,
                  rounds: Sequence[tuple[str, Mapping[str, Any]]] = ()) -> list[tuple[str, str]]:
    """What load was run, as (setting, value) rows: from the gate's rounds (``load-rounds/<k>/load.json``)
    when there are any, else from the run folder's ``load.json``; empty without either. A setting the
    files do not hold is left out; one the rounds disagree on lists each round's."""
    docs: list[Mapping[str, Any]] = [doc for _, doc in rounds] if rounds else [load] if load else []
    if not docs:
        return []
    opts = [o if isinstance(o := d.get("options"), Mapping) else {} for d in docs]

    def values(key: str) -> list[Any]:
        return [o.get(key) for o in opts]

    rows: list[tuple[str, str | None]] = [("users", _joined(values("users"))),
                                          ("spawn rate", _joined(values("spawn_rate"), "users/s"))]
    durations = values("duration_s")
    if rounds:
        known = [float(d) for d in durations if isinstance(d, int | float)]
        if known:
            each = (f"{known[0]:g} s" if all(d == known[0] for d in known)
                    else ", ".join(f"{d:g}" for d in known) + " s")
            rows.append(("duration", f"{len(rounds)} round{'' if len(rounds) == 1 else 's'} of {each}"
                                     + (f" ({sum(known):g} s in all)" if len(rounds) > 1 else "")))
        else:
            rows.append(("duration", f"{len(rounds)} round{'' if len(rounds) == 1 else 's'}"))
    else:
        rows.append(("duration", _joined(durations, "s")))
    shape = _joined(values("shape"))
    if shape is not None:
        steps = _joined(values("steps"))
        rows.append(("shape", shape + (f" ({steps} steps)" if shape == "step" and steps else "")))
    if any("route" in o for o in opts):
        rows.append(("route", _joined([r or "split" for r in values("route")])))
    rows += [("mode", _joined(values("mode"))), ("think time", _joined(values("think_time_s"), "s")),
             ("batch size", _joined(values("batch_size"))), ("seed", _joined(values("seed"))),
             ("E2E timeout", _joined(values("e2e_timeout_s"), "s")), ("processes", _joined(values("processes"))),
             ("Locust exit code", _joined([d.get("locust_exit_code") for d in docs]))]
    walls = [w for d in docs if (w := _wall_s(d)) is not None]
    started = _utc(docs[0].get("started_at"))
    if walls or started:
        rows.append(("ran", " ".join(x for x in (f"{sum(walls):.1f} s" if walls else None,
                                                 f"from {started}" if started else None) if x)))
    if len(rounds) > 1:
        def brief(name: str, doc: Mapping[str, Any]) -> str:
            raw = doc.get("options")
            o: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
            parts = [f"{_text(o['duration_s'])} s" if o.get("duration_s") is not None else None,
                     f"seed {o['seed']}" if o.get("seed") is not None else None,
                     f"exit {doc['locust_exit_code']}" if doc.get("locust_exit_code") is not None else None]
            return f"{name}: " + ", ".join(p for p in parts if p) if any(parts) else name
        rows.append(("rounds", "; ".join(brief(n, d) for n, d in rounds)))
    return [(k, v) for k, v in rows if v is not None]


MIX_COLUMNS = ["by", "value", "evaluations", "share", "languages"]


def program_mix(requests: pd.DataFrame | None) -> pd.DataFrame:
    """The load's mix: evaluations per ``program`` (the load mix's entry), per ``language`` and, when it
    varies, per ``priority``, each with its share (``MIX_COLUMNS``: largest first within each ``by``,
    priorities in their order; ``languages``, of a program, the languages it ran in).

    Counts the evaluations followed to their end (``E2E`` rows), else the submissions (``POST`` rows),
    as ``attrs["unit"]`` says; ``attrs["total"]`` is their number and ``attrs["batch"]`` /
    ``attrs["batch_known"]`` how many of them came in a batch submission out of those that say.
    Empty without ``load_requests.parquet`` or a program column."""
    if not _has(requests, "request_type") or requests is None or not any(
            c in requests.columns for c in ("program", "language")):
        return pd.DataFrame(columns=MIX_COLUMNS)
    kind = _strings(requests, "request_type", "")
    unit = "E2E evaluations" if (kind == "E2E").any() else "submissions"
    rows = requests[kind == ("E2E" if unit == "E2E evaluations" else "POST")]
    if rows.empty:
        return pd.DataFrame(columns=MIX_COLUMNS)
    total = len(rows)
    parts = []
    for by in ("program", "language", "priority"):
        if by not in rows.columns:
            continue
        values = _strings(rows, by, "(none)")
        if by == "priority" and values.nunique() < 2:
            continue
        counts = values.value_counts(sort=False).sort_index()
        if by == "priority":  # in the order of the priorities, not of their counts
            counts = counts.sort_index(key=lambda i: pd.to_numeric(i, errors="coerce"), kind="stable")
        else:
            counts = counts.sort_values(ascending=False, kind="stable")
        languages = [""] * len(counts)
        if by == "program" and "language" in rows.columns:
            seen = pd.DataFrame({"program": values, "language": _strings(rows, "language", "")})
            per = seen.groupby("program")["language"].agg(lambda v: ", ".join(sorted(set(v) - {""})))
            languages = [str(per.get(v, "")) for v in counts.index]
        parts.append(pd.DataFrame({"by": by, "value": counts.index.astype(str), "evaluations": counts.to_numpy(),
                                   "share": counts.to_numpy() / total, "languages": languages}))
    frame = (pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=MIX_COLUMNS))
    frame = frame.astype({"evaluations": "int64", "share": "float64"})
    frame.attrs.update(unit=unit, total=total)
    if "batch" in rows.columns:
        batch = rows["batch"].astype("boolean")
        frame.attrs.update(batch=int(batch.fillna(False).sum()), batch_known=int(batch.notna().sum()))
    return frame
