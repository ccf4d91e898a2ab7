"""``harness gate`` and ``harness rollout``: evidence on the stack (or from stored runs), then a verdict.

``harness gate --current 50 --target 75`` prints the samples the step needs, gathers the evidence on
the embedded stack (or ``--stack-url``) into one run folder, and decides:

1. **parity**: at least the needed number of programs through dual-write, drawn independently from
   the declared mix ``parity-v1`` (``harness.generate.mix``): the rate bound is about that population;
2. **load**: a bounded Locust run through the gateway with the split at ``--current`` percent (end-to-
   end latency and platform errors per path, and the split's accuracy);
3. **chaos**: the scenarios named by ``--chaos`` (default: the gate's short list below), each on a
   stack of its own.

Gathering goes in rounds with a look after each (confidence sequences: ``sequential``), and stops once
every criterion is decided or at ``--max-time``. ``--evidence RUN_DIR...`` skips gathering and judges
stored runs, pooled into a run folder of the gate's own (the stored runs are not written to). The
verdict goes to the terminal, to ``verdict.json`` and to the reports (``summary.md``, ``report.html``,
``junit.xml``). Exit status: 0 PASS, 1 FAIL, 2 INCONCLUSIVE, 3 a usage or stack error. ``--apply``
moves the split on the gateway's admin endpoint, and only on PASS.

``harness rollout --steps 10,25,50,75,100`` (split steps) or ``--plan 10,25,50,75,phase2@90,100,decommission``
(the whole migration, ``harness.gate.plan``) walks the steps with the gate between them, moving after
each PASS; on FAIL it rolls back one step and stops (on INCONCLUSIVE it stays); ``--dry-run`` prints the
plan and what each move needs. With ``--stack-url`` the platform is moved on the gateway's admin
endpoint; on the embedded stack each move's evidence is gathered on a stack started in the state it
leaves. The rollout folder holds ``rollout.json`` and its report (``harness.report.rollout``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from harness import arguments
from harness.commands import ADMIN_TOKEN_VAR
from harness.errors import HarnessError
from harness.gate import sequential
from harness.gate.decide import (
    Thresholds,
    TransitionEvidence,
    Verdict,
    check_step,
    decide,
    load_thresholds,
    render_text,
    samples_needed,
)
from harness.gate.evidence import chaos_findings, collect, read_table
from harness.gate.plan import FORMS, Move, Step, moves, parse_plan, transition_checks
from harness.run import RunFolder
from harness.stack.config import StackConfig
from harness.stack.opening import open_stack

# Short scenarios that exercise the invariants the migration relies on (redelivery after a worker
# death with acks_late, retries through an executor outage, a slow broker link).
GATE_SCENARIOS = ("celery-worker-kill-acks-late", "executor-3-outage-recovers", "celery-broker-latency")
EVIDENCE_KINDS = ("parity", "load", "chaos")
LOAD_ROUNDS = "load-rounds"  # one subfolder per round's Locust window (two levels down: not pooled twice)
# make run (the gate 50 → 75 on the embedded stack) in about 3 minutes on a 2-core machine.
DEFAULT_MAX_TIME_S = 170.0


def apply_split(gateway: str, token: str, percentage: float, **settings: Any) -> dict[str, Any]:
    """``PUT /api/admin/split``: the share, and a phase's settings (``fallback``, ``accept_legacy``) if given."""
    resp = requests.put(f"{gateway}/api/admin/split", json={**settings, "celery_percentage": percentage},
                        headers={"Authorization": f"Bearer {token}"}, timeout=10)
    if resp.status_code != 200:
        raise HarnessError(f"the gateway refused the split change to {percentage} % ({resp.status_code}): "
                           f"{resp.text[:300]}")
    body: dict[str, Any] = resp.json()
    return body


def parity_session(gateway: str, config: StackConfig) -> Any:
    """A parity session over dual-write whose checks accumulate over the rounds."""
    from harness.parity.compare import ParityConfig
    from harness.parity.dispatch import DUAL, Dispatcher
    from harness.parity.suite import ParitySession, register_profiles

    register_profiles()
    dispatcher = Dispatcher(gateway, default_timeout_s=config.executor_timeout_s)
    return ParitySession(dispatcher, ParityConfig.load(), config.executor_output_bytes, DUAL)


