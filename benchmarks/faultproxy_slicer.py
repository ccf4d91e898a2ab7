"""Slicer fidelity: how many bytes one read gets behind a ``slicer`` toxic of 100 ± 50 bytes.

Toxiproxy's slicer cuts every chunk into pieces of ``average_size`` ± ``size_variation``
bytes and waits ``delay`` µs *after sending each piece*, so a reader that keeps up never
gets more than ``average_size + size_variation`` bytes in one read. A slicer that sends
on a fixed timetable instead catches up after a late wake-up by sending two pieces back
to back, and the reader gets both in one read.

For every server and delay the script runs ``--runs`` rounds, all interleaved in a
shuffled (seeded) order: a client writes ``--bytes`` bytes at once into a proxy whose
upstream stream has the slicer, and a reader thread at the upstream end records the size
of every ``recv`` and when it returned. The servers are:

- the fault proxy of this tree, as a subprocess (``python -m harness.faultproxy --port 0``),
  labelled ``this tree`` (leave it out with ``--no-local``);
- ``--server LABEL=URL`` (repeatable): any Toxiproxy-compatible API on this machine, for
  example a real ``toxiproxy-server`` or a fault proxy started from an older checkout.

Writes ``benchmarks/results/faultproxy_slicer.{md,json}`` and prints the table.
Run: ``.venv/bin/python benchmarks/faultproxy_slicer.py [--runs 10] [--delays 100,1000,10000]``.
Everything it starts (the subprocess, sockets, the proxies it creates) is stopped or
deleted in ``finally`` blocks.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
AVERAGE, VARIATION = 100, 50
LIMIT = AVERAGE + VARIATION
IO_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Round:
    """One client write through the slicer, as the upstream reader saw it."""

    server: str
    delay_us: int
    reads: tuple[int, ...]  # bytes per recv, in order
    gaps_ms: tuple[float, ...]  # time between consecutive reads


@contextmanager
def local_fault_proxy() -> Iterator[str]:
    """This tree's fault proxy as a subprocess; yields its API URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.faultproxy", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("fault proxy API on "):
            raise SystemExit(f"the fault proxy did not start: {line!r}")
        yield line.removeprefix("fault proxy API on ")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


class SlicedProxy:
    """One proxy with an upstream slicer on one server, in front of a listener of ours."""

    def __init__(self, label: str, url: str) -> None:
        self.label, self.url = label, url.rstrip("/")
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(IO_TIMEOUT_S)
        self.name = f"slicer_bench_{uuid.uuid4().hex[:8]}"
        upstream = f"127.0.0.1:{self.listener.getsockname()[1]}"
        created = self._call("POST", "/proxies", {"name": self.name, "upstream": upstream, "listen": "127.0.0.1:0"})
        self.port = int(created["listen"].rsplit(":", 1)[1])
        self.delay_us: int | None = None

    def _call(self, method: str, path: str, body: object = None) -> dict[str, Any]:
        response = requests.request(method, self.url + path, json=body, timeout=IO_TIMEOUT_S)
        if response.status_code >= 300:
            raise SystemExit(f"{self.label}: {method} {path} answered {response.status_code} {response.text.strip()}")
        return response.json() if response.content else {}

    def set_delay(self, delay_us: int) -> None:
        attributes = {"average_size": AVERAGE, "size_variation": VARIATION, "delay": delay_us}
        if self.delay_us is None:
            self._call("POST", f"/proxies/{self.name}/toxics",
                       {"name": "slicer", "type": "slicer", "stream": "upstream", "attributes": attributes})
        else:
            self._call("POST", f"/proxies/{self.name}/toxics/slicer", {"attributes": attributes})
        self.delay_us = delay_us

    def round(self, payload: bytes) -> tuple[list[int], list[float]]:
        """Send ``payload`` in one write; return the upstream reader's read sizes and gaps (ms)."""
        sizes: list[int] = []
        stamps: list[float] = []
        with socket.create_connection(("127.0.0.1", self.port), timeout=IO_TIMEOUT_S) as client:
            server_side, _ = self.listener.accept()
            with server_side:
                server_side.settimeout(IO_TIMEOUT_S)

                def read() -> None:
                    received = 0
                    while received < len(payload) and (data := server_side.recv(65536)):
                        stamps.append(time.perf_counter())
                        sizes.append(len(data))
                        received += len(data)

                reader = threading.Thread(target=read)
                reader.start()
                client.sendall(payload)
                reader.join(IO_TIMEOUT_S)
        if sum(sizes) != len(payload):
            raise SystemExit(f"{self.label}: {sum(sizes)} of {len(payload)} bytes arrived")
        return sizes, [(b - a) * 1000 for a, b in zip(stamps, stamps[1:], strict=False)]

    def close(self) -> None:
        try:
            requests.delete(f"{self.url}/proxies/{self.name}", timeout=IO_TIMEOUT_S)
        finally:
            self.listener.close()


