"""A run folder as pandas frames: what the report shows, derived by pure functions from stored data.

``read_run`` is the only function here that touches the disk: it loads whatever parts of
``reports/<run-id>/`` exist (every part is optional) into a ``RunData`` (``run_data.py``). A file
that is present but unreadable does not stop the report: it is named in ``RunData.problems`` and its
part counts as absent. Everything else is a pure function of frames and dicts, one module per family:

- parity (``parity_frames.py``; ``observations.parquet``): ``parity_classes``, ``parity_fields``,
  ``mismatch_samples``;
- latency per path with p50 / p95 / p99 (``load_frames.py``: ``latency_samples``,
  ``latency_percentiles``): from the load run (``load_requests.parquet``: ``E2E`` rows, submission to
  terminal result, per path; ``POST`` rows, the submission alone, by the path the gateway chose) and
  the executors' ``duration_ms`` of the parity programs;
- throughput per second per path (``load_frames.py``: ``throughput``): completed evaluations (E2E
  rows, by the second they ended) and submissions, from ``load_requests.parquet``, else from
  ``load_stats.parquet``;
- chaos (``chaos_frames.py``; ``chaos/<scenario>/``: ``history.parquet``, ``evaluations.parquet``
  (the checker's table), ``findings.parquet`` (one row per path), ``result.json``; and the run's
  combined ``findings.parquet``): ``chaos_findings`` (one row per scenario and path),
  ``chaos_scenarios`` (one verdict per scenario), ``chaos_operations`` (the client ops of a history,
  each with its duration and outcome), ``fault_windows`` (nemesis ``start`` / ``stop``) and
  ``chaos_flagged``;
- what load was run (``load_frames.py``; ``load.json``, the gate's ``load-rounds/<k>/load.json`` and
  ``load_requests.parquet``): ``load_settings``, ``program_mix``;
- the gate (here; ``verdict.json``): ``gate_criteria``, and ``criterion_section`` (the section
  showing a criterion's evidence).

``build_frames`` (here) derives them all at once into a ``Frames``. This module re-exports the public
names of ``run_data.py``, ``parity_frames.py``, ``load_frames.py``, ``chaos_frames.py`` and the
shared helpers of ``_common.py`` (``PATHS``, ``sort_paths``, ``fmt_ms``), so ``harness.report.frames``
stays the one place to import any of them from.

Frames that would be empty are returned empty (never None) so callers test ``frame.empty``; the
writers show nothing for an empty frame rather than an empty chart.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.report._common import PATHS, _has, fmt_ms, sort_paths
from harness.report.chaos_frames import (
    CHAOS_BAD,
    CHAOS_CLASSES,
    FINDING_COLUMNS,
    chaos_executions,
    chaos_findings,
    chaos_flagged,
    chaos_operations,
    chaos_scenarios,
    fault_windows,
)
from harness.report.load_frames import (
    MIX_COLUMNS,
    latency_percentiles,
    latency_samples,
    load_settings,
    program_mix,
    throughput,
)
from harness.report.parity_frames import (
    PARITY_CLASSES,
    mismatch_samples,
    normaliser_hits,
    parity_classes,
    parity_fields,
    sample_headline,
)
from harness.report.run_data import ReportError, RunData, Scenario

CHAOS_FILES = ("history.parquet", "evaluations.parquet", "findings.parquet", "executions.parquet")
CRITERIA_COLUMNS = ("name", "status", "observed", "threshold", "sample_size", "bound", "detail")
LOAD_ROUNDS = "load-rounds"  # the gate's rounds, one folder each (harness.gate.cli.LOAD_ROUNDS)
_SKIP_DIRS = {"logs", "ledger", "counterexamples", "load", "rows", LOAD_ROUNDS}


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
        parity_run=reader.json(path / "parity.json"), load=reader.json(path / "load.json"),
        load_rounds=_load_rounds(reader, path),
        scenarios=tuple(scenarios), combined_findings=combined, problems=tuple(reader.problems))


def _load_rounds(reader: _Reader, root: Path) -> tuple[tuple[str, Mapping[str, Any]], ...]:
    """The gate's Locust rounds: ``load-rounds/<k>/load.json``, in the order of their folders."""
    folder = root / LOAD_ROUNDS
    if not folder.is_dir():
        return ()
    found = []
    for sub in sorted(d for d in folder.iterdir() if d.is_dir()):
        doc = reader.json(sub / "load.json")
        if doc is not None:
            found.append((sub.name, doc))
    return tuple(found)


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


# -- the gate ----------------------------------------------------------------------------------------------


def gate_criteria(verdict: Mapping[str, Any] | None) -> pd.DataFrame:
    """The verdict's criteria, one row each (``CRITERIA_COLUMNS``); empty without a verdict."""
    if not verdict:
        return pd.DataFrame(columns=list(CRITERIA_COLUMNS))
    rows = [{c: (crit or {}).get(c) for c in CRITERIA_COLUMNS} for crit in verdict.get("criteria") or []
            if isinstance(crit, Mapping)]
    return pd.DataFrame(rows, columns=list(CRITERIA_COLUMNS))


