"""``harness gate`` and ``harness rollout``: evidence on the stack (or from stored runs), then a verdict.

``harness gate --current 50 --target 75`` prints the samples the step needs, gathers the evidence on
the embedded stack (or ``--stack-url``) into one run folder, and decides:

1. **parity**: at least the needed number of programs through dual-write, drawn independently from
   the declared mix ``parity-v1`` (``harness.generate.mix``): the rate bound is about that population;
2. **load**: a bounded Locust run through the gateway with the split at ``--current`` percent (end-to-
   end latency and platform errors per path, and the split's accuracy);
3. **chaos**: the scenarios named by ``--chaos`` (default: the gate's short list below), each on a
   stack of its own.

``--evidence RUN_DIR...`` skips gathering and judges stored runs. The verdict goes to the terminal
(the one-line verdict first), to ``verdict.json`` and to the reports (``summary.md``, ``report.html``,
``junit.xml``). Exit status: 0 PASS, 1 FAIL, 2 INCONCLUSIVE, 3 a usage or stack error. ``--apply``
moves the split on the gateway's admin endpoint, and only on PASS.

``harness rollout --steps 10,25,50,75,100`` walks the steps with the gate between them, moving the
split after each PASS; on FAIL it rolls back to the previous step and stops (on INCONCLUSIVE it stays).
With ``--stack-url`` the split is changed on the gateway's admin endpoint; on the embedded stack
each step's evidence is gathered on a stack started at that step's split.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import requests

from harness import arguments
from harness.commands import ADMIN_TOKEN_VAR
from harness.errors import HarnessError
from harness.gate.decide import (
    Evidence,
    Thresholds,
    Verdict,
    check_step,
    decide,
    load_thresholds,
    render_text,
)
from harness.gate.evidence import collect
from harness.run import RunFolder
from harness.stack.config import StackConfig
from harness.stack.opening import open_stack

# Short scenarios that exercise the invariants the migration relies on (redelivery after a worker
# death with acks_late, retries through an executor outage, a slow broker link).
GATE_SCENARIOS = ("celery-worker-kill-acks-late", "executor-3-outage-recovers", "celery-broker-latency")
EVIDENCE_KINDS = ("parity", "load", "chaos")


def apply_split(gateway: str, token: str, percentage: float) -> dict[str, Any]:
    resp = requests.put(f"{gateway}/api/admin/split", json={"celery_percentage": percentage},
                        headers={"Authorization": f"Bearer {token}"}, timeout=10)
    if resp.status_code != 200:
        raise HarnessError(f"the gateway refused the split change to {percentage} % ({resp.status_code}): "
                           f"{resp.text[:300]}")
    body: dict[str, Any] = resp.json()
    return body


def gather_parity(gateway: str, run: RunFolder, config: StackConfig, programs: int, seed: int,
                  say: Callable[[str], None]) -> None:
    from harness.parity.compare import ParityConfig
    from harness.parity.dispatch import DUAL, Dispatcher
    from harness.parity.suite import POPULATION, ParitySession, register_profiles, sample, write_outputs

    register_profiles()
    say(f"parity: {programs} programs drawn from the mix `{POPULATION.removeprefix('mix:')}` (seed {seed}) "
        "through dual-write ...")
    with Dispatcher(gateway, default_timeout_s=config.executor_timeout_s) as dispatcher:
        session = ParitySession(dispatcher, ParityConfig.load(), config.executor_output_bytes, DUAL)
        sample(session, programs=programs, seed=seed)
    write_outputs(session, run.path, title="Parity (gate evidence)")
    counts = session.counts()
    say(f"parity: {len(session.checks)} programs in {session.elapsed_s:.0f} s: "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


def gather_load(gateway: str, run: RunFolder, evaluations: int, say: Callable[[str], None]) -> None:
    from harness.load.runner import run_headless

    # Enough time for `evaluations` at the end-to-end rate 16 users reach here (about 10 per second
    # on 2 cores), bounded.
    duration = min(max(30, math.ceil(evaluations / 9)), 180)
    say(f"load: Locust, 16 users, {duration} s through the gateway's split ...")
    run_headless(gateway, run, users=16, spawn_rate=16, duration_s=duration)


def chaos_scenarios(names: Sequence[str]) -> list[Any]:
    """The scenarios named (files, or names in the workspace's scenarios/chaos/), each validated: before anything starts."""
    from harness.chaos.cli import resolve

    return resolve(list(names))


def gather_chaos(run: RunFolder, names: Sequence[str], seed: int, say: Callable[[str], None]) -> None:
    from harness.chaos.runner import run_scenario

    for scenario in chaos_scenarios(names):
        say(f"chaos: {scenario.name} ...")
        result = run_scenario(scenario, run_folder=run, seed=seed)
        rows = [f"{r.path}: {r.outcome} (ok {r.ok}, lost {r.lost}, duplicated {r.duplicated}, stuck {r.stuck}, "
                f"wrong {r.wrong})" for r in result.findings.itertuples(index=False)]
        say(f"chaos: {scenario.name}: " + "; ".join(rows))


def gather(args: argparse.Namespace, run: RunFolder, thresholds: Thresholds, say: Callable[[str], None]) -> None:
    needed = decide(Evidence(), args.current, args.target, thresholds).samples_needed
    programs = math.ceil(needed["parity_pairs"] * args.budget)
    per_path = needed["error_rate_per_path"]
    config = StackConfig.for_tests(celery_percentage=args.current, seed=args.seed)
    with open_stack("external" if args.stack_url else "processes", config, run, url=args.stack_url) as stack:
        gateway = stack.endpoints.gateway
        if args.stack_url:
            apply_split(gateway, args.admin_token, args.current)
        if "parity" in args.collect:
            gather_parity(gateway, run, config, programs, args.seed, say)
        if "load" in args.collect:
            gather_load(gateway, run, math.ceil(2 * per_path * args.budget), say)
    if "chaos" in args.collect:
        gather_chaos(run, args.chaos or GATE_SCENARIOS, args.seed, say)


def write_verdict(verdict: Verdict, run_dir: Path) -> dict[str, Path]:
    (run_dir / "verdict.json").write_text(json.dumps(verdict.to_dict(), indent=2) + "\n")
    written = {"verdict.json": run_dir / "verdict.json"}
    try:
        from harness.report import build_reports
    except ImportError:  # the report writers are optional for the gate's decision
        return written
    written.update(build_reports(run_dir))
    return written


def check_inputs(args: argparse.Namespace) -> Thresholds:
    """Everything the options name, checked before anything starts: the thresholds, the step, the chaos
    scenarios to run, the admin token a deployment needs. Returns the thresholds."""
    thresholds = load_thresholds(Path(args.thresholds)) if args.thresholds else load_thresholds()
    if getattr(args, "current", None) is not None:
        check_step(args.current, args.target)
    if not getattr(args, "evidence", None) and "chaos" in args.collect:
        chaos_scenarios(args.chaos or GATE_SCENARIOS)
    if args.stack_url and not args.admin_token:
        raise HarnessError(f"--stack-url needs the gateway's admin token to set the split: --admin-token TOKEN "
                           f"or {ADMIN_TOKEN_VAR}")
    return thresholds


def cmd_gate(args: argparse.Namespace) -> int:
    thresholds = check_inputs(args)

    def say(text: str) -> None:
        print(text, flush=True)

    if args.evidence:
        folders = list(args.evidence)  # readable folders (checked by the parser)
        out = folders[0]
    else:
        run = RunFolder.create()
        out = run.path
        needed = decide(Evidence(), args.current, args.target, thresholds).samples_needed
        say(f"gate {args.current:g} % → {args.target:g} %: run {run.run_id}; this step needs "
            + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in needed.items()))
        started = time.monotonic()
        gather(args, run, thresholds, say)
        say(f"evidence gathered in {time.monotonic() - started:.0f} s")
        folders = [run.path]
    evidence = collect(folders, configured_percentage=args.current)
    verdict = decide(evidence, args.current, args.target, thresholds)
    written = write_verdict(verdict, out)
    print("\n" + render_text(verdict))
    for name, path in written.items():
        print(f"{name}: {path}")
    if args.apply and verdict.verdict == "PASS":
        if not args.stack_url:
            raise HarnessError("--apply needs --stack-url: the embedded stack is gone after the run")
        apply_split(args.stack_url, args.admin_token, args.target)
        print(f"split moved to {args.target:g} % on {args.stack_url}")
    elif args.apply:
        print(f"split left at {args.current:g} % ({verdict.verdict})")
    return verdict.exit_code


