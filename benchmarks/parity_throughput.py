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

The same is measured for several maximum batch sizes (``--batch-sizes``), interleaved.

Usage: ``.venv/bin/python benchmarks/parity_throughput.py [--programs 150] [--repeat 3]``; writes
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
from harness.parity.suite import BATCH_SIZE, ParitySession, register_profiles, search
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


def measure(stack: ProcessesStack, config: StackConfig, dispatcher: Dispatcher, *, programs: int, seed: int,
            batch_size: int) -> dict[str, float]:
    """One parity search and the same programs straight to the executors; one row."""
    assert stack.endpoints is not None
    ex = stack.endpoints.executors
    session = ParitySession(dispatcher, ParityConfig.load(), config.executor_output_bytes, DUAL)
    outcome = search(session, profile="ci", budget=programs, seed=seed, database=False, batch_size=batch_size)
    subs = [(s.code, s.language, s.timeout_s) for s in (session.submission(c.program) for c in session.checks)]
    subs.sort(key=lambda s: s[2] is None)  # the same longest-first order the dispatcher uses
    times: dict[str, float] = {}

    def side(name: str, urls: list[str], concurrency: int) -> None:
        times[name] = direct(urls, subs, concurrency, name)

    sides = [
        threading.Thread(target=side, args=("legacy", [ex["executor-1"], ex["executor-2"]], config.legacy_workers)),
        threading.Thread(target=side, args=("celery", [ex["executor-3"]],
                                            config.celery_workers * config.celery_concurrency)),
    ]
    started = time.monotonic()
    for t in sides:
        t.start()
    for t in sides:
        t.join()
    limit = time.monotonic() - started
    return {"batch": batch_size, "seed": seed, "programs": len(session.checks), "examples": outcome.examples,
            "parity_s": session.elapsed_s, "search_s": outcome.elapsed_s, "limit_s": limit,
            "failures": sum(c.failing for c in session.checks)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--programs", type=int, default=150)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch-sizes", default="32,48",
                        help=f"comma-separated maximum batch sizes to compare (the ci profile's is {BATCH_SIZE['ci']})")
    args = parser.parse_args()
    sizes = [int(x) for x in args.batch_sizes.split(",")]
    register_profiles()
    config = StackConfig(executor_timeout_s=5.0, retry_backoff_s=0.5, flower=False)
    rows: list[dict[str, float]] = []
    with ProcessesStack(config, RunFolder.create()) as stack:
        assert stack.endpoints is not None
        with Dispatcher(stack.endpoints.gateway, default_timeout_s=config.executor_timeout_s) as dispatcher:
            for seed in range(args.repeat):  # interleaved, so drift on a noisy machine hits every size alike
                for size in sizes:
                    rows.append(measure(stack, config, dispatcher, programs=args.programs, seed=seed,
                                        batch_size=size))
                    print(rows[-1], flush=True)
    ci = [r for r in rows if r["batch"] == BATCH_SIZE["ci"]] or rows
    med = {k: statistics.median(r[k] for r in ci) for k in ("programs", "parity_s", "search_s", "limit_s")}
    ratios = [r["parity_s"] / r["limit_s"] for r in ci]
    lines = [
        "# Parity throughput vs the executors' limit",
        "",
        f"Measured {dt.date.today()} on this machine (2 cores), processes stack, dual-write, "
        f"{args.repeat} runs of about {args.programs} generated programs per batch size (seeds 0..{args.repeat - 1}, "
        "sizes interleaved); medians. Concurrency: legacy 2 workers, Celery 1 worker × 2. The generator is the",
        "edge-covering one (`harness/generate/strategies.py`: volumes on both streams, files, stdin, background",
        "children, environment reports, endings near the 1 s deadline in about one program in six).",
        "",
        f"## The `ci` profile (batches of at most {BATCH_SIZE['ci']} programs)",
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
        "## By maximum batch size",
        "",
        "Every Hypothesis example is one batch and ends at a barrier (its slowest program), so the executors",
        "idle at the end of each batch; larger batches idle less. (Shrinking works on the failing program alone,",
        "so the batch size does not slow it.)",
        "",
        "| max batch | programs per example | checks per second | ratio parity / limit (median) | runs |",
        "|---:|---:|---:|---:|---|",
    ]
    for size in sizes:
        mine = [r for r in rows if r["batch"] == size]
        rs = [r["parity_s"] / r["limit_s"] for r in mine]
        per_example = statistics.median(r["programs"] / max(r["examples"], 1) for r in mine)
        per_s = statistics.median(r["programs"] / r["parity_s"] for r in mine)
        lines.append(f"| {size} | {per_example:.1f} | {per_s:.1f} | {statistics.median(rs):.2f} | "
                     f"{', '.join(f'{r:.2f}' for r in rs)} |")
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
