"""From stored run data to the gate's ``Evidence``: pure readers of run folders.

- **parity** from ``observations.parquet`` (``harness.parity.suite.observations_frame``): ``n`` is
  every checked program but noise; a mismatch is a failing program (a differing compared field, or
  Celery wrong where legacy is right). Per field, the counts are the differing fields plus two
  derived ones the thresholds name as critical: ``error_class`` (the exception class on the error's
  last line differs, e.g. ``ValueError`` vs ``MemoryError``) and ``lost`` (one path never finished).
  ``wrong`` counts oracle disagreements per path; ``noise`` the programs legacy disagreed with
  itself on.
- **latency**, **errors** and **split** from ``load_requests.parquet`` (the load run's end-to-end
  rows, ``request_type == "E2E"``, one per evaluation, named by path): the samples are end-to-end
  milliseconds of evaluations that finished, plus those still in flight when the load run ended
  (``unfinished``, with the time waited so far; see ``decide._censored``); an error is a platform
  failure (status ``error``, or never finished), never a user program's own failure. The split is the share of evaluations the
  gateway routed to Celery during the load run.
- **chaos** from each scenario's ``chaos/<scenario>/findings.parquet`` (see ``harness.chaos.findings``;
  else a combined ``findings.parquet``): the Celery path's stored ``outcome`` (``harness.vocabulary``).

Several run folders may be combined (``--evidence RUN_DIR...``): their rows are pooled.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from harness.gate.decide import (
    ChaosOutcome,
    ErrorCount,
    Evidence,
    LatencyEvidence,
    ParityEvidence,
    SplitEvidence,
)
from harness.vocabulary import PATHS, TERMINAL, VocabularyError, combine_outcomes, outcome_of

_ERROR_CLASS = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning))\b")


def error_class(error: Any) -> str | None:
    """The exception class named on the last non-empty line of a traceback, if any."""
    if not isinstance(error, str):
        return None
    lines = [line for line in error.splitlines() if line.strip()]
    match = _ERROR_CLASS.match(lines[-1]) if lines else None
    return match.group(1) if match else None


def _read(folders: Sequence[Path], name: str) -> pd.DataFrame:
    frames = [pd.read_parquet(f / name) for f in folders if (f / name).is_file()]
    frames += [pd.read_parquet(p) for f in folders for p in sorted(f.glob(f"*/{name}"))]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def parity_evidence(observations: pd.DataFrame) -> ParityEvidence | None:
    if observations.empty:
        return None
    noise = int((observations["cls"] == "noise").sum())
    judged = observations[observations["cls"] != "noise"]
    by_field: Counter[str] = Counter()
    for row in judged[judged["failing"]].itertuples(index=False):
        by_field.update(f for f in str(row.differing).split(",") if f)
        if error_class(row.legacy_error) != error_class(row.celery_error):
            by_field["error_class"] += 1
        if row.legacy_status not in TERMINAL or row.celery_status not in TERMINAL:
            by_field["lost"] += 1
    wrong = {"legacy": int((judged["control_wrong"].fillna("") != "").sum()),
             "celery": int((judged["candidate_wrong"].fillna("") != "").sum())}
    return ParityEvidence(n=len(judged), mismatches=int(judged["failing"].sum()), mismatches_by_field=dict(by_field),
                          wrong=wrong, noise=noise)


def load_evidence(requests: pd.DataFrame, configured_percentage: float | None
                  ) -> tuple[LatencyEvidence | None, SplitEvidence | None]:
    if requests.empty or "request_type" not in requests:
        return None, None
    e2e = requests[requests["request_type"] == "E2E"]
    if e2e.empty:
        return None, None
    samples: dict[str, list[float]] = {}
    errors: dict[str, ErrorCount] = {}
    unfinished: dict[str, list[float]] = {}
    for path in PATHS:
        # "unfinished": still in flight when Locust stopped its users; not an error, and a latency
        # known only to be at least its response_time_ms (the decision counts it conservatively).
        in_flight = (e2e["name"] == path) & (e2e["status"] == "unfinished")
        mine = e2e[(e2e["name"] == path) & ~in_flight]
        finished = mine[mine["status"].isin(["completed", "failed", "timeout"])]
        samples[path] = [float(x) for x in finished["response_time_ms"]]
        errors[path] = ErrorCount(len(mine), len(mine) - len(finished))
        unfinished[path] = [float(x) for x in e2e[in_flight]["response_time_ms"]]
    latency = LatencyEvidence(samples, errors, unfinished)
    split = None
    if configured_percentage is not None:
        routed = int(e2e["name"].isin(["legacy", "celery"]).sum())
        split = SplitEvidence(configured_percentage, routed, int((e2e["name"] == "celery").sum()))
    return latency, split


def chaos_evidence(findings: pd.DataFrame) -> list[ChaosOutcome] | None:
    """One outcome per scenario from the findings rows of the Celery path: the stored ``outcome`` word
    (read with ``outcome_of``: an unknown word is an error, never "held"); several rows of one
    scenario (runs with different seeds) combine to the worst."""
    if findings.empty or "scenario" not in findings:
        return None
    if "outcome" not in findings:
        raise VocabularyError("the chaos findings carry no 'outcome' column (written by an older harness); "
                              "run the scenarios again")
    outcomes = []
    for scenario, rows in findings.groupby("scenario", sort=True):
        celery = rows[rows["path"] == "celery"]
        if celery.empty:
            continue
        words = [outcome_of(w) for w in celery["outcome"]]
        violations = [v for cell in celery.get("violations", pd.Series(dtype=object)) for v in _as_list(cell)]
        reasons = [str(r) for r in celery.get("known_failure", pd.Series(dtype=object)) if isinstance(r, str) and r]
        reasons += [n for cell in celery.get("notes", pd.Series(dtype=object)) for n in _as_list(cell)
                    if combine_outcomes(words) == "error"][:1]
        outcomes.append(ChaosOutcome(str(scenario), combine_outcomes(words), tuple(violations),
                                     "; ".join(dict.fromkeys(reasons))))
    return outcomes


def _as_list(cell: Any) -> list[str]:
    if cell is None or (isinstance(cell, float) and pd.isna(cell)):
        return []
    if isinstance(cell, str):
        try:
            value = json.loads(cell)
        except json.JSONDecodeError:
            return [cell] if cell.strip() else []
        return [str(v) for v in value] if isinstance(value, list) else [str(value)]
    if isinstance(cell, Iterable):
        return [str(v) for v in cell]
    return [str(cell)]


def collect(folders: Sequence[Path], *, configured_percentage: float | None = None) -> Evidence:
    """Pool the evidence stored in ``folders`` (and their immediate subfolders)."""
    parity = parity_evidence(_read(folders, "observations.parquet"))
    latency, split = load_evidence(_read(folders, "load_requests.parquet"), configured_percentage)
    per_scenario = [pd.read_parquet(p) for f in folders for p in sorted(f.glob("chaos/*/findings.parquet"))]
    findings = (pd.concat(per_scenario, ignore_index=True) if per_scenario
                else _read(folders, "findings.parquet"))
    chaos = chaos_evidence(findings)
    return Evidence(parity=parity, chaos=chaos, latency=latency, split=split)