def parse_steps(text: str) -> list[float]:
    try:
        steps = [float(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--steps takes percentages like 10,25,50,75,100: {exc}") from exc
    if len(steps) < 2 or any(b <= a for a, b in zip(steps, steps[1:], strict=False)) or not 0 <= steps[0] <= 100 \
            or steps[-1] > 100:
        raise argparse.ArgumentTypeError("--steps must be at least two increasing percentages within 0..100, "
                                         "e.g. 10,25,50,75,100")
    return steps


def cmd_rollout(args: argparse.Namespace) -> int:
    """Walk the steps with the gate between them; on FAIL roll back to the previous step and stop."""
    thresholds = check_inputs(args)
    steps: list[float] = args.steps
    if args.stack_url:
        apply_split(args.stack_url, args.admin_token, steps[0])
    print(f"rollout {' → '.join(f'{s:g} %' for s in steps)}; the split starts at {steps[0]:g} %", flush=True)
    walked: list[tuple[float, float, str, Path]] = []
    code = 0
    for i in range(len(steps) - 1):
        current, target = steps[i], steps[i + 1]
        step_args = argparse.Namespace(**{**vars(args), "current": current, "target": target})
        run = RunFolder.create()
        print(f"\n== gate {current:g} % → {target:g} % (run {run.run_id})", flush=True)
        gather(step_args, run, thresholds, lambda text: print("  " + text, flush=True))
        verdict = decide(collect([run.path], configured_percentage=current), current, target, thresholds)
        write_verdict(verdict, run.path)
        print(verdict.headline, flush=True)
        walked.append((current, target, verdict.verdict, run.path))
        if verdict.verdict == "PASS":
            if args.stack_url:
                apply_split(args.stack_url, args.admin_token, target)
            print(f"split moved to {target:g} %", flush=True)
            continue
        if verdict.verdict == "FAIL" and i > 0:
            if args.stack_url:
                apply_split(args.stack_url, args.admin_token, steps[i - 1])
            print(f"rolled back to the previous step, {steps[i - 1]:g} %", flush=True)
        else:
            print(f"split stays at {current:g} %", flush=True)
        code = verdict.exit_code
        break
    print("\nstep            verdict       run folder")
    for current, target, result, path in walked:
        print(f"{current:>5g} → {target:<5g}   {result:<12}  {path}")
    return code


def add_parsers(sub: Any) -> None:
    """Register ``gate`` and ``rollout`` on ``harness``'s subparsers."""
    gate = sub.add_parser("gate", help="may the split move? evidence, then PASS / FAIL / INCONCLUSIVE",
                          epilog="exit status: 0 PASS, 1 FAIL, 2 INCONCLUSIVE, 3 a usage or stack error")
    gate.add_argument("--current", type=arguments.percentage, required=True, help="the Celery percentage now")
    gate.add_argument("--target", type=arguments.percentage, required=True, help="the Celery percentage wanted")
    gate.add_argument("--evidence", nargs="+", metavar="RUN_DIR", type=arguments.run_folder,
                      help="judge stored runs instead of gathering")
    gate.add_argument("--collect", default=list(EVIDENCE_KINDS), type=arguments.csv_of(EVIDENCE_KINDS),
                      help="which evidence to gather (default parity,load,chaos)")
    gate.add_argument("--chaos", nargs="*", metavar="SCENARIO",
                      help=f"chaos scenarios to run (default: {', '.join(GATE_SCENARIOS)})")
    gate.add_argument("--budget", type=arguments.number(above=0), default=1.1,
                      help="evidence per criterion as a multiple of the samples needed, > 0 (default 1.1)")
    gate.add_argument("--stack-url", type=arguments.http_url,
                      help="gateway URL of a running deployment instead of the embedded stack")
    gate.add_argument("--admin-token", type=arguments.non_empty,
                      default=os.environ.get(ADMIN_TOKEN_VAR),
                      help=f"bearer token of the gateway's admin endpoint (default: {ADMIN_TOKEN_VAR}, else the "
                           "embedded stack's); prefer the variable: a command line is visible to other processes")
    gate.add_argument("--apply", action="store_true", help="move the split to --target on PASS (with --stack-url)")
    gate.add_argument("--thresholds", type=arguments.readable_file,
                      help="thresholds file (default harness/gate/thresholds.toml)")
    gate.add_argument("--seed", type=arguments.seed, default=0)
    gate.set_defaults(func=cmd_gate)
    rollout = sub.add_parser("rollout", help="walk the split through steps with the gate between them",
                             epilog="exit status: 0 every step passed, 1 FAIL, 2 INCONCLUSIVE, 3 a usage or stack error")
    rollout.add_argument("--steps", type=parse_steps, required=True, help="e.g. 10,25,50,75,100 (the first is now)")
    for name in ("--collect", "--chaos", "--budget", "--stack-url", "--admin-token", "--thresholds", "--seed"):
        action = next(a for a in gate._actions if name in a.option_strings)
        rollout._add_action(action)
    rollout.set_defaults(func=cmd_rollout)