def measure(servers: dict[str, str], delays: list[int], runs: int, size: int, seed: int) -> list[Round]:
    rng = random.Random(seed)
    plan = [(label, delay) for label in servers for delay in delays for _ in range(runs)]
    rng.shuffle(plan)
    rounds: list[Round] = []
    with ExitStack() as stack:
        proxies: dict[str, SlicedProxy] = {}
        for label, url in servers.items():
            proxies[label] = SlicedProxy(label, url)
            stack.callback(proxies[label].close)
        for label, delay in plan:
            proxy = proxies[label]
            proxy.set_delay(delay)
            sizes, gaps = proxy.round(rng.randbytes(size))
            rounds.append(Round(label, delay, tuple(sizes), tuple(gaps)))
    return rounds


def summarise(rounds: list[Round], servers: list[str], delays: list[int]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for label in servers:
        for delay in delays:
            mine = [r for r in rounds if r.server == label and r.delay_us == delay]
            reads = [n for r in mine for n in r.reads]
            gaps = [g for r in mine for g in r.gaps_ms]
            rows.append({
                "server": label, "delay_us": delay, "runs": len(mine), "reads": len(reads),
                "largest": max(reads), "over_limit": sum(n > LIMIT for n in reads),
                "runs_over_limit": sum(any(n > LIMIT for n in r.reads) for r in mine),
                "median_gap_ms": statistics.median(gaps) if gaps else 0.0,
                "min_gap_ms": min(gaps) if gaps else 0.0,
            })  # fmt: skip
    return rows


def table(rows: list[dict[str, object]]) -> str:
    lines = [
        f"| server | delay (µs) | runs | reads | largest read (B) | reads > {LIMIT} B | runs with one "
        "| median gap (ms) | smallest gap (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['server']} | {row['delay_us']} | {row['runs']} | {row['reads']} | {row['largest']} "
            f"| {row['over_limit']} | {row['runs_over_limit']} | {row['median_gap_ms']:.3f} | {row['min_gap_ms']:.3f} |"
        )
    return "\n".join(lines)


def _shown(argv: list[str]) -> list[str]:
    """The command line as recorded: URLs are this run's, and the note is printed anyway."""
    shown: list[str] = []
    for arg in argv:
        if shown and shown[-1] == "--note":
            shown[-1:] = []
        elif shown and shown[-1] == "--server":
            shown.append(f"'{arg.partition('=')[0]}=URL'")
        else:
            shown.append(arg)
    return shown


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--server", action="append", default=[], metavar="LABEL=URL",
                        help="another Toxiproxy-compatible API to measure (repeatable)")
    parser.add_argument("--no-local", action="store_true", help="do not start this tree's fault proxy")
    parser.add_argument("--delays", default="100,1000,10000", help="slicer delays in µs, comma separated")
    parser.add_argument("--runs", type=int, default=10, help="rounds per server and delay")
    parser.add_argument("--bytes", type=int, default=5000, help="bytes per round, sent in one write")
    parser.add_argument("--seed", type=int, default=20260522)
    parser.add_argument("--note", default="", help="a sentence about the servers, added to the report")
    args = parser.parse_args()
    servers: dict[str, str] = {}
    for item in args.server:
        label, sep, url = item.partition("=")
        if not sep or not url.startswith("http"):
            parser.error(f"--server expects LABEL=http://HOST:PORT, got {item!r}")
        servers[label] = url
    delays = [int(d) for d in args.delays.split(",")]
    with ExitStack() as stack:
        if not args.no_local:
            servers = {"this tree": stack.enter_context(local_fault_proxy()), **servers}
        if not servers:
            parser.error("nothing to measure: give --server LABEL=URL or drop --no-local")
        rounds = measure(servers, delays, args.runs, args.bytes, args.seed)
    rows = summarise(rounds, list(servers), delays)
    meta = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, Linux {platform.release()}, Python {platform.python_version()}",
        "command": " ".join(["python benchmarks/faultproxy_slicer.py", *_shown(sys.argv[1:])]),
        "seed": args.seed, "runs": args.runs, "bytes": args.bytes,
    }  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "faultproxy_slicer.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    report = f"""# Slicer fidelity: bytes per read behind a slicer of {AVERAGE} ± {VARIATION} bytes

Recorded {meta['date']} on {meta['machine']}.
Command: `{meta['command']}`.
Each round writes {args.bytes} bytes at once into a proxy with an upstream `slicer`
(`average_size` {AVERAGE}, `size_variation` {VARIATION}); a reader thread at the upstream end
records every `recv` (up to 64 KiB). {args.runs} rounds per server and delay, all interleaved in
shuffled order (seed {args.seed}). A slicer that waits its delay after each slice, as Toxiproxy's
does, never lets a reader that keeps up see more than {LIMIT} bytes in one read.
{args.note}

{table(rows)}
"""
    (RESULTS / "faultproxy_slicer.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
