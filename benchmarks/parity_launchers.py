"""One parity run of the ``ci`` profile on the containers stack and on the processes stack, side by side.

For each launcher: start the stack (images cached), run the dual-write parity search with the ``ci``
profile and a fixed seed (the same programs on both), stop the stack. Reported: start, programs
checked, parity time, checks per second, stop. Needs a Docker engine (``scripts/prepare-docker.sh``).

Usage: ``.venv/bin/python benchmarks/parity_launchers.py [--programs 200]``; writes
``benchmarks/results/parity_launchers.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path
from typing import Any

from harness.parity.compare import ParityConfig
from harness.parity.dispatch import DUAL, Dispatcher
from harness.parity.suite import ParitySession, register_profiles, search
from harness.run import RunFolder
from harness.stack.config import StackConfig
from harness.stack.containers import ContainersStack
from harness.stack.processes import ProcessesStack

RESULTS = Path(__file__).parent / "results" / "parity_launchers.md"


def one(launcher: Any, programs: int) -> dict[str, Any]:
    config = StackConfig(executor_timeout_s=5.0, retry_backoff_s=0.5)
    stack = launcher(config, RunFolder.create())
    started = time.monotonic()
    stack.start()
    start_s = time.monotonic() - started
    try:
        with Dispatcher(stack.endpoints.gateway) as dispatcher:
            session = ParitySession(dispatcher, ParityConfig.load(), config.executor_output_bytes, DUAL)
            outcome = search(session, profile="ci", seed=0, budget=programs, database=False)
    finally:
        stopping = time.monotonic()
        stack.stop()
        stop_s = time.monotonic() - stopping
    return {"start_s": start_s, "programs": len(session.checks), "parity_s": session.elapsed_s,
            "search_s": outcome.elapsed_s, "failing": sum(c.failing for c in session.checks), "stop_s": stop_s}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--programs", type=int, default=200)
    args = parser.parse_args()
    register_profiles()
    rows = {"processes": one(ProcessesStack, args.programs), "containers": one(ContainersStack, args.programs)}
    lines = ["# Parity, `ci` profile: containers stack vs processes stack", "",
             f"Measured {dt.date.today()} on this machine (2 cores), dual-write, seed 0, budget {args.programs} "
             "programs, one run each, images cached.", "",
             "| launcher | start | programs | parity time | checks/s | failing | stop |", "|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['start_s']:.2f} s | {r['programs']} | {r['parity_s']:.1f} s | "
                     f"{r['programs'] / r['parity_s']:.1f} | {r['failing']} | {r['stop_s']:.2f} s |")
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
