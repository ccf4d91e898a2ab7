"""Fixtures for the chaos unit tests: a real redis-server on a free port (no stack)."""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator

import pytest
import redis as redis_lib

from harness.stack.ports import free_port
from system_under_test.redis_server import find_redis_server, redis_argv


@pytest.fixture
def redis_server() -> Iterator[Callable[..., str]]:
    """``redis_server(maxmemory=None, policy="noeviction")`` starts one and returns its URL; all stop at the end."""
    procs: list[subprocess.Popen[bytes]] = []
    dirs: list[tempfile.TemporaryDirectory[str]] = []

    def start(maxmemory: str | None = None, policy: str = "noeviction") -> str:
        port = free_port()
        workdir = tempfile.TemporaryDirectory(prefix="chaos-redis-")
        dirs.append(workdir)
        argv = redis_argv(port=port, maxmemory=maxmemory, maxmemory_policy=policy, binary=find_redis_server(),
                          workdir=workdir.name)
        procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True))
        url = f"redis://127.0.0.1:{port}/0"
        client = redis_lib.Redis.from_url(url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis_lib.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()
        return url

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(5)
    for d in dirs:
        d.cleanup()
