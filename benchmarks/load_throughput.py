"""The gateway's submit throughput, and each path's end-to-end throughput at saturation, with Locust.

Two phases on the processes stack (platform defaults: 2 legacy workers over executor-1/2, one
Celery worker × 2 on executor-3, executor concurrency 4), every run through ``run_headless`` (Locust
in a subprocess, the default program mix, closed loop with no think time):

1. **submit**: ``SubmitOnlyUser`` (``mode="submit"``) against a stack whose legacy and Celery workers
   are paused (SIGSTOP), so the backlog costs no CPU and the gateway (FastAPI + both Redis) is what is
   measured: at ``--submit-users`` users with the gateway's 50/50 split, then at the largest count
   with the route forced to each path (a Celery submission also publishes to the broker);
2. **end to end**: ``InteractiveUser``/``BatchUser`` following every evaluation, with the route
   forced to legacy, then to Celery, then the 50/50 split, at ``--e2e-users`` users: enough that
   the queue never empties, so completions per second is the path's capacity and E2E latency is
   mostly queueing (Little's law: latency ≈ users / throughput).

Throughput and the exact p50/p95/p99 come from the per-request rows of the steady window only
(``--warmup`` seconds after the first request until the run time ends), so the ramp-up and the
drain after the run time do not count. Each measurement is repeated ``--repeat`` times; the table
shows the median and every run. The 1-minute load average is recorded per run: on a shared 2-core
machine, other work moves these numbers a lot.

Usage: ``.venv/bin/python benchmarks/load_throughput.py [--repeat 2] [--duration 30] [--e2e-duration 45]``;
writes ``benchmarks/results/load_throughput.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness.load.runner import REQUESTS_FILE, load_dir, run_headless
from harness.run import RunFolder
from harness.stack.config import StackConfig
from harness.stack.processes import ProcessesStack

RESULTS = Path(__file__).parent / "results" / "load_throughput.md"
WORKERS = ("legacy-worker-1", "legacy-worker-2", "celery-worker-1")


@dataclass(frozen=True)
class Measure:
    label: str
    name: str  # submit, legacy, celery
    per_s: float
    p50: float
    p95: float
    p99: float
    n: int
    failures: int
    unfinished: int  # still in flight when the run stopped (after the stop timeout)
    load_avg: float
    locust_cpu_warning: bool


def steady(folder: Path, request_type: str, name: str, *, warmup_s: float, duration_s: float,
           batch: bool | None = None) -> tuple[float, ...]:
    """(per second, p50, p95, p99, n, failures, unfinished) of ``name`` over the steady window of one run.

    ``unfinished`` counts, over the whole run, the evaluations still in flight when it stopped.

    ``batch``: only batch (True) or only interactive (False) submissions; None: both.
    """
    rows = pd.read_parquet(folder / REQUESTS_FILE)
    t0 = rows["time"].min()
    start, end = t0 + pd.Timedelta(seconds=warmup_s), t0 + pd.Timedelta(seconds=duration_s)
    picked = rows[(rows["request_type"] == request_type) & (rows["name"] == name)
                  & (rows["end_time"] >= start) & (rows["end_time"] < end)]
    left = rows[(rows["request_type"] == request_type) & (rows["name"] == name) & (rows["status"] == "unfinished")]
    if batch is not None:
        picked = picked[picked["batch"] == batch]
        left = left[left["batch"] == batch]
    picked = picked[picked["status"].fillna("") != "unfinished"]
    ok = picked.loc[picked["ok"], "response_time_ms"]
    window = (end - start).total_seconds()
    if ok.empty:
        return 0.0, float("nan"), float("nan"), float("nan"), 0, int((~picked["ok"]).sum()), len(left)
    return (len(ok) / window, float(ok.quantile(0.5)), float(ok.quantile(0.95)), float(ok.quantile(0.99)),
            len(ok), int((~picked["ok"]).sum()), len(left))


def one_run(gateway: str, folder: Path, label: str, wanted: list[tuple[str, str, bool | None]], *, users: int,
            duration_s: float, warmup_s: float, **options: Any) -> list[Measure]:
    run_headless(gateway, folder, users=users, spawn_rate=users, duration_s=duration_s, think_time_s=0.0,
                 stop_timeout_s=10.0, **options)
    load_avg = os.getloadavg()[0]
    warned = "CPU usage above" in (load_dir(folder) / "locust.log").read_text(errors="replace")
    found = []
    for request_type, name, batch in wanted:
        per_s, p50, p95, p99, n, failures, left = steady(folder, request_type, name, warmup_s=warmup_s,
                                                         duration_s=duration_s, batch=batch)
        name = name + {None: "", True: " (batch)", False: " (interactive)"}[batch]
        found.append(Measure(label, name, per_s, p50, p95, p99, int(n), int(failures), int(left), load_avg, warned))
        print(f"  {label:<34} {name:<20} {per_s:7.1f}/s  p50 {p50:7.1f}  p95 {p95:7.1f}  p99 {p99:7.1f} ms  "
              f"n {n:5d}  failures {failures}  unfinished {left}  load {load_avg:.1f}{'  LOCUST CPU WARNING' if warned else ''}",
              flush=True)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per submit run")
    parser.add_argument("--e2e-duration", type=float, default=45.0, help="seconds per end-to-end run")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--submit-users", default="4,16,64")
    parser.add_argument("--e2e-users", type=int, default=16)
    args = parser.parse_args()
    submit_users = [int(x) for x in args.submit_users.split(",")]
    run = RunFolder.create()
    measures: list[Measure] = []
    started = dt.datetime.now()
    print(f"run folder {run.path}", flush=True)

    print("phase 1: the gateway alone (queue workers paused)", flush=True)
    with ProcessesStack(StackConfig(), RunFolder.create(run.path, "stack-submit")) as stack:
        for worker in WORKERS:
            stack.component(worker).pause()
        gateway = stack.endpoints.gateway
        plans: list[tuple[int, str | None]] = [(u, None) for u in submit_users]
        plans += [(max(submit_users), "legacy"), (max(submit_users), "celery")]
        for r in range(args.repeat):
            for users, route in plans:
                label = f"submit, {users} users, " + (f"route {route}" if route else "split 50/50")
                measures += one_run(gateway, run.path / f"submit-u{users}-{route or 'split'}-r{r}", label,
                                    [("POST", "submit", None)], users=users, duration_s=args.duration,
                                    warmup_s=args.warmup, mode="submit", route=route)
        for worker in WORKERS:
            stack.component(worker).resume()

    print("phase 2: end to end, per path, at saturation", flush=True)
    with ProcessesStack(StackConfig(), RunFolder.create(run.path, "stack-e2e")) as stack:
        gateway = stack.endpoints.gateway
        routes: list[str | None] = ["legacy", "celery", None]
        for r in range(args.repeat):
            for route in routes:
                label = f"E2E, {args.e2e_users} users, " + (f"route {route}" if route else "split 50/50")
                names = [route] if route else ["legacy", "celery"]
                measures += one_run(gateway, run.path / f"e2e-{route or 'split'}-r{r}", label,
                                    [("E2E", n, b) for n in names for b in (None, False, True)]
                                    + [("POST", "submit", None)], users=args.e2e_users,
                                    duration_s=args.e2e_duration, warmup_s=args.warmup, route=route)
    write_results(measures, args, started, run.path)
    print(f"wrote {RESULTS}")


def write_results(measures: list[Measure], args: argparse.Namespace, started: dt.datetime, run_path: Path) -> None:
    groups: dict[tuple[str, str], list[Measure]] = {}
    for m in measures:
        groups.setdefault((m.label, m.name), []).append(m)
    lines = [
        "# Load throughput: the gateway's submissions and each path end to end, at saturation",
        "",
        f"Measured {started:%Y-%m-%d %H:%M} on this machine ({os.cpu_count()} cores, shared with other work: "
        "the 1-minute load average at the end of each run is in the last column), processes stack with the "
        "platform's defaults, Locust 2.47 in a subprocess (`harness.load.run_headless`), closed loop, no think time, "
        f"the default program mix. {args.repeat} runs per line; throughput and exact percentiles over the steady "
        f"window ({args.warmup:g} s after the first request until the run time ends: {args.duration:g} s per "
        f"submit run, {args.e2e_duration:g} s per end-to-end run). Raw rows: `{run_path}`.",
        "",
        "| measure | request | per second (median; runs) | p50 ms | p95 ms | p99 ms | n | failures | unfinished at end "
        "| load avg |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (label, name), ms in groups.items():
        med = statistics.median
        runs = ", ".join(f"{m.per_s:.1f}" for m in ms)
        lines.append(f"| {label} | {name} | **{med(m.per_s for m in ms):.1f}** ({runs}) | {med(m.p50 for m in ms):.0f} "
                     f"| {med(m.p95 for m in ms):.0f} | {med(m.p99 for m in ms):.0f} | {sum(m.n for m in ms)} "
                     f"| {sum(m.failures for m in ms)} | {sum(m.unfinished for m in ms)} "
                     f"| {', '.join(f'{m.load_avg:.1f}' for m in ms)} |")
    warned = sorted({m.label for m in measures if m.locust_cpu_warning})
    lines += ["", "Locust warned about its own CPU (above 90 %) in: " + (", ".join(warned) if warned else "no run") + "."]
    RESULTS.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
