"""Time to detect each candidate defect, and the size of the shrunk program.

For every candidate defect of the Celery path (``system_under_test/defects.py``), alone, on a
processes stack of its own: the seconds from the start of the parity search (``ci`` profile,
dual-write) to the first failing check, the seconds until the failure is shrunk, the programs
checked, and the shrunk program (lines, and the code itself). Targets: detected within 30 s of
starting; shrunk to at most 3 lines.

Usage: ``.venv/bin/python benchmarks/parity_power.py [--seeds 3]``; writes
``benchmarks/results/parity_power.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from pathlib import Path

from harness.parity.compare import ParityConfig
from harness.parity.dispatch import DUAL, Dispatcher
from harness.parity.suite import ParitySession, register_profiles, search
from harness.run import RunFolder
from harness.stack.config import StackConfig
from harness.stack.processes import ProcessesStack
from system_under_test.defects import DEFECTS

RESULTS = Path(__file__).parent / "results" / "parity_power.md"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    register_profiles()
    lines = ["# Power check: time to detect each candidate defect, and the shrunk program", "",
             f"Measured {dt.date.today()} on this machine (2 cores), processes stack, dual-write, `ci` profile, "
             f"seeds 0..{args.seeds - 1}; medians over the seeds. Targets: detected ≤ 30 s; shrunk ≤ 3 lines.", "",
             "| defect | first detection (s) | shrunk after (s) | programs checked | shrunk lines | caught on |",
             "|---|---|---|---|---|---|"]
    examples = []
    for defect in sorted(DEFECTS):
        config = StackConfig(candidate_defects=(defect,), executor_timeout_s=5.0, retry_backoff_s=0.5, flower=False,
                             fault_proxy=False)
        firsts, totals, programs, sizes, fields = [], [], [], [], set()
        with ProcessesStack(config, RunFolder.create()) as stack, Dispatcher(stack.endpoints.gateway) as dispatcher:
            for seed in range(args.seeds):
                session = ParitySession(dispatcher, ParityConfig.load(), config.executor_output_bytes, DUAL)
                started = time.monotonic()
                outcome = search(session, profile="ci", seed=seed, budget=400, database=False)
                total = time.monotonic() - started
                if outcome.failure is None or outcome.first_failure_s is None:
                    firsts.append(float("inf"))
                    continue
                firsts.append(outcome.first_failure_s)
                totals.append(total)
                programs.append(outcome.programs)
                sizes.append(len(outcome.failure.code.splitlines()))
                fields.update(outcome.failure.comparison.differing or outcome.failure.comparison.candidate_wrong)
                if seed == 0:
                    examples.append((defect, outcome.failure.code))
                print(defect, seed, f"first {outcome.first_failure_s:.1f}s total {total:.1f}s lines {sizes[-1]}",
                      flush=True)
        caught = sum(f != float("inf") for f in firsts)
        lines.append(f"| {defect} | {statistics.median(firsts):.1f} (max {max(firsts):.1f}) | "
                     f"{statistics.median(totals):.1f} | {statistics.median(programs):.0f} | "
                     f"{statistics.median(sizes):.0f} (max {max(sizes)}) | {', '.join(sorted(fields))} "
                     f"({caught}/{args.seeds} seeds) |" if totals else f"| {defect} | missed | | | | |")
    lines += ["", "Shrunk programs (seed 0):", ""]
    for defect, code in examples:
        lines += [f"- `{defect}`:", "", "  ```", *("  " + line[:120] for line in code.splitlines()), "  ```"]
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
