"""`harness chaos [SCENARIO...] [--seed N] [--runs K] [--stack processes|containers]`, and
`harness chaos explore [--budget 10m] [--seed S] [--profile any|safe] [--kinds K,...] [--targets P,...]`.

Runs each scenario (a file, or a name in ``scenarios/chaos/``; default: every file there) on its
own fresh stack, prints the findings table, writes it with each scenario's history, executions and
findings into a new run folder, and exits 0 when every scenario's outcome is ``held`` or ``finding``,
1 otherwise (``failed``, ``known-failure`` or ``error``: see ``harness.vocabulary``). Every scenario file is validated before anything starts;
a broken one exits 3 with every problem named. A failing scenario prints the commands that replay
it with the same seed.

``harness chaos explore`` searches fault schedules instead (``harness.chaos.explore``): it replays every
file in ``scenarios/found/`` once, runs drawn schedules until the time budget, shrinks each failure that
breaks an invariant no earlier one broke, re-runs it with 3 new seeds, names it when a hand-written
scenario declares it a known failure, and writes it to ``scenarios/found/`` when it failed in 2 of 3.
It writes ``explore.md`` and ``explore.html`` (each discovery's first failing schedule beside its shrunk
one, on a timeline) and exits 1 when a confirmed failure was found (known or new) or a saved one still
fails, 0 when none was found within the budget (which is no proof), 3 for a usage error.

Hook it into ``harness/cli.py`` with ``add_parser(sub)``; it also runs alone:
``python -m harness.chaos.cli scenarios/chaos/celery-broker-latency.toml --seed 7``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

from harness import arguments
from harness.chaos.explore import (
    KIND_ORDER,
    PROFILES,
    ExploreError,
    Space,
    explore,
    explore_space,
    stack_runner,
)
from harness.chaos.explore_report import summary, write_report
from harness.chaos.findings import combine, findings_table, write_combined
from harness.chaos.repeat import rates
from harness.chaos.result import ScenarioResult
from harness.chaos.runner import opener_for, run_scenario
from harness.chaos.scenario import Scenario, ScenarioError, load_all, load_files
from harness.commands import HarnessParser, parse, run_command
from harness.errors import HarnessError
from harness.report import report_lines
from harness.run import RunFolder, workspace
from harness.stack.config import StackConfig
from harness.vocabulary import OUTCOMES
from system_under_test import defects


def scenarios_dir() -> Path:
    """``scenarios/chaos/`` of the workspace (``harness.run.workspace``)."""
    return workspace() / "scenarios" / "chaos"


def found_dir() -> Path:
    """``scenarios/found/`` of the workspace: failures ``harness chaos explore`` found, shrank and confirmed."""
    return workspace() / "scenarios" / "found"


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
                                "or a broken scenario file (nothing was started)", 100) + "\n\n"
                + textwrap.fill("harness chaos explore [--budget 10m] [--seed S] [--profile any|safe] [--kinds ...] [--targets ...]: "
                                "search fault schedules on fresh stacks; each failure that breaks an invariant in a new region "
                                "is named when a scenario declares it a known failure, else shrunk, confirmed (2 of 3 "
                                "re-runs) and saved in scenarios/found/ (replayed first next time); exit 1 a "
                                "confirmed new discovery, a known failure seen or a saved one that "
                                "still fails, 0 none found within the budget (no proof)", 100)))
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                        help="scenario files or names in scenarios/chaos/ (default: all of them)")
    parser.add_argument("--seed", type=arguments.seed, default=0, help="seed of the workload and the faults (default 0)")
    parser.add_argument("--runs", type=arguments.integer(1), default=1, metavar="K",
                        help="run each scenario K times, seeds N, N+1, ...; counts become rates with an interval")
    explore_group = parser.add_argument_group("explore (harness chaos explore ...)")
    explore_group.add_argument("--budget", "--max-time", dest="budget", type=arguments.duration(MAX_BUDGET_S),
                               default=None, metavar="T",
                               help="explore: time budget of the search, e.g. 10m, 600, 1h (default 10m); no new "
                                    "example starts after it, and the last discovery's confirmation runs whole")
    explore_group.add_argument("--examples", type=arguments.integer(1), default=None, metavar="N",
                               help="explore: at most N drawn schedules (default: as many as the budget allows)")
    explore_group.add_argument("--max-faults", type=arguments.integer(1, 8), default=None, metavar="K",
                               help="explore: at most K faults per schedule (default 2)")
    explore_group.add_argument("--profile", choices=sorted(PROFILES), default=None,
                               help="explore: any (every knob, every fault; the default) or safe (the knobs the "
                                    "scenario files call safe, no fault where a known failure is declared)")
    explore_group.add_argument("--kinds", type=_kinds, default=None, metavar="KIND,...",
                               help=f"explore: only these fault kinds ({', '.join(KIND_ORDER)})")
    explore_group.add_argument("--targets", type=_patterns, default=None, metavar="PATTERN,...",
                               help="explore: only targets matching these shell patterns, e.g. 'executor-3,celery-*'")
    explore_group.add_argument("--strict", action="store_true", default=None,
                               help="explore: nothing may be lost, duplicated or stuck, whatever the configuration "
                                    "allows (finds the documented weaknesses of a configuration too)")
    explore_group.add_argument("--max-discoveries", type=arguments.integer(1), default=None, metavar="N",
                               help="explore: stop after N new discoveries (default 5)")
    explore_group.add_argument("--stack-option", action="append", default=[], metavar="KEY=VALUE",
                               help="explore: a fixed [stack] setting of every schedule, e.g. "
                                    "candidate_defects=no_dead_letter (repeatable)")
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


EXPLORE_OPTIONS = ("budget", "examples", "max_faults", "profile", "kinds", "targets", "strict", "max_discoveries",
                   "stack_option")
MAX_BUDGET_S = 24 * 3600.0


def _kinds(text: str) -> frozenset[str]:
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    bad = [k for k in kinds if k not in KIND_ORDER]
    if bad or not kinds:
        raise argparse.ArgumentTypeError(f"unknown fault kind(s) {', '.join(bad) or repr(text)}; the kinds: "
                                         f"{', '.join(KIND_ORDER)}")
    return frozenset(kinds)


def _patterns(text: str) -> tuple[str, ...]:
    patterns = tuple(p.strip() for p in text.split(",") if p.strip())
    if not patterns:
        raise argparse.ArgumentTypeError(f"expected shell patterns of components or links, got {text!r}")
    return patterns


def stack_options(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` settings as a TOML-shaped ``[stack]`` table; raises ExploreError (exit 3) naming a bad one."""
    known = {f.name: f for f in dataclasses.fields(StackConfig)}
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            raise ExploreError(f"--stack-option {item!r}: expected KEY=VALUE with KEY a StackConfig field"
                               + (f" (did you mean {close[0]}?)" if close else ""))
        default = getattr(StackConfig(), key)
        value: Any = text
        if isinstance(default, bool):
            value = {"true": True, "false": False}.get(text.lower(), text)
        elif isinstance(default, tuple):
            value = [v for v in text.split(",") if v]
        elif isinstance(default, int | float):
            with contextlib.suppress(ValueError):
                value = type(default)(text)
        out[key] = value
    try:
        defects.parse(list(out.get("candidate_defects", [])))
    except ValueError as exc:
        raise ExploreError(f"--stack-option: {exc}") from None
    try:
        StackConfig.from_options(**{k: tuple(v) if isinstance(v, list) else v for k, v in out.items()})
    except HarnessError as exc:
        raise ExploreError(f"--stack-option: {exc}") from None
    return out