def gather_parity(session: Any, run: RunFolder, programs: int, seed: int, say: Callable[[str], None]) -> None:
    from harness.parity.suite import POPULATION, sample

    say(f"parity: {programs} programs drawn from the mix `{POPULATION.removeprefix('mix:')}` (seed {seed}) "
        "through dual-write ...")
    before = len(session.checks)
    sample(session, programs=programs, seed=seed)
    write_parity(session, run)
    counts = session.counts()
    say(f"parity: {len(session.checks) - before} programs, {len(session.checks)} in all: "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


def write_parity(session: Any, run: RunFolder) -> None:
    from harness.parity.suite import write_outputs

    write_outputs(session, run.path, title="Parity (gate evidence)")


def gather_load(gateway: str, run: RunFolder, seconds: float, seed: int, round_no: int,
                say: Callable[[str], None], current: float = 50.0) -> None:
    """One Locust window into ``load-rounds/<k>/``, then every round so far pooled into the run folder's own
    ``load_requests.parquet`` and ``load_stats.parquet`` (what the gate and the reports read)."""
    from harness.load.config import Route
    from harness.load.frames import per_second
    from harness.load.runner import REQUESTS_FILE, STATS_FILE, run_headless

    duration = math.ceil(seconds)
    # At 100 % the split sends nothing to legacy: half the evaluations are forced to legacy as a control group
    # (marked forced in the rows: the split's accuracy counts only the others).
    route: Route | None = "control" if current >= 100 else None
    say(f"load: Locust, {LOAD_USERS} users, {duration} s through the gateway's split"
        + (" (half forced to legacy as a control group: the split sends legacy nothing at 100 %)" if route else "")
        + " ...")
    folder = run.path / LOAD_ROUNDS / f"{round_no:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    run_headless(gateway, folder, users=LOAD_USERS, spawn_rate=LOAD_USERS, duration_s=duration, seed=seed,
                 route=route)
    import pandas as pd

    rounds = []
    for k, part in enumerate(sorted((run.path / LOAD_ROUNDS).glob(f"*/{REQUESTS_FILE}")), start=1):
        frame = pd.read_parquet(part)
        frame["test_run"] = k  # the round: Locust numbers the runs of one process only
        rounds.append(frame)
    requests = pd.concat(rounds, ignore_index=True)
    requests.to_parquet(run.path / REQUESTS_FILE, index=False)
    per_second(requests).to_parquet(run.path / STATS_FILE, index=False)
    shutil.copyfile(folder / "load.json", run.path / "load.json")


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


# The criteria each kind of evidence decides (the error rate is fed by both).
PARITY_CRITERIA = ("parity mismatch rate", "critical fields", "oracle (wrong results)")
LOAD_CRITERIA = ("latency (queueing + delivery)", "execution time", "resources (CPU, peak memory)", "error rate",
                 "split accuracy")
# Time kept for each chaos scenario at the end of the run (each starts a stack of its own; measured 19 s).
CHAOS_RESERVE_S = 20.0
LOAD_USERS = 16
# Evaluations per second through the gateway at LOAD_USERS users on this 2-core machine (measured ~10).
LOAD_RATE = 9.0
MIN_ROUND_LOAD_S = 20.0
# A later round: a third of the parity pairs (about 12 s), a 20 s Locust window and its start and stop.
LATER_ROUND_S = 45.0


@dataclass
class Rounds:
    """The sequential record: one look per round, why gathering stopped, and the plan it started from."""

    plan: dict[str, int]
    max_time_s: float
    looks: list[dict[str, Any]] = field(default_factory=list)
    stopped: str = ""
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"method": sequential.METHOD, "plan": self.plan, "max_time_s": self.max_time_s, "looks": self.looks,
                "rounds": len(self.looks), "stopped": self.stopped, "elapsed_s": round(self.elapsed_s, 1)}


def _open(verdict: Verdict, names: Sequence[str]) -> list[str]:
    return [c.name for c in verdict.criteria if c.name in names and c.status == "INCONCLUSIVE"]


def _failed(verdict: Verdict, names: Sequence[str]) -> list[str]:
    return [c.name for c in verdict.criteria if c.name in names and c.status == "FAIL"]


