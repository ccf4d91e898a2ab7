"""What a 50 MB request body costs the gateway: memory and time to the answer, before and after the body limit.

Two gateways side by side, each a real ``python -m system_under_test.gateway`` (uvicorn) on
127.0.0.1 with its two throwaway ``redis-server``\\ s: ``before`` runs the code of a git revision
(``--before``, default the commit before the body limit, extracted with ``git archive``), ``after``
runs this working tree. A client sends each gateway a submission whose code is 50 MB (a valid JSON
body of about 50 MB), in two ways:

- ``declared``: with ``Content-Length``, sending the whole body at once without waiting for an answer
  (a naive client; one that sends ``Expect: 100-continue``, as curl does, fares better still);
- ``chunked``: ``Transfer-Encoding: chunked``, 64 KiB chunks, until the gateway answers or closes.

For each request it records the gateway's resident memory before (``VmRSS``), its peak while serving
the request (``VmHWM``, the high-water mark, reset by starting a fresh gateway for every request),
the bytes the client managed to send, and the time to the answer. Rounds are interleaved and the
order within a round is shuffled (seeded), so both gateways see the same machine; the table reports
medians. Writes ``benchmarks/results/gateway_body_memory.md``.
Run: ``.venv/bin/python benchmarks/gateway_body_memory.py [--rounds 5] [--mb 50]``.
Everything it starts is stopped in ``finally`` blocks.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import os
import platform
import random
import select
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from harness.stack.ports import free_port  # noqa: E402
from system_under_test.redis_server import find_redis_server, redis_argv  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_BEFORE = "24695b2"  # the last commit before the gateway's body limit
CHUNK = 64 * 1024


@dataclass(frozen=True)
class Sample:
    gateway: str
    mode: str
    status: int
    rss_before_mb: float
    peak_mb: float
    sent_mb: float
    seconds: float


def _kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no {field}")


@contextlib.contextmanager
def _process(argv: list[str], cwd: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@contextlib.contextmanager
def gateway(source: Path, redis_binary: str) -> Iterator[tuple[int, int]]:
    """A gateway from ``source`` with its two redis-servers; yields (gateway pid, port)."""
    main, broker, port = free_port(), free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": str(source), "REDIS_URL": f"redis://127.0.0.1:{main}/0",
           "CELERY_BROKER_URL": f"redis://127.0.0.1:{broker}/0", "GATEWAY_PORT": str(port),
           "PYTHONDONTWRITEBYTECODE": "1"}
    with tempfile.TemporaryDirectory() as work, \
            _process(redis_argv(port=main, binary=redis_binary, workdir=work), source, env), \
            _process(redis_argv(port=broker, binary=redis_binary, workdir=work), source, env), \
            _process([sys.executable, "-m", "system_under_test.gateway"], source, env) as gw:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline or gw.poll() is not None:
                raise RuntimeError(f"the gateway from {source} did not become healthy on port {port}")
            time.sleep(0.1)
        time.sleep(0.5)  # let start-up allocations settle before reading VmRSS
        yield gw.pid, port


def send(port: int, body: bytes, mode: str) -> tuple[int, int, float]:
    """Send the body; returns (status, bytes sent, seconds to the answer)."""
    head = "POST /api/eval HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n" if mode == "declared" else "Transfer-Encoding: chunked\r\n\r\n"
    sent = 0
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        sock.sendall(head.encode())
        view = memoryview(body)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while sent < len(body) and not select.select([sock], [], [], 0)[0]:
                piece = view[sent:sent + CHUNK]
                sock.sendall(piece if mode == "declared" else b"%x\r\n%s\r\n" % (len(piece), bytes(piece)))
                sent += len(piece)
            if mode == "chunked" and sent == len(body):
                sock.sendall(b"0\r\n\r\n")
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while b"\r\n" not in answer:
                got = sock.recv(4096)
                if not got:
                    break
                answer += got
    seconds = time.perf_counter() - started
    status = int(answer.split()[1]) if answer.startswith(b"HTTP/") else 0
    return status, sent, seconds


def measure(name: str, source: Path, redis_binary: str, body: bytes, mode: str) -> Sample:
    with gateway(source, redis_binary) as (pid, port):
        before = _kb(pid, "VmRSS")
        status, sent, seconds = send(port, body, mode)
        time.sleep(0.2)
        peak = _kb(pid, "VmHWM")
    return Sample(name, mode, status, before / 1024, peak / 1024, sent / 1e6, seconds)


def extract(rev: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "system_under_test"],
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mb", type=int, default=50, help="size of the code in the body, in MB")
    parser.add_argument("--before", default=DEFAULT_BEFORE, help="git revision of the 'before' gateway")
    parser.add_argument("--seed", type=int, default=20261206)
    args = parser.parse_args()
    body = b'{"code": "' + b"a" * (args.mb * 1_000_000) + b'", "language": "python"}'
    redis_binary = find_redis_server()
    rng = random.Random(args.seed)
    samples: list[Sample] = []
    with tempfile.TemporaryDirectory() as tmp:
        sources = {"before": extract(args.before, Path(tmp)), "after": ROOT}
        for round_no in range(args.rounds):
            order = [(g, m) for g in sources for m in ("declared", "chunked")]
            rng.shuffle(order)
            for name, mode in order:
                sample = measure(name, sources[name], redis_binary, body, mode)
                samples.append(sample)
                print(f"round {round_no + 1}: {sample}", flush=True)
    write(samples, args, len(body))


def write(samples: list[Sample], args: argparse.Namespace, body_bytes: int) -> None:
    def med(name: str, mode: str, attr: str) -> float:
        return float(statistics.median(getattr(s, attr) for s in samples if s.gateway == name and s.mode == mode))

    def statuses(name: str, mode: str) -> str:
        return "/".join(sorted({str(s.status) for s in samples if s.gateway == name and s.mode == mode}))

    rows = [f"| {mode} | {name} | {statuses(name, mode)} | {med(name, mode, 'rss_before_mb'):.0f} | "
            f"{med(name, mode, 'peak_mb'):.0f} | {med(name, mode, 'peak_mb') - med(name, mode, 'rss_before_mb'):.0f} | "
            f"{med(name, mode, 'sent_mb'):.2f} | {med(name, mode, 'seconds'):.3f} |"
            for mode in ("declared", "chunked") for name in ("before", "after")]
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    text = f"""# Gateway: memory for a {args.mb} MB request body, before and after the body limit

