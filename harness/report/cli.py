"""``harness report RUN_DIR``: rebuild summary.md, report.html and junit.xml from a run folder's stored
data, without re-running anything, and print their paths.

``add_parser(subparsers)`` hooks the command into ``harness``'s parser; ``main(argv)`` runs it on
its own (``python -m harness.report.cli RUN_DIR``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from harness.arguments import folder_problem
from harness.commands import HarnessParser, parse, run_command
from harness.report import build_reports  # light: the writers are imported when it runs
from harness.run import reports_root


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``report`` to ``subparsers`` (from ``ArgumentParser.add_subparsers``) and return its parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "report", help="rebuild summary.md, report.html and junit.xml from a run folder's stored data",
        description="Rebuild summary.md, report.html and junit.xml from a run folder's stored data, without "
                    "re-running anything, and print their paths.")
    parser.add_argument("run_dir", metavar="RUN_DIR", type=resolve_run_dir,
                        help="the run folder (reports/<run-id>), or just its run id")
    parser.set_defaults(func=cmd_report)
    return parser


def resolve_run_dir(value: str) -> Path:
    """``value`` as a folder, or as a run id under the reports folder (``harness.run.reports_root``);
    raises ArgumentTypeError (a usage error, exit 3) naming it when it is neither."""
    path = Path(value)
    candidate = reports_root() / value
    if not path.exists() and "/" not in value and candidate.is_dir():
        path = candidate
    problem = folder_problem(path, "run folder")
    if problem:
        raise argparse.ArgumentTypeError(f"{problem} (and no run id {value!r} under {reports_root()})"
                                         if not path.exists() else problem)
    return path


def cmd_report(args: argparse.Namespace) -> int:
    written = build_reports(args.run_dir)
    for path in written.values():
        print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = HarnessParser(prog="harness")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parse(parser, ["report", *(sys.argv[1:] if argv is None else argv)])
    return args if isinstance(args, int) else run_command(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
