"""Chaos frames: what the chaos scenarios of a run stored, as pandas frames.

Per scenario (``chaos/<scenario>/``: ``history.parquet``, ``executions.parquet``,
``evaluations.parquet`` (the checker's table), ``findings.parquet`` (one row per path),
``result.json``): the client operations of the history, each with its duration and outcome
(``chaos_operations``), the ledger's executions on the history's clock (``chaos_executions``), the
nemesis' fault windows (``fault_windows``) and the evaluations the checker flagged
(``chaos_flagged``). Over the run (the scenario folders and the run's combined ``findings.parquet``):
one row per scenario and path (``chaos_findings``) and one outcome per scenario
(``chaos_scenarios``), read from the stored ``outcome`` words (``harness.vocabulary``), never
re-derived. Pure functions.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from harness.chaos.checker import PRECEDENCE, Counts
from harness.report._common import _has, _seconds, _strings, sort_paths
from harness.report.run_data import RunData
from harness.vocabulary import VocabularyError, combine_outcomes, outcome_of

CHAOS_CLASSES = tuple(Counts().as_dict())  # the checker's classes, in its table's order
CHAOS_BAD: tuple[str, ...] = tuple(c for c in PRECEDENCE if c not in ("ok", "recovered"))  # worst first


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
    if value is None or (not isinstance(value, str) and not hasattr(value, "__len__") and pd.isna(value)):
        return None
    if not isinstance(value, str) and hasattr(value, "__iter__"):  # a list column: its items, joined
        return "; ".join(str(v) for v in value) or None
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


_FINDING_TEXT = ("config", "outcome", "known_failure", "violations", "notes", "errors")
_FINDING_NUMBERS = ("submitted", "acked", "failed", "info", *CHAOS_CLASSES, "max_executions", "dead_lettered",
                    "still_queued", "recovery_s", "elapsed_s")
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
    path's ``outcome`` (a word of ``harness.vocabulary.Outcome``; empty when none was stored),
    ``violations``, ``notes`` and ``errors`` joined as text. Scenario folders first, then the combined
    table's other scenarios."""
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
    """One outcome per scenario: the worst of its paths' stored outcomes (``combine_outcomes``), with
    ``detail`` saying why: the errors, the Celery violations, the known failure's reason, or the
    findings. ``outcome`` is ``None`` when the stored findings carry no outcome word (an older run):
    unknown, which every reader shows as not passed."""
    columns = ["scenario", "outcome", "detail", "elapsed_s"]
    results = {s.name: s.result or {} for s in (data.scenarios if data else ())}
    names = list(dict.fromkeys([*findings["scenario"], *results]))
    rows = []
    for name in names:
        part = findings[findings["scenario"] == name].to_dict("records")
        result = results.get(name, {})
        try:
            words = [outcome_of(r["outcome"]) for r in part]
            if not words and "outcome" in result:
                words = [outcome_of(result["outcome"])]
        except VocabularyError:
            words = []
        if not words:
            rows.append({"scenario": name, "outcome": None, "detail": "the stored findings carry no outcome",
                         "elapsed_s": None})
            continue
        outcome = combine_outcomes(words)
        if outcome == "error":
            detail = "; ".join(dict.fromkeys([*(str(e) for e in result.get("errors") or []),
                                             *(r["errors"] for r in part if r.get("errors"))])) \
                or "the scenario could not be carried out"
        elif outcome == "failed":
            detail = "; ".join(f"{r['path']}: {r['violations'] or 'violated'}" for r in part if r["outcome"] == "failed")
        elif outcome == "known-failure":
            detail = "; ".join(f"{r['path']}: {r['violations']} (known failure: {r['known_failure']})"
                               for r in part if r["outcome"] == "known-failure")
        else:
            detail = "; ".join(f"{r['path']} finding: {r['violations'] or r['notes']}" for r in part
                               if r["outcome"] == "finding")
        elapsed = [float(r["elapsed_s"]) for r in part if r.get("elapsed_s") is not None
                   and not pd.isna(r["elapsed_s"])]
        rows.append({"scenario": name, "outcome": outcome, "detail": detail,
                     "elapsed_s": max(elapsed) if elapsed else None})
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
