"""Does the gate decide, and decide the same way, on a busy machine?

Three cases, each on a processes stack of its own with a competing CPU load on one of the two cores
(a busy loop, as another job on a shared CI runner would be), the gate 50 % → 75 % against it
(``harness gate --stack-url``, sequential rounds, default ``--max-time``):

- ``unmodified``: the stack as shipped;
- ``slowed``: a latency toxic of ``--slow-ms`` (default 60 ms, six times the 10 ms tolerance) on the link
  from the Celery workers to executor-3 (``celery-executor-3``), both directions: queueing + delivery
  slow down on Celery only;
- ``defect``: the candidate defect ``--defect`` (default ``strip_trailing_blanks``: only programs whose
  output has a line ending in a blank differ, a small share of the mix) on the Celery path.

The runs interleave the cases (run 1 of each case, then run 2 of each, ...) so the machine's drift
affects them alike. Chaos is left out (``--collect parity,load``): its scenarios start stacks of their
own, are the same in every case and are not a sample; the time to verdict is that of the sampled
evidence. Per case: how many runs ended PASS / FAIL / INCONCLUSIVE, the median time to verdict, the
median number of looks, and each run's headline.

Usage: ``.venv/bin/python benchmarks/gate_decisiveness.py [--runs 5] [--cases unmodified,slowed,defect]``;
writes ``benchmarks/results/gate_decisiveness.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from harness.cli import main
from harness.run import RunFolder
from harness.stack.config import StackConfig
from harness.stack.opening import open_stack

RESULTS = Path(__file__).parent / "results" / "gate_decisiveness.md"
CASES = ("unmodified", "slowed", "defect")


@contextlib.contextmanager
def competing_load() -> Iterator[None]:
    """One busy loop: a whole core taken by another job."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        proc.kill()
        proc.wait()


def one_run(case: str, seed: int, slow_ms: float, defect: str) -> dict[str, object]:
    config = StackConfig.for_tests(celery_percentage=50, seed=seed,
                                   candidate_defects=(defect,) if case == "defect" else ())
    run = RunFolder.create()
    with competing_load(), open_stack("processes", config, run) as stack:
        gateway = stack.endpoints.gateway
        if case == "slowed":
            for stream in ("upstream", "downstream"):
                resp = requests.post(f"{stack.endpoints.proxy_api}/proxies/celery-executor-3/toxics", timeout=10,
                                     json={"name": f"slow-{stream}", "type": "latency", "stream": stream,
                                           "toxicity": 1.0, "attributes": {"latency": int(slow_ms / 2)}})
                if resp.status_code != 200:
                    raise SystemExit(f"the fault proxy refused the toxic: {resp.status_code} {resp.text}")
        started = time.monotonic()
        code = main(["gate", "--current", "50", "--target", "75", "--stack-url", gateway,
                     f"--admin-token={config.admin_token}", "--collect", "parity,load", "--seed", str(seed)])
        seconds = time.monotonic() - started
    if code not in (0, 1, 2):  # a usage or stack error: no verdict of this run to read
        return {"case": case, "seed": seed, "exit": code, "verdict": "ERROR", "seconds": seconds, "looks": 0,
                "stopped": f"exit {code}", "headline": "the gate did not run (see the log)", "folder": "", "noise": {}}
    folders = sorted(Path(run.path.parent).glob("*/verdict.json"), key=lambda p: p.stat().st_mtime)
    verdict = json.loads(folders[-1].read_text())
    return {"case": case, "seed": seed, "exit": code, "verdict": verdict["verdict"], "seconds": seconds,
            "looks": verdict.get("sequential", {}).get("rounds"), "stopped": verdict.get("sequential", {}).get("stopped"),
            "headline": verdict["headline"], "folder": str(folders[-1].parent),
            "noise": verdict.get("noise_floor", {})}


def write(rows: list[dict[str, object]], args: argparse.Namespace) -> str:
    lines = [f"# Gate decisiveness ({dt.date.today()})", "",
             f"`.venv/bin/python benchmarks/gate_decisiveness.py --runs {args.runs}` on this machine (2 cores), "
             "with a busy loop taking one core during every run; the gate 50 % → 75 % with its default "
             f"`--max-time`, parity and load evidence (chaos left out, see the module docstring). Slowed: "
             f"{args.slow_ms:g} ms of latency on `celery-executor-3`; defect: `{args.defect}`.", "",
             "| case | runs | PASS | FAIL | INCONCLUSIVE | error | median time to verdict | median looks |",
             "|---|---|---|---|---|---|---|---|"]
    for case in args.cases:
        mine = [r for r in rows if r["case"] == case]
        if not mine:
            continue
        count = {v: sum(1 for r in mine if r["verdict"] == v) for v in ("PASS", "FAIL", "INCONCLUSIVE", "ERROR")}
        lines.append(f"| {case} | {len(mine)} | {count['PASS']} | {count['FAIL']} | {count['INCONCLUSIVE']} | "
                     f"{count['ERROR']} | "
                     f"{statistics.median(float(str(r['seconds'])) for r in mine):.0f} s | "
                     f"{statistics.median(int(str(r['looks'] or 0)) for r in mine):g} |")
    lines += ["", "## Every run", "", "| case | seed | verdict | time | looks | stopped | headline |",
              "|---|---|---|---|---|---|---|"]
    for r in rows:
        headline = str(r["headline"]).replace("|", "/")
        lines.append(f"| {r['case']} | {r['seed']} | {r['verdict']} | {float(str(r['seconds'])):.0f} s | "
                     f"{r['looks']} | {r['stopped']} | {headline[:400]} |")
    return "\n".join(lines) + "\n"


def main_() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--slow-ms", type=float, default=60.0)
    parser.add_argument("--defect", default="strip_trailing_blanks")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.cases = [c for c in args.cases.split(",") if c]
    unknown = sorted(set(args.cases) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {unknown}; choose from {list(CASES)}")
    rows: list[dict[str, object]] = []
    for i in range(args.runs):
        for case in args.cases:
            row = one_run(case, i, args.slow_ms, args.defect)
            rows.append(row)
            print(f"{case} seed {i}: {row['verdict']} in {float(str(row['seconds'])):.0f} s, {row['looks']} looks "
                  f"({row['stopped']})", flush=True)
            args.out.write_text(write(rows, args))  # kept as it grows: an interrupted benchmark keeps its runs
    print(args.out.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main_())