def gather(args: argparse.Namespace, run: RunFolder, thresholds: Thresholds, say: Callable[[str], None],
           state: Step | None = None) -> Rounds:
    """Gather evidence in rounds, looking after each, until the parity and load criteria are decided (or one
    fails), or the time left is what the chaos scenarios need; then run the chaos scenarios (unless a
    criterion already failed). Every look is valid at any round: the bounds are confidence sequences."""
    started = time.monotonic()
    plan = samples_needed(thresholds, args.target)
    rounds = Rounds(plan, args.max_time)
    scenarios = (args.chaos or GATE_SCENARIOS) if "chaos" in args.collect else ()
    deadline = started + args.max_time - CHAOS_RESERVE_S * len(scenarios)
    settings = state.config() if state is not None else {"celery_percentage": args.current}
    config = StackConfig.for_tests(seed=args.seed, **settings)
    failed: list[str] = []
    with open_stack("external" if args.stack_url else "processes", config, run, url=args.stack_url) as stack:
        gateway = stack.endpoints.gateway
        if args.stack_url:
            apply_split(gateway, args.admin_token, args.current, **settings)
        session = parity_session(gateway, config) if "parity" in args.collect else None
        want_parity, want_load = session is not None, "load" in args.collect
        # the criteria this run can decide: those of the kinds it collects (the error rate is fed by both)
        gathered = [*(PARITY_CRITERIA if want_parity else ()),
                    *(name for name in LOAD_CRITERIA if want_load or (name == "error rate" and want_parity))]
        round_no = 0
        next_round_s = LATER_ROUND_S
        while want_parity or want_load:
            round_no += 1
            round_started = time.monotonic()
            if want_parity and session is not None:
                # first round: the fewest clean pairs that can pass (+5 % for A/A noise); then a third more
                programs = math.ceil(plan["parity_pairs"] * (1.05 if round_no == 1 else 0.35))
                gather_parity(session, run, programs, args.seed * 1000 + round_no, say)
            if want_load:
                # first round: enough for the split's and the error rate's minimum (parity's programs count for
                # the error rate too); then shorter rounds
                first = max(plan["split_routed"], 2 * plan["error_rate_per_path"] - (plan["parity_pairs"] if
                                                                                       want_parity else 0))
                seconds = max(MIN_ROUND_LOAD_S, first / LOAD_RATE) if round_no == 1 else MIN_ROUND_LOAD_S
                gather_load(gateway, run, min(seconds, max(MIN_ROUND_LOAD_S, deadline - time.monotonic())),
                            args.seed * 1000 + round_no, round_no, say, args.current)
            verdict = decide(collect([run.path], configured_percentage=args.current), args.current, args.target,
                             thresholds)
            failed = _failed(verdict, gathered)
            open_ = _open(verdict, gathered)
            rounds.looks.append({"round": round_no, "elapsed_s": round(time.monotonic() - started, 1),
                                 "statuses": {c.name: c.status for c in verdict.criteria if c.name in gathered},
                                 "samples": {c.name: c.sample_size for c in verdict.criteria if c.name in gathered}})
            say(f"look {round_no} at {time.monotonic() - started:.0f} s: "
                + (f"FAIL on {', '.join(failed)}" if failed else
                   f"undecided: {', '.join(open_)}" if open_ else "every gathered criterion decided"))
            if failed:
                rounds.stopped = "decided: a criterion failed"
                break
            if not open_:
                rounds.stopped = "decided"
                break
            if round_no > 1:
                next_round_s = time.monotonic() - round_started
            if time.monotonic() + next_round_s > deadline:  # no time left for one more round
                rounds.stopped = f"--max-time {args.max_time:g} s (keeping {CHAOS_RESERVE_S * len(scenarios):.0f} s " \
                                 "for chaos)" if scenarios else f"--max-time {args.max_time:g} s"
                break
            want_parity = want_parity and any(name in open_ for name in (*PARITY_CRITERIA, *(
                () if "load" in args.collect else ("error rate",))))
            want_load = want_load and (any(name in open_ for name in LOAD_CRITERIA) or not want_parity)
        if session is not None:
            write_parity(session, run)
            session.dispatcher.close()
    if scenarios and not failed:
        gather_chaos(run, scenarios, args.seed, say)
    elif scenarios:
        say("chaos: skipped, a criterion already failed")
    if not rounds.stopped:
        rounds.stopped = "decided"
    rounds.elapsed_s = time.monotonic() - started
    return rounds


