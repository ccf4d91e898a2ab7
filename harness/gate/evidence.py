"""From stored run data to the gate's ``Evidence``: pure readers of run folders.

- **parity** from ``observations.parquet`` (``harness.parity.suite.observations_frame``): ``n`` is
  every checked program drawn from a declared mix (``population`` ``mix:<name>``) but noise, and the
  bound names that population; the search's programs (population ``search``) are not a sample and
  count only for the zero-tolerance criteria (a frame stored before populations were recorded counts
  every row, population undeclared). A mismatch is a failing program (a differing compared field,
  Celery wrong where legacy is right, or a result missing). Per field, the counts are the differing fields plus two
  derived ones the thresholds name as critical: ``error_class`` (the exception class on the error's
  last line differs, e.g. ``ValueError`` vs ``MemoryError``) and ``lost`` (one path never finished).
  ``wrong`` counts oracle disagreements per path; ``noise`` the programs legacy disagreed with
  itself on. Each sampled program ran on both paths, so its statuses also count for the error rate
  (``errors``: per path, the programs whose result there is ``error`` or never terminal).
- **latency**, **errors** and **split** from ``load_requests.parquet`` (the load run's end-to-end
  rows, ``request_type == "E2E"``, one per evaluation, named by path): the samples are end-to-end
  milliseconds of evaluations that finished, plus those still in flight when the load run ended
  (``unfinished``, with the time waited so far; see ``criteria._latency``); an error is a platform
  failure (status ``error``, or never finished), never a user program's own failure. The stages
  (``submit``, ``queue``, ``execution``, ``delivery``; ``overhead`` = end-to-end − execution) and the
  resources (``cpu_ms``, ``peak_rss_kb``) come from the same rows, in submission order. The split is the
  share of evaluations the gateway routed to Celery during the load run (forced rows left out). A
  gate's load rounds (``load-rounds/<k>/``) are pooled into the run folder's own
  ``load_requests.parquet`` by the gate itself.
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

from harness.gate.criteria import AT
from harness.gate.decide import (
    OVERHEAD,
    RESOURCES,
    STAGES,
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


def read_table(folders: Sequence[Path], name: str) -> pd.DataFrame:
    """``name`` in each of ``folders`` and their immediate subfolders, concatenated (empty when none)."""
    frames = [pd.read_parquet(f / name) for f in folders if (f / name).is_file()]
    frames += [pd.read_parquet(p) for f in folders for p in sorted(f.glob(f"*/{name}"))]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def parity_evidence(observations: pd.DataFrame) -> ParityEvidence | None:
    if observations.empty:
        return None
    judged = observations[observations["cls"] != "noise"]
    if "population" in observations.columns:
        # The bound is computed on the sample of a declared mix; the search's programs count only
        # for the zero-tolerance criteria (fields, oracle).
        drawn = judged["population"].fillna("").astype(str).str.startswith("mix:")
        mixes = sorted(judged.loc[drawn, "population"].unique())
        population: str | None = " + ".join(mixes) if mixes else None
        sample = judged[drawn]
        noise = int(((observations["cls"] == "noise")
                     & observations["population"].fillna("").astype(str).str.startswith("mix:")).sum())
    else:  # stored before populations were recorded
        population, sample, noise = None, judged, int((observations["cls"] == "noise").sum())
    by_field: Counter[str] = Counter()
    for row in judged[judged["failing"]].itertuples(index=False):
        by_field.update(f for f in str(row.differing).split(",") if f)
        if error_class(row.legacy_error) != error_class(row.celery_error):
            by_field["error_class"] += 1
        if row.legacy_status not in TERMINAL or row.celery_status not in TERMINAL:
            by_field["lost"] += 1
    wrong = {"legacy": int((judged["control_wrong"].fillna("") != "").sum()),
             "celery": int((judged["candidate_wrong"].fillna("") != "").sum())}
    # Every judged program ran on both paths: an evaluation that ended in a platform error, or never
    # finished, counts for the error rate (the sample of the declared mix only: a population).
    errors: dict[str, ErrorCount] = {path: ErrorCount(len(sample), int((sample[f"{path}_status"].isin(["error"])
                                                 | ~sample[f"{path}_status"].isin(TERMINAL)).sum()))
              for path in PATHS if f"{path}_status" in sample} if population else {}
    return ParityEvidence(n=len(sample), mismatches=int(sample["failing"].sum()), mismatches_by_field=dict(by_field),
                          wrong=wrong, noise=noise, population=population, searched=len(judged) - len(sample),
                          errors=errors)


def load_evidence(requests: pd.DataFrame, configured_percentage: float | None
                  ) -> tuple[LatencyEvidence | None, SplitEvidence | None]:
    if requests.empty or "request_type" not in requests:
        return None, None
    e2e = requests[requests["request_type"] == "E2E"]
    if e2e.empty:
        return None, None
    e2e = e2e.sort_values("time", kind="stable") if "time" in e2e else e2e  # submission order (A/A halves)
    samples: dict[str, list[float]] = {}
    errors: dict[str, ErrorCount] = {}
    unfinished: dict[str, list[float]] = {}
    stages: dict[str, dict[str, list[float]]] = {}
    resources: dict[str, dict[str, list[float]]] = {}
    for path in PATHS:
        # "unfinished": still in flight when Locust stopped its users; not an error, and a latency
        # known only to be at least its response_time_ms (the decision counts it conservatively).
        in_flight = (e2e["name"] == path) & (e2e["status"] == "unfinished")
        mine = e2e[(e2e["name"] == path) & ~in_flight]
        finished = mine[mine["status"].isin(["completed", "failed", "timeout"])]
        samples[path] = [float(x) for x in finished["response_time_ms"]]
        errors[path] = ErrorCount(len(mine), len(mine) - len(finished))
        unfinished[path] = [float(x) for x in e2e[in_flight]["response_time_ms"]]
        stages[path], resources[path] = _stages(finished)
    latency = LatencyEvidence(samples, errors, unfinished, stages, resources)
    split = None
    if configured_percentage is not None:
        # only what the gateway's split routed: a path the user forced (--route, or the control group of
        # --route control) says nothing about the split
        by_split = e2e[e2e["forced"].fillna(False) == False] if "forced" in e2e else e2e  # noqa: E712 (nullable)
        routed = int(by_split["name"].isin(["legacy", "celery"]).sum())
        split = SplitEvidence(configured_percentage, routed, int((by_split["name"] == "celery").sum()))
    return latency, split


def _epoch_seconds(column: pd.Series) -> list[float]:
    """Submission times as epoch seconds, whether stored as numbers or as timestamps (load_requests.parquet)."""
    if pd.api.types.is_datetime64_any_dtype(column):
        stamps = pd.to_datetime(column, utc=True)
        return [float(x) for x in (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds()]
    return [float(t) for t in column]


def _stages(finished: pd.DataFrame) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """The measured stages (``submit``, ``queue``, ``execution``, ``delivery`` and ``overhead`` = end-to-end
    − execution) and resources of finished single-path evaluations, each list aligned with
    ``submitted_at`` (epoch seconds, submission order; NaN where a value is missing); empty for rows
    stored before stages were measured."""
    if "execution_ms" not in finished:
        return {}, {}
    measured = finished[finished["execution_ms"].notna()]
    times = _epoch_seconds(measured["time"]) if "time" in measured else [float(i) for i in range(len(measured))]
    stages = {stage: [float(x) for x in measured[f"{stage}_ms"]] for stage in STAGES if f"{stage}_ms" in measured}
    stages[OVERHEAD] = [float(x) for x in measured["response_time_ms"] - measured["execution_ms"]]
    stages[AT] = times
    resources = {key: [float(x) for x in measured[key]] for key in RESOURCES if key in measured}
    resources[AT] = times
    return stages, resources


def chaos_evidence(findings: pd.DataFrame) -> list[ChaosOutcome] | None:
    """One outcome per scenario from its findings rows: the stored ``outcome`` words (read with
    ``outcome_of``: an unknown word is an error, never "held") of every path, combined to the worst (a
    path the scenario does not gate is at worst a finding); several runs of one scenario combine too."""
    if findings.empty or "scenario" not in findings:
        return None
    if "outcome" not in findings:
        raise VocabularyError("the chaos findings carry no 'outcome' column (written by an older harness); "
                              "run the scenarios again")
    outcomes = []
    for scenario, rows in findings.groupby("scenario", sort=True):
        # every path's row: a path the scenario does not gate is at worst a finding (harness.chaos.result), and a
        # transition scenario gates legacy too
        words = [outcome_of(w) for w in rows["outcome"]]
        broken = rows[rows["outcome"].isin(["failed", "known-failure"])]
        violations = [v for cell in broken.get("violations", pd.Series(dtype=object)) for v in cell_list(cell)]
        reasons = [str(r) for r in broken.get("known_failure", pd.Series(dtype=object)) if isinstance(r, str) and r]
        reasons += [n for cell in rows.get("notes", pd.Series(dtype=object)) for n in cell_list(cell)
                    if combine_outcomes(words) == "error"][:1]
        outcomes.append(ChaosOutcome(str(scenario), combine_outcomes(words), tuple(violations),
                                     "; ".join(dict.fromkeys(reasons))))
    return outcomes


def cell_list(cell: Any) -> list[str]:
    """A findings cell that holds a list (a list, a JSON list, one string, or nothing) as a list of strings."""
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


def chaos_findings(folders: Sequence[Path]) -> pd.DataFrame:
    """The chaos findings rows of ``folders``: each scenario's ``chaos/<scenario>/findings.parquet``, else a
    combined ``findings.parquet``."""
    per_scenario = [pd.read_parquet(p) for f in folders for p in sorted(f.glob("chaos/*/findings.parquet"))]
    return pd.concat(per_scenario, ignore_index=True) if per_scenario else read_table(folders, "findings.parquet")


def collect(folders: Sequence[Path], *, configured_percentage: float | None = None) -> Evidence:
    """Pool the evidence stored in ``folders`` (and their immediate subfolders)."""
    parity = parity_evidence(read_table(folders, "observations.parquet"))
    latency, split = load_evidence(read_table(folders, "load_requests.parquet"), configured_percentage)
    chaos = chaos_evidence(chaos_findings(folders))
    return Evidence(parity=parity, chaos=chaos, latency=latency, split=split)