# the rows of the gate's latency-by-stage table (``verdict.stages[path]``): key, label
STAGE_ROWS = (("submit", "submit"), ("queue", "queue"), ("execution", "execution"), ("delivery", "delivery"),
              ("overhead", "queueing + delivery"), ("end_to_end", "end-to-end"), ("cpu_ms", "CPU time (ms)"),
              ("peak_rss_kb", "peak memory (KiB)"))
STAGES_NOTE = ("The latency criterion judges queueing + delivery (end-to-end − execution), the stage the migration "
               "changes; execution is judged apart: both paths run the same executor code.")
NOISE_FLOOR_NOTE = ("the median difference between alternate evaluations of the same path, in the same time windows: "
                    "what the machine's own variation makes of no difference at all.")


def noise_floor_text(floor: Mapping[str, Any]) -> str:
    """``A/A noise floor: latency (queueing + delivery) 1.0 ms, execution time 0.3 ms`` (``verdict.noise_floor``)."""
    def ms(value: Any) -> str:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        return f"{float(value):.1f} ms" if ok else "not measured"  # as ``harness gate`` prints it
    return "A/A noise floor: " + ", ".join(f"{name} {ms(value)}" for name, value in floor.items())


def sequential_text(seq: Mapping[str, Any]) -> str:
    """One sentence on a sequential gate's rounds (``verdict.sequential``): how many, how long, why it stopped."""
    rounds = seq.get("rounds", len(seq.get("looks") or ()))
    text = f"{rounds} round{'' if rounds == 1 else 's'} with a look after each"
    if seq.get("elapsed_s") is not None:
        text += f", {seq['elapsed_s']} s in all"
        if seq.get("max_time_s") is not None:
            limit = seq["max_time_s"]
            text += f" (at most {limit:g} s)" if isinstance(limit, int | float) else f" (at most {limit} s)"
    return text + (f"; stopped: {seq['stopped']}." if seq.get("stopped") else ".")


# the report section that shows each criterion's evidence: a criterion's name starts with one of the
# prefixes; its evidence is in the first of the sections that the report holds
_CRITERION_SECTIONS = ((("parity mismatch rate", "critical fields", "oracle"), ("parity",)),
                       (("chaos", "transition"), ("chaos",)),
                       (("latency", "execution time", "resources", "error rate", "split accuracy"),
                        ("latency", "throughput")))


def criterion_section(name: str, present: Collection[str]) -> str | None:
    """The section (its anchor: ``parity``, ``latency``, ``throughput``, ``chaos``) among ``present`` that
    shows the evidence of the criterion ``name``; None if the report has no such section."""
    for prefixes, sections in _CRITERION_SECTIONS:
        if str(name).startswith(prefixes):
            return next((s for s in sections if s in present), None)
    return None


def look_criteria(looks: Sequence[Mapping[str, Any]]) -> list[str]:
    """The criteria the looks of a sequential gate judged, in the order they first appear."""
    names: dict[str, None] = {}
    for look in looks:
        names.update(dict.fromkeys(look.get("statuses") or {}))
    return list(names)


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
    load_settings: tuple[tuple[str, str], ...] = ()  # what load was run: (setting, value)
    program_mix: pd.DataFrame = field(default_factory=lambda: program_mix(None))

    @property
    def verdict(self) -> Mapping[str, Any] | None:
        return self.data.verdict

    @property
    def has_parity(self) -> bool:
        return not self.parity_classes.empty

    @property
    def has_load(self) -> bool:
        """Whether the run folder says what load was run (load.json, or the mix of its requests)."""
        return bool(self.load_settings) or not self.program_mix.empty

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
        criteria=gate_criteria(data.verdict), load_settings=tuple(load_settings(data.load, data.load_rounds)),
        program_mix=program_mix(data.load_requests))


__all__ = [
    # the shared helpers (_common.py)
    "PATHS", "fmt_ms", "sort_paths",
    # the stored data (run_data.py) and reading it (here)
    "CHAOS_FILES", "ReportError", "RunData", "Scenario", "read_run",
    # parity (parity_frames.py)
    "PARITY_CLASSES", "mismatch_samples", "normaliser_hits", "parity_classes", "parity_fields", "sample_headline",
    # latency and throughput (load_frames.py)
    "MIX_COLUMNS", "latency_percentiles", "latency_samples", "load_settings", "program_mix", "throughput",
    # chaos (chaos_frames.py)
    "CHAOS_BAD", "CHAOS_CLASSES", "FINDING_COLUMNS", "chaos_executions", "chaos_findings", "chaos_flagged",
    "chaos_operations", "chaos_scenarios", "fault_windows",
    # the gate and everything at once (here)
    "CRITERIA_COLUMNS", "NOISE_FLOOR_NOTE", "criterion_section", "STAGES_NOTE", "STAGE_ROWS", "Frames", "ScenarioFrames", "build_frames",
    "gate_criteria", "look_criteria", "noise_floor_text", "sequential_text",
]
