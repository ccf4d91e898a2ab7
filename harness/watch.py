"""``harness watch``: both queues side by side in the terminal, refreshed every second.

Per path: queued, in a worker's hand, completed per second and end-to-end p50/p95 over a sliding
window, errors, dead letters, unacked messages and the gateway's routed share (``harness.live``).
It watches the stack ``harness up --detach`` runs (``--name`` when several do), or a deployment:
``--stack-url`` with ``--main-redis`` and ``--celery-broker``. On a terminal it is a live table
(rich); when the output is not a terminal, ``NO_COLOR`` is set or ``--plain`` is given, it prints
one plain line per path and refresh instead. It stops after ``--duration`` or on Ctrl-C (exit 0),
and starts nothing: what it leaves behind is what it found.

Hook it into ``harness/cli.py`` with ``add_parser(sub)``; ``python -m harness.watch`` runs it alone.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import IO, Any
from urllib.parse import urlsplit

import redis as redis_lib
import requests

from harness import arguments
from harness.commands import HarnessParser, parse, run_command
from harness.live import COLUMNS, WINDOW_S, LiveError, Snapshot, Sources, cells, open_sources, read_snapshot
from harness.load.cli import parse_duration
from harness.stack import state as stacks
from harness.stack.config import StackConfig

# The terminal view leaves out what only a load run knows (the Locust tab shows them).
WATCH_COLUMNS = tuple((key, title) for key, title in COLUMNS if key not in ("oracle_disagreements", "unfinished"))
RED_WHEN_ABOVE_ZERO = ("errors", "dead_letters")


def redis_url(text: str) -> str:
    """A ``redis://``, ``rediss://`` or ``unix://`` URL."""
    if urlsplit(text).scheme not in ("redis", "rediss", "unix"):
        raise argparse.ArgumentTypeError(f"expected a redis:// URL such as redis://127.0.0.1:6379/0, got {text!r}")
    return text


def queue_names(text: str) -> tuple[str, ...]:
    """Comma-separated Celery queue names, at least one."""
    names = tuple(q.strip() for q in text.split(",") if q.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated queue names such as evaluation,batch, got {text!r}")
    return names


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``watch`` to the ``harness`` command's subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "watch", help="both queues side by side, live: queued, in hand, completed/s, p50/p95, errors, ...",
        description="Both queues side by side, refreshed every second: per path queued, in a worker's hand, "
                    "completed per second, end-to-end p50/p95, errors, dead letters, unacked and routed share.",
        epilog="exit status: 0 stopped (after --duration or Ctrl-C), 3 nothing to watch or a source unreachable")
    where = parser.add_argument_group("what to watch (default: the stack `harness up --detach` runs)")
    where.add_argument("--name", type=arguments.stack_name, help="the detached stack to watch, when several run")
    where.add_argument("--stack-url", type=arguments.http_url, metavar="URL", help="the gateway of a running deployment")
    where.add_argument("--main-redis", type=redis_url, metavar="URL", help="its main Redis (with --stack-url)")
    where.add_argument("--celery-broker", type=redis_url, metavar="URL", help="its Celery broker (with --stack-url)")
    where.add_argument("--queues", type=queue_names, metavar="Q,...",
                       default=StackConfig().celery_queues,
                       help=f"Celery queues to count (default {','.join(StackConfig().celery_queues)})")
    view = parser.add_argument_group("the view")
    view.add_argument("--interval", type=arguments.number(0.2, 60), default=1.0, metavar="S",
                      help="seconds between refreshes (default 1)")
    view.add_argument("--window", type=arguments.number(1, 3600), default=WINDOW_S, metavar="S",
                      help=f"seconds of the sliding window of rates and percentiles (default {WINDOW_S:g})")
    view.add_argument("--duration", type=parse_duration, metavar="T",
                      help="stop after this long: 30, 30s, 5m (default: until Ctrl-C)")
    view.add_argument("--plain", action="store_true",
                      help="plain lines, no colour (also when the output is not a terminal, or NO_COLOR is set)")
    parser.set_defaults(func=cmd_watch)
    return parser


def resolve(args: argparse.Namespace) -> tuple[str, str, str]:
    """(gateway, main Redis, Celery broker) to watch; ``LiveError`` says what is missing and how to give it."""
    if args.stack_url:
        missing = [flag for flag, value in (("--main-redis", args.main_redis), ("--celery-broker", args.celery_broker))
                   if not value]
        if missing:
            raise LiveError(f"--stack-url needs {' and '.join(missing)} too: the view reads the queues on both "
                            "Redis instances (for a stack of `harness up --detach`, give none of the three)")
        return args.stack_url, args.main_redis, args.celery_broker
    if args.main_redis or args.celery_broker:
        raise LiveError("--main-redis and --celery-broker go with --stack-url (a detached stack's are known)")
    running = stacks.running()
    if args.name is not None:
        if args.name not in running:
            known = ", ".join(running) or "none"
            raise LiveError(f"no stack named {args.name!r} is running (running: {known}); start it with "
                            f"`harness up --detach --name {args.name}`")
        state = running[args.name]
    elif len(running) == 1:
        state = next(iter(running.values()))
    elif not running:
        raise LiveError("no stack is running to watch: start one with `harness up --detach`, or watch a "
                        "deployment with --stack-url URL --main-redis URL --celery-broker URL")
    else:
        raise LiveError(f"{len(running)} stacks are running ({', '.join(running)}): choose one with --name")
    endpoints = state["endpoints"]
    return str(endpoints["gateway"]), str(endpoints["main_redis"]), str(endpoints["celery_redis"])


