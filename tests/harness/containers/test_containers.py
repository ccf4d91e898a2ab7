"""The containers launcher: the same platform in containers, faulted and torn down with nothing left.

Needs a Docker engine (`sudo scripts/prepare-docker.sh` starts one and builds the images on a machine
with no registry). Without one these tests are skipped, unless CI is set or HARNESS_CONTAINERS_REQUIRED=1
(`make test` under CI runs prepare-docker.sh first), where a missing engine fails them; the
missing-engine error itself is always tested.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from harness.client import wait_terminal
from harness.errors import ComponentExited, StackError
from harness.run import PROJECT_ROOT, RunFolder
from harness.stack.config import StackConfig
from harness.stack.containers import LABEL_OWNER, LABEL_RUN, ContainersStack, reap
from harness.stack.images import DockerUnavailable, ImageBuildError, docker_client, ensure_images, plan_build
from harness.stack.protocol import LINKS, ComponentHandle, Stack

pytestmark = pytest.mark.containers

COMPONENTS = ["main-redis", "celery-redis", "fault-proxy", "executor-1", "executor-2", "executor-3",
              "legacy-worker-1", "legacy-worker-2", "celery-worker-1", "gateway", "flower"]
CONFIG = StackConfig(retry_backoff_s=0.5, max_retries=10, executor_timeout_s=5.0, ready_timeout_s=90)
SMALL = StackConfig(legacy_workers=1, flower=False, ready_timeout_s=90)


@pytest.fixture(scope="module")
def client() -> Any:
    try:
        return docker_client()
    except DockerUnavailable as exc:
        if os.environ.get("HARNESS_CONTAINERS_REQUIRED") == "1" or os.environ.get("CI"):
            pytest.fail(str(exc), pytrace=False)
        pytest.skip(f"no Docker engine: {exc.reason} (sudo scripts/prepare-docker.sh starts one)")


@pytest.fixture(scope="module")
def images(client: Any) -> Any:
    return ensure_images(client)


@pytest.fixture(scope="module")
def cstack(images: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ContainersStack]:
    run = RunFolder.create(Path(tmp_path_factory.mktemp("containers")))
    with ContainersStack(CONFIG, run, images=images) as stack:
        yield stack


def ours(client: Any, run_id: str) -> tuple[list[str], list[str]]:
    """Names of the containers and networks labelled with ``run_id``."""
    selector = {"label": f"{LABEL_RUN}={run_id}"}
    return ([c.name for c in client.containers.list(all=True, filters=selector)],
            [n.name for n in client.networks.list(filters=selector)])


def submit(stack: ContainersStack, code: str, route: str) -> str:
    assert stack.endpoints is not None
    resp = requests.post(stack.endpoints.gateway + "/api/eval",
                         json={"code": code, "language": "python", "route": route}, timeout=30)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["eval_id"])


def ledger_rows(stack: ContainersStack, executor: str) -> list[dict[str, Any]]:
    path = stack.run.ledger / f"{executor}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# -- the platform in containers -------------------------------------------------------------------------


def test_the_stack_has_the_processes_launchers_components_on_loopback_ports(
        cstack: ContainersStack, client: Any) -> None:
    assert isinstance(cstack, Stack) and cstack.kind == "containers"
    assert list(cstack.components) == COMPONENTS
    assert all(isinstance(c, ComponentHandle) and c.healthy() for c in cstack.components.values())
    endpoints = cstack.endpoints
    assert endpoints is not None and set(endpoints.links) == set(LINKS)
    urls = [endpoints.gateway, endpoints.flower, endpoints.main_redis, endpoints.celery_redis, endpoints.proxy_api,
            *endpoints.executors.values(), *(f"tcp://{link.listen}" for link in endpoints.links.values())]
    assert all(str(url).split("//")[1].startswith("127.0.0.1:") for url in urls)
    assert all(link.proxied for link in endpoints.links.values())
    names, networks = ours(client, cstack.run.run_id)
    assert len(names) == len(COMPONENTS) and networks == [cstack.network_name]
    for container in client.containers.list(filters={"label": f"{LABEL_RUN}={cstack.run.run_id}"}):
        assert container.labels[LABEL_OWNER].startswith(f"{os.getpid()}:")
        bindings = [b for ports in (container.attrs["HostConfig"]["PortBindings"] or {}).values() for b in ports]
        assert bindings == [] or {b["HostIp"] for b in bindings} == {"127.0.0.1"}
    run_json = json.loads((cstack.run.path / "run.json").read_text())
    assert run_json["launcher"] == "containers" and run_json["images"]["sut"].startswith("crucible-sut:")


def test_every_route_gives_the_programs_result_and_lands_in_the_ledger(cstack: ContainersStack) -> None:
    assert cstack.endpoints is not None
    code = "import sys\nprint('out', 6 * 7)\nprint('err', file=sys.stderr)\nraise SystemExit(3)\n"
    ids = {route: submit(cstack, code, route) for route in ("legacy", "celery", "both")}
    records = {route: wait_terminal(cstack.endpoints.gateway, eval_id, 60) for route, eval_id in ids.items()}
    expected_paths = {"legacy": ["legacy"], "celery": ["celery"], "both": ["celery", "legacy"]}
    for route, record in records.items():
        assert sorted(record["results"]) == expected_paths[route]
        for path, result in record["results"].items():
            assert (result["status"], result["output"], result["error"], result["exit_code"]) == \
                ("failed", "out 42\n", "err\n", 3), (route, path, result)
            assert result["executor_id"] in (("executor-3",) if path == "celery" else ("executor-1", "executor-2"))
    # the executors' ledgers are bind-mounted: the harness reads them in the run folder
    rows = [row for name in ("executor-1", "executor-2", "executor-3") for row in ledger_rows(cstack, name)]
    seen = {(row["eval_id"], row["path"]) for row in rows}
    assert {(ids["legacy"], "legacy"), (ids["celery"], "celery"), (ids["both"], "legacy"),
            (ids["both"], "celery")} <= seen


def test_submissions_run_sandboxed_under_their_own_uid_without_network(cstack: ContainersStack) -> None:
    assert cstack.endpoints is not None
    code = ("import os, socket\nprint(os.getuid())\n"
            "try:\n    socket.create_connection(('main-redis', 6379), timeout=2)\n    print('reached')\n"
            "except OSError:\n    print('no network')\n")
    result = wait_terminal(cstack.endpoints.gateway, submit(cstack, code, "celery"), 60)["results"]["celery"]
    uid, network = result["output"].splitlines()
    assert result["status"] == "completed" and int(uid) >= 100_000 and network == "no network"


def test_a_killed_component_is_down_and_comes_back_healthy_after_a_restart(cstack: ContainersStack) -> None:
    assert cstack.endpoints is not None
    executor = cstack.component("executor-2")
    url = cstack.endpoints.executors["executor-2"]
    executor.kill()
    assert not executor.alive() and not executor.healthy()
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/health", timeout=2)
    seconds = executor.restart()
    assert executor.healthy() and seconds < 60
    assert requests.get(url + "/health", timeout=5).status_code == 200  # same host port after the restart

    worker = cstack.component("celery-worker-1")
    worker.kill()
    assert not worker.healthy()  # its earlier 'ready.' line does not count for the new run
    assert worker.restart() < 60 and worker.healthy()
    worker.pause()
    assert worker.alive() and not worker.healthy()
    worker.resume()
    assert worker.healthy()
    record = wait_terminal(cstack.endpoints.gateway, submit(cstack, "print(2)", "both"), 60)
    assert [r["output"] for r in record["results"].values()] == ["2\n", "2\n"]
    assert any("ready." in line for line in worker.logs(50))


def test_the_fault_proxy_is_in_every_link_and_its_faults_hit_the_path(cstack: ContainersStack) -> None:
    endpoints = cstack.endpoints
    assert endpoints is not None and endpoints.proxy_api is not None
    proxies = requests.get(endpoints.proxy_api + "/proxies", timeout=5).json()
    assert set(proxies) == set(LINKS)
    # a link's listen address is reachable from the host, through the proxy, to its server
    host, port = endpoints.links["gateway-main-redis"].listen.split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"PING\r\n")
        assert s.recv(16) == b"+PONG\r\n"

    known = submit(cstack, "print(1)", "legacy")
    url = endpoints.proxy_api + "/proxies/gateway-main-redis"
    assert requests.post(url, json={"enabled": False}, timeout=5).json()["enabled"] is False
    try:
        health = requests.get(endpoints.gateway + "/health", timeout=20)
        assert health.status_code == 503
        assert health.json()["backends"]["main_redis"].startswith("unreachable")
        assert health.json()["backends"]["celery_broker"] == "ok"
    finally:
        requests.post(url, json={"enabled": True}, timeout=5)
    assert requests.get(endpoints.gateway + "/health", timeout=20).status_code == 200
    # The gateway's async Redis client answers one read with a 503 ("Connection closed by server") on
    # the pooled connection the blip cut, then reconnects: that is the platform's behaviour, not ours.
    deadline = time.monotonic() + 10
    while requests.get(f"{endpoints.gateway}/api/eval/{known}", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, "the gateway did not read from the main Redis again"
        time.sleep(0.2)

    toxics = endpoints.proxy_api + "/proxies/celery-executor-3/toxics"
    created = requests.post(toxics, json={"name": "slow", "type": "latency", "stream": "downstream",
                                          "attributes": {"latency": 2000}}, timeout=5)
    assert created.status_code == 200, created.text
    try:
        started = time.monotonic()
        result = wait_terminal(endpoints.gateway, submit(cstack, "print('late')", "celery"), 60)["results"]["celery"]
        slow = time.monotonic() - started
    finally:
        requests.delete(toxics + "/slow", timeout=5)
    started = time.monotonic()
    fast_result = wait_terminal(endpoints.gateway, submit(cstack, "print('quick')", "celery"), 60)["results"]["celery"]
    fast = time.monotonic() - started
    assert result["output"] == "late\n" and fast_result["output"] == "quick\n"
    assert slow >= 2.0 > fast


def test_stop_saves_every_log_in_the_run_folder_and_leaves_nothing(cstack: ContainersStack, client: Any) -> None:
    run = cstack.run
    assert ours(client, run.run_id)[0]
    cstack.stop()
    assert ours(client, run.run_id) == ([], [])
    logs = {p.name: p.read_text(errors="replace") for p in run.logs.iterdir()}
    assert set(logs) == {f"{name}.log" for name in COMPONENTS}
    assert "gateway listening" in logs["gateway.log"]
    assert "Ready to accept connections" in logs["main-redis.log"]
    assert "celery-worker-1@celery-worker-1 ready." in logs["celery-worker-1.log"]
    cstack.stop()  # twice is fine


# -- failures ---------------------------------------------------------------------------------------------


def test_a_component_that_dies_fails_the_start_with_its_log_and_nothing_is_left(
        images: Any, client: Any, tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path)
    stack = ContainersStack(SMALL.replace(extra_env={"MAX_CODE_BYTES": "lots"}), run, images=images)
    with pytest.raises(ComponentExited) as info:
        stack.start()
    assert info.value.component == "gateway"
    assert any("MAX_CODE_BYTES" in line for line in info.value.last_lines)
    assert ours(client, run.run_id) == ([], [])
    assert (run.logs / "gateway.log").exists()


def test_a_host_port_in_use_fails_fast_naming_the_component(images: Any, client: Any, tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(StackError, match=r"gateway: its container could not start: .*(address already in use|"
                                             r"port is already allocated)"):
            ContainersStack(SMALL.replace(gateway_port=port), run, images=images).start()
    assert time.monotonic() - started < 60
    assert ours(client, run.run_id) == ([], [])


def test_no_docker_engine_says_how_to_get_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dead = tmp_path / "docker.sock"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{dead}")
    with pytest.raises(DockerUnavailable, match=rf"no Docker engine answers at unix://{dead}") as info:
        ContainersStack(SMALL, RunFolder.create(tmp_path)).start()
    assert "scripts/prepare-docker.sh" in str(info.value) and "--stack processes" in str(info.value)
    cli = subprocess.run([sys.executable, "-m", "harness.stack.images", "build"], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "DOCKER_HOST": f"unix://{dead}"})
    assert cli.returncode == 1 and "no Docker engine answers" in cli.stderr


# -- nothing left behind, even when the harness dies -----------------------------------------------------------

SCRIPT = """
import sys, time
from pathlib import Path
from harness.run import RunFolder
from harness.stack.config import StackConfig
from harness.stack.containers import ContainersStack
with ContainersStack(StackConfig(legacy_workers=1, flower=False, ready_timeout_s=90),
                     RunFolder.create(Path(sys.argv[1]))) as stack:
    print("up", stack.run.run_id, flush=True)
    time.sleep(600)
