"""The run folder: ``reports/<run-id>/`` holds everything one run produced.

``run.json`` (seed, configuration, versions, launcher, git revision), ``logs/`` (one file per
component), ``ledger/`` (the executors' execution ledgers), and the places later parts fill:
``history.parquet``, ``observations.parquet``, ``executions.parquet``, ``verdict.json``,
``summary.md``, ``report.html``, ``junit.xml``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import secrets
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REPORTS = PROJECT_ROOT / "reports"
_VERSIONED = ("celery", "kombu", "redis", "flower", "fastapi", "uvicorn", "locust", "hypothesis",
              "pandas", "testcontainers")


def new_run_id() -> str:
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def git_revision() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


@dataclass(frozen=True)
class RunFolder:
    path: Path
    run_id: str

    @classmethod
    def create(cls, root: Path | None = None, run_id: str | None = None) -> RunFolder:
        base = Path(root) if root is not None else Path(os.environ.get("HARNESS_REPORTS", DEFAULT_REPORTS))
        rid = run_id or new_run_id()
        path = base / rid
        (path / "logs").mkdir(parents=True, exist_ok=True)
        (path / "ledger").mkdir(exist_ok=True)
        return cls(path=path, run_id=rid)

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    @property
    def ledger(self) -> Path:
        return self.path / "ledger"

    def write_run_json(self, *, seed: int, launcher: str, config: dict[str, Any],
                       extra: dict[str, Any] | None = None) -> Path:
        doc = {
            "run_id": self.run_id, "seed": seed, "launcher": launcher, "config": config,
            "versions": versions(), "git_revision": git_revision(), "argv": sys.argv,
            "started_at": dt.datetime.now(dt.UTC).isoformat(), **(extra or {}),
        }
        target = self.path / "run.json"
        target.write_text(json.dumps(doc, indent=2, default=str) + "\n")
        return target
