"""Cold start of the processes stack to all-healthy, and full teardown: median of N runs.

Each run starts the default stack (both Redis, three executors, two legacy workers, one Celery
worker, the gateway, Flower and the fault proxy with its links), records when each component became
healthy (seconds since the spawn), then stops everything and times the teardown. Targets from the
issue: start <= 4 s, teardown <= 2 s on this machine.

Usage: ``.venv/bin/python benchmarks/stack_startup.py [--runs 5]``; writes
``benchmarks/results/stack_startup.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

from harness.run import RunFolder
from harness.stack.config import StackConfig
from harness.stack.processes import ProcessesStack

RESULTS = Path(__file__).parent / "results" / "stack_startup.md"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    starts: list[float] = []
    stops: list[float] = []
    per_component: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(runs):
            stack = ProcessesStack(StackConfig(), RunFolder.create(Path(tmp)))
            t0 = time.monotonic()
            stack.start()
            starts.append(time.monotonic() - t0)
            for name, seconds in stack.startup_s.items():
                per_component.setdefault(name, []).append(seconds)
            t1 = time.monotonic()
            stack.stop()
            stops.append(time.monotonic() - t1)
    lines = [
        "# Processes stack: cold start to all-healthy, and teardown", "",
        f"Measured {dt.date.today()} on this machine (2 cores, noisy), {runs} runs, default StackConfig "
        f"({len(per_component)} components).", "",
        f"- **start: median {statistics.median(starts):.2f} s** (runs: {', '.join(f'{s:.2f}' for s in starts)}); target <= 4 s",
        f"- **teardown: median {statistics.median(stops):.2f} s** (runs: {', '.join(f'{s:.2f}' for s in stops)}); target <= 2 s",
        "", "Breakdown: seconds from the spawn of all processes until each component was seen healthy "
        "(components start in parallel, so these overlap; the slowest sets the start time).", "",
        "| component | median healthy after |", "|---|---|",
    ]
    lines += [f"| {name} | {statistics.median(v):.2f} s |" for name, v in per_component.items()]
    lines += ["", f"Command: `.venv/bin/python benchmarks/stack_startup.py --runs {runs}`"]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
