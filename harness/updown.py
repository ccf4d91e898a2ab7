"""``harness up``, ``harness status`` and ``harness down``: stacks you start by hand, several at once, by name.

``harness up [--name NAME]`` starts the whole stack in the foreground, prints its components and URLs,
and stops cleanly on Ctrl-C; ``--detach`` leaves it running in the background (a child ``harness up``
in its own session, whose output goes to the state folder's ``NAME.log``) and returns once it is
healthy. ``harness status [--name NAME]`` shows every running stack (or one) with each component's
health; ``harness down --name NAME`` or ``--all`` stops them (with one stack running, ``harness down``
alone stops it). Where the state lives and what it holds: ``harness.stack.state``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
from typing import Any

import requests

from harness import arguments
from harness.commands import ADMIN_TOKEN_VAR, add_stack_options, stack_config
from harness.errors import HarnessError
from harness.run import without_secret_options
from harness.stack import state as stacks
from harness.stack.processes import ProcessesStack
from harness.vocabulary import EXIT_USAGE

DETACH_TIMEOUT_S = 120.0


def _print_table(stack: ProcessesStack) -> None:
    assert stack.endpoints is not None
    header = ("component", "pid", "url", "healthy after")
    rows = [(r["component"], str(r["pid"]), r["url"] or "", f"{stack.startup_s.get(r['component'], 0):.2f}s")
            for r in stack.describe()]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    for row in (header, *rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    print()
    print(f"gateway docs   {stack.endpoints.gateway}/docs")
    if stack.endpoints.flower:
        print(f"Flower         {stack.endpoints.flower}")
    if stack.endpoints.proxy_api:
        print(f"fault proxy    {stack.endpoints.proxy_api}/proxies")
    print(f"run folder     {stack.run.path}")


def _refuse_if_running(name: str) -> None:
    if stacks.read(name) is not None:
        raise HarnessError(f"a stack named {name!r} is already running (`harness status --name {name}` shows it); "
                           f"stop it with `harness down --name {name}`, or start another with --name OTHER")


def cmd_up(args: argparse.Namespace) -> int:
    config = stack_config(args)  # every value checked before anything starts
    _refuse_if_running(args.name)
    if args.detach:
        return _detach(args)
    print(f"starting the stack {args.name!r} (processes launcher) ...", flush=True)
    started = time.monotonic()

    def progress(component: str, seconds: float) -> None:
        print(f"  healthy  {component:<18} {seconds:5.2f}s", flush=True)

    with ProcessesStack(config, on_progress=progress) as stack:
        print(f"all {len(stack.components)} components healthy in {time.monotonic() - started:.1f}s\n")
        _print_table(stack)
        assert stack.endpoints is not None
        stacks.write(stacks.StackState(
            name=args.name, pid=os.getpid(), run_dir=str(stack.run.path), launcher=stack.kind,
            endpoints=dataclasses.asdict(stack.endpoints), components=stack.describe()))
        print("\nCtrl-C stops everything." if not args.detached_child else
              f"\nrunning detached; `harness down --name {args.name}` stops it.", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("\nstopping ...", flush=True)
        finally:
            stacks.remove(args.name)
    print("stopped; nothing left running.", flush=True)
    return 0


def _detach(args: argparse.Namespace) -> int:
    # A secret goes to the child in its environment (readable by its owner only), not on its command line.
    argv = [a for a in without_secret_options(args.argv) if a != "--detach"] + ["--detached-child"]
    env = {**os.environ, **({ADMIN_TOKEN_VAR: args.admin_token} if args.admin_token else {})}
    stacks.prepare()
    log = stacks.log_file(args.name)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        child = subprocess.Popen([sys.executable, "-m", "harness", *argv], stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True, env=env)
    deadline = time.monotonic() + DETACH_TIMEOUT_S
    while time.monotonic() < deadline:
        if child.poll() is not None:
            print(f"harness: the detached stack {args.name!r} failed to start (exit {child.returncode}):\n"
                  + log.read_text()[-3000:], file=sys.stderr)
            return EXIT_USAGE
        if stacks.read(args.name) is not None:
            print(log.read_text().replace("running detached", "detached").rstrip())
            return 0
        time.sleep(0.1)
    os.killpg(child.pid, signal.SIGTERM)
    print(f"harness: the detached stack {args.name!r} did not become healthy in {DETACH_TIMEOUT_S:.0f} s; "
          f"see {log}", file=sys.stderr)
    return EXIT_USAGE


def _stop(state: stacks.StackState) -> None:
    pid = int(state["pid"])
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and stacks.pid_alive(pid):
        time.sleep(0.1)
    if stacks.pid_alive(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    stacks.remove(state["name"])


def cmd_down(args: argparse.Namespace) -> int:
    running = stacks.running()
    if args.all or (args.name is None and len(running) <= 1):
        chosen = list(running.values())
    elif args.name is None:
        raise HarnessError(f"{len(running)} stacks are running ({', '.join(running)}): name one with --name NAME, "
                           "or stop them all with --all")
    elif args.name in running:
        chosen = [running[args.name]]
    else:
        known = f"; running: {', '.join(running)}" if running else ""
        print(f"no stack named {args.name!r} is running{known}.")
        return 0
    for state in chosen:
        _stop(state)
    from harness.stack.process import reap_orphans

    reaped = reap_orphans()  # what a stack's SIGKILLed owner left behind
    if not chosen:
        print("no detached stack is running" + (f"; killed {len(reaped)} process(es) a killed harness left behind."
                                                 if reaped else "."))
        return 0
    for state in chosen:
        print(f"stopped the detached stack {state['name']!r} (run folder {state['run_dir']}).")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    running = stacks.running()
    if args.name is not None:
        running = {k: v for k, v in running.items() if k == args.name}
    if not running:
        which = f"named {args.name!r} " if args.name else ""
        print(f"no stack {which}is running. Start one with `harness up --detach"
              f"{' --name ' + args.name if args.name else ''}`.")
        return 1
    all_healthy = True
    for name, state in running.items():
        print(f"stack {name!r}, harness pid {state['pid']}, run folder {state['run_dir']}")
        healthy = 0
        for row in state["components"]:
            ok = stacks.pid_alive(row.get("pid")) and _url_ok(row.get("url"))
            healthy += ok
            print(f"  {row['component']:<18} pid {row['pid']!s:<8} {'healthy' if ok else 'DOWN':<8} "
                  f"{row.get('url') or ''}".rstrip())
        print(f"{healthy}/{len(state['components'])} components healthy; gateway {state['endpoints']['gateway']}")
        all_healthy &= healthy == len(state["components"])
    return 0 if all_healthy else 1


def _url_ok(url: str | None) -> bool:
    if not url or not url.startswith("http"):
        return True  # no HTTP health endpoint (Redis, workers): a live process is the best we know
    for path in ("/health", "/healthcheck", "/version"):  # executors and gateway, Flower, fault proxy
        with contextlib.suppress(requests.RequestException):
            if requests.get(url + path, timeout=1).status_code == 200:
                return True
    return False


def add_parsers(sub: Any) -> None:
    """Register ``up``, ``down`` and ``status`` on ``harness``'s subparsers."""
    up = sub.add_parser("up", help="start the whole stack in the foreground (Ctrl-C stops it), or --detach",
                        usage="%(prog)s [--detach] [--name NAME] [stack options]",
                        description=__doc__.split("\n\n")[0] if __doc__ else None)
    up.add_argument("--detach", action="store_true", help="leave it running; `harness down` stops it")
    up.add_argument("--name", type=arguments.stack_name, default=stacks.DEFAULT_NAME,
                    help=f"the stack's name, so several can run at once (default {stacks.DEFAULT_NAME})")
    up.add_argument("--detached-child", action="store_true", help=argparse.SUPPRESS)
    add_stack_options(up)
    up.set_defaults(func=cmd_up)
    down = sub.add_parser("down", help="stop a stack `harness up` started (by --name, or --all)")
    which = down.add_mutually_exclusive_group()
    which.add_argument("--name", type=arguments.stack_name, help="the stack to stop (default: the only one running)")
    which.add_argument("--all", action="store_true", help="stop every running stack")
    down.set_defaults(func=cmd_down)
    status = sub.add_parser("status", help="show the running stacks' components and their health")
    status.add_argument("--name", type=arguments.stack_name, help="only this stack (default: every running one)")
    status.set_defaults(func=cmd_status)