"""


def _harness_with_a_stack(tmp_path: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                            cwd=PROJECT_ROOT)
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    assert line[:1] == ["up"], "the stack did not start in the child harness"
    return proc, line[1]


def test_ctrl_c_stops_the_stack_and_leaves_nothing(images: Any, client: Any, tmp_path: Path) -> None:
    proc, run_id = _harness_with_a_stack(tmp_path)
    assert len(ours(client, run_id)[0]) == 9
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    assert ours(client, run_id) == ([], [])
    assert (tmp_path / run_id / "logs" / "gateway.log").exists()


def test_after_the_harness_is_sigkilled_reap_removes_its_leftovers(images: Any, client: Any, tmp_path: Path) -> None:
    proc, run_id = _harness_with_a_stack(tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert len(ours(client, run_id)[0]) == 9  # nobody could clean up at SIGKILL time
    removed = reap(client)
    assert f"crucible-{run_id}" in removed
    assert ours(client, run_id) == ([], [])
    assert (tmp_path / run_id / "logs" / "gateway.log").exists()  # reap saved the logs it could


# -- images ---------------------------------------------------------------------------------------------------


def test_an_unchanged_tree_reuses_its_image_and_any_change_gets_a_new_tag(
        images: Any, client: Any, tmp_path: Path) -> None:
    first, again = ensure_images(client), ensure_images(client)
    assert again.sut == first.sut and not again.built
    for name in ("Dockerfile", "pyproject.toml"):
        shutil.copy(PROJECT_ROOT / name, tmp_path / name)
    for name in ("system_under_test", "harness"):
        shutil.copytree(PROJECT_ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    plan = plan_build(images.base, "sha256:base", None, tmp_path)
    assert plan_build(images.base, "sha256:base", None, tmp_path).tag == plan.tag
    assert plan_build(images.base, "sha256:other", None, tmp_path).tag != plan.tag
    (tmp_path / "harness" / "cli.py").write_text("# not in the image\n")
    assert plan_build(images.base, "sha256:base", None, tmp_path).tag == plan.tag
    (tmp_path / "system_under_test" / "settings.py").write_text("# changed\n")
    assert plan_build(images.base, "sha256:base", None, tmp_path).tag != plan.tag


def test_a_failing_image_build_says_so_with_the_build_log(images: Any, client: Any, tmp_path: Path) -> None:
    shutil.copy(PROJECT_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for name in ("system_under_test", "harness"):
        shutil.copytree(PROJECT_ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    broken = (PROJECT_ROOT / "Dockerfile").read_text() + '\nRUN echo "boom: a broken step" && exit 3\n'
    (tmp_path / "Dockerfile").write_text(broken)
    with pytest.raises(ImageBuildError, match=r"building crucible-sut:\w+ from .* failed: .*non-zero code: 3") as info:
        ensure_images(client, base=images.base, root=tmp_path)
    assert any("boom: a broken step" in line for line in info.value.log_tail)
    assert "hint:" in str(info.value)
