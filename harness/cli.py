"""The ``harness`` command (also ``python -m harness``).

``harness up``/``status``/``down`` start, show and stop named stacks (``harness.updown``). ``harness run`` is the main job behind ``make run``: the gate for 50 % → 75 %
(``harness gate``) on the embedded stack: it gathers parity, load and chaos evidence, prints the
verdict and the path of its report, and leaves nothing running.
Stack options map onto ``StackConfig`` fields (``--celery-percentage 75``, ``--acks-late``, ...).
Every command's parser is a ``HarnessParser`` (``harness.commands``): no abbreviated options, and a
usage error (a missing or unknown option, a value out of range, a file that cannot be read) exits 3
with the usage line before anything starts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from harness import arguments
from harness.commands import HarnessParser, add_stack_options, parse, run_command, stack_config
from harness.run import RunFolder
from harness.stack.opening import open_stack
from harness.vocabulary import VERDICT_EXIT_CODES, Verdict


def cmd_run(args: argparse.Namespace) -> int:
    """The main job: the gate for 50 % → 75 % on the embedded stack, with a short but honest budget."""
    from harness.gate.cli import add_parsers

    parser = HarnessParser(prog="harness")
    add_parsers(parser.add_subparsers(dest="command"))
    gate_args = parser.parse_args(["gate", "--current", str(args.current), "--target", str(args.target),
                                   "--seed", str(args.seed_value)])
    code: int = gate_args.func(gate_args)
    return code


def cmd_parity(args: argparse.Namespace) -> int:
    from harness.parity import coverage
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
    from harness.report import report_lines
    from harness.terminal import progress, styled

    register_profiles()
    profile = check_profile(args.profile)
    replays = [(p, *load_counterexample(p)[:2]) for p in args.replay or []]  # refuse bad files first
    config = stack_config(args)
    run = RunFolder.create()
    plan = FORCED if args.mode == "forced" else DUAL
    print(f"run {run.run_id}: starting the stack ...", flush=True)
    with open_stack("external" if args.stack_url else "processes", config, run, url=args.stack_url) as stack, \
            Dispatcher(stack.endpoints.gateway, default_timeout_s=config.executor_timeout_s) as dispatcher:
        session = ParitySession(dispatcher, ParityConfig.load(), config.executor_output_bytes, plan,
                                journal=run.path)
        if replays:
            failing = 0
            for path, program, saved_plan in replays:
                session.plan = saved_plan
                check = session.check([program])[0]
                failing += check.failing
                print(explain(check, seed=config.seed, saved=path) if check.failing else f"MATCHED  {path}")
            write_outputs(session, run.path, title="Parity replay")
            print(f"\n{'FAIL' if failing else 'PASS'}: {failing}/{len(replays)} saved counterexamples fail\n"
                  f"parity: {run.path / 'parity.md'}\n" + "\n".join(report_lines(run.path)))
            return 1 if failing else 0
        mode = "dual-write" if plan == DUAL else "forced routes"
        print(f"checking {args.samples} generated programs through {mode} (profile {profile}, batches of up to "
              f"{BATCH_SIZE[profile]}, seed {config.seed}) ...", flush=True)
        with progress("parity: programs checked", args.samples) as shown:
            def on_progress(step: str, count: int) -> None:
                if step == "search":
                    shown.update(count)
                else:  # the first failure is being shrunk: the count is of programs tried
                    shown.update(shown.done, note=f"a divergence found; shrinking, {count} program(s) tried")
            try:
                outcome = search(session, profile=profile, budget=args.samples, seed=config.seed,
                                 on_progress=on_progress)
            except KeyboardInterrupt:  # keep what was checked: the report shows it, marked interrupted
                (run.path / "parity.json").write_text(json.dumps({"interrupted": True,
                                                                    "programs": len(session.checks)}) + "\n")
                write_outputs(session, run.path, title="Parity (interrupted)")
                print(f"\ninterrupted after {len(session.checks)} programs; they are kept:\n"
                      + "\n".join(report_lines(run.path)), flush=True)
                raise
        extra = [f"- seed {config.seed}, profile {profile}, Hypothesis examples {outcome.examples}"]
        found = outcome.missing or outcome.failure
        if found is not None:
            saved = save_counterexample(found, COUNTEREXAMPLES if args.save else run.path / "counterexamples",
                                        seed=config.seed)
            text = explain(found, seed=config.seed, saved=saved, profile=profile)
            extra += ["", "## Failure", "", "```", text, "```"]
        summary = write_outputs(session, run.path, title="Parity", extra=extra)
    counts = session.counts()
    rate = len(session.checks) / session.elapsed_s if session.elapsed_s else 0.0
    print(f"{len(session.checks)} programs checked in {session.elapsed_s:.1f} s ({rate:.1f} per second): "
          + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    print("programs per edge of the parity surface:")
    print("\n".join(coverage.terminal(coverage.coverage_frame(session.frame()))))
    if found is not None:
        print("\n" + text)
        verdict: Verdict = "FAIL"
    elif outcome.flaky and outcome.first_failure is not None:
        print("\na divergence was seen once but did not reproduce (flaky):\n"
              + explain(outcome.first_failure, seed=config.seed, profile=profile))
        verdict = "FAIL"
    else:
        verdict = "PASS" if session.checks else "INCONCLUSIVE"
    print(f"\n{styled(verdict)}: parity of {len(session.checks)} programs\nobservations: {run.path / 'observations.parquet'}\n"
          f"parity: {summary}\n" + "\n".join(report_lines(run.path)))
    return VERDICT_EXIT_CODES[verdict]


def build_parser() -> HarnessParser:
    parser = HarnessParser(prog="harness", description=__doc__.splitlines()[0] if __doc__ else None,
                           epilog="exit status: 0 PASS (or done), 1 FAIL, 2 INCONCLUSIVE, 3 a usage error or a stack "
                                  "that could not start (nothing was started), 130 interrupted")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from harness.updown import add_parsers as add_updown_parsers

    add_updown_parsers(sub)
    run = sub.add_parser("run", help="the main job: the gate's evidence on the embedded stack, then a verdict")
    run.add_argument("--current", type=arguments.percentage, default=50.0,
                     help="the Celery percentage now (default 50)")
    run.add_argument("--target", type=arguments.percentage, default=75.0,
                     help="the Celery percentage wanted (default 75)")
    run.add_argument("--seed", dest="seed_value", type=arguments.seed, default=0)
    run.set_defaults(func=cmd_run)
    from harness.gate.cli import add_parsers as add_gate_parsers

    add_gate_parsers(sub)
    from harness.report.cli import add_parser as add_report_parser

    add_report_parser(sub)
    from harness.load.cli import add_parser as add_load_parser

    add_load_parser(sub)
    from harness.chaos.cli import add_parser as add_chaos_parser

    add_chaos_parser(sub)
    from harness.watch import add_parser as add_watch_parser

    add_watch_parser(sub)
    parity = sub.add_parser("parity", help="generated programs through both paths, compared and shrunk",
                            description="Generate programs with an oracle, send them through both paths (dual-write "
                                        "or forced routes), compare each path with the other and with the oracle, "
                                        "and shrink the first failure to the smallest program that still fails.",
                            epilog="exit status: 0 PASS, 1 FAIL (a failing program, shown on one screen), "
                                   "2 INCONCLUSIVE (nothing checked), 3 a usage error or a stack that cannot start, "
                                   "130 Ctrl-C (what was checked is kept)",
                            usage="%(prog)s [--samples N] [--profile P] [--mode M] [--replay FILE ...] [--no-save] "
                                  "[--stack-url URL] [stack options]")
    parity.add_argument("--samples", type=arguments.integer(1), default=200, help="programs to check (default 200)")
    parity.add_argument("--profile", default=os.environ.get("HYPOTHESIS_PROFILE", "ci"),
                        help="Hypothesis profile: dev, ci or thorough (default ci)")
    parity.add_argument("--mode", choices=("dual", "forced"), default="dual",
                        help="dual-write (one evaluation, both queues) or forced routes (one per path)")
    parity.add_argument("--replay", nargs="+", metavar="FILE", type=arguments.readable_file,
                        help="replay saved counterexamples instead")
    parity.add_argument("--no-save", dest="save", action="store_false",
                        help="keep a counterexample in the run folder, not in fixtures/parity/")
    parity.add_argument("--stack-url", type=arguments.http_url,
                        help="gateway URL of a running deployment instead of the embedded stack")
    add_stack_options(parity)
    parity.set_defaults(func=cmd_parity, executor_timeout_s=5.0, retry_backoff_s=0.5)
    return parser


def main(argv: list[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    args = parse(build_parser(), given)
    if isinstance(args, int):
        return args
    args.argv = given  # `harness up --detach` starts a child with the same options
    return run_command(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
