"""What every ``harness`` command shares: its parser, the stack options and the way a command ends.

``HarnessParser`` is the parser of every command and subcommand: options are never abbreviated
(``--celery-percentag`` is an unknown option, not ``--celery-percentage``), and a usage error
(an unknown option, a missing one, a value out of range, a file that cannot be read) prints the usage
line and the problem, and exits 3 (``EXIT_USAGE``), before anything starts. ``add_stack_options``
turns every ``StackConfig`` field into an option with its range (``--celery-percentage 75``,
``--acks-late``, ...), and ``stack_config`` reads them back. ``run_command`` runs a command's
function and turns a ``HarnessError`` into one line on stderr (exit 3) and Ctrl-C into exit 130.
This module imports no command, so every command module can import it.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn, get_args

from harness import arguments as a
from harness.errors import HarnessError
from harness.stack.cleanup import Terminated
from harness.stack.config import MaxmemoryPolicy, Routing, StackConfig
from harness.vocabulary import EXIT_INTERRUPTED, EXIT_USAGE, FALLBACK_MODES


class HarnessParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` without abbreviations, whose usage errors exit 3 (subparsers too)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n(`{self.prog} --help` lists every option)\n")

    def add_subparsers(self, **kwargs: Any) -> Any:
        kwargs.setdefault("parser_class", _HarnessSubParser)
        return super().add_subparsers(**kwargs)


class _HarnessSubParser(HarnessParser):
    """A command's parser refuses an unknown option itself, with the command's usage line (argparse
    would hand it back to ``harness``, whose usage line does not show the command's options)."""

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            hints = []
            for extra in extras:
                close = difflib.get_close_matches(extra.split("=", 1)[0], self._option_string_actions, n=1)
                if extra.startswith("--") and close:
                    hints.append(f"{extra}: did you mean {close[0]}?")
            self.error(f"unrecognized arguments: {' '.join(extras)}" + "".join(f"\n  {h}" for h in hints))
        return parsed, extras


_POLICIES = get_args(MaxmemoryPolicy)
# The range of every numeric StackConfig field, as the system under test accepts it (its env_int /
# env_float minima), so a value is refused here rather than by a component that then fails to start.
STACK_OPTION_TYPES: Mapping[str, Callable[[str], Any]] = {
    "celery_percentage": a.percentage,
    "routing": a.choice(get_args(Routing)),
    "admin_token": a.non_empty,
    "visibility_timeout_s": a.number(1),
    "prefetch_multiplier": a.integer(0),
    "restore_interval_s": a.number(0.1),
    "restore_throttle": a.integer(1),
    "max_retries": a.integer(0),
    "retry_backoff_s": a.number(0),
    "task_time_limit_s": a.number(1),
    "task_soft_time_limit_s": a.number(1),
    "celery_redis_maxmemory": a.memory,
    "celery_redis_policy": a.choice(_POLICIES),
    "main_redis_maxmemory": a.memory,
    "main_redis_policy": a.choice(_POLICIES),
    "executor_timeout_s": a.number(0.01),
    "executor_memory_mb": a.integer(16),
    "executor_output_bytes": a.integer(0),
    "executor_concurrency": a.integer(1, 64),
    "executor_max_procs": a.integer(1),
    "celery_executor": a.choice(("executor-1", "executor-2", "executor-3")),
    "fallback": a.choice(FALLBACK_MODES),
    "celery_topology": a.choice(("single", "plan")),
    "legacy_workers": a.integer(0),
    "celery_workers": a.integer(1),
    "celery_concurrency": a.integer(1),
    "gateway_port": a.port,
    "flower_port": a.port,
    "seed": a.seed,
    "ready_timeout_s": a.number(above=0),
}
_NOT_OPTIONS = ("extra_env", "candidate_defects", "celery_queues")
# The gateway's admin token, given without putting it on a command line (which other processes can read).
ADMIN_TOKEN_VAR = "HARNESS_ADMIN_TOKEN"


# The stack options in the help, grouped as a user thinks of them (a field not listed goes to "other").
OPTION_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("the gateway: split and migration phase", ("celery_enabled", "celery_percentage", "routing", "dual_write",
                                                "fallback", "accept_legacy", "admin_token", "gateway_port")),
    ("Celery delivery", ("acks_late", "reject_on_worker_lost", "visibility_timeout_s", "prefetch_multiplier",
                         "restore_interval_s", "restore_throttle", "max_retries", "retry_backoff_s",
                         "task_time_limit_s", "task_soft_time_limit_s")),
    ("workers", ("legacy_workers", "celery_workers", "celery_concurrency", "celery_topology", "celery_executor")),
    ("Redis", ("celery_redis_maxmemory", "celery_redis_policy", "main_redis_maxmemory", "main_redis_policy")),
    ("executors", ("executor_timeout_s", "executor_memory_mb", "executor_output_bytes", "executor_concurrency",
                   "executor_max_procs")),
)


