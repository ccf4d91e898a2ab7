"""Parity checks per second on the processes stack, and the ratio to the limit the executors set.

One run, side by side:

1. the parity search (``ci`` profile's batch size, dual-write, Hypothesis generating and checking)
   until ``--programs`` programs are checked; its time counts dispatching and waiting only
   (``session.elapsed_s``), and the whole search's wall time is reported too;
2. the very same programs sent straight to the executors with the same concurrency as the queues
   have (legacy: ``legacy_workers`` at a time over executor-1/2; Celery: ``celery_workers ×
   celery_concurrency`` at a time on executor-3; both sides at once, as dual-write does), with no
   batches: the executors' limit for this work.

ratio = parity time / executor-limited time (target ≤ 1.5).

Usage: ``.venv/bin/python benchmarks/parity_throughput.py [--programs 200] [--repeat 3]``; writes
``benchmarks/results/parity_throughput.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from harness.parity.compare import ParityConfig
from harness.parity.dispatch import DUAL, Dispatcher
from harness.parity.suite import ParitySession, register_profiles, search
from harness.run import RunFolder
from harness.stack.config import StackConfig
from harness.stack.processes import ProcessesStack

RESULTS = Path(__file__).parent / "results" / "parity_throughput.md"


def direct(urls: list[str], subs: list[tuple[str, str, float | None]], concurrency: int, path: str) -> float:
    """Run every submission on ``urls`` (round-robin), ``concurrency`` at a time; return the wall time."""
    local = threading.local()
    rr = itertools.cycle(urls)
    lock = threading.Lock()

    def one(sub: tuple[str, str, float | None]) -> None:
        session = getattr(local, "s", None) or requests.Session()
        local.s = session
        with lock:
            url = next(rr)
        resp = session.post(f"{url}/execute", json={"eval_id": uuid.uuid4().hex, "code": sub[0], "language": sub[1],
                                                    "timeout_s": sub[2], "attempt": 1, "path": path}, timeout=60)
        resp.raise_for_status()

    started = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, subs))
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--programs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    register_profiles()
    config = StackConfig(executor_timeout_s=5.0, retry_backoff_s=0.5, flower=False)
    rows = []
    with ProcessesStack(config, RunFolder.create()) as stack:
        assert stack.endpoints is not None
        ex = stack.endpoints.executors
        with Dispatcher(stack.endpoints.gateway) as dispatcher:
            for i in range(args.repeat):
                session = ParitySession(dispatcher, ParityConfig.load(), config.executor_output_bytes, DUAL)
                outcome = search(session, profile="ci", budget=args.programs, seed=i, database=False)
                subs = [(s.code, s.language, s.timeout_s) for s in (session.submission(c.spec) for c in session.checks)]
                subs.sort(key=lambda s: s[2] is None)  # the same longest-first order the dispatcher uses
                times: dict[str, float] = {}

                def side(name: str, urls: list[str], concurrency: int,
                         subs: list[tuple[str, str, float | None]] = subs, times: dict[str, float] = times) -> None:
                    times[name] = direct(urls, subs, concurrency, name)

                sides = [
                    threading.Thread(target=side, args=("legacy", [ex["executor-1"], ex["executor-2"]],
                                                        config.legacy_workers)),
                    threading.Thread(target=side, args=("celery", [ex["executor-3"]],
                                                        config.celery_workers * config.celery_concurrency)),
                ]
                started = time.monotonic()
                for t in sides:
                    t.start()
                for t in sides:
                    t.join()
                limit = time.monotonic() - started
                rows.append({"programs": len(session.checks), "examples": outcome.examples,
                             "parity_s": session.elapsed_s, "search_s": outcome.elapsed_s, "limit_s": limit,
                             "failures": sum(c.failing for c in session.checks)})
                print(rows[-1], flush=True)
    med = {k: statistics.median(r[k] for r in rows) for k in ("programs", "parity_s", "search_s", "limit_s")}
    ratios = [r["parity_s"] / r["limit_s"] for r in rows]
    lines = [
        "# Parity throughput vs the executors' limit",
        "",
        f"Measured {dt.date.today()} on this machine (2 cores), processes stack, dual-write, `ci` batch size, "
        f"{args.repeat} runs of about {args.programs} generated programs each (seeds 0..{args.repeat - 1}); "
        "medians. Concurrency: legacy 2 workers, Celery 1 worker × 2.",
        "",
        "| measure | median |",
        "|---|---|",
        f"| programs per run | {med['programs']:.0f} |",
        f"| parity time (dispatch + wait, both paths) | {med['parity_s']:.1f} s |",
        f"| whole search incl. Hypothesis generation | {med['search_s']:.1f} s |",
        f"| same programs straight to the executors, same concurrency | {med['limit_s']:.1f} s |",
        f"| parity checks per second | {med['programs'] / med['parity_s']:.1f} |",
        f"| executor-limited programs per second | {med['programs'] / med['limit_s']:.1f} |",
        f"| **ratio parity / limit** (target ≤ 1.5) | **{statistics.median(ratios):.2f}** "
        f"(runs: {', '.join(f'{r:.2f}' for r in ratios)}) |",
        "",
        "Per run: " + "; ".join(f"{r['programs']} programs, {r['parity_s']:.1f} s vs {r['limit_s']:.1f} s"
                               for r in rows),
    ]
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
