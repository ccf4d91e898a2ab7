"""A run folder as pandas frames: what the report shows, derived by pure functions from stored data.

``read_run`` is the only function here that touches the disk: it loads whatever parts of
``reports/<run-id>/`` exist (every part is optional) into a ``RunData``. A file that is present but
unreadable does not stop the report: it is named in ``RunData.problems`` and its part counts as
absent. Everything else is a pure function of frames and dicts:

- parity (``observations.parquet``): ``parity_classes``, ``parity_fields``, ``mismatch_samples``;
- latency per path with p50 / p95 / p99 (``latency_samples``, ``latency_percentiles``): from the load
  run (``load_requests.parquet``: ``E2E`` rows, submission to terminal result, per path; ``POST``
  rows, the submission alone, by the path the gateway chose) and the executors' ``duration_ms`` of
  the parity programs;
- throughput per second per path (``throughput``): completed evaluations (E2E rows, by the second
  they ended) and submissions, from ``load_requests.parquet``, else from ``load_stats.parquet``;
- chaos (``chaos/<scenario>/``: ``history.parquet``, ``evaluations.parquet`` (the checker's table),
  ``findings.parquet`` (one row per path), ``result.json``; and the run's combined
  ``findings.parquet``): ``chaos_findings`` (one row per scenario and path), ``chaos_scenarios``
  (one verdict per scenario), ``chaos_operations`` (the client ops of a history, each with its
  duration and outcome), ``fault_windows`` (nemesis ``start`` / ``stop``) and ``chaos_flagged``;
- the gate (``verdict.json``): ``gate_criteria``.

Frames that would be empty are returned empty (never None) so callers test ``frame.empty``; the
writers show nothing for an empty frame rather than an empty chart.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pandas as pd

from harness.chaos.checker import PRECEDENCE, Counts
from harness.errors import HarnessError
from harness.gate.stats import percentiles
from harness.parity.compare import COMPARED_FIELDS, ComparisonClass

PATHS = ("legacy", "celery")
PARITY_CLASSES: tuple[str, ...] = get_args(ComparisonClass)
CHAOS_CLASSES = tuple(Counts().as_dict())  # the checker's classes, in its table's order
CHAOS_BAD: tuple[str, ...] = tuple(c for c in PRECEDENCE if c not in ("ok", "recovered"))  # worst first
CHAOS_FILES = ("history.parquet", "evaluations.parquet", "findings.parquet", "executions.parquet")
CRITERIA_COLUMNS = ("name", "status", "observed", "threshold", "sample_size", "bound", "detail")
_SKIP_DIRS = {"logs", "ledger", "counterexamples", "load", "rows"}


class ReportError(HarnessError):
    """A run folder cannot be reported on (it does not exist, or is not a folder)."""


@dataclass(frozen=True)
class Scenario:
    """One chaos scenario's stored data (``chaos/<scenario>/``); a part is None when its file is absent."""

    name: str
    folder: Path
    history: pd.DataFrame | None = None  # harness.chaos.history.to_frame
    executions: pd.DataFrame | None = None  # the executors' ledger rows
    evaluations: pd.DataFrame | None = None  # the checker's table: eval_id, path, cls, ..., detail
    findings: pd.DataFrame | None = None  # one row per path: counts, verdict, violations, notes
    result: Mapping[str, Any] | None = None  # result.json: passed, errors, violations, ...


@dataclass(frozen=True)
class RunData:
    """Everything a run folder holds that the report reads; None (or empty) where a part is absent."""

    path: Path
    run: Mapping[str, Any] | None = None
    observations: pd.DataFrame | None = None
    load_requests: pd.DataFrame | None = None
    load_stats: pd.DataFrame | None = None
    verdict: Mapping[str, Any] | None = None
    scenarios: tuple[Scenario, ...] = ()
    combined_findings: pd.DataFrame | None = None  # the run's findings.parquet: rows name their scenario
    problems: tuple[str, ...] = ()  # files present but unreadable, in words

    @property
    def run_id(self) -> str:
        return str((self.run or {}).get("run_id") or self.path.name)


# -- reading (the only I/O) -----------------------------------------------------------------------