def plan_text(args: argparse.Namespace, thresholds: Thresholds) -> str:
    """The plan printed up front: the fewest samples each criterion can pass with, and the most the gate spends."""
    plan = samples_needed(thresholds, args.target)
    scenarios = (args.chaos or GATE_SCENARIOS) if "chaos" in args.collect else ()
    lines = [f"plan: evidence in rounds with a look after each (confidence sequences, valid at every look); it "
             f"stops once every criterion is decided, or at --max-time {args.max_time:g} s",
             f"  at least {plan['parity_pairs']} clean dual-write pairs (parity, ε = "
             f"{100 * thresholds.epsilon(args.target):g} %), {plan['error_rate_per_path']} evaluations per path "
             f"without error (error rate), {plan['latency_per_path']} latency samples per path, "
             f"{plan['split_routed']} routed evaluations (split)"]
    if scenarios:
        lines.append(f"  then {len(scenarios)} chaos scenario(s): {', '.join(scenarios)}")
    return "\n".join(lines)


EVIDENCE_FILES = ("observations.parquet", "parity_history.parquet", "load_requests.parquet", "load_stats.parquet",
                  "findings.parquet")
# the columns that name one evaluation, to count each once when sources overlap
IDENTITY = {"observations.parquet": ["eval_ids"], "load_requests.parquet": ["eval_id", "request_type", "name"]}


def _same_draws(sources: Sequence[Path]) -> tuple[Path, Path] | None:
    """Two sources whose parity programs are mostly the same draws (the same seed): not independent."""
    drawn: dict[Path, set[tuple[str, str]]] = {}
    for source in sources:
        part = read_table([source], "observations.parquet")
        rows = ([(str(lang), str(code)) for lang, code in zip(part["language"], part["code"], strict=True)]
                if {"language", "code"} <= set(part.columns) else [])
        if rows:
            drawn[source] = set(rows)
    for i, (a, programs_a) in enumerate(drawn.items()):
        for b, programs_b in list(drawn.items())[i + 1:]:
            if len(programs_a & programs_b) > 0.5 * min(len(programs_a), len(programs_b)):
                return a, b
    return None


def pool_evidence(sources: Sequence[Path], out: Path) -> None:
    """Pool the evidence of ``sources`` into ``out`` (a new run folder): each evidence table concatenated with
    every evaluation counted once, each chaos scenario's folder copied, the load settings kept, and
    ``evidence.json`` naming the sources, so the gate's reports show the charts behind the verdict and no
    source folder is written to. Refuses a source given twice, and two sources whose parity programs are
    the same draws (gathered with the same seed): their programs are not independent samples."""
    resolved = [f.resolve() for f in sources]
    if len(set(resolved)) != len(resolved):
        raise HarnessError("--evidence names the same run folder twice: its evaluations would count twice")
    same = _same_draws(sources)
    if same is not None:
        raise HarnessError(f"--evidence: {same[0]} and {same[1]} hold mostly the same parity programs (gathered with "
                           "the same seed): they are not independent draws; gather one again with another --seed")
    for name in EVIDENCE_FILES:
        frame = read_table(sources, name)
        if frame.empty:
            continue
        key = [c for c in IDENTITY.get(name, []) if c in frame]
        if key and frame[key[0]].notna().all():
            frame = frame.drop_duplicates(subset=key, keep="first")
        frame.to_parquet(out / name, index=False)
    for source in sources:
        for scenario in sorted((source / "chaos").glob("*/")):
            target = out / "chaos" / scenario.name
            if target.exists():  # the same scenario in two sources: keep both
                target = out / "chaos" / f"{scenario.name}-{source.name}"
            shutil.copytree(scenario, target)
        # the load settings, one "round" per Locust run of each source (what the report's settings show)
        settings = sorted((source / LOAD_ROUNDS).glob("*/load.json")) or [p for p in [source / "load.json"]
                                                                           if p.is_file()]
        for k, path in enumerate(settings, start=1):
            target = out / LOAD_ROUNDS / f"{source.name}-{k:02d}"
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target / "load.json")
    (out / "evidence.json").write_text(json.dumps({"sources": [str(f) for f in resolved]}, indent=2) + "\n")


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
        sources = list(args.evidence)  # readable folders (checked by the parser)
        run = RunFolder.create()
        out = run.path
        pool_evidence(sources, out)  # the gate's own run folder: the evidence folders stay as they were
        say(f"gate {args.current:g} % → {args.target:g} % over {len(sources)} stored run(s): run {run.run_id}")
        folders = [out]
        rounds = None
    else:
        run = RunFolder.create()
        out = run.path
        say(f"gate {args.current:g} % → {args.target:g} %: run {run.run_id}")
        say(plan_text(args, thresholds))
        rounds = gather(args, run, thresholds, say)
        say(f"evidence gathered in {rounds.elapsed_s:.0f} s, {len(rounds.looks)} look(s); stopped: {rounds.stopped}")
        folders = [run.path]
    evidence = collect(folders, configured_percentage=args.current)
    verdict = decide(evidence, args.current, args.target, thresholds)
    if rounds is not None:
        verdict = dataclasses.replace(verdict, sequential=rounds.to_dict())
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


