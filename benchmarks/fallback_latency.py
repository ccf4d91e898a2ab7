"""What phase 2's fallback costs a submission: the answer time when the Celery broker is unreachable, per
fallback mode, and what the safe mode's exactly-once claim costs when nothing fails.

On one processes stack (one legacy worker, no Flower), through the real gateway:

- ``broker down``: a publish with the link up first, then the ``gateway-celery-redis`` link disabled on
  the fault proxy and two submissions forced to Celery, one after the other: the partition's first
  submission, and a later one (the same partition, no successful publish in between). ``none`` answers
  503 (rolled back), ``naive`` and ``safe`` 201 with ``routes: ["legacy"]``.
- ``broker down, first publish``: the same, right after the gateway was restarted (healthy, then the
  link disabled): its first publish also connects Celery's result consumer, which retries before it
  gives up. Naive mode only (the modes do not differ before the publish fails); fewer rounds, each
  costs a gateway restart and the retries.
- ``broker up``: a submission forced to Celery with the link up: the time to the 201, and to the
  evaluation's completion (``?wait=``), with ``none`` and ``safe`` (the gateway marks the record, the
  task reads the mark and claims the evaluation: one HGET and one SET more).

Rounds are interleaved and the mode order within a round shuffled (seeded); the table reports medians
and the spread (min..max). Writes ``benchmarks/results/fallback_latency.md``.
Run: ``.venv/bin/python benchmarks/fallback_latency.py [--rounds 5] [--cold 3] [--seed 0]``.
The stack is stopped in ``finally`` (its ``with`` block).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from harness.run import RunFolder  # noqa: E402
from harness.stack.config import StackConfig  # noqa: E402
from harness.stack.processes import ProcessesStack  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
ADMIN: dict[str, str] = {}  # set from the stack's config (its token is random per stack)
LINK = "gateway-celery-redis"
CODE = {"code": "print(1)", "language": "python", "route": "celery"}


def link(stack: ProcessesStack, enabled: bool) -> None:
    requests.post(f"{stack.endpoints.proxy_api}/proxies/{LINK}", json={"enabled": enabled},
                  timeout=5).raise_for_status()


def mode(stack: ProcessesStack, fallback: str) -> None:
    requests.put(stack.endpoints.gateway + "/api/admin/split", json={"fallback": fallback}, headers=ADMIN,
                 timeout=5).raise_for_status()


def timed_submit(stack: ProcessesStack) -> tuple[float, requests.Response]:
    t0 = time.perf_counter()
    resp = requests.post(stack.endpoints.gateway + "/api/eval", json=CODE, timeout=120)
    return (time.perf_counter() - t0) * 1000, resp


def expect(resp: requests.Response, status: int, routes: list[str] | None) -> None:
    if resp.status_code != status or (routes is not None and resp.json().get("routes") != routes):
        raise SystemExit(f"unexpected answer {resp.status_code} {resp.text[:300]}")


def measure(rounds: int, cold: int, seed: int) -> tuple[dict[str, list[float]], float]:
    rng = random.Random(seed)
    samples: dict[str, list[float]] = defaultdict(list)
    loads = []
    config = StackConfig.for_tests(legacy_workers=1, flower=False, seed=seed)
    ADMIN["Authorization"] = f"Bearer {config.admin_token}"
    with ProcessesStack(config, RunFolder.create()) as stack:
        expect(timed_submit(stack)[1], 201, ["celery"])  # connects the gateway's result consumer
        for _ in range(rounds):
            for fallback in rng.sample(["none", "naive", "safe"], 3):
                mode(stack, fallback)
                expect(timed_submit(stack)[1], 201, ["celery"])
                link(stack, False)
                try:
                    for which in ("first", "later"):
                        ms, resp = timed_submit(stack)
                        expect(resp, 503 if fallback == "none" else 201,
                               None if fallback == "none" else ["legacy"])
                        samples[f"broker down, {which} submission | {fallback}"].append(ms)
                finally:
                    link(stack, True)
            for fallback in rng.sample(["none", "safe"], 2):
                mode(stack, fallback)
                ms, resp = timed_submit(stack)
                expect(resp, 201, ["celery"])
                t0 = time.perf_counter()
                record = requests.get(f"{stack.endpoints.gateway}/api/eval/{resp.json()['eval_id']}",
                                      params={"wait": 30}, timeout=40).json()
                if not record["done"]:
                    raise SystemExit(f"not done in 30 s: {record}")
                samples[f"broker up, to 201 | {fallback}"].append(ms)
                samples[f"broker up, to done | {fallback}"].append(ms + (time.perf_counter() - t0) * 1000)
            loads.append(os.getloadavg()[0])
        mode(stack, "naive")
        gateway = stack.component("gateway")
        for _ in range(cold):
            gateway.restart()
            mode(stack, "naive")  # a restarted gateway starts with its environment's settings
            link(stack, False)
            try:
                ms, resp = timed_submit(stack)
            finally:
                link(stack, True)
            expect(resp, 201, ["legacy"])
            samples["broker down, first publish | naive"].append(ms)
    return samples, statistics.median(loads)


def table(samples: dict[str, list[float]]) -> list[str]:
    lines = ["| case | fallback | n | median ms | min..max ms |", "|---|---|---|---|---|"]
    for key, values in samples.items():
        case, fallback = key.split(" | ")
        lines.append(f"| {case} | {fallback} | {len(values)} | {statistics.median(values):.1f} | "
                     f"{min(values):.1f}..{max(values):.1f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cold", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    samples, load = measure(args.rounds, args.cold, args.seed)
    order = [f"broker down, {which} submission | {fallback}" for which in ("first", "later")
             for fallback in ("none", "naive", "safe")]
    order += ["broker down, first publish | naive",
             "broker up, to 201 | none", "broker up, to 201 | safe", "broker up, to done | none",
             "broker up, to done | safe"]
    out = [
        "# Fallback latency (benchmarks/fallback_latency.py)", "",
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} cores, median load "
        f"average {load:.1f} during the interleaved rounds; {args.rounds} rounds, {args.cold} cold publishes, "
        f"seed {args.seed}.", "",
        *table({k: samples[k] for k in order if k in samples}), "",
        "Broker down: after a publish with the link up, the `gateway-celery-redis` link disabled on the fault "
        "proxy (connections refused) and two submissions in a row, the partition's first and a later one; `none` "
        "answers 503, `naive`/`safe` 201 with routes `[\"legacy\"]`. First publish: right after a gateway "
        "restart, when the publish also connects Celery's result consumer. Broker up: forced to Celery, to the "
        "201 and to the record being done (long-poll).",
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "fallback_latency.md").write_text("\n".join(out) + "\n")
    print("\n".join(out))


if __name__ == "__main__":
    main()
