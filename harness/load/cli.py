"""``harness load``: Locust against the embedded stack (or ``--stack-url``), with the web UI or headless.

- ``harness load --web``: starts the stack and the Locust web UI on 127.0.0.1 with the gateway
  filled in as the host, prints the URL; Ctrl-C stops Locust and the stack. The requests made from
  the UI are written to the run folder when it stops.
- ``harness load --headless --users N --spawn-rate R --duration T [--shape step]``: a bounded run
  that stops by itself and writes ``load_requests.parquet``, ``load_stats.parquet``, ``load.json``
  and Locust's CSV/HTML (``load/``) into the run folder, then prints a table per path.
- distributed: ``--processes N`` (one master, N local workers); ``--master --expect-workers N`` with
  ``harness load --worker --master-host H`` on other machines; ``--collect DIR`` rebuilds the parquet
  files after copying the workers' ``load/rows/*.jsonl`` into ``DIR/load/rows/``.

Hook it into ``harness/cli.py`` with ``add_parser(sub)``; ``python -m harness.load.cli`` runs it alone.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import requests

from harness import arguments
from harness.commands import HarnessParser, add_stack_options, parse, run_command, stack_config
from harness.gate.stats import percentiles
from harness.load.config import (
    MAX_DURATION_S,
    MAX_PROCESSES,
    MAX_USERS,
    MODES,
    ROUTES,
    SHAPES,
    LoadError,
    LoadOptions,
)
from harness.load.frames import LoadSummary
from harness.load.runner import (
    LocustProcess,
    collect,
    load_dir,
    locust_command,
    locust_env,
    rows_dir,
    run_locust,
    worker_command,
    write_load_json,
)
from harness.load.webui import TAB as LIVE_TAB
from harness.load.webui import live_env
from harness.report import report_lines
from harness.run import RunFolder
from harness.stack.opening import open_stack

DEFAULT_WEB_PORT = 8089
DEFAULT_MASTER_PORT = 5557
USAGE = ("%(prog)s (--web | --headless --users N --spawn-rate R --duration T | --worker --master-host H | "
         "--collect RUN_DIR) [options] [stack options]")
parse_duration = arguments.duration(MAX_DURATION_S)  # ``90``, ``90s``, ``5m``, ``1h30m`` → seconds


def processes(text: str) -> int:
    """Local Locust workers: -1 (one per core) or 1..``MAX_PROCESSES``."""
    value = arguments.integer(-1, MAX_PROCESSES)(text)
    if value == 0:
        raise argparse.ArgumentTypeError("expected -1 (one per core) or 1.." + str(MAX_PROCESSES) + ", got 0")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    """Every option of ``harness load`` (and the stack options, from ``harness.cli``)."""
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--web", action="store_true", help="the Locust web UI on 127.0.0.1; Ctrl-C stops everything")
    mode.add_argument("--headless", action="store_true", help="a bounded run without UI; writes the parquet files")
    mode.add_argument("--worker", action="store_true",
                      help="a Locust worker for a master on another machine (--master-host); no stack")
    mode.add_argument("--collect", metavar="RUN_DIR", type=arguments.run_folder,
                      help="rebuild load_requests/load_stats.parquet from RUN_DIR/load/rows/*.jsonl")
    parser.add_argument("--stack-url", type=arguments.http_url, help="gateway URL of a running deployment instead of the embedded stack")
    run = parser.add_argument_group("the load")
    run.add_argument("--users", type=arguments.integer(1, MAX_USERS),
                     help="peak number of users, >= 1 (required with --headless)")
    run.add_argument("--spawn-rate", type=arguments.number(above=0),
                     help="users started per second, > 0 (required with --headless)")
    run.add_argument("--duration", type=parse_duration,
                     help="run time: 30, 30s, 5m, 1h30m (required with --headless; the UI's run time with --web)")
    run.add_argument("--shape", choices=SHAPES, help="a load shape: step = --steps equal steps up to --users")
    run.add_argument("--steps", type=arguments.integer(1, 100), default=5,
                     help="steps of the step shape, 1..100 (default 5)")
    run.add_argument("--route", choices=ROUTES, help="force every evaluation onto a path (default: the gateway's split)")
    run.add_argument("--mode", choices=MODES, default="follow",
                     help="follow each evaluation to its end (default), or submit only (the gateway alone)")
    run.add_argument("--think-time", type=arguments.number(0, 600), default=1.0, help="mean seconds between a user's evaluations (default 1)")
    run.add_argument("--e2e-timeout", type=arguments.number(1, 3600), default=120.0,
                     help="seconds before an evaluation counts as stuck (default 120)")
    run.add_argument("--batch-size", type=arguments.integer(1, 100), default=8, help="largest batch of a batch user (default 8)")
    run.add_argument("--stop-timeout", type=arguments.number(0, 600), default=30.0,
                     help="seconds users get to finish the evaluation in hand at the end (default 30)")
    run.add_argument("--web-port", type=arguments.listen_port, help=f"web UI port (default {DEFAULT_WEB_PORT}, or a free one if taken)")
    dist = parser.add_argument_group("distributed mode")
    dist.add_argument("--processes", type=processes,
                      help="one Locust master and N local worker processes (-1: one per core)")
    dist.add_argument("--master", action="store_true", help="be a master that waits for --expect-workers workers")
    dist.add_argument("--expect-workers", type=arguments.integer(1), default=1, help="workers the master waits for (default 1)")
    dist.add_argument("--expect-workers-max-wait", type=arguments.number(above=0), default=120.0,
                      help="seconds the headless master waits for them (default 120)")
    dist.add_argument("--master-bind-host", default="127.0.0.1",
                      help="interface the master listens on (default 127.0.0.1; 0.0.0.0 for other machines)")
    dist.add_argument("--master-bind-port", type=arguments.listen_port, default=DEFAULT_MASTER_PORT,
                      help=f"port the master listens on (default {DEFAULT_MASTER_PORT})")
    dist.add_argument("--master-host", help="where the master runs (with --worker)")
    dist.add_argument("--master-port", type=arguments.listen_port, default=DEFAULT_MASTER_PORT,
                      help=f"the master's port (with --worker; default {DEFAULT_MASTER_PORT})")
    add_stack_options(parser, "stack options (StackConfig; the embedded stack only)")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``harness load`` on ``harness``'s subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "load", help="Locust through the gateway: --web, or --headless into the run folder",
        description=__doc__.split("\n\n")[0] if __doc__ else None, usage=USAGE,
        epilog="exit status: 0 no failures, 1 failures, 3 a usage error or a run that could not happen")
    configure(parser)
    parser.set_defaults(func=cmd_load)
    return parser


# -- commands ----------------------------------------------------------------------------------------------


def cmd_load(args: argparse.Namespace) -> int:
    if args.collect is not None:
        return _cmd_collect(args.collect)
    if args.worker:
        return _cmd_worker(args)
    if args.master and args.processes is not None:
        raise LoadError("--master (workers on other machines) and --processes (local workers) exclude each other; "
                        "start local workers with `harness load --worker --master-host 127.0.0.1` instead")
    if args.headless:
        missing = [flag for flag, value in (("--users", args.users), ("--spawn-rate", args.spawn_rate),
                                            ("--duration", args.duration)) if value is None]
        if missing:
            raise LoadError(f"--headless needs {', '.join(missing)}: a headless run must be bounded "
                            "(for example --users 20 --spawn-rate 5 --duration 2m)")
    options = _options(args)
    config = stack_config(args)
    options = LoadOptions(**{**options.as_dict(), "seed": config.seed})
    run = RunFolder.create()
    where = f"the deployment at {args.stack_url}" if args.stack_url else "the embedded stack (processes launcher)"
    print(f"run {run.run_id}: starting {where} ...", flush=True)
    with open_stack("external" if args.stack_url else "processes", config, run, url=args.stack_url) as stack, \
            _sigterm_as_interrupt():
        gateway = stack.endpoints.gateway
        if args.headless:
            return _headless(args, options, run, gateway)
        return _web(args, options, run, stack)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C (Locust first, then the stack), whatever launcher is in use."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _options(args: argparse.Namespace) -> LoadOptions:
    return LoadOptions(
        users=args.users if args.users is not None else 10,
        spawn_rate=args.spawn_rate if args.spawn_rate is not None else 2.0,
        duration_s=args.duration if args.duration is not None else 600.0,
        shape=args.shape, steps=args.steps, route=args.route, mode=args.mode, think_time_s=args.think_time,
        e2e_timeout_s=args.e2e_timeout, batch_size=args.batch_size, stop_timeout_s=args.stop_timeout,
        processes=args.processes)


def _master(args: argparse.Namespace) -> dict[str, Any] | None:
    if not args.master:
        return None
    return {"bind_host": args.master_bind_host, "bind_port": args.master_bind_port,
            "expect_workers": args.expect_workers, "max_wait_s": args.expect_workers_max_wait}


def _headless(args: argparse.Namespace, options: LoadOptions, run: RunFolder, gateway: str) -> int:
    shape = f"step shape ({options.steps} steps)" if options.shape == "step" else "constant"
    route = f"route forced to {options.route}" if options.route else "the gateway's split decides the path"
    print(f"load: {options.users} users at {options.spawn_rate:g}/s for {options.duration_s:g} s, {shape}, {route}, "
          f"mode {options.mode}; gateway {gateway}", flush=True)
    if args.master:
        print(f"master on {args.master_bind_host}:{args.master_bind_port}, waiting up to "
              f"{args.expect_workers_max_wait:g} s for {args.expect_workers} worker(s): start each with\n"
              f"  harness load --worker --master-host <this host> --master-port {args.master_bind_port}"
              f"{' --mode submit' if options.mode == 'submit' else ''}", flush=True)
    try:
        code = run_locust(gateway, run, options, echo=sys.stdout, master=_master(args))
        if args.master and not any(rows_dir(run).glob("*.jsonl")):
            print(f"\nLocust's statistics for the whole run: {load_dir(run)} (locust_stats.csv, locust.html).\n"
                  f"The per-request rows are on the workers: copy each worker's load/rows/*.jsonl into "
                  f"{rows_dir(run)}/ and run\n  harness load --collect {run.path}")
            return 0 if code == 0 else 1
        summary = collect(run, locust_exit_code=code)
    except KeyboardInterrupt:
        print("\ninterrupted: Locust stopped; the rows so far:", file=sys.stderr)
        with contextlib.suppress(LoadError):
            print(format_summary(collect(run)))
        raise
    print()
    print(format_summary(summary))
    _print_files(run.path)
    verdict = "no failures" if summary.failures == 0 else f"{summary.failures} failures"
    print("\n".join(report_lines(run.path)))
    print(f"\n{verdict}; run folder {run.path}")
    return 0 if summary.failures == 0 else 1


def _web(args: argparse.Namespace, options: LoadOptions, run: RunFolder, stack: Any) -> int:
    gateway = stack.endpoints.gateway
    port = args.web_port or (DEFAULT_WEB_PORT if _port_free(DEFAULT_WEB_PORT) else _free_port())
    rows = rows_dir(run)
    rows.mkdir(parents=True, exist_ok=True)
    argv = locust_command(gateway, load_dir(run), options, headless=False, web_port=port, master=_master(args),
                          run_time=args.duration is not None)
    write_load_json(run, {"gateway": gateway, "web": True, "options": options.as_dict(), "command": argv})
    url = f"http://127.0.0.1:{port}"
    code: int | None = None
    env = {**locust_env(options, rows), **live_env(stack.endpoints.main_redis, stack.endpoints.celery_redis,
                                                   stack.config.celery_queues)}  # the "Both queues" tab
    with LocustProcess(argv, env, load_dir(run) / "locust.log", echo=sys.stdout) as proc:
        _wait_for_ui(proc, url)
        print(f"\nLocust web UI   {url}   (host filled in: {gateway})")
        print(f"both queues     {url}/?tab={LIVE_TAB}   (live, once a test runs)")
        print(f"gateway docs    {gateway}/docs")
        if getattr(stack.endpoints, "flower", None):
            print(f"Flower          {stack.endpoints.flower}")
        if args.master:
            print(f"master          {args.master_bind_host}:{args.master_bind_port}: start workers with "
                  f"`harness load --worker --master-host <this host> --master-port {args.master_bind_port}`")
        print(f"run folder      {run.path}")
        print("\nPress Start in the UI. Ctrl-C stops Locust and the stack.", flush=True)
        try:
            while (code := proc.poll()) is None:
                time.sleep(0.5)
            print(f"Locust exited (code {code}).")
        except KeyboardInterrupt:
            print("\nstopping Locust ...", flush=True)
    if args.master and not any(rows.glob("*.jsonl")):
        print(f"Locust's statistics: {load_dir(run)}. The per-request rows are on the workers: copy each worker's "
              f"load/rows/*.jsonl into {rows}/ and run\n  harness load --collect {run.path}")
        return 0
    try:
        summary = collect(run, locust_exit_code=code)
    except LoadError:
        print("no request was made from the UI; nothing to write.")
        return 0
    print(format_summary(summary))
    _print_files(run.path)
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    if not args.master_host:
        raise LoadError("--worker needs --master-host (the machine running `harness load --master`)")
    run = RunFolder.create()
    rows = rows_dir(run)
    rows.mkdir(parents=True, exist_ok=True)
    options_env = locust_env(None, rows)
    options_env["LOAD_MODE"] = args.mode  # the master's users must exist here: same --mode on both sides
    argv = worker_command(args.master_host, args.master_port, processes=args.processes)
    print(f"worker: connecting to {args.master_host}:{args.master_port}; rows into {rows}", flush=True)
    with _sigterm_as_interrupt(), LocustProcess(argv, options_env, load_dir(run) / "locust.log",
                                                echo=sys.stdout) as proc:
        try:
            while (code := proc.poll()) is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            print("\nstopping the worker ...", flush=True)
            code = None
    try:
        summary = collect(run, locust_exit_code=code)
    except LoadError:
        print("this worker made no request.")
        return 0
    print(format_summary(summary))
    print(f"\nthis worker's rows: {rows}/*.jsonl; copy them into the master's run folder (load/rows/) and run "
          "`harness load --collect <that run folder>` for the whole run's parquet files")
    return 0


def _cmd_collect(folder: Path) -> int:
    if not folder.is_dir():
        raise LoadError(f"--collect {folder}: not a folder; give a run folder holding load/rows/*.jsonl")
    summary = collect(folder)
    print(format_summary(summary))
    _print_files(folder)
    print("\n".join(report_lines(folder)))
    return 0 if summary.failures == 0 else 1


# -- helpers ---------------------------------------------------------------------------------------------------


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    from harness.stack.ports import free_port

    return free_port()


def _wait_for_ui(proc: LocustProcess, url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LoadError(f"Locust exited with code {proc.poll()} before its web UI came up:\n{proc.tail()}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise LoadError(f"the Locust web UI did not answer at {url} within {timeout_s:.0f} s:\n{proc.tail()}")


def format_summary(summary: LoadSummary) -> str:
    """A table per request kind (exact percentiles of the successful requests) and the routing split."""
    header = f"{'':<12} {'requests':>9} {'failures':>9} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9} {'per s':>7}"
    lines = [header]
    span = summary.span_s or float("nan")

    def row(label: str, n: int, failures: int, samples: tuple[float, ...]) -> str:
        p = percentiles(samples) if samples else None
        p50, p95, p99 = (p.p50, p.p95, p.p99) if p else (float("nan"),) * 3
        return (f"{label:<12} {n:>9} {failures:>9} {p50:>9.1f} {p95:>9.1f} {p99:>9.1f} "
                f"{len(samples) / span:>7.1f}")

    if summary.submits:
        lines.append(row("POST submit", summary.submits, summary.submit_failures, summary.submit_ms))
    for path in sorted(summary.evaluations):
        lines.append(row(f"E2E {path}", summary.evaluations[path], summary.errors.get(path, 0),
                         summary.e2e_ms.get(path, ())))
    routed = summary.routed
    total = sum(routed.values())
    if total:
        share = 100.0 * routed.get("celery", 0) / total
        lines.append(f"\nrouted by the gateway: {', '.join(f'{k} {v}' for k, v in sorted(routed.items()))} "
                     f"({share:.0f} % celery) over {summary.span_s:.1f} s")
    if summary.unfinished:
        lines.append("still in flight when the run stopped (not counted above): " + ", ".join(
            f"{p} {n} ({summary.unfinished_batch.get(p, 0)} batch)" for p, n in sorted(summary.unfinished.items())))
    if summary.evaluations:
        lines.append(f"results disagreeing with the program's oracle: {summary.oracle_mismatches}")
    for message, count in sorted(summary.failure_messages.items(), key=lambda kv: -kv[1])[:5]:
        lines.append(f"failure ×{count}: {message}")
    return "\n".join(lines)


def _print_files(base: Path) -> None:
    print(f"\nrequests   {base / 'load_requests.parquet'}")
    print(f"per second {base / 'load_stats.parquet'}")
    html = load_dir(base) / "locust.html"
    if html.exists():
        print(f"Locust     {html}")


def build_parser() -> argparse.ArgumentParser:
    parser = HarnessParser(prog="harness load", description=__doc__.split("\n\n")[0] if __doc__ else None,
                           usage=USAGE)
    configure(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parse(build_parser(), sys.argv[1:] if argv is None else argv)
    if isinstance(args, int):
        return args
    return run_command(cmd_load, args, interrupted="interrupted; Locust and the stack were stopped.")


if __name__ == "__main__":
    sys.exit(main())