def rollout_steps(args: argparse.Namespace) -> list[Step]:
    """``--plan`` parsed, or ``--steps`` as phase-1 steps; exactly one of them."""
    if bool(args.plan) == bool(args.steps):
        raise HarnessError("harness rollout needs exactly one of --steps 10,25,50 (split steps) and --plan "
                           "10,25,50,75,phase2@90,100,decommission (the whole migration)")
    if args.plan:
        return parse_plan(args.plan)
    return [Step(f"{p:g}", 1, p) for p in args.steps]


def move_scenarios(args: argparse.Namespace, move: Move) -> list[str]:
    """The chaos scenarios of one move: the gate's (or --chaos) and the move's transition scenarios."""
    if "chaos" not in args.collect:
        return []
    return [*dict.fromkeys([*(args.chaos or GATE_SCENARIOS), *move.scenarios])]


def print_plan(args: argparse.Namespace, steps: Sequence[Step], thresholds: Thresholds) -> None:
    print("step               phase  celery  procedure")
    for step in steps:
        print(f"{step.text:<18} {step.phase:>5}  {step.percentage:>5g} %  {step.procedure or '-'}")
    print("\nmove                         samples it needs (at least)                                    scenarios")
    for move in moves(steps):
        need = samples_needed(thresholds, move.to.percentage)
        print(f"{move.describe():<28} {need['parity_pairs']:>4} parity pairs, {need['error_rate_per_path']:>3} "
              f"evaluations per path, {need['split_routed']} routed   {', '.join(move_scenarios(args, move)) or '-'}"
              + (" (this phase move needs its transition scenarios: add chaos to --collect, or it stays INCONCLUSIVE)"
                 if move.scenarios and "chaos" not in args.collect else ""))
    print(f"\neach move gathers for at most --max-time {args.max_time:g} s, stopping once it is decided")


def walk_move(args: argparse.Namespace, plan: Sequence[Move], i: int, move: Move, thresholds: Thresholds,
              doc: dict[str, Any]) -> int:
    """Gather and judge one move; move (or roll back) on its verdict; record it in ``doc``. Returns 0 to go on."""
    current, target = move.frm.percentage, move.to.percentage
    step_args = argparse.Namespace(**{**vars(args), "current": current, "target": target,
                                      "chaos": move_scenarios(args, move) or None})
    run = RunFolder.create()
    started = time.time()
    print(f"\n== {move.describe()} (run {run.run_id})", flush=True)
    rounds = gather(step_args, run, thresholds, lambda text: print("  " + text, flush=True), state=move.frm)
    evidence = collect([run.path], configured_percentage=current)
    if move.kind != "split":
        checks = transition_checks(chaos_findings([run.path]), move.scenarios)
        evidence = dataclasses.replace(evidence, transition=TransitionEvidence(
            move.describe(), move.kind, tuple(checks), move.scenarios))
    verdict = dataclasses.replace(decide(evidence, current, target, thresholds), sequential=rounds.to_dict())
    write_verdict(verdict, run.path)
    print(verdict.headline, flush=True)
    if verdict.verdict == "PASS":
        if args.stack_url:
            apply_split(args.stack_url, args.admin_token, target, **move.to.config())
        action = f"moved to {move.to.text}"
        if move.kind == "decommission" and args.stack_url:
            action += " (legacy accepts nothing more; drain and stop its workers with your own tooling)"
        doc["final_step"] = move.to.text
    elif verdict.verdict == "FAIL" and i > 0:
        back = plan[i - 1].frm
        if args.stack_url:
            apply_split(args.stack_url, args.admin_token, back.percentage, **back.config())
        action = f"rolled back to the previous step, {back.text}"
        doc["final_step"] = back.text
    else:
        action = f"stays at {move.frm.text}"
    print(action, flush=True)
    doc["moves"].append({"from": move.frm.text, "to": move.to.text, "kind": move.kind, "verdict": verdict.verdict,
                         "headline": verdict.headline, "run": str(run.path), "started_at": started,
                         "finished_at": time.time(), "action": action})
    return 0 if verdict.verdict == "PASS" else verdict.exit_code