def cmd_explore(args: argparse.Namespace) -> int:
    if args.scenarios[1:] or args.runs != 1:
        raise ExploreError("`harness chaos explore` takes no scenario names and no --runs; run saved schedules "
                           "with `harness chaos scenarios/found/<hash>.toml`")
    space = Space(PROFILES[args.profile or "any"], args.max_faults or 2, args.kinds or frozenset(),
                  args.targets or (), strict=bool(args.strict), stack=stack_options(args.stack_option))
    known = [s for d in (scenarios_dir(), transitions_dir()) if d.is_dir() for s in load_all(d)]
    found = found_dir()
    load_files(sorted(found.glob("*.toml")) if found.is_dir() else [])  # a broken saved file: exit 3 now
    explore_space(space, known)  # nothing to draw: exit 3 now
    run = RunFolder.create(args.reports)
    budget = args.budget if args.budget is not None else 600.0
    print(f"explore: {args.stack} stack; run folder {run.path}", flush=True)
    report = explore(run=stack_runner(run, args.stack), seed=args.seed, max_time_s=budget, found_dir=found,
                     space=space, examples=args.examples, max_discoveries=args.max_discoveries or 5, known=known,
                     say=lambda m: print(m, flush=True))
    written = write_report(report, run.path)
    print()
    print(summary(report, args.seed))
    print(f"report: {written}")
    return 1 if report.failed else 0


def cmd_chaos(args: argparse.Namespace) -> int:
    if args.scenarios[:1] == ["explore"]:
        return cmd_explore(args)
    given = [f"--{o.replace('_', '-')}" for o in EXPLORE_OPTIONS if getattr(args, o) not in (None, [])]
    if given:
        raise ExploreError(f"{', '.join(given)} only go with `harness chaos explore`")
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
