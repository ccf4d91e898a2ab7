"""The ``harness`` command (also ``python -m harness``).

``harness up`` starts the whole stack in the foreground, prints its components and URLs, and stops
cleanly on Ctrl-C. ``harness run`` is the main job behind ``make run``: the gate for 50 % → 75 %
(``harness gate``) on the embedded stack: it gathers parity, load and chaos evidence, prints the
verdict and the path of its report, and leaves nothing running.
Stack options map onto ``StackConfig`` fields (``--celery-percentage 75``, ``--acks-late``, ...).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from harness.commands import add_stack_options, run_command, stack_config
from harness.run import DEFAULT_REPORTS, RunFolder
from harness.stack.opening import open_stack
from harness.stack.processes import ProcessesStack
from harness.vocabulary import EXIT_USAGE, VERDICT_EXIT_CODES, Verdict

STATE_FILE = Path(os.environ.get("HARNESS_STATE", DEFAULT_REPORTS / ".stack.json"))


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
    config = stack_config(args)
    if args.detach:
        return _detach(args)
    if STATE_FILE.exists() and _state_pid_alive():
        print("harness: a detached stack is already running (see `harness status`); "
              "stop it with `harness down` first", file=sys.stderr)
        return EXIT_USAGE
    print("starting the stack (processes launcher) ...", flush=True)
    started = time.monotonic()

    def progress(name: str, seconds: float) -> None:
        print(f"  healthy  {name:<18} {seconds:5.2f}s", flush=True)

    with ProcessesStack(config, on_progress=progress) as stack:
        print(f"all {len(stack.components)} components healthy in {time.monotonic() - started:.1f}s\n")
        _print_table(stack)
        _write_state(stack)
        print("\nCtrl-C stops everything." if not args.detached_child else "\nrunning detached; "
              "`harness down` stops it.", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("\nstopping ...", flush=True)
        finally:
            with contextlib.suppress(FileNotFoundError):
                STATE_FILE.unlink()
    print("stopped; nothing left running.", flush=True)
    return 0


def _write_state(stack: ProcessesStack) -> None:
    assert stack.endpoints is not None
    STATE_FILE.parent.mkdir(parents=True, exist_ok=True)
    STATE_FILE.write_text(json.dumps({
        "pid": os.getpid(), "run_dir": str(stack.run.path), "launcher": stack.kind,
        "endpoints": dataclasses.asdict(stack.endpoints), "components": stack.describe(),
    }, indent=2))


def _read_state() -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads(STATE_FILE.read_text())
        return state
    except (FileNotFoundError, ValueError):
        return None


def _state_pid_alive() -> bool:
    state = _read_state()
    if not state:
        return False
    try:
        os.kill(int(state["pid"]), 0)
        return True
    except (ProcessLookupError, KeyError, ValueError):
        return False


def _detach(args: argparse.Namespace) -> int:
    if _state_pid_alive():
        print("harness: a detached stack is already running; `harness status` shows it", file=sys.stderr)
        return EXIT_USAGE
    with contextlib.suppress(FileNotFoundError):
        STATE_FILE.unlink()
    argv = [a for a in sys.argv[1:] if a != "--detach"] + ["--detached-child"]
    log = STATE_FILE.parent / "detached-up.log"
    STATE_FILE.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        child = subprocess.Popen([sys.executable, "-m", "harness", *argv], stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if child.poll() is not None:
            print(f"harness: the detached stack failed to start (exit {child.returncode}):", file=sys.stderr)
            print(log.read_text()[-3000:], file=sys.stderr)
            return EXIT_USAGE
        if _read_state():
            print(log.read_text().replace("running detached", "detached").rstrip())
            return 0
        time.sleep(0.1)
    os.killpg(child.pid, signal.SIGTERM)
    print(f"harness: the detached stack did not become healthy in 120 s; see {log}", file=sys.stderr)
    return EXIT_USAGE


def cmd_down(args: argparse.Namespace) -> int:
    state = _read_state()
    if not state or not _state_pid_alive():
        with contextlib.suppress(FileNotFoundError):
            STATE_FILE.unlink()
        print("no detached stack is running.")
        return 0
    pid = int(state["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.killpg(pid, signal.SIGKILL)
    from harness.stack.process import reap_orphans

    reap_orphans()
    with contextlib.suppress(FileNotFoundError):
        STATE_FILE.unlink()
    print(f"stopped the detached stack (run folder {state['run_dir']}).")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    state = _read_state()
    if not state or not _state_pid_alive():
        print("no detached stack is running. Start one with `harness up --detach`.")
        return 1
    print(f"detached stack, harness pid {state['pid']}, run folder {state['run_dir']}")
    healthy = 0
    for row in state["components"]:
        alive = _pid_alive(row.get("pid"))
        ok = alive and _url_ok(row.get("url"))
        healthy += ok
        print(f"  {row['component']:<18} pid {row['pid']!s:<8} {'healthy' if ok else 'DOWN':<8} {row.get('url') or ''}")
    print(f"{healthy}/{len(state['components'])} components healthy; gateway {state['endpoints']['gateway']}")
    return 0 if healthy == len(state["components"]) else 1


def _pid_alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
        return True
    except (TypeError, ValueError, ProcessLookupError):
        return False


def _url_ok(url: str | None) -> bool:
    if not url or not url.startswith("http"):
        return True  # no HTTP health endpoint (Redis, workers): a live process is the best we know
    for path in ("/health", "/healthcheck", "/version"):  # executors and gateway, Flower, fault proxy
        with contextlib.suppress(requests.RequestException):
            if requests.get(url + path, timeout=1).status_code == 200:
                return True
    return False


def cmd_run(args: argparse.Namespace) -> int:
    """The main job: the gate for 50 % → 75 % on the embedded stack, with a short but honest budget."""
    from harness.gate.cli import add_parsers

    parser = argparse.ArgumentParser(prog="harness")
    add_parsers(parser.add_subparsers(dest="command"))
    gate_args = parser.parse_args(["gate", "--current", str(args.current), "--target", str(args.target),
                                   "--seed", str(args.seed_value)])
    code: int = gate_args.func(gate_args)
    return code


def cmd_parity(args: argparse.Namespace) -> int:
    from harness.parity.compare import ParityConfig
    from harness.parity.dispatch import DUAL, FORCED, Dispatcher
    from harness.parity.explain import COUNTEREXAMPLES, explain, load_counterexample, save_counterexample
    from harness.parity.suite import (
        BATCH_SIZE,
        ParitySession,
        check_profile,
        register_profiles,
        search,
        write_outputs,
    )

    register_profiles()
    profile = check_profile(args.profile)
    replays = [(Path(p), *load_counterexample(Path(p))[:2]) for p in args.replay or []]  # refuse bad files first
    config = stack_config(args)
    run = RunFolder.create()
    plan = FORCED if args.mode == "forced" else DUAL
    print(f"run {run.run_id}: starting the stack ...", flush=True)
    with open_stack("external" if args.stack_url else "processes", config, run, url=args.stack_url) as stack, \
            Dispatcher(stack.endpoints.gateway) as dispatcher:
        session = ParitySession(dispatcher, ParityConfig.load(), config.executor_output_bytes, plan)
        if replays:
            failing = 0
            for path, spec, saved_plan in replays:
                session.plan = saved_plan
                check = session.check([spec])[0]
                failing += check.failing
                print(explain(check, seed=config.seed, saved=path) if check.failing else f"MATCHED  {path}")
            write_outputs(session, run.path, title="Parity replay")
            print(f"\n{'FAIL' if failing else 'PASS'}: {failing}/{len(replays)} saved counterexamples fail\n"
                  f"summary: {run.path / 'parity.md'}")
            return 1 if failing else 0
        mode = "dual-write" if plan == DUAL else "forced routes"
        print(f"checking {args.samples} generated programs through {mode} (profile {profile}, batches of up to "
              f"{BATCH_SIZE[profile]}, seed {config.seed}) ...", flush=True)
        outcome = search(session, profile=profile, budget=args.samples, seed=config.seed)
        extra = [f"- seed {config.seed}, profile {profile}, Hypothesis examples {outcome.examples}"]
        if outcome.failure is not None:
            saved = save_counterexample(outcome.failure, COUNTEREXAMPLES if args.save else run.path / "counterexamples",
                                        seed=config.seed)
            text = explain(outcome.failure, seed=config.seed, saved=saved, profile=profile)
            extra += ["", "## Failure", "", "```", text, "```"]
        summary = write_outputs(session, run.path, title="Parity", extra=extra)
    counts = session.counts()
    rate = len(session.checks) / session.elapsed_s if session.elapsed_s else 0.0
    print(f"{len(session.checks)} programs checked in {session.elapsed_s:.1f} s ({rate:.1f} per second): "
          + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if outcome.failure is not None:
        print("\n" + text)
        verdict: Verdict = "FAIL"
    elif outcome.flaky and outcome.first_failure is not None:
        print("\na divergence was seen once but did not reproduce (flaky):\n"
              + explain(outcome.first_failure, seed=config.seed, profile=profile))
        verdict = "FAIL"
    else:
        verdict = "PASS" if session.checks else "INCONCLUSIVE"
    print(f"\n{verdict}: parity of {len(session.checks)} programs\nobservations: {run.path / 'observations.parquet'}\n"
          f"summary: {summary}")
    return VERDICT_EXIT_CODES[verdict]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the whole stack in the foreground; Ctrl-C stops it")
    up.add_argument("--detach", action="store_true", help="leave it running; `harness down` stops it")
    up.add_argument("--detached-child", action="store_true", help=argparse.SUPPRESS)
    add_stack_options(up)
    up.set_defaults(func=cmd_up)
    down = sub.add_parser("down", help="stop the stack `harness up --detach` started")
    down.set_defaults(func=cmd_down)
    status = sub.add_parser("status", help="show the detached stack's components and their health")
    status.set_defaults(func=cmd_status)
    run = sub.add_parser("run", help="the main job: the gate's evidence on the embedded stack, then a verdict")
    run.add_argument("--current", type=float, default=50.0, help="the Celery percentage now (default 50)")
    run.add_argument("--target", type=float, default=75.0, help="the Celery percentage wanted (default 75)")
    run.add_argument("--seed", dest="seed_value", type=int, default=0)
    run.set_defaults(func=cmd_run)
    from harness.gate.cli import add_parsers as add_gate_parsers

    add_gate_parsers(sub)
    from harness.report.cli import add_parser as add_report_parser

    add_report_parser(sub)
    from harness.load.cli import add_parser as add_load_parser

    add_load_parser(sub)
    from harness.chaos.cli import add_parser as add_chaos_parser

    add_chaos_parser(sub)
    parity = sub.add_parser("parity", help="generated programs through both paths, compared and shrunk")
    parity.add_argument("--samples", type=int, default=200, help="programs to check (default 200)")
    parity.add_argument("--profile", default=os.environ.get("HYPOTHESIS_PROFILE", "ci"),
                        help="Hypothesis profile: dev, ci or thorough (default ci)")
    parity.add_argument("--mode", choices=("dual", "forced"), default="dual",
                        help="dual-write (one evaluation, both queues) or forced routes (one per path)")
    parity.add_argument("--replay", nargs="+", metavar="FILE", help="replay saved counterexamples instead")
    parity.add_argument("--no-save", dest="save", action="store_false",
                        help="keep a counterexample in the run folder, not in fixtures/parity/")
    parity.add_argument("--stack-url", help="gateway URL of a running deployment instead of the embedded stack")
    add_stack_options(parity)
    parity.set_defaults(func=cmd_parity, executor_timeout_s=5.0, retry_backoff_s=0.5)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