Recorded {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores ({cpu}), Linux {platform.release()}, Python {platform.python_version()}.
Command: `python benchmarks/gateway_body_memory.py --rounds {args.rounds} --mb {args.mb}`. `before` is the gateway at
`{args.before}` (reads the whole body, then answers 413 for the code), `after` is this tree (MAX_BODY_BYTES,
default 6 × 65536 + 4096 = 397312 bytes, enforced while the body streams in). The body is a submission
whose code is {args.mb} MB ({body_bytes} bytes of JSON). A fresh gateway serves each request, so its peak
resident memory (`VmHWM`) is that request's. {args.rounds} interleaved rounds, shuffled order (seed {args.seed});
medians.

| body sent as | gateway | answer | RSS before (MB) | peak RSS (MB) | added (MB) | body sent (MB) | time to answer (s) |
|---|---|---|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

`declared`: `Content-Length` and the whole body at once, without waiting for an answer (a client that
sends `Expect: 100-continue`, as curl does for large bodies, sends nothing at all to `after`).
`chunked`: `Transfer-Encoding: chunked` in 64 KiB chunks, until the gateway answers. "body sent" is what
the client got onto the socket before the gateway answered or closed. The machine is shared with other
work: compare the gateways within this run, not across runs.
"""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "gateway_body_memory.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
