"""What every ``harness`` command shares: the stack options and the way a command ends.

``add_stack_options`` turns every ``StackConfig`` field into an option (``--celery-percentage 75``,
``--acks-late``, ...), and ``stack_config`` reads them back. ``run_command`` runs a command's
function and turns a ``HarnessError`` into one line on stderr (exit 3) and Ctrl-C into exit 130.
This module imports no command, so every command module can import it.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from typing import Any

from harness.errors import HarnessError
from harness.stack.config import StackConfig
from harness.vocabulary import EXIT_INTERRUPTED, EXIT_USAGE


def add_stack_options(parser: argparse.ArgumentParser, title: str = "stack options (StackConfig)") -> None:
    group = parser.add_argument_group(title)
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


def stack_config(args: argparse.Namespace) -> StackConfig:
    names = {f.name for f in dataclasses.fields(StackConfig)}
    options: dict[str, Any] = {k: v for k, v in vars(args).items() if k in names and v is not None}
    if isinstance(options.get("candidate_defects"), str):
        options["candidate_defects"] = tuple(x for x in options["candidate_defects"].split(",") if x)
    return StackConfig.from_options(**options)


def run_command(func: Callable[[argparse.Namespace], int], args: argparse.Namespace, *,
                interrupted: str = "interrupted; the stack was stopped.") -> int:
    try:
        return func(args)
    except HarnessError as exc:
        print(f"harness: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\n" + interrupted, file=sys.stderr)
        return EXIT_INTERRUPTED
