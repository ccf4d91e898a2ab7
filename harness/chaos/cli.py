"""`harness chaos [SCENARIO...] [--seed N] [--runs K] [--stack processes|containers]`.

Runs each scenario (a file, or a name in ``scenarios/chaos/``; default: every file there) on its
own fresh stack, prints the findings table, writes it with each scenario's history, executions and
findings into a new run folder, and exits 0 when every scenario's outcome is ``held`` or ``finding``,
1 otherwise (``failed``, ``known-failure`` or ``error``: see ``harness.vocabulary``). Every scenario file is validated before anything starts;
a broken one exits 3 with every problem named. A failing scenario prints the commands that replay
it with the same seed.

Hook it into ``harness/cli.py`` with ``add_parser(sub)``; it also runs alone:
``python -m harness.chaos.cli scenarios/chaos/celery-broker-latency.toml --seed 7``.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

from harness import arguments
from harness.chaos.findings import combine, findings_table, write_combined
from harness.chaos.repeat import rates
from harness.chaos.result import ScenarioResult
from harness.chaos.runner import opener_for, run_scenario
from harness.chaos.scenario import Scenario, ScenarioError, load_all, load_files
from harness.commands import HarnessParser, parse, run_command
from harness.report import report_lines
from harness.run import RunFolder, workspace
from harness.vocabulary import OUTCOMES


def scenarios_dir() -> Path:
    """``scenarios/chaos/`` of the workspace (``harness.run.workspace``)."""
    return workspace() / "scenarios" / "chaos"


def transitions_dir() -> Path:
    """``scenarios/transition/`` of the workspace: the migration's moves (``pytest -m transition``)."""
    return workspace() / "scenarios" / "transition"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``chaos`` to the ``harness`` command's subparsers."""
    names = sorted(p.stem for d in (scenarios_dir(), transitions_dir()) for p in d.glob("*.toml"))
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "chaos", help="faults under a workload: run scenario files, print the findings table",
        description="Run chaos and transition scenarios, each on a fresh stack of its own, and print the findings "
                    "table; the run folder gets each scenario's history, executions, findings and the reports.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(textwrap.fill("scenarios: " + (", ".join(names) or "none found in this workspace"), 100,
                              subsequent_indent="  ", break_on_hyphens=False) + "\n\n"
                + textwrap.fill("exit status: 0 every scenario held (or a finding), 1 otherwise, 3 a usage error "
                                "or a broken scenario file (nothing was started)", 100)))
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                        help="scenario files or names in scenarios/chaos/ (default: all of them)")
    parser.add_argument("--seed", type=arguments.seed, default=0, help="seed of the workload and the faults (default 0)")
    parser.add_argument("--runs", type=arguments.integer(1), default=1, metavar="K",
                        help="run each scenario K times, seeds N, N+1, ...; counts become rates with an interval")
    parser.add_argument("--stack", choices=("processes", "containers"), default="processes",
                        help="where the system under test runs (default processes)")
    parser.add_argument("--reports", type=arguments.output_folder, default=None,
                        help="root of the run folder (default reports/ of the workspace)")
    parser.set_defaults(func=cmd_chaos)
    return parser


def resolve(names: list[str]) -> list[Scenario]:
    """Scenario files from names or paths; every file is validated before anything runs.

    Raises ScenarioError (exit 3) naming each name that is no file and no scenario, each path that is a
    folder, unreadable or not UTF-8, and every problem inside the files."""
    folder = scenarios_dir()
    if not names:
        if not folder.is_dir():
            raise ScenarioError([f"{folder}: no such folder; name scenario files, or run from the folder that "
                                 "holds scenarios/chaos/ (or has a harness.toml)"])
        return load_all(folder)
    paths, problems = [], []
    for name in names:
        path = Path(name)
        for where in (folder, transitions_dir()):
            if not path.exists() and (where / f"{name}.toml").is_file():
                path = where / f"{name}.toml"
        if not path.exists():
            known = ", ".join(p.stem for d in (folder, transitions_dir()) for p in sorted(d.glob("*.toml"))) or "none"
            problems.append(f"{name}: no such scenario file or name; scenarios in {folder} and "
                            f"{transitions_dir()}: {known}")
        elif (problem := arguments.file_problem(path)) is not None:
            problems.append(problem + ("; give the scenario files in it (for example "
                                       f"{path}/*.toml)" if path.is_dir() else ""))
        else:
            paths.append(path)
    return load_files(paths, problems)


def cmd_chaos(args: argparse.Namespace) -> int:
    scenarios = resolve(list(args.scenarios))
    opener = opener_for(args.stack)
    run = RunFolder.create(args.reports)
    print(f"{len(scenarios)} chaos scenario(s), seed {args.seed}, {args.stack} stack; run folder {run.path}",
          flush=True)
    results: list[ScenarioResult] = []
    started = time.monotonic()
    try:
        planned = len(scenarios) * args.runs
        for scenario in scenarios:
            for seed in range(args.seed, args.seed + args.runs):
                print(f"[{len(results) + 1}/{planned}, {time.monotonic() - started:.0f} s]", flush=True)
                results.append(run_scenario(
                    scenario, opener=opener, run_folder=run, seed=seed, stack_kind=args.stack,
                    log=lambda m: print(m, flush=True), folder=None if args.runs == 1 else f"{scenario.name}-seed{seed}"))
    finally:
        if results:
            written = write_combined(results, run.path)
            print()
            print(findings_table(combine(results)))
            if args.runs > 1:
                print("\nover the runs:\n" + "\n".join(f"  {r.scenario}: {r}" for r in rates(results)))
            print(f"\nfindings: {written}")
            print("\n".join(report_lines(run.path)))
    failed = [r for r in results if not r.passed]
    by_outcome = Counter(r.outcome for r in results)
    print(f"{len(results) - len(failed)} of {len(results)} scenario(s) hold every Celery invariant ("
          + ", ".join(f"{o} {by_outcome[o]}" for o in OUTCOMES if by_outcome[o])
          + f"; {time.monotonic() - started:.0f} s)")
    for r in failed:
        print()
        print(r.explain())
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """``python -m harness.chaos.cli ...``: the same as ``harness chaos ...``."""
    parser = HarnessParser(prog="harness")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = parse(parser, ["chaos", *(argv if argv is not None else sys.argv[1:])])
    if isinstance(args, int):
        return args
    return run_command(args.func, args,
                       interrupted="interrupted; every fault was healed and the stack was stopped.")


if __name__ == "__main__":
    sys.exit(main())
