"""The Celery worker topology (today's single worker, or the plan's three specialised ones) and the phase
settings of StackConfig: what the launchers start, and the workers' own answer to what they serve."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from harness.chaos.platform import TRANSPORT_OPTIONS
from harness.errors import StackError
from harness.run import RunFolder
from harness.stack.config import PLAN_TOPOLOGY, StackConfig
from harness.stack.containers import ContainersStack
from harness.stack.images import DockerUnavailable, docker_client
from harness.stack.processes import ProcessesStack

ALL_QUEUES = ("high_priority", "evaluation", "batch", "maintenance")


def test_the_single_topology_is_todays_workers_each_serving_every_queue() -> None:
    assert StackConfig().celery_worker_specs() == [("celery-worker-1", ALL_QUEUES, 2)]
    cfg = StackConfig(celery_workers=2, celery_concurrency=3, celery_queues=("evaluation", "batch"))
    assert cfg.celery_worker_specs() == [("celery-worker-1", ("evaluation", "batch"), 3),
                                         ("celery-worker-2", ("evaluation", "batch"), 3)]


def test_the_plan_topology_is_seed_000_q3s_three_workers() -> None:
    assert StackConfig(celery_topology="plan").celery_worker_specs() == [
        ("celery-worker-1", ("high_priority",), 4),
        ("celery-worker-2", ("batch",), 1),
        ("celery-worker-3", ("evaluation", "high_priority"), 2),
    ] == list(PLAN_TOPOLOGY)


@pytest.mark.parametrize(("options", "words"), [
    ({"celery_topology": "triple"}, "celery_topology must be 'single' or 'plan'"),
    ({"celery_queues": ("evaluation", "gpu_queue")}, "celery_queues must be a non-empty selection of"),
    ({"celery_queues": ()}, "celery_queues must be a non-empty selection of"),
    ({"fallback": "sometimes"}, "fallback must be 'none', 'naive' or 'safe'"),
    ({"celery_enabled": False, "accept_legacy": False}, "leaves no path for new work"),
])
def test_bad_topology_or_phase_options_are_refused_naming_them(options: dict, words: str) -> None:
    with pytest.raises(StackError, match=words):
        StackConfig.from_options(**options)


def test_the_phase_settings_reach_the_gateway_under_the_plans_names() -> None:
    env = StackConfig(fallback="safe", accept_legacy=False).gateway_env()
    assert (env["CELERY_FALLBACK"], env["ACCEPT_LEGACY_TASKS"]) == ("safe", "false")
    env = StackConfig().gateway_env()
    assert (env["CELERY_FALLBACK"], env["ACCEPT_LEGACY_TASKS"]) == ("none", "true")


def option_after(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def workers_answer(broker_url: str) -> tuple[dict[str, list[str]], dict[str, int]]:
    """Per worker (by component name), the queues it consumes from and its pool's concurrency, as the
    workers themselves answer Celery's remote control (``celery inspect active_queues`` / ``stats``)."""
    app = Celery("topology-test", broker=broker_url)
    app.conf.broker_transport_options = TRANSPORT_OPTIONS
    try:
        inspect = app.control.inspect(timeout=3)
        active: dict[str, Any] = inspect.active_queues() or {}
        stats: dict[str, Any] = inspect.stats() or {}
    finally:
        app.close()
    served = {w.split("@")[0]: sorted(q["name"] for q in queues) for w, queues in active.items()}
    pools = {w.split("@")[0]: int(s["pool"]["max-concurrency"]) for w, s in stats.items()}
    return served, pools


PLAN_SERVED = {name: sorted(queues) for name, queues, _ in PLAN_TOPOLOGY}
PLAN_POOLS = {name: concurrency for name, _, concurrency in PLAN_TOPOLOGY}


@pytest.mark.stack  # the launcher under test starts it
def test_the_plan_topology_starts_three_workers_serving_their_queues_with_their_concurrency(tmp_path: Path) -> None:
    config = StackConfig.for_tests(celery_topology="plan", legacy_workers=0, flower=False, fault_proxy=False)
    with ProcessesStack(config, RunFolder.create(tmp_path)) as stack:
        workers = sorted(name for name in stack.components if name.startswith("celery-worker"))
        assert workers == ["celery-worker-1", "celery-worker-2", "celery-worker-3"]
        for name, queues, concurrency in PLAN_TOPOLOGY:
            argv = Path(f"/proc/{stack.component(name).pid}/cmdline").read_text().split("\0")
            assert (option_after(argv, "-Q"), option_after(argv, "-c")) == (",".join(queues), str(concurrency))
        served, pools = workers_answer(stack.endpoints.celery_redis)
    assert (served, pools) == (PLAN_SERVED, PLAN_POOLS)


@pytest.mark.containers
def test_the_containers_launcher_runs_the_plan_topology_too(tmp_path: Path) -> None:
    try:
        client = docker_client()
    except DockerUnavailable as exc:
        if os.environ.get("HARNESS_CONTAINERS_REQUIRED") == "1" or os.environ.get("CI"):
            pytest.fail(str(exc), pytrace=False)
        pytest.skip(f"no Docker engine: {exc.reason} (sudo scripts/prepare-docker.sh starts one)")
    client.close()
    config = StackConfig(celery_topology="plan", legacy_workers=0, flower=False, fault_proxy=False,
                         ready_timeout_s=90)
    with ContainersStack(config, RunFolder.create(tmp_path)) as stack:
        commands = {name: stack.component(name).spec.command for name, _, _ in PLAN_TOPOLOGY}
        served, pools = workers_answer(stack.endpoints.celery_redis)
    for name, queues, concurrency in PLAN_TOPOLOGY:
        assert (option_after(commands[name], "-Q"), option_after(commands[name], "-c")) == (",".join(queues),
                                                                                           str(concurrency))
    assert (served, pools) == (PLAN_SERVED, PLAN_POOLS)
