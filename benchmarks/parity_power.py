"""Time to detect each candidate defect, and the size of the shrunk program.

For every candidate defect of the Celery path (``system_under_test/defects.py``: one or more per
edge family of the parity surface, and the environment), alone, on a processes stack of its own,
``--seeds`` searches as ``pytest -m parity`` runs them (``ci`` profile, dual-write): the seconds from
the start of the search to the first failing check (detection), the seconds until the failure is
shrunk and confirmed (the search ends), the programs checked, and the shrunk program (lines, the
code, the fields it was caught on). Targets: caught within 60 s of the search starting (median over
the seeds); shrunk to at most 3 lines.

Usage: ``.venv/bin/python benchmarks/parity_power.py [--seeds 3] [--defects a,b]``; writes
``benchmarks/results/parity_power.md`` (with ``--defects``, only prints).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from pathlib import Path

from harness.parity.compare import ParityConfig
from harness.parity.dispatch import DUAL, Dispatcher
from harness.parity.suite import SHRINK_S, ParitySession, register_profiles, search
from harness.run import RunFolder
from harness.stack.config import StackConfig
from harness.stack.processes import ProcessesStack
from system_under_test.defects import DEFECTS

RESULTS = Path(__file__).parent / "results" / "parity_power.md"


def measure(defect: str, seeds: int) -> dict[str, object]:
    config = StackConfig(candidate_defects=(defect,), executor_timeout_s=5.0, retry_backoff_s=0.5, flower=False,
                         fault_proxy=False, legacy_workers=2)
    firsts: list[float] = []
    totals: list[float] = []
    programs: list[int] = []
    sizes: list[int] = []
    fields: set[str] = set()
    example = ""
    with ProcessesStack(config, RunFolder.create()) as stack, \
            Dispatcher(stack.endpoints.gateway, default_timeout_s=config.executor_timeout_s) as dispatcher:
        for seed in range(seeds):
            session = ParitySession(dispatcher, ParityConfig.load(), config.executor_output_bytes, DUAL)
            started = time.monotonic()
            outcome = search(session, profile="ci", seed=seed, budget=400, database=False)
            total = time.monotonic() - started
            failure = outcome.failure
            if failure is None or outcome.first_failure_s is None:
                firsts.append(float("inf"))
                print(f"{defect} seed {seed}: MISSED after {total:.0f} s, {outcome.programs} programs", flush=True)
                continue
            firsts.append(outcome.first_failure_s)
            totals.append(total)
            programs.append(outcome.programs)
            sizes.append(len(failure.code.splitlines()))
            fields.update(failure.comparison.differing or failure.comparison.candidate_wrong)
            example = example or failure.code
            print(f"{defect} seed {seed}: first {outcome.first_failure_s:.1f} s, shrunk {total:.1f} s, "
                  f"{outcome.programs} programs, {sizes[-1]} lines: {failure.headline}", flush=True)
    return {"defect": defect, "family": DEFECTS[defect].family, "firsts": firsts, "totals": totals,
            "programs": programs, "sizes": sizes, "fields": fields, "example": example}


def row(m: dict[str, object]) -> str:
    firsts, totals = m["firsts"], m["totals"]
    assert isinstance(firsts, list) and isinstance(totals, list)
    if not totals:
        return f"| {m['defect']} | {m['family']} | missed | | | | | |"
    caught = sum(f != float("inf") for f in firsts)
    sizes, programs, fields = m["sizes"], m["programs"], m["fields"]
    assert isinstance(sizes, list) and isinstance(programs, list) and isinstance(fields, set)
    return (f"| {m['defect']} | {m['family']} | {statistics.median(firsts):.1f} (max {max(firsts):.1f}) | "
            f"{statistics.median(totals):.1f} (max {max(totals):.1f}) | {statistics.median(programs):.0f} | "
            f"{statistics.median(sizes):.0f} (max {max(sizes)}) | {', '.join(sorted(fields))} | "
            f"{caught}/{len(firsts)} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--defects", default="", help="comma-separated defects (default: every one)")
    args = parser.parse_args()
    register_profiles()
    names = [d for d in args.defects.split(",") if d] or sorted(DEFECTS, key=lambda d: (DEFECTS[d].family, d))
    measured = [measure(d, args.seeds) for d in names]
    lines = ["# Power check: time to catch each candidate defect, and the shrunk program", "",
             f"Measured {dt.date.today()} on this machine (2 cores, shared with other work), processes stack, "
             f"dual-write, `ci` profile, seeds 0..{args.seeds - 1}, one stack per defect; medians over the seeds. "
             f"Caught: seconds from the start of the search to the first failing check. Shrunk: seconds until "
             f"the search ends with its shrunk, re-sent and confirmed failure (shrinking stops after "
             f"{SHRINK_S:.0f} s). Targets: caught within 60 s; shrunk to at most 3 lines.", "",
             "| defect | edge family | caught (s) | shrunk (s) | programs | shrunk lines | caught on | seeds |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [row(m) for m in measured]
    lines += ["", "Shrunk programs (first seed that caught it):", ""]
    for m in measured:
        lines += [f"- `{m['defect']}` ({m['family']}):", "", "  ```",
                  *("  " + line[:120] for line in str(m["example"]).splitlines()), "  ```"]
    text = "\n".join(lines) + "\n"
    if not args.defects:
        RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