def add_stack_options(parser: argparse.ArgumentParser, title: str = "stack options (StackConfig)") -> None:
    groups = {}
    for label, names in OPTION_GROUPS:
        group = parser.add_argument_group(f"{title}: {label}")
        groups.update(dict.fromkeys(names, group))
    other = parser.add_argument_group(f"{title}: other")
    for f in dataclasses.fields(StackConfig):
        if f.name in _NOT_OPTIONS:
            continue
        group = groups.get(f.name, other)
        flag = "--" + f.name.replace("_", "-")
        default = f.default
        if isinstance(default, bool):
            group.add_argument(flag, dest=f.name, default=None, action=argparse.BooleanOptionalAction,
                               help=f"(default {str(default).lower()})")
        elif f.name == "admin_token":
            group.add_argument(flag, dest=f.name, default=os.environ.get(ADMIN_TOKEN_VAR) or None,
                               type=STACK_OPTION_TYPES[f.name], metavar="TOKEN",
                               help=f"the gateway's admin token (default: {ADMIN_TOKEN_VAR}, else a random one per "
                                    "stack: set one to call the admin endpoint yourself); "
                                    "prefer the variable: a command line is visible to other processes")
        else:
            group.add_argument(flag, dest=f.name, default=None, type=STACK_OPTION_TYPES[f.name],
                               metavar=f.name.upper(), help=f"(default {default})")
    from system_under_test.defects import BEHAVIOUR, DEFECTS

    other.add_argument("--candidate-defects", dest="candidate_defects", default=None, metavar="DEFECT,...",
                       type=a.csv_of(sorted([*DEFECTS, *BEHAVIOUR])),
                       help="comma-separated Celery-path defects for the power check")


def stack_config(args: argparse.Namespace) -> StackConfig:
    """The StackConfig the options give; raises StackError (exit 3) for values that contradict each other."""
    names = {f.name for f in dataclasses.fields(StackConfig)}
    options: dict[str, Any] = {k: v for k, v in vars(args).items() if k in names and v is not None}
    if isinstance(options.get("candidate_defects"), str | list):
        given = options["candidate_defects"]
        options["candidate_defects"] = tuple(x for x in (given.split(",") if isinstance(given, str) else given) if x)
    return StackConfig.from_options(**options)


def parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace | int:
    """``parser.parse_args(argv)``, or the exit status when parsing ends the command (a usage error: 3;
    ``--help``: 0), so ``main(argv)`` functions return their status instead of raising SystemExit."""
    try:
        return parser.parse_args(list(argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE


def run_command(func: Callable[[argparse.Namespace], int], args: argparse.Namespace, *,
                interrupted: str = "interrupted; the stack was stopped.") -> int:
    try:
        return func(args)
    except HarnessError as exc:
        print(f"harness: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (cleanup.Terminated)
        print("\n" + interrupted, file=sys.stderr)
        return exc.exit_code if isinstance(exc, Terminated) else EXIT_INTERRUPTED