class _Reader:
    """Reads one run folder's files; an unreadable file becomes a problem, never an exception."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.problems: list[str] = []

    def parquet(self, file: Path) -> pd.DataFrame | None:
        if not file.is_file():
            return None
        try:
            return pd.read_parquet(file)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many kinds; any of them means unreadable
            self.problems.append(f"{file.relative_to(self.root)}: unreadable parquet ({type(exc).__name__}: {exc})")
            return None

    def json(self, file: Path) -> dict[str, Any] | None:
        if not file.is_file():
            return None
        try:
            doc = json.loads(file.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            self.problems.append(f"{file.relative_to(self.root)}: unreadable JSON ({exc})")
            return None
        if not isinstance(doc, dict):
            self.problems.append(f"{file.relative_to(self.root)}: expected a JSON object, got {type(doc).__name__}")
            return None
        return doc

    def scenario(self, folder: Path, default_name: str, *, own_findings: bool = True) -> Scenario | None:
        history, evaluations = self.parquet(folder / "history.parquet"), self.parquet(folder / "evaluations.parquet")
        executions = self.parquet(folder / "executions.parquet")
        findings = self.parquet(folder / "findings.parquet") if own_findings else None
        result = self.json(folder / "result.json")
        if findings is not None and "cls" in findings.columns and evaluations is None:
            findings, evaluations = None, findings  # a per-evaluation table stored under the other name
        if history is None and evaluations is None and findings is None and executions is None:
            return None
        name = (result or {}).get("scenario")
        if not name and _has(findings, "scenario"):
            assert findings is not None
            name = findings["scenario"].iloc[0]
        return Scenario(str(name or default_name), folder, history, executions, evaluations, findings, result)


def read_run(run_dir: str | Path) -> RunData:
    """Load every part of ``run_dir`` that exists. Raises ReportError if ``run_dir`` is not a folder."""
    path = Path(run_dir)
    if not path.is_dir():
        raise ReportError(f"{path}: no such run folder; give a folder under reports/ (e.g. "
                          f"reports/<run-id>) that a harness command wrote")
    reader = _Reader(path)
    combined = reader.parquet(path / "findings.parquet")
    if combined is not None and "scenario" not in combined.columns:
        combined = None  # the findings of a scenario stored in the run folder itself
    scenarios = []
    for folder in _chaos_folders(path):
        found = reader.scenario(folder, "run" if folder == path else folder.name,
                                own_findings=folder != path or combined is None)
        if found is not None:
            scenarios.append(found)
    return RunData(
        path=path, run=reader.json(path / "run.json"), observations=reader.parquet(path / "observations.parquet"),
        load_requests=reader.parquet(path / "load_requests.parquet"),
        load_stats=reader.parquet(path / "load_stats.parquet"), verdict=reader.json(path / "verdict.json"),
        scenarios=tuple(scenarios), combined_findings=combined, problems=tuple(reader.problems))


def _chaos_folders(root: Path, depth: int = 3) -> list[Path]:
    """Folders under ``root`` (itself included, ``depth`` levels down) holding a chaos file, sorted."""
    found: list[Path] = []
    frontier = [root]
    for _ in range(depth + 1):
        nxt: list[Path] = []
        for folder in frontier:
            if any((folder / f).is_file() for f in CHAOS_FILES):
                found.append(folder)
            nxt += [d for d in sorted(folder.iterdir()) if d.is_dir() and d.name not in _SKIP_DIRS
                    and not d.name.startswith(".")]
        frontier = nxt
    return sorted(found, key=lambda p: (p != root, str(p)))


# -- parity -----------------------------------------------------------------------------------------


def _has(frame: pd.DataFrame | None, *columns: str) -> bool:
    return frame is not None and not frame.empty and all(c in frame.columns for c in columns)


def _failing(obs: pd.DataFrame) -> pd.Series:
    if "failing" in obs.columns:
        return obs["failing"].fillna(False).astype(bool)
    return obs["cls"].isin(["mismatched", "wrong"])


def parity_classes(obs: pd.DataFrame | None) -> pd.DataFrame:
    """Programs per class (Scientist's classes first, in their order), with how many fail and the share."""
    columns = ["cls", "programs", "failing", "share"]
    if not _has(obs, "cls"):
        return pd.DataFrame(columns=columns)
    assert obs is not None
    frame = pd.DataFrame({"cls": obs["cls"].astype(str), "failing": _failing(obs)})
    grouped = frame.groupby("cls").agg(programs=("cls", "size"), failing=("failing", "sum")).reset_index()
    order = {c: i for i, c in enumerate(PARITY_CLASSES)}
    grouped = grouped.sort_values("cls", key=lambda s: s.map(lambda c: order.get(c, len(order)))).reset_index(drop=True)
    grouped["failing"] = grouped["failing"].astype("int64")
    grouped["share"] = grouped["programs"] / grouped["programs"].sum()
    return grouped[columns]


def _split_fields(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    return [f for f in str(value).split(",") if f]


def parity_fields(obs: pd.DataFrame | None) -> pd.DataFrame:
    """Per compared field: programs whose paths differ on it, and programs where each path is wrong on it."""
    columns = ["field", "differing", "candidate_wrong", "control_wrong"]
    if not _has(obs, "cls"):
        return pd.DataFrame(columns=columns)
    assert obs is not None
    counts = {c: {f: 0 for f in COMPARED_FIELDS} for c in columns[1:]}
    for column in columns[1:]:
        for value in obs[column] if column in obs.columns else ():
            for f in _split_fields(value):
                counts[column][f] = counts[column].get(f, 0) + 1
    names = list(dict.fromkeys([*COMPARED_FIELDS, *(f for c in counts.values() for f in c)]))
    frame = pd.DataFrame({"field": names, **{c: [counts[c].get(f, 0) for f in names] for c in columns[1:]}})
    return frame[frame[columns[1:]].sum(axis=1) > 0].reset_index(drop=True)


def mismatch_samples(obs: pd.DataFrame | None, limit: int = 6) -> pd.DataFrame:
    """Up to ``limit`` distinct failing programs (or mismatched / wrong ones), the smallest first, one
    per kind of failure (which fields differ, which are wrong, the language) before a second of any kind.

    ``frame.attrs["total"]`` keeps how many distinct programs there were in all.
    """
    if not _has(obs, "cls"):
        return pd.DataFrame()
    assert obs is not None
    bad = obs[_failing(obs) | obs["cls"].isin(["mismatched", "wrong"])]
    # The shrinker re-checks the same program many times: one row per program is enough.
    bad = (bad.drop_duplicates("code") if "code" in bad.columns else bad).copy()
    if bad.empty:
        out = bad.reset_index(drop=True)
        out.attrs["total"] = 0
        return out
    kind = [bad[c].fillna("").astype(str) if c in bad.columns else pd.Series("", index=bad.index)
            for c in ("differing", "candidate_wrong", "control_wrong", "language")]
    bad["_kind"] = kind[0] + "|" + kind[1] + "|" + kind[2] + "|" + kind[3]
    confirmed = bad["noise_checked"].fillna(False).astype(bool) if "noise_checked" in bad.columns else False
    size = bad["code"].fillna("").astype(str).str.len() if "code" in bad.columns else 0
    bad["_order"] = (~pd.Series(confirmed, index=bad.index)).astype(int) * 10**9 + size
    bad = bad.sort_values("_order", kind="stable")
    bad["_rank"] = bad.groupby("_kind").cumcount()
    picked = bad.sort_values(["_rank", "_order"], kind="stable").head(limit)
    out = picked.drop(columns=["_kind", "_order", "_rank"]).reset_index(drop=True)
    out.attrs["total"] = len(bad)
    return out


def normaliser_hits(obs: pd.DataFrame | None) -> dict[str, int]:
    """Total hits per declared normaliser over every program (``normaliser_hits`` is JSON per row)."""
    if not _has(obs, "normaliser_hits"):
        return {}
    assert obs is not None
    total: dict[str, int] = {}
    for value in obs["normaliser_hits"]:
        try:
            hits = json.loads(value) if isinstance(value, str) else {}
        except json.JSONDecodeError:
            continue
        for name, n in (hits or {}).items():
            total[str(name)] = total.get(str(name), 0) + int(n or 0)
    return dict(sorted(total.items()))


def sample_headline(row: Mapping[str, Any]) -> str:
    """One line for a mismatch sample, in the parity suite's words."""
    differing, celery, legacy = (_split_fields(row.get(c)) for c in ("differing", "candidate_wrong", "control_wrong"))
    parts = []
    if differing:
        parts.append(f"celery differs from legacy on {', '.join(differing)}")
    elif celery:
        parts.append(f"celery disagrees with the oracle on {', '.join(celery)}")
    if legacy:
        parts.append(f"legacy disagrees with the oracle on {', '.join(legacy)}")
    return "; ".join(parts) or f"classed {row.get('cls')}"


def fmt_ms(value: float) -> str:
    """Milliseconds with as many decimals as make sense for their size."""
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}" if abs(value) >= 1 else f"{value:.2f}"


# -- latency and throughput --------------------------------------------------------------------------


def _seconds(values: pd.Series) -> pd.Series:
    """Seconds as floats whether stored as epoch numbers or as timestamps."""
    if pd.api.types.is_datetime64_any_dtype(values):
        as_utc = values.dt.tz_localize("UTC") if values.dt.tz is None else values
        return (as_utc - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    return pd.to_numeric(values, errors="coerce").astype("float64")


def _strings(frame: pd.DataFrame, column: str, default: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(default, index=frame.index, dtype="object")
    return frame[column].astype("object").where(frame[column].notna(), default).astype(str)


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


def sort_paths(frame: pd.DataFrame, keys: Iterable[str] = ()) -> pd.DataFrame:
    """Order rows by ``keys`` (in first-seen order) then path: legacy, celery, then the others by name."""
    if frame.empty or "path" not in frame.columns:
        return frame.reset_index(drop=True)
    rank = {p: i for i, p in enumerate(PATHS)}
    keys = list(keys)
    firsts = {k: {v: i for i, v in enumerate(dict.fromkeys(frame[k]))} for k in keys}
    order = [(*(firsts[k][r[k]] for k in keys), rank.get(r["path"], len(rank)), str(r["path"]))
             for r in frame.to_dict("records")]
    positions = sorted(range(len(order)), key=order.__getitem__)
    return frame.iloc[positions].reset_index(drop=True)


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


# -- chaos ---------------------------------------------------------------------------------------------


def _value(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str) and raw:
        try:
            doc = json.loads(raw)
        except json.JSONDecodeError:
            return {}
        return doc if isinstance(doc, dict) else {}
    return {}


def _text(value: Any) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return str(value)


def fault_windows(history: pd.DataFrame | None) -> pd.DataFrame:
    """Each fault of a history: a nemesis ``start`` paired with the next ``stop`` of the same fault.

    ``stop`` is NaN for a fault the history never saw healed (shade it to the end).
    """
    columns = ["fault", "kind", "target", "start", "stop"]
    if not _has(history, "process", "f", "time"):
        return pd.DataFrame(columns=columns)
    assert history is not None
    rows: list[dict[str, Any]] = []
    open_: dict[str, int] = {}
    nemesis = history[history["process"].astype(str) == "nemesis"].sort_values("time", kind="stable")
    for op in nemesis.to_dict("records"):
        value = _value(op.get("value"))
        name = str(value.get("fault") or value.get("kind") or "fault")
        if op["f"] == "start":
            open_[name] = len(rows)
            rows.append({"fault": name, "kind": str(value.get("kind") or ""), "target": str(value.get("target") or ""),
                         "start": float(op["time"]), "stop": math.nan})
        elif op["f"] == "stop" and name in open_:
            rows[open_.pop(name)]["stop"] = float(op["time"])
    return pd.DataFrame(rows, columns=columns).astype({"start": "float64", "stop": "float64"})


def chaos_operations(history: pd.DataFrame | None, evaluations: pd.DataFrame | None = None) -> pd.DataFrame:
    """The client operations of a history, one row each: invoke ``time``, ``duration_ms`` until its
    completion, ``outcome`` (ok / fail / info, or ``open`` if it never completed), ``path`` (the forced
    route, or ``dual`` when the gateway chose), ``f`` (``submit``, ``probe``), ``eval_id`` and, with the
    checker's table, the evaluation's worst class on any path (``cls``; None when ok or unknown).
    """
    columns = ["time", "duration_ms", "outcome", "path", "f", "eval_id", "cls"]
    if not _has(history, "process", "type", "time"):
        return pd.DataFrame(columns=columns)
    assert history is not None
    ops = history[history["process"].astype(str) != "nemesis"]
    if "index" in ops.columns:
        ops = ops.sort_values("index", kind="stable")
    end = float(history["time"].max())
    open_: dict[str, dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    for op in ops.to_dict("records"):
        process = str(op["process"])
        if op["type"] == "invoke":
            path = _text(op.get("path"))
            open_[process] = {"time": float(op["time"]), "duration_ms": math.nan, "outcome": "open",
                              "path": path or "dual", "f": str(op.get("f") or ""), "eval_id": _text(op.get("eval_id")),
                              "cls": None}
            rows.append(open_[process])
        elif process in open_:
            row = open_.pop(process)
            row["outcome"] = str(op["type"])
            row["duration_ms"] = (float(op["time"]) - row["time"]) * 1000
            row["eval_id"] = row["eval_id"] or _text(op.get("eval_id")) or _text(_value(op.get("value")).get("eval_id"))
    for row in open_.values():
        row["duration_ms"] = (end - row["time"]) * 1000
    frame = pd.DataFrame(rows, columns=columns)
    if not frame.empty and _has(evaluations, "eval_id", "cls"):
        assert evaluations is not None
        worst = _worst_class(evaluations)
        frame["cls"] = frame["eval_id"].map(lambda e: worst.get(str(e)) if e else None)
    return frame.astype({"time": "float64", "duration_ms": "float64"})


def chaos_executions(operations: pd.DataFrame, executions: pd.DataFrame | None) -> pd.DataFrame:
    """The ledger's executions on the history's clock: ``time`` (start, seconds since the history
    started), ``duration_ms``, ``path``, ``eval_id``, ``attempt``, ``outcome`` and ``repeat`` (not the
    first execution of that evaluation on that path).

    The ledger keeps wall-clock times and the history its own clock, so the two are aligned on the
    evaluations both know: no execution starts before its submission was invoked, and the evaluation
    queued for the shortest time sets the offset (off by that queueing time, milliseconds when idle).
    Empty when nothing can be aligned.
    """
    columns = ["time", "duration_ms", "path", "eval_id", "attempt", "outcome", "repeat"]
    if operations.empty or not _has(executions, "eval_id", "started_at"):
        return pd.DataFrame(columns=columns)
    assert executions is not None
    ex = executions.assign(eval_id=executions["eval_id"].astype(str),
                           started=_seconds(executions["started_at"]))
    invoked = operations.dropna(subset=["eval_id"]).groupby("eval_id")["time"].min()
    first = ex.groupby("eval_id")["started"].min()
    both = first.index.intersection(invoked.index)
    if not len(both):
        return pd.DataFrame(columns=columns)
    offset = float((first[both] - invoked[both]).min())
    if "finished_at" in ex.columns:
        duration = (_seconds(ex["finished_at"]) - ex["started"]) * 1000
    else:
        duration = pd.to_numeric(ex.get("duration_ms"), errors="coerce")
    path = _strings(ex, "path", "unknown")
    out = pd.DataFrame({"time": ex["started"] - offset, "duration_ms": duration, "path": path, "eval_id": ex["eval_id"],
                        "attempt": pd.to_numeric(ex["attempt"], errors="coerce") if "attempt" in ex else 1,
                        "outcome": _strings(ex, "outcome", "")})
    out = out.sort_values("time", kind="stable")
    out["repeat"] = out.duplicated(["eval_id", "path"])
    return out[columns].reset_index(drop=True)


def _worst_class(evaluations: pd.DataFrame) -> dict[str, str]:
    """Eval id -> its worst class in ``CHAOS_BAD`` order (evaluations that are fine everywhere are left out)."""
    rank = {c: i for i, c in enumerate(CHAOS_BAD)}
    out: dict[str, str] = {}
    for eval_id, cls in zip(evaluations["eval_id"].astype(str), evaluations["cls"].astype(str), strict=True):
        if cls in rank and (eval_id not in out or rank[cls] < rank[out[eval_id]]):
            out[eval_id] = cls
    return out


_FINDING_TEXT = ("config", "verdict", "violations", "notes")
_FINDING_NUMBERS = ("submitted", "acked", "failed", "info", *CHAOS_CLASSES, "max_executions", "dead_lettered",
                    "still_queued", "recovery_s")
FINDING_COLUMNS = ("scenario", "path", *_FINDING_NUMBERS, *_FINDING_TEXT)


def _finding_rows(scenario: str, findings: pd.DataFrame | None, evaluations: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Rows per path: the runner's findings as they are; else class counts from the checker's table."""
    if findings is not None and not findings.empty and "path" in findings.columns:
        rows = []
        for r in findings.to_dict("records"):
            row: dict[str, Any] = {"scenario": scenario, "path": str(r["path"])}
            row.update({c: r[c] for c in _FINDING_NUMBERS if c in r})
            row.update({c: _text(r[c]) or "" for c in _FINDING_TEXT if c in r})
            rows.append(row)
        return rows
    if _has(evaluations, "path", "cls"):
        assert evaluations is not None
        return [{"scenario": scenario, "path": str(path),
                 **{c: int((part["cls"] == c).sum()) for c in CHAOS_CLASSES},
                 "max_executions": int(part["executions"].max()) if "executions" in part else None}
                for path, part in evaluations.groupby(evaluations["path"].astype(str), sort=False)]
    return []


def chaos_findings(data: RunData) -> pd.DataFrame:
    """One row per scenario and path (``FINDING_COLUMNS``): the submissions, the checker's classes, the
    path's ``verdict`` (the runner's ``pass`` / ``FAIL`` / ``finding`` / ``ERROR``; empty when unknown),
    ``violations`` and ``notes``. Scenario folders first, then the combined table's other scenarios."""
    rows: list[dict[str, Any]] = []
    for s in data.scenarios:
        rows += _finding_rows(s.name, s.findings, s.evaluations)
    seen = {r["scenario"] for r in rows} | {s.name for s in data.scenarios}
    combined = data.combined_findings
    if combined is not None and not combined.empty:
        for name, part in combined.groupby(combined["scenario"].astype(str), sort=False):
            if name not in seen:
                rows += _finding_rows(str(name), part, None)
    if not rows:
        return pd.DataFrame(columns=list(FINDING_COLUMNS))
    frame = pd.DataFrame(rows)
    for column in FINDING_COLUMNS:
        if column not in frame.columns:
            frame[column] = "" if column in _FINDING_TEXT else math.nan
    frame = frame[list(FINDING_COLUMNS)]
    frame[list(_FINDING_TEXT)] = frame[list(_FINDING_TEXT)].fillna("")
    return sort_paths(frame, ["scenario"])


def chaos_scenarios(findings: pd.DataFrame, data: RunData | None = None) -> pd.DataFrame:
    """One verdict per scenario: ``ERROR`` (it could not be carried out), ``FAIL`` (a path's verdict is
    FAIL), ``PASS`` (every path passed or has only findings), else ``unknown``; ``detail`` says why.

    ``result.json`` (``passed``, ``errors``) decides where the findings carry no verdict.
    """
    columns = ["scenario", "verdict", "detail"]
    results = {s.name: s.result or {} for s in (data.scenarios if data else ())}
    names = list(dict.fromkeys([*findings["scenario"], *results]))
    rows = []
    for name in names:
        part = findings[findings["scenario"] == name]
        verdicts = [str(v) for v in part["verdict"] if v]
        result = results.get(name, {})
        errors = [str(e) for e in result.get("errors") or []]
        failed = [f"{p}: {v or 'violated'}" for p, v, verdict in
                  zip(part["path"], part["violations"], part["verdict"], strict=True) if verdict.upper() == "FAIL"]
        if errors or "ERROR" in verdicts:
            verdict, detail = "ERROR", "; ".join(errors) or "the scenario could not be carried out"
        elif failed:
            verdict, detail = "FAIL", "; ".join(failed)
        elif verdicts and len(verdicts) == len(part) and all(v.lower() in ("pass", "finding") for v in verdicts):
            verdict, detail = "PASS", "; ".join(f"{p} finding: {v or n}" for p, v, n, verdict in
                                                zip(part["path"], part["violations"], part["notes"], part["verdict"],
                                                    strict=True) if verdict == "finding")
        elif "passed" in result:
            verdict = "PASS" if result["passed"] else "FAIL"
            detail = "; ".join(str(v) for v in result.get("violations") or [])
        else:
            verdict, detail = "unknown", "the stored findings carry no verdict"
        rows.append({"scenario": name, "verdict": verdict, "detail": detail})
    return pd.DataFrame(rows, columns=columns)


def chaos_flagged(evaluations: pd.DataFrame | None, limit: int = 12) -> pd.DataFrame:
    """The evaluations the checker did not class ok or recovered, worst class first, at most ``limit``;
    ``frame.attrs["total"]`` keeps how many there were."""
    if not _has(evaluations, "cls"):
        return pd.DataFrame()
    assert evaluations is not None
    rank = {c: i for i, c in enumerate(CHAOS_BAD)}
    bad = evaluations[evaluations["cls"].astype(str).isin(CHAOS_BAD)]
    bad = bad.sort_values("cls", key=lambda s: s.map(lambda c: rank.get(c, 99)), kind="stable")
    out = bad.head(limit).reset_index(drop=True)
    out.attrs["total"] = len(bad)
    return out


# -- the gate ----------------------------------------------------------------------------------------------


def gate_criteria(verdict: Mapping[str, Any] | None) -> pd.DataFrame:
    """The verdict's criteria, one row each (``CRITERIA_COLUMNS``); empty without a verdict."""
    if not verdict:
        return pd.DataFrame(columns=list(CRITERIA_COLUMNS))
    rows = [{c: (crit or {}).get(c) for c in CRITERIA_COLUMNS} for crit in verdict.get("criteria") or []
            if isinstance(crit, Mapping)]
    return pd.DataFrame(rows, columns=list(CRITERIA_COLUMNS))


# -- everything at once -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScenarioFrames:
    name: str
    operations: pd.DataFrame
    executions: pd.DataFrame
    windows: pd.DataFrame
    flagged: pd.DataFrame


@dataclass(frozen=True)
class Frames:
    """Every derived frame the writers need, computed once from a ``RunData``."""

    data: RunData
    parity_classes: pd.DataFrame
    parity_fields: pd.DataFrame
    mismatch_samples: pd.DataFrame
    normaliser_hits: dict[str, int]
    latency: pd.DataFrame
    latency_percentiles: pd.DataFrame
    throughput: pd.DataFrame
    chaos_findings: pd.DataFrame
    chaos_scenarios: pd.DataFrame
    scenarios: tuple[ScenarioFrames, ...] = field(default=())
    criteria: pd.DataFrame = field(default_factory=lambda: gate_criteria(None))

    @property
    def verdict(self) -> Mapping[str, Any] | None:
        return self.data.verdict

    @property
    def has_parity(self) -> bool:
        return not self.parity_classes.empty

    @property
    def has_chaos(self) -> bool:
        return not self.chaos_scenarios.empty


def build_frames(data: RunData) -> Frames:
    """Derive every frame of the report from ``data`` (pure)."""
    obs = data.observations
    lat = latency_samples(data.load_requests, obs)
    findings = chaos_findings(data)
    scenarios = []
    for s in data.scenarios:
        ops = chaos_operations(s.history, s.evaluations)
        scenarios.append(ScenarioFrames(s.name, ops, chaos_executions(ops, s.executions), fault_windows(s.history),
                                        chaos_flagged(s.evaluations)))
    return Frames(
        data=data, parity_classes=parity_classes(obs), parity_fields=parity_fields(obs),
        mismatch_samples=mismatch_samples(obs), normaliser_hits=normaliser_hits(obs), latency=lat,
        latency_percentiles=latency_percentiles(lat), throughput=throughput(data.load_requests, data.load_stats),
        chaos_findings=findings, chaos_scenarios=chaos_scenarios(findings, data), scenarios=tuple(scenarios),
        criteria=gate_criteria(data.verdict))