def check_reachable(src: Sources) -> None:
    """Refuse to start on a source that does not answer (later, an unreachable source is shown, not fatal)."""
    for name, client, url in (("main Redis", src.main, src.main.connection_pool.connection_kwargs),
                              ("Celery broker", src.broker, src.broker.connection_pool.connection_kwargs)):
        try:
            client.ping()
        except (redis_lib.RedisError, OSError) as exc:
            where = f"{url.get('host', '?')}:{url.get('port', '?')}"
            raise LiveError(f"the {name} at {where} does not answer ({type(exc).__name__}); is the stack running? "
                            "(`harness status`)") from exc
    try:
        requests.get(f"{src.gateway}/health", timeout=3)
    except requests.RequestException as exc:
        raise LiveError(f"the gateway at {src.gateway} does not answer ({type(exc).__name__}); is the stack "
                        "running? (`harness status`)") from exc


def plain_lines(snapshot: Snapshot) -> list[str]:
    """One line per path (and one per problem), for logs and pipes."""
    stamp = time.strftime("%H:%M:%S", time.localtime(snapshot.at))
    lines = []
    for view in snapshot.paths:
        text = cells(view)
        lines.append(f"{stamp} {view.path:<6} " + "  ".join(f"{title} {text[key]}" for key, title in WATCH_COLUMNS[1:]))
    lines += [f"{stamp} problem: {p}" for p in snapshot.problems]
    return lines


def heading(snapshot: Snapshot, gateway: str) -> str:
    split = (f"split {snapshot.celery_percentage:g} % Celery" if snapshot.celery_percentage is not None
             else "split unknown")
    dual = ", dual-write" if snapshot.dual_write else ""
    return (f"both queues · {gateway} · {split}{dual} · window {snapshot.window_s:.0f} s · "
            f"{snapshot.events} events · {time.strftime('%H:%M:%S', time.localtime(snapshot.at))}")


WIDE_TABLE = 112  # columns the one-row-per-path table needs; narrower terminals get one row per number


def rich_view(snapshot: Snapshot, gateway: str, width: int = WIDE_TABLE) -> Any:
    """The live table (a rich renderable): a row per path, or on a narrow terminal a column per path."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    texts = {view.path: cells(view) for view in snapshot.paths}

    def cell(view: Any, key: str) -> Text:
        value = getattr(view, key, None)
        hot = key in RED_WHEN_ABOVE_ZERO and isinstance(value, int) and value > 0
        return Text(texts[view.path][key], style="bold red" if hot else "")

    table = Table(box=box.SIMPLE_HEAD)
    if width >= WIDE_TABLE:
        for key, title in WATCH_COLUMNS:
            table.add_column(title, justify="left" if key == "path" else "right", no_wrap=True)
        for view in snapshot.paths:
            table.add_row(*(cell(view, key) for key, _ in WATCH_COLUMNS))
    else:
        table.add_column("")
        for view in snapshot.paths:
            table.add_column(view.path, justify="right", no_wrap=True)
        for key, title in WATCH_COLUMNS[1:]:
            table.add_row(title, *(cell(view, key) for view in snapshot.paths))
    notes = [Text(f"problem: {p}", style="red") for p in snapshot.problems]
    return Group(Text(heading(snapshot, gateway), style="bold"), table, *notes,
                 Text("Ctrl-C stops the view (the stack keeps running).", style="dim"))


def use_plain(args: argparse.Namespace, stream: IO[str]) -> bool:
    return bool(args.plain or os.environ.get("NO_COLOR") or not stream.isatty())


def watch(src: Sources, *, interval_s: float, duration_s: float | None, plain: bool, stream: IO[str],
          sleep: Callable[[float], None] = time.sleep) -> int:
    """Refresh every ``interval_s`` until ``duration_s`` has passed (or forever); returns the refreshes made."""
    deadline = None if duration_s is None else time.monotonic() + duration_s
    refreshes = 0

    def more() -> bool:
        return deadline is None or time.monotonic() < deadline

    if plain:
        while more():
            for line in plain_lines(read_snapshot(src)):
                print(line, file=stream, flush=True)
            refreshes += 1
            sleep(interval_s)
        return refreshes
    from rich.console import Console
    from rich.live import Live

    console = Console(file=stream)
    with Live(rich_view(read_snapshot(src), src.gateway, console.width), console=console, auto_refresh=False) as live:
        refreshes += 1
        while more():
            sleep(interval_s)
            live.update(rich_view(read_snapshot(src), src.gateway, console.width), refresh=True)
            refreshes += 1
    return refreshes


def cmd_watch(args: argparse.Namespace) -> int:
    gateway, main_url, broker_url = resolve(args)
    plain = use_plain(args, sys.stdout)
    with open_sources(main_url, broker_url, gateway, args.queues, window_s=args.window) as src:
        check_reachable(src)
        if not src.feed.wait_subscribed(5.0):
            raise LiveError(f"could not subscribe to the event bus on the main Redis ({main_url})")
        try:
            watch(src, interval_s=args.interval, duration_s=args.duration, plain=plain, stream=sys.stdout)
        except KeyboardInterrupt:
            print("stopped watching; the stack keeps running.", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m harness.watch ...``: the same as ``harness watch ...``."""
    parser = HarnessParser(prog="harness")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parse(parser, ["watch", *(sys.argv[1:] if argv is None else argv)])
    if isinstance(args, int):
        return args
    return run_command(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
