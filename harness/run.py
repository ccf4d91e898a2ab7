"""The workspace and the run folder: where a run's files go, and ``reports/<run-id>/`` itself.

The **workspace** is the folder that holds ``reports/``, ``scenarios/``, ``fixtures/`` and
``.hypothesis/``. ``workspace()`` finds it from the working directory, never from where the harness
is installed: the nearest folder upward with a ``harness.toml`` or a ``pyproject.toml`` that has a
``[tool.harness]`` table; otherwise the working directory itself. ``HARNESS_REPORTS`` moves the
reports folder (run folders and the state of detached stacks) elsewhere.

The **run folder** ``reports/<run-id>/`` holds everything one run produced: ``run.json`` (seed,
configuration, versions, launcher, git revision; never a secret: a secret field records only that
it was set), ``logs/`` (one file per component), ``ledger/`` (the executors' execution ledgers), and
the places later parts fill: ``history.parquet``, ``observations.parquet``, ``executions.parquet``,
``verdict.json``, ``summary.md``, ``report.html``, ``junit.xml``. Run folders are readable by their
owner only (0700): a submission running under another uid cannot read them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import secrets
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

# The folder holding the ``harness`` package: the checkout when running from source, site-packages when
# installed. Only for what is about the harness's own source (building its images); a run's files go
# under ``workspace()``.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_FILE = "harness.toml"
REPORTS_VAR = "HARNESS_REPORTS"
# Configuration fields (StackConfig) and options whose value is a secret: stored as "set", never as is.
SECRET_FIELDS = frozenset({"admin_token"})
SECRET_OPTIONS = frozenset({"--admin-token"})
SET = "<set; not stored>"
OWNER_ONLY_DIR = 0o700
_VERSIONED = ("crucible-migration-harness", "celery", "kombu", "redis", "flower", "fastapi", "uvicorn", "locust", "hypothesis",
              "pandas", "testcontainers")


def _marks_workspace(folder: Path) -> bool:
    if (folder / CONFIG_FILE).is_file():
        return True
    pyproject = folder / "pyproject.toml"
    if not pyproject.is_file():
        return False
    try:
        doc = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise HarnessError(f"{pyproject}: cannot be read as TOML ({exc}); the harness looks there for a "
                           "[tool.harness] table: fix the file, or run from another folder") from None
    return isinstance(doc.get("tool"), dict) and "harness" in doc["tool"]


def workspace(start: Path | None = None) -> Path:
    """The folder holding ``reports/``, ``scenarios/``, ``fixtures/`` and ``.hypothesis/``.

    The nearest folder from ``start`` (default: the working directory) upward with a ``harness.toml``
    or a ``pyproject.toml`` with a ``[tool.harness]`` table; the working directory if there is none.
    Raises HarnessError for a ``pyproject.toml`` on the way that is not valid TOML.
    """
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if _marks_workspace(folder):
            return folder
    return here


def reports_root() -> Path:
    """Where run folders go: ``HARNESS_REPORTS``, else ``<workspace>/reports``."""
    configured = os.environ.get(REPORTS_VAR)
    return Path(configured) if configured else workspace() / "reports"


def new_run_id() -> str:
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def git_revision(where: Path | None = None) -> str | None:
    """The short git revision of the workspace (``where``), or None outside a git repository."""
    try:
        out = subprocess.run(["git", "-C", str(where or workspace()), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired, HarnessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def redact_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with every secret field's value replaced by whether it was set."""
    return {k: (SET if v else None) if k in SECRET_FIELDS else v for k, v in config.items()}


def redact_argv(argv: Sequence[str]) -> list[str]:
    """A command line with the value of every secret option replaced (``--admin-token X``, ``--admin-token=X``)."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append(SET)
            hide_next = False
        elif arg in SECRET_OPTIONS:
            out.append(arg)
            hide_next = True
        elif arg.split("=", 1)[0] in SECRET_OPTIONS and "=" in arg:
            out.append(arg.split("=", 1)[0] + "=" + SET)
        else:
            out.append(arg)
    return out


def without_secret_options(argv: Sequence[str]) -> list[str]:
    """A command line without the secret options and their values (to pass them another way)."""
    redacted = redact_argv(argv)
    out: list[str] = []
    for arg in redacted:
        if arg == SET or arg.split("=", 1)[0] in SECRET_OPTIONS:
            continue
        out.append(arg)
    return out


def owner_only_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) and make it readable by its owner only (0700)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(OWNER_ONLY_DIR)
    return path


@dataclass(frozen=True)
class RunFolder:
    path: Path
    run_id: str

    @classmethod
    def create(cls, root: Path | None = None, run_id: str | None = None) -> RunFolder:
        """A new run folder under ``root`` (default ``reports_root()``), owner-only, with ``logs/`` and ``ledger/``."""
        base = Path(root) if root is not None else reports_root()
        if base.exists() and not base.is_dir():
            raise HarnessError(f"the reports folder {base} is a file; give a folder (--reports, or {REPORTS_VAR})")
        rid = run_id or new_run_id()
        path = base / rid
        base.mkdir(parents=True, exist_ok=True)
        owner_only_dir(path)
        owner_only_dir(path / "logs")
        owner_only_dir(path / "ledger")
        return cls(path=path, run_id=rid)

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    @property
    def ledger(self) -> Path:
        return self.path / "ledger"

    def write_run_json(self, *, seed: int, launcher: str, config: dict[str, Any],
                       extra: dict[str, Any] | None = None) -> Path:
        """Write ``run.json``; secret fields of ``config`` and secret options of the command line are
        stored only as set or not."""
        doc = {
            "run_id": self.run_id, "seed": seed, "launcher": launcher, "config": redact_config(config),
            "versions": versions(), "git_revision": git_revision(), "argv": redact_argv(sys.argv),
            "started_at": dt.datetime.now(dt.UTC).isoformat(), **(extra or {}),
        }
        target = self.path / "run.json"
        target.write_text(json.dumps(doc, indent=2, default=str) + "\n")
        target.chmod(0o600)
        return target