def cmd_rollout(args: argparse.Namespace) -> int:
    """Walk the plan with the gate between steps; on FAIL roll back one step and stop; on INCONCLUSIVE stay."""
    thresholds = check_inputs(args)
    steps = rollout_steps(args)
    plan = moves(steps)
    for move in plan:  # every scenario file checked before anything starts
        chaos_scenarios(move_scenarios(args, move) or GATE_SCENARIOS)
    if args.dry_run:
        print_plan(args, steps, thresholds)
        return 0
    folder = RunFolder.create()
    if args.stack_url:
        apply_split(args.stack_url, args.admin_token, steps[0].percentage, **steps[0].config())
    print(f"rollout {' → '.join(s.text for s in steps)} (run {folder.run_id}); the platform starts at "
          f"{steps[0].text}", flush=True)
    doc: dict[str, Any] = {"plan": ",".join(s.text for s in steps), "steps": [s.to_dict() for s in steps],
                           "moves": [], "started_at": time.time(), "final_step": steps[0].text}
    code = 0
    record = folder.path / "rollout.json"
    try:
        for i, move in enumerate(plan):
            code = walk_move(args, plan, i, move, thresholds, doc)
            record.write_text(json.dumps(doc, indent=2) + "\n")  # after every move: a failure later keeps it
            if code != 0:
                break
    finally:
        doc.update(finished_at=time.time(), exit_code=code)
        record.write_text(json.dumps(doc, indent=2) + "\n")
    print("\nmove                          verdict       action")
    for m in doc["moves"]:
        print(f"{m['from'] + ' → ' + m['to']:<29} {m['verdict']:<12}  {m['action']}  ({m['run']})")
    try:
        from harness.report.rollout import write_rollout_report
    except ImportError:  # the report writers are optional for the decision
        print(f"rollout.json: {folder.path / 'rollout.json'}")
        return code
    for name, path in write_rollout_report(folder.path, doc).items():
        print(f"{name}: {path}")
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
    gate.add_argument("--max-time", type=arguments.number(above=0), default=DEFAULT_MAX_TIME_S, metavar="SECONDS",
                      help=f"the time evidence gathering may take, chaos included (default {DEFAULT_MAX_TIME_S:g}); "
                           "it stops earlier once every criterion is decided; the first round (the fewest samples "
                           "that can pass) is always gathered whole")
    gate.add_argument("--stack-url", type=arguments.http_url,
                      help="gateway URL of a running deployment instead of the embedded stack (the gate sets its "
                           "split to --current first; harness rollout moves it step by step)")
    gate.add_argument("--admin-token", type=arguments.non_empty,
                      default=os.environ.get(ADMIN_TOKEN_VAR),
                      help=f"bearer token of the gateway's admin endpoint (default: {ADMIN_TOKEN_VAR}, else the "
                           "embedded stack's); prefer the variable: a command line is visible to other processes")
    gate.add_argument("--apply", action="store_true", help="move the split to --target on PASS (with --stack-url)")
    gate.add_argument("--thresholds", type=arguments.readable_file,
                      help="thresholds file (default harness/gate/thresholds.toml)")
    gate.add_argument("--seed", type=arguments.seed, default=0)
    gate.set_defaults(func=cmd_gate)
    rollout = sub.add_parser("rollout", help="walk the migration plan with the gate between steps",
                             epilog="exit status: 0 every step passed, 1 FAIL, 2 INCONCLUSIVE, 3 a usage or stack error")
    rollout.add_argument("--steps", type=parse_steps, help="split steps, e.g. 10,25,50,75,100 (the first is now)")
    rollout.add_argument("--plan", help=f"the whole migration, e.g. 10,25,50,75,phase2@90,100,decommission; a step is "
                                        f"{FORMS} (the first is now)")
    rollout.add_argument("--dry-run", action="store_true", help="print the plan and what each move needs, then stop")
    for name in ("--collect", "--chaos", "--max-time", "--stack-url", "--admin-token", "--thresholds", "--seed"):
        action = next(a for a in gate._actions if name in a.option_strings)
        rollout._add_action(action)
    rollout.set_defaults(func=cmd_rollout)
