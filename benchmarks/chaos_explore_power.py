"""The power of `harness chaos explore`: with a behaviour defect of the Celery path switched on, does a
small search find a failing fault schedule, shrink it and confirm it; with none, does it stay quiet?

For each case it runs ``harness.chaos.explore.explore`` on fresh processes stacks (a budget of examples
and seconds per case), with the defect as a fixed ``[stack] candidate_defects`` of every schedule, and
records: examples until found, seconds until found, the shrunk schedule's size, how often it reproduced,
examples run. Found files go to a temporary folder (not ``scenarios/found/``). Results:
``benchmarks/results/chaos_explore_power.md``.

    .venv/bin/python benchmarks/chaos_explore_power.py [--examples 8] [--max-time 300] [--seed 0]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from harness.chaos.explore import compact, explore, stack_runner
from harness.run import RunFolder

CASES: tuple[tuple[str, str | None], ...] = (
    ("retry_fixed_countdown", "retry_fixed_countdown"),  # caught as retry-spacing by any executor-3 outage
    ("no_dead_letter", "no_dead_letter"),  # caught as dead-letter by an outage that exhausts the retries
    ("no defect", None),
)
RESULTS = Path(__file__).parent / "results" / "chaos_explore_power.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=8)
    parser.add_argument("--max-faults", type=int, default=2)
    parser.add_argument("--max-time", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cases", default=",".join(c for c, _ in CASES))
    args = parser.parse_args()
    run = RunFolder.create(None, f"explore-power-{time.strftime('%Y%m%d-%H%M%S')}")
    rows, details = [], []
    for case, defect in CASES:
        if case not in args.cases.split(","):
            continue
        found_dir = Path(tempfile.mkdtemp(prefix="explore-found-"))
        print(f"== {case}", flush=True)
        r = explore(run=stack_runner(run), examples=args.examples, max_faults=args.max_faults, seed=args.seed,
                    max_time_s=args.max_time, found_dir=found_dir,
                    stack={"candidate_defects": [defect]} if defect else None, say=lambda m: print(m, flush=True))
        c = r.confirmation
        outcomes = ", ".join(f"{t.outcome}" for _, t in r.examples)
        rows.append(f"| {case} | {len(r.examples)} | {r.first_failure_example or '-'} | "
                    f"{f'{r.first_failure_s:.0f}' if r.first_failure_s is not None else '-'} | "
                    f"{len(r.shrink_steps)} | {len(r.found['faults']) if r.found else '-'} | "
                    f"{f'{c.reproduced} of {len(c.outcomes)}' if c else '-'} | {'yes' if r.written else 'no'} | "
                    f"{r.seconds:.0f}{' (budget ran out)' if r.out_of_time else ''} |")
        details.append(f"### {case}\n\nexample outcomes: {outcomes}\n\n"
                       + (f"shrunk schedule: `{compact(r.found)}`\n\n" if r.found else "")
                       + "".join(f"- example {i}: `{s}` -> {t.outcome} ({t.seconds:.0f} s)\n"
                                 for i, (s, t) in enumerate(r.examples, 1))
                       + "".join(f"- shrink {i}: `{s}` -> {t.outcome} ({t.seconds:.0f} s)\n"
                                 for i, (s, t) in enumerate(r.shrink_steps, 1))
                       + (f"\nwritten file:\n\n```toml\n{r.written.read_text()}```\n" if r.written else ""))
        write(args, rows, details, run)
    print(f"results: {RESULTS}")


def write(args: argparse.Namespace, rows: list[str], details: list[str], run: RunFolder) -> None:
    RESULTS.write_text(
        "# Generative chaos: power of `harness chaos explore`\n\n"
        f"`benchmarks/chaos_explore_power.py --examples {args.examples} --max-faults {args.max_faults} "
        f"--max-time {args.max_time:g} --seed {args.seed}`, processes stacks on this 2-core machine, one run "
        f"per case (run folder `{run.path}`). A behaviour defect is a fixed `[stack] candidate_defects` of every "
        "drawn schedule; the found file went to a temporary folder.\n\n"
        "| case | examples run | found at example | seconds to found | shrink runs | faults after shrink "
        "| reproduced | written | seconds total |\n|---|---|---|---|---|---|---|---|---|\n"
        + "\n".join(rows) + "\n\n" + "\n".join(details))


if __name__ == "__main__":
    main()
