"""A run folder's stored data as the report holds it: ``RunData`` (every part of ``reports/<run-id>/``,
None where absent, and the files that were present but unreadable), ``Scenario`` (one chaos
scenario's files) and ``ReportError`` (the folder cannot be reported on).

``frames.read_run`` fills them from the disk; the frame modules only read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness.errors import HarnessError


class ReportError(HarnessError):
    """A run folder cannot be reported on (it does not exist, or is not a folder)."""


@dataclass(frozen=True)
class Scenario:
    """One chaos scenario's stored data (``chaos/<scenario>/``); a part is None when its file is absent."""

    name: str
    folder: Path
    history: pd.DataFrame | None = None  # harness.history.to_frame
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
    parity_run: Mapping[str, Any] | None = None  # parity.json: {"interrupted": true, ...} when Ctrl-C cut it
    load: Mapping[str, Any] | None = None  # load.json: the Locust run's options, command and exit code
    # the gate's rounds (``load-rounds/<k>/load.json``), one (folder name, load.json) each, in order
    load_rounds: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    scenarios: tuple[Scenario, ...] = ()
    combined_findings: pd.DataFrame | None = None  # the run's findings.parquet: rows name their scenario
    problems: tuple[str, ...] = ()  # files present but unreadable, in words

    @property
    def run_id(self) -> str:
        return str((self.run or {}).get("run_id") or self.path.name)
