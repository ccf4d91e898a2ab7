"""Every network link goes through its own proxy: disabling one breaks that link and no other."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from harness.client import wait_terminal
from harness.run import RunFolder
from harness.stack.config import StackConfig
from harness.stack.processes import ProcessesStack
from harness.stack.protocol import LINKS, Stack


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory, launch_stack: Any) -> Iterator[Stack]:
    config = StackConfig(legacy_workers=1, flower=False, retry_backoff_s=0.5, max_retries=10)
    with launch_stack(config, RunFolder.create(Path(tmp_path_factory.mktemp("links")))) as stack:
        yield stack


@contextlib.contextmanager
def disabled(stack: Stack, link: str) -> Iterator[None]:
    assert stack.endpoints is not None and stack.endpoints.proxy_api
    url = f"{stack.endpoints.proxy_api}/proxies/{link}"
    assert requests.post(url, json={"enabled": False}, timeout=5).json()["enabled"] is False
    try:
        yield
    finally:
        requests.post(url, json={"enabled": True}, timeout=5)


def submit(stack: ProcessesStack, route: str) -> str:
    assert stack.endpoints is not None
    resp = requests.post(stack.endpoints.gateway + "/api/eval",
                         json={"code": "print('via')", "language": "python", "route": route}, timeout=30)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["eval_id"])


def status(stack: ProcessesStack, eval_id: str, wait: float) -> dict:
    assert stack.endpoints is not None
    record = requests.get(f"{stack.endpoints.gateway}/api/eval/{eval_id}", params={"wait": wait},
                          timeout=wait + 10).json()
    return {path: r["status"] for path, r in record["results"].items()}


def test_every_link_has_its_own_proxy_in_front_of_its_server(linked: ProcessesStack) -> None:
    assert linked.endpoints is not None
    proxies = requests.get(f"{linked.endpoints.proxy_api}/proxies", timeout=5).json()
    assert set(proxies) == set(LINKS)
    for name, link in linked.endpoints.links.items():
        assert link.proxied and proxies[name]["listen"] == link.listen
        assert proxies[name]["upstream"] == link.upstream


@pytest.mark.parametrize("link, broken, working", [
    ("gateway-main-redis", "main_redis", "celery_broker"),
    ("gateway-celery-redis", "celery_broker", "main_redis"),
])
def test_a_gateway_link_down_shows_in_its_health_and_the_other_stays_up(
        linked: ProcessesStack, link: str, broken: str, working: str) -> None:
    assert linked.endpoints is not None
    with disabled(linked, link):
        health = requests.get(linked.endpoints.gateway + "/health", timeout=20).json()
        assert health["backends"][broken].startswith("unreachable") and health["backends"][working] == "ok"
    assert requests.get(linked.endpoints.gateway + "/health", timeout=20).status_code == 200


@pytest.mark.parametrize("link, stalled, flowing", [
    ("legacy-main-redis", "legacy", "celery"),
    ("celery-worker-celery-redis", "celery", "legacy"),
])
def test_a_worker_broker_link_down_stalls_only_its_path(
        linked: ProcessesStack, link: str, stalled: str, flowing: str) -> None:
    assert linked.endpoints is not None
    with disabled(linked, link):
        stuck, moving = submit(linked, stalled), submit(linked, flowing)
        assert status(linked, moving, 20) == {flowing: "completed"}
        assert status(linked, stuck, 2) == {stalled: "queued"}
    assert wait_terminal(linked.endpoints.gateway, stuck, 60)["results"][stalled]["status"] == "completed"


def test_a_legacy_executor_link_down_fails_only_the_jobs_sent_to_that_executor(linked: ProcessesStack) -> None:
    assert linked.endpoints is not None
    with disabled(linked, "legacy-executor-1"):
        ids = [submit(linked, "legacy") for _ in range(4)]
        results = [wait_terminal(linked.endpoints.gateway, i, 30)["results"]["legacy"] for i in ids]
    outcomes = sorted((r["status"], r["executor_id"]) for r in results)
    assert outcomes == [("completed", "executor-2")] * 2 + [("error", None)] * 2
    assert all("unreachable" in r["error"] for r in results if r["status"] == "error")


def test_the_celery_executor_link_down_makes_celery_retry_until_it_is_back(linked: ProcessesStack) -> None:
    assert linked.endpoints is not None
    with disabled(linked, "celery-executor-3"):
        eval_id = submit(linked, "celery")
        time.sleep(1.2)
        assert status(linked, eval_id, 0) == {"celery": "queued"}
    result = wait_terminal(linked.endpoints.gateway, eval_id, 30)["results"]["celery"]
    assert result["status"] == "completed" and result["attempts"] >= 2
