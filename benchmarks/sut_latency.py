"""Latency of one ``print(1)`` evaluation through each path, and the executor's own overhead.

Measured side by side in one run on the processes stack, one evaluation at a time (no queueing):

- end to end per path: client-observed time from ``POST /api/eval`` to the long-poll returning a
  terminal record, for ``route=legacy`` and ``route=celery``;
- the executor: ``POST /execute`` round trip straight to executor-1, the sandbox's own
  ``duration_ms`` for the same run, and a bare ``subprocess.run([python, '-c', 'print(1)'])`` from
  this process, so the executor's overhead over a plain subprocess is visible.

Usage: ``.venv/bin/python benchmarks/sut_latency.py [--n 50]``; writes
``benchmarks/results/sut_latency.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

from harness.stack.config import StackConfig
from harness.stack.processes import ProcessesStack
from system_under_test.executor.sandbox import default_python

RESULTS = Path(__file__).parent / "results" / "sut_latency.md"


def ms(samples: list[float]) -> str:
    qs = statistics.quantiles(samples, n=20)
    return f"{statistics.median(samples):7.1f} ms  (p95 {qs[18]:6.1f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50)
    n = parser.parse_args().n
    session = requests.Session()
    rows: dict[str, list[float]] = {}
    with ProcessesStack(StackConfig(flower=False)) as stack:
        assert stack.endpoints is not None
        gw = stack.endpoints.gateway
        ex = stack.endpoints.executors["executor-1"]
        for _ in range(5):  # warm-up: imports, connections, first forks
            for route in ("legacy", "celery"):
                eid = session.post(f"{gw}/api/eval", json={"code": "print(1)", "language": "python",
                                                          "route": route}).json()["eval_id"]
                session.get(f"{gw}/api/eval/{eid}", params={"wait": 20})
        for i in range(n):
            for route in (("legacy", "celery") if i % 2 == 0 else ("celery", "legacy")):
                t0 = time.perf_counter()
                eid = session.post(f"{gw}/api/eval", json={"code": "print(1)", "language": "python",
                                                          "route": route}).json()["eval_id"]
                record = session.get(f"{gw}/api/eval/{eid}", params={"wait": 20}).json()
                rows.setdefault(f"end to end, {route}", []).append((time.perf_counter() - t0) * 1000)
                assert record["done"] and record["results"][route]["output"] == "1\n", record
            t0 = time.perf_counter()
            body = session.post(f"{ex}/execute", json={"eval_id": f"bench-{i}", "code": "print(1)",
                                                       "language": "python"}).json()
            rows.setdefault("executor POST /execute round trip", []).append((time.perf_counter() - t0) * 1000)
            rows.setdefault("sandbox duration_ms (inside the executor)", []).append(body["duration_ms"])
            python = default_python(for_other_users=os.geteuid() == 0)
            t0 = time.perf_counter()
            subprocess.run([python, "-I", "-B", "-c", "print(1)"], capture_output=True, check=True)
            rows.setdefault("bare subprocess python -c print(1)", []).append((time.perf_counter() - t0) * 1000)
    medians = {k: statistics.median(v) for k, v in rows.items()}
    lines = [
        "# One `print(1)` evaluation through each path", "",
        f"Measured {dt.date.today()} on this machine (2 cores, noisy), processes stack, n = {n} per row,",
        "one evaluation at a time, legacy and celery interleaved. Median (p95).", "",
        "| measurement | median (p95) |", "|---|---|",
    ]
    lines += [f"| {k} | {ms(v).strip()} |" for k, v in rows.items()]
    overhead = medians["executor POST /execute round trip"] - medians["bare subprocess python -c print(1)"]
    lines += ["",
              f"- executor overhead over a bare subprocess: {overhead:.1f} ms per execution (median difference)",
              f"- queue overhead, legacy: {medians['end to end, legacy'] - medians['executor POST /execute round trip']:.1f} ms;"
              f" celery: {medians['end to end, celery'] - medians['executor POST /execute round trip']:.1f} ms"
              " (end to end minus the executor round trip)",
              f"- ratio celery / legacy end to end: {medians['end to end, celery'] / medians['end to end, legacy']:.2f}",
              "", f"Command: `{sys.executable} benchmarks/sut_latency.py --n {n}`"]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
