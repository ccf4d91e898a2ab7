"""The ``harness`` command (also ``python -m harness``).

``harness up`` starts the whole stack in the foreground, prints its components and URLs, and stops
cleanly on Ctrl-C. ``harness run`` is the main job behind ``make run``: it starts the embedded
stack, gathers evidence, prints a verdict and the path of its report, and leaves nothing running.
Stack options map onto ``StackConfig`` fields (``--celery-percentage 75``, ``--acks-late``, ...).
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import time
from typing import Any

from harness.errors import HarnessError
from harness.run import RunFolder
from harness.stack.config import StackConfig
from harness.stack.processes import ProcessesStack

EXIT_CODES = {"PASS": 0, "FAIL": 1, "INCONCLUSIVE": 2}


def _add_stack_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("stack options (StackConfig)")
    for f in dataclasses.fields(StackConfig):
        if f.name in ("extra_env", "candidate_defects", "celery_queues"):
            continue
        flag = "--" + f.name.replace("_", "-")
        default = f.default
        if isinstance(default, bool):
            group.add_argument(flag, dest=f.name, default=None, action=argparse.BooleanOptionalAction,
                               help=f"(default {str(default).lower()})")
        else:
            kind = {int: int, float: float}.get(type(default), str)
            group.add_argument(flag, dest=f.name, default=None, type=kind, help=f"(default {default})")
    group.add_argument("--candidate-defects", dest="candidate_defects", default=None,
                       help="comma-separated Celery-path defects for the power check")


def _stack_config(args: argparse.Namespace) -> StackConfig:
    names = {f.name for f in dataclasses.fields(StackConfig)}
    options: dict[str, Any] = {k: v for k, v in vars(args).items() if k in names and v is not None}
    if isinstance(options.get("candidate_defects"), str):
        options["candidate_defects"] = tuple(x for x in options["candidate_defects"].split(",") if x)
    return StackConfig.from_options(**options)


def _print_table(stack: ProcessesStack) -> None:
    assert stack.endpoints is not None
    rows = [(r["component"], str(r["pid"]), r["url"] or "", f"{stack.startup_s.get(r['component'], 0):.2f}s")
            for r in stack.describe()]
    widths = [max(len(row[i]) for row in [("component", "pid", "url", "healthy after"), *rows]) for i in range(4)]
    header = ("component", "pid", "url", "healthy after")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    print()
    print(f"gateway docs   {stack.endpoints.gateway}/docs")
    if stack.endpoints.flower:
        print(f"Flower         {stack.endpoints.flower}")
    if stack.endpoints.proxy_api:
        print(f"fault proxy    {stack.endpoints.proxy_api}/proxies")
    print(f"run folder     {stack.run.path}")


def cmd_up(args: argparse.Namespace) -> int:
    config = _stack_config(args)
    print("starting the stack (processes launcher) ...", flush=True)
    started = time.monotonic()
    with ProcessesStack(config) as stack:
        print(f"all {len(stack.components)} components healthy in {time.monotonic() - started:.1f}s\n")
        _print_table(stack)
        print("\nCtrl-C stops everything.", flush=True)
        try:
            signal.pause() if hasattr(signal, "pause") else time.sleep(10**9)
        except KeyboardInterrupt:
            print("\nstopping ...", flush=True)
    print("stopped; nothing left running.")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from harness.smoke import FIELDS, run_smoke

    config = _stack_config(args)
    run = RunFolder.create()
    print(f"run {run.run_id}: starting the embedded stack ...", flush=True)
    with ProcessesStack(config, run) as stack:
        assert stack.endpoints is not None
        print(f"stack healthy; dual-write smoke comparison on {', '.join(FIELDS)} ...", flush=True)
        verdict, comparisons = run_smoke(stack.endpoints.gateway, run.path)
    matched = sum(c.matched for c in comparisons)
    print(f"\n{verdict}: {matched}/{len(comparisons)} dual-write evaluations matched "
          "(preliminary evidence: the full gate is not built yet)")
    for c in comparisons:
        if not c.matched:
            print(f"  mismatch  {c.name}: {', '.join(c.differing)}")
    print(f"report: {run.path / 'summary.md'}")
    return EXIT_CODES[verdict]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the whole stack in the foreground; Ctrl-C stops it")
    _add_stack_options(up)
    up.set_defaults(func=cmd_up)
    run = sub.add_parser("run", help="the main job: evidence on the embedded stack, then a verdict")
    _add_stack_options(run)
    run.set_defaults(func=cmd_run, executor_timeout_s=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except HarnessError as exc:
        print(f"harness: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("\ninterrupted; the stack was stopped.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
