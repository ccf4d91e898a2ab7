"""``harness report RUN_DIR``: rebuild summary.md, report.html and junit.xml from a run folder's stored
data, without re-running anything, and print their paths.

``add_parser(subparsers)`` hooks the command into ``harness``'s parser; ``main(argv)`` runs it on
its own (``python -m harness.report.cli RUN_DIR``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.report import build_reports  # light: the writers are imported when it runs
from harness.run import DEFAULT_REPORTS
from harness.vocabulary import EXIT_USAGE


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``report`` to ``subparsers`` (from ``ArgumentParser.add_subparsers``) and return its parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "report", help="rebuild summary.md, report.html and junit.xml from a run folder's stored data",
        description="Rebuild summary.md, report.html and junit.xml from a run folder's stored data, without "
                    "re-running anything, and print their paths.")
    parser.add_argument("run_dir", metavar="RUN_DIR",
                        help="the run folder (reports/<run-id>), or just its run id")
    parser.set_defaults(func=cmd_report)
    return parser


def resolve_run_dir(value: str) -> Path:
    """``value`` as a folder, or as a run id under the reports folder (``HARNESS_REPORTS``)."""
    path = Path(value)
    if path.is_dir():
        return path
    candidate = Path(os.environ.get("HARNESS_REPORTS", DEFAULT_REPORTS)) / value
    return candidate if candidate.is_dir() else path


def cmd_report(args: argparse.Namespace) -> int:
    run_dir = resolve_run_dir(args.run_dir)
    written = build_reports(run_dir)
    for path in written.values():
        print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="harness")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["report", *(sys.argv[1:] if argv is None else argv)])
    try:
        code: int = args.func(args)
        return code
    except HarnessError as exc:
        print(f"harness: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
