"""What ``harness watch`` costs: Redis commands per refresh, and its own CPU, idle and under load.

One embedded stack (processes launcher) runs throughout. Each round runs, in a rotating order, for
``--seconds`` each and under both loads (``idle``: nothing submitted; ``load``: a thread submitting
``--rate`` small evaluations per second through the gateway, split 50/50):

- ``none``: no watch at all (the stack's own commands: the baseline to subtract);
- ``plain``: ``harness watch --plain --interval 1`` with its output piped (the CI/log mode);
- ``rich``: ``harness watch --interval 1`` on a pseudo-terminal (the live table).

Measured per run: the commands the Redis servers processed of the kinds a refresh sends (``LLEN``,
``HLEN``, ``HGET`` on the main Redis; ``LLEN``, ``HLEN`` on the broker; from ``INFO commandstats``,
minus the median of the ``none`` runs under the same load), the refreshes the watch printed, and the
watch process's CPU time: steady state from ``/proc/<pid>/stat`` sampled when the first and the last
refresh appear (per second between them), start-up as the rest of the whole run's CPU (``wait4``).
Medians over rounds.

Usage: ``.venv/bin/python benchmarks/watch_cost.py [--rounds 3] [--seconds 10] [--rate 8]``;
writes ``benchmarks/results/watch.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import pty
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import redis as redis_lib
import requests

from harness.stack.config import StackConfig
from harness.stack.processes import ProcessesStack

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results" / "watch.md"
MAIN_KINDS, BROKER_KINDS = ("llen", "hlen", "hget"), ("llen", "hlen")


def counts(client: redis_lib.Redis, kinds: tuple[str, ...]) -> int:
    stats = client.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{k}", {}).get("calls", 0)) for k in kinds)


class Submitter:
    """Submits ``rate`` evaluations per second until stopped (the ``load`` condition)."""

    def __init__(self, gateway: str, rate: float) -> None:
        self.gateway, self.rate, self.sent = gateway, rate, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Submitter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        session = requests.Session()
        nxt = time.monotonic()
        while not self._stop.is_set():
            session.post(f"{self.gateway}/api/eval", json={"code": f"print({self.sent})", "language": "python"},
                         timeout=10)
            self.sent += 1
            nxt += 1 / self.rate
            self._stop.wait(max(0.0, nxt - time.monotonic()))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_watch(argv: list[str], *, tty: bool) -> tuple[float, int, float]:
    """(CPU seconds of the whole run, refreshes, steady CPU in seconds per second) of one ``harness watch``.

    Steady: the CPU between the first refresh drawn and the last one, over that time (``/proc`` samples),
    so the interpreter's start-up is not in it.
    """
    samples: list[tuple[float, float]] = []
    if tty:
        primary, secondary = pty.openpty()
        env = {**{k: v for k, v in os.environ.items() if k != "NO_COLOR"}, "COLUMNS": "160"}
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=secondary, stderr=secondary, stdin=subprocess.DEVNULL, env=env)
        os.close(secondary)
        refreshes = 0
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                break
            if not chunk:
                break
            drawn = chunk.count(b"both queues")
            if drawn:
                refreshes += drawn
                with contextlib.suppress(OSError, IndexError, ValueError):
                    samples.append((time.monotonic(), cpu_seconds(proc.pid)))
        os.close(primary)
    else:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        assert proc.stdout is not None
        refreshes = 0
        for line in proc.stdout:
            if b" celery " in line:
                refreshes += 1
                with contextlib.suppress(OSError, IndexError, ValueError):
                    samples.append((time.monotonic(), cpu_seconds(proc.pid)))
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"harness watch exited {proc.returncode}")
    steady = ((samples[-2][1] - samples[0][1]) / (samples[-2][0] - samples[0][0])  # the last draw is the exit's
              if len(samples) >= 3 else float("nan"))
    return usage.ru_utime + usage.ru_stime, refreshes, steady


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=8.0)
    args = parser.parse_args()
    cells: dict[tuple[str, str], dict[str, list[float]]] = {}
    load1 = os.getloadavg()[0]
    with ProcessesStack(StackConfig()) as stack:
        ep = stack.endpoints
        main_r, broker_r = redis_lib.Redis.from_url(ep.main_redis), redis_lib.Redis.from_url(ep.celery_redis)
        base = [sys.executable, "-m", "harness", "watch", "--stack-url", ep.gateway, "--main-redis", ep.main_redis,
                "--celery-broker", ep.celery_redis, "--interval", "1"]
        variants = ["none", "plain", "rich"]
        for rnd in range(args.rounds):
            for load in ("idle", "load"):
                order = variants[rnd % 3:] + variants[:rnd % 3]
                for variant in order:
                    with Submitter(ep.gateway, args.rate) if load == "load" else _nothing():
                        time.sleep(1.0)  # the load settles
                        cell = cells.setdefault((load, variant), {"cmds": [], "refreshes": [], "cpu": [],
                                                                  "steady": [], "seconds": []})
                        before = counts(main_r, MAIN_KINDS) + counts(broker_r, BROKER_KINDS)
                        t0 = time.monotonic()
                        if variant == "none":
                            time.sleep(args.seconds)
                            cpu, refreshes, steady = 0.0, 0, 0.0
                        else:
                            cpu, refreshes, steady = run_watch([*base, "--duration", f"{args.seconds:g}",
                                                                *(["--plain"] if variant == "plain" else [])],
                                                               tty=variant == "rich")
                        elapsed = time.monotonic() - t0
                        after = counts(main_r, MAIN_KINDS) + counts(broker_r, BROKER_KINDS)
                        cell["cmds"].append(after - before)
                        cell["refreshes"].append(refreshes)
                        cell["cpu"].append(cpu)
                        cell["seconds"].append(elapsed)
                        cell["steady"].append(steady)
                print(f"round {rnd + 1}/{args.rounds} done", flush=True)
    write(cells, args, load1)


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def write(cells: dict[tuple[str, str], dict[str, list[float]]], args: Any, load1: float) -> None:
    med = statistics.median
    lines = [
        "# What `harness watch` costs",
        "",
        f"Measured {dt.date.today().isoformat()} on this machine (2 cores, shared with other work: load average "
        f"{load1:.1f} at the start), one embedded stack (processes launcher), {args.rounds} rounds; in each round "
        f"every variant ran {args.seconds:g} s under each load, in a rotating order. Medians over the rounds.",
        "",
        f"- **idle**: nothing submitted; **load**: {args.rate:g} small evaluations per second through the gateway "
        "(split 50/50)",
        "- **none**: no watch (the stack's own commands of the same kinds: the baseline); **plain**: `harness watch "
        "--plain --interval 1`, output piped; **rich**: `harness watch --interval 1` on a pseudo-terminal",
        "- Redis commands: `LLEN`, `HLEN`, `HGET` on the main Redis and `LLEN`, `HLEN` on the broker, from "
        "`INFO commandstats`, per second, minus the baseline under the same load, and per refresh",
        "- CPU: the watch process's user + system time. Steady = from `/proc/<pid>/stat` sampled at the first "
        "and the last refresh, per second between them; start-up = the whole run's CPU (`wait4`) minus steady "
        "× the seconds of watching (the interpreter and the `harness` parser with every command's imports)",
        "",
        "| load | variant | refreshes | Redis commands/s (minus baseline) | per refresh | CPU start-up | "
        "CPU steady (% of a core) |",
        "|---|---|---|---|---|---|---|",
    ]
    for load in ("idle", "load"):
        none = cells[(load, "none")]
        baseline = med([n / s for n, s in zip(none["cmds"], none["seconds"], strict=True)])  # per second
        lines.append(f"| {load} | none | – | {baseline:.1f} (the baseline) | – | – | – |")
        for variant in ("plain", "rich"):
            c = cells[(load, variant)]
            runs = list(zip(c["cmds"], c["seconds"], c["refreshes"], strict=True))
            per_second = med([n / s - baseline for n, s, _ in runs])
            # the live table draws once more when it stops: that draw reads nothing
            made = [r - (1 if variant == "rich" else 0) for _, _, r in runs]
            per_refresh = med([(n - baseline * s) / m for (n, s, _), m in zip(runs, made, strict=True)])
            steady = med(c["steady"])
            startup = med([cpu - st * (args.seconds - 1) for cpu, st in zip(c["cpu"], c["steady"], strict=True)])
            lines.append(f"| {load} | {variant} | {med(made):.0f} | {per_second:.1f} | {per_refresh:.1f} | "
                         f"{startup:.2f} s | {100 * steady:.1f} % |")
    lines += ["", "Command: `.venv/bin/python benchmarks/watch_cost.py "
              f"--rounds {args.rounds} --seconds {args.seconds:g} --rate {args.rate:g}`", ""]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
