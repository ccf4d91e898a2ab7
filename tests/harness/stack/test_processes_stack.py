"""The processes launcher: starts, faults and stops the whole platform, leaving nothing behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from harness.errors import ComponentExited, StackError
from harness.run import RunFolder
from harness.stack.config import StackConfig
from harness.stack.external import ExternalStack
from harness.stack.process import OWNER_VAR, REGISTRY, reap_orphans
from harness.stack.processes import ProcessesStack
from harness.stack.protocol import ComponentHandle, Stack

SMALL = StackConfig(legacy_workers=1, flower=False, ready_timeout_s=20)


def pids_alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] != "Z":
                    alive.append(pid)
        except FileNotFoundError:
            continue
    return alive


def owned_by(pid: int) -> list[int]:
    """Processes whose environment or the registry say they belong to harness process ``pid``."""
    found = []
    for file in REGISTRY.glob(f"{pid}-*.pids"):
        found += [int(line.split()[0]) for line in file.read_text().splitlines()]
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            env = Path(f"/proc/{name}/environ").read_bytes()
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
        if f"{OWNER_VAR}={pid}:".encode() in env:
            found.append(int(name))
    return sorted(set(pids_alive(found)))


@pytest.mark.stack  # the launcher under test starts it
def test_the_stack_starts_healthy_and_stops_with_nothing_left_behind(tmp_path: Path) -> None:
    with ProcessesStack(SMALL, RunFolder.create(tmp_path)) as stack:
        assert isinstance(stack, Stack)
        pids = [c.pid for c in stack.components.values() if c.pid]
        assert all(c.healthy() for c in stack.components.values())
        assert len(pids) == 9  # 2 Redis, fault proxy, 3 executors, 1 legacy worker, 1 Celery worker, gateway
        children = owned_by(os.getpid())
        assert set(pids) <= set(children)
        assert all(f"{OWNER_VAR}=".encode() in Path(f"/proc/{p}/environ").read_bytes()
                   for p in pids if "redis" not in Path(f"/proc/{p}/cmdline").read_text())
        assert (stack.run.path / "run.json").exists()
        assert {p.name for p in stack.run.logs.iterdir()} >= {"gateway.log", "celery-worker-1.log", "main-redis.log"}
    assert pids_alive(children) == []
    assert owned_by(os.getpid()) == []


@pytest.mark.stack  # the launcher under test starts it
def test_a_killed_component_is_seen_as_down_and_can_be_restarted(tmp_path: Path) -> None:
    with ProcessesStack(SMALL, RunFolder.create(tmp_path)) as stack:
        executor = stack.component("executor-2")
        assert isinstance(executor, ComponentHandle)
        executor.kill()
        assert not executor.alive() and not executor.healthy()
        seconds = executor.restart()
        assert executor.healthy() and seconds < 20
        worker = stack.component("celery-worker-1")
        worker.pause()
        assert not worker.healthy() and worker.alive()
        worker.resume()
        assert worker.healthy()
        assert stack.endpoints is not None
        body = requests.post(stack.endpoints.gateway + "/api/eval",
                             json={"code": "print(2)", "language": "python", "route": "both"}, timeout=10).json()
        record = requests.get(f"{stack.endpoints.gateway}/api/eval/{body['eval_id']}", params={"wait": 20},
                              timeout=30).json()
        assert [r["output"] for r in record["results"].values()] == ["2\n", "2\n"]


def test_an_unknown_component_name_lists_the_real_ones(tmp_path: Path) -> None:
    stack = ProcessesStack(SMALL, RunFolder.create(tmp_path))
    with pytest.raises(StackError, match="no component 'celery-wrker'"):
        stack.component("celery-wrker")


@pytest.mark.stack  # the launcher under test starts it
def test_a_port_in_use_fails_fast_naming_the_component_and_tears_everything_down(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(ComponentExited) as info:
            ProcessesStack(SMALL.replace(gateway_port=port), RunFolder.create(tmp_path)).start()
    assert info.value.component == "gateway"
    assert any("address already in use" in line.lower() for line in info.value.last_lines)
    assert time.monotonic() - started < 15
    assert owned_by(os.getpid()) == []


def test_a_missing_redis_binary_fails_fast_with_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_SERVER", "/nonexistent/redis-server")
    with pytest.raises(StackError, match="REDIS_SERVER='/nonexistent/redis-server' is not an executable"):
        ProcessesStack(SMALL, RunFolder.create(tmp_path)).start()


def test_unknown_or_invalid_options_are_refused_before_anything_starts() -> None:
    with pytest.raises(StackError, match=r"unknown stack option\(s\) \['celery_precentage'\]; known options"):
        StackConfig.from_options(celery_precentage=75)
    with pytest.raises(StackError, match="celery_percentage must be within 0..100, got 175"):
        StackConfig(celery_percentage=175)
    with pytest.raises(StackError, match="gateway_port must be within 0..65535"):
        StackConfig(gateway_port=70000)
    cli = subprocess.run([sys.executable, "-m", "harness", "up", "--celery-precentage", "75"],
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 3 and "unrecognized arguments: --celery-precentage" in cli.stderr


@pytest.mark.stack  # the launcher under test starts it
def test_after_the_harness_is_sigkilled_the_next_run_reaps_its_leftovers(tmp_path: Path) -> None:
    script = ("import sys, time\n"
              "from harness.stack.processes import ProcessesStack\n"
              "from harness.stack.config import StackConfig\n"
              "from harness.run import RunFolder\n"
              f"s = ProcessesStack(StackConfig(legacy_workers=1, flower=False), RunFolder.create({str(tmp_path)!r}))\n"
              "s.start()\nprint('up', flush=True)\ntime.sleep(600)\n")
    harness = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert harness.stdout is not None and harness.stdout.readline().strip() == "up"
        orphans = owned_by(harness.pid)
        assert len(orphans) >= 9
    finally:
        harness.send_signal(signal.SIGKILL)
        harness.wait()
    assert pids_alive(orphans) != []  # nobody could clean up at SIGKILL time
    reaped = reap_orphans()
    assert reaped  # killing a group also kills its members (pool children), so not every pid is listed
    deadline = time.monotonic() + 5
    while pids_alive(orphans) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pids_alive(orphans) == []


def test_the_external_launcher_checks_the_gateway_and_refuses_process_faults(
        tmp_path: Path, stack: ProcessesStack) -> None:
    assert stack.endpoints is not None
    external = ExternalStack.from_url(stack.endpoints.gateway, run=RunFolder.create(tmp_path))
    with external:
        assert isinstance(external, Stack)
        with pytest.raises(StackError, match="cannot be faulted on an external stack"):
            external.component("executor-3")
    unreachable = ExternalStack.from_url("http://127.0.0.1:1", run=RunFolder.create(tmp_path))
    with pytest.raises(StackError, match="external stack unreachable.*harness up --detach"):
        unreachable.start()


@pytest.mark.stack  # the launcher under test starts it
def test_a_port_taken_after_it_was_chosen_starts_the_stack_again_on_fresh_ports(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The race CI met: a port is free when chosen and taken before the component binds it."""
    import harness.stack.processes as processes
    from harness.stack.ports import free_port

    before = owned_by(os.getpid())  # a session-scoped stack may be running
    with socket.socket() as thief:
        thief.bind(("127.0.0.1", 0))
        thief.listen()
        taken = thief.getsockname()[1]
        handed: list[int] = []

        def racy_free_port() -> int:  # the fifth port of the first attempt is executor-3's
            handed.append(taken if len(handed) == 4 else free_port())
            return handed[-1]

        monkeypatch.setattr(processes, "free_port", racy_free_port)
        with caplog.at_level("WARNING", logger="harness.stack"), \
                ProcessesStack(SMALL, RunFolder.create(tmp_path)) as stack:
            assert all(c.healthy() for c in stack.components.values())
            assert stack.endpoints is not None
            assert not stack.endpoints.executors["executor-3"].endswith(f":{taken}")
    assert "executor-3 found its port taken (attempt 1 of 3)" in caplog.text
    assert taken in handed
    assert owned_by(os.getpid()) == before


def test_free_ports_lie_outside_the_range_outgoing_connections_use() -> None:
    from harness.stack.ports import ephemeral_range, free_port

    low, high = ephemeral_range()
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    assert all(not low <= p <= high for p in ports)
    for port in ports[:5]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_a_restart_waits_for_the_new_process_to_say_ready_not_the_old_log_line(tmp_path: Path) -> None:
    from harness.stack.process import ManagedProcess

    script = "import time; time.sleep(0.3); print('w ready', flush=True); time.sleep(60)"
    proc = ManagedProcess("w", [sys.executable, "-c", script], env={"PATH": os.environ["PATH"]},
                          log_path=tmp_path / "w.log", ready=lambda: any("w ready" in line for line in
                                                                          proc.logs(since_start=True)))
    try:
        proc.start()
        proc.wait_ready(10)
        proc.restart(grace_s=1)
        assert proc.logs(since_start=True) == ["w ready"]  # the new process, not the first one's line
        assert proc.logs().count("w ready") == 2
    finally:
        proc.stop(grace_s=1)
