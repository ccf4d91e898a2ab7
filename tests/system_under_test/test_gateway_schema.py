"""Schemathesis against the gateway: every answer conforms to the schema the gateway publishes.

The gateway runs as it does in production, a real uvicorn server on 127.0.0.1 with its two real
redis-servers, and nothing else: submissions are queued and never run, which is all the contract
needs (lighter than the whole stack, and nothing Schemathesis does can disturb another test's
stack). Schemathesis talks to it over HTTP rather than in-process through ASGI, so uvicorn's own
parsing and framing, the body limit and the connection handling are part of what is tested.

All of Schemathesis's checks are on, with the project's ``schemathesis.toml`` (the one ``st run``
reads): ``negative_data_rejection`` also takes 413 as a rejection, because a code over ``maxLength``
is refused with 413, as documented (the limit is in bytes). The gateway runs with ``MAX_WAIT_S=1``:
no worker ever finishes an evaluation here, so a long-poll always lasts its whole ``wait``, and
the schema (which states that limit) keeps each one at a second. The run is seeded (the
per-operation tests from ``HARNESS_SEED``, known at import; the workflows from ``--seed``) and bounded (``MAX_EXAMPLES`` per operation and phase, ``STATEFUL_RUNS`` workflows) so that it
takes well under a minute here.
"""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, seed, settings
from schemathesis.config import SchemathesisConfig

from harness.stack.ports import free_port
from harness.stack.process import ManagedProcess
from system_under_test.gateway.app import create_app
from system_under_test.gateway.settings import GatewaySettings
from system_under_test.redis_server import find_redis_server, redis_argv

pytestmark = pytest.mark.slow

ADMIN_TOKEN = "schema-admin"
# The gateway's settings (its defaults, an admin token, 1 s long-polls); the in-process schema uses the same.
GATEWAY_ENV = {"ADMIN_TOKEN": ADMIN_TOKEN, "GATEWAY_SEED": "1", "MAX_WAIT_S": "1"}
SEED = int(os.environ.get("HARNESS_SEED", "0"))
PROJECT_CONFIG = Path(__file__).resolve().parents[2] / "schemathesis.toml"
MAX_EXAMPLES = int(os.environ.get("GATEWAY_SCHEMA_EXAMPLES", "25"))
STATEFUL_RUNS = int(os.environ.get("GATEWAY_SCHEMA_WORKFLOWS", "15"))


def _redis_ok(port: int) -> bool:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
        s.sendall(b"PING\r\n")
        return s.recv(16).startswith(b"+PONG")


def start_gateway_alone(logs: Path, extra_env: dict[str, str] | None = None) -> tuple[str, list[ManagedProcess]]:
    """Main Redis, celery-redis and a gateway, started and healthy; the caller stops the processes."""
    binary = find_redis_server()
    main, broker, port = free_port(), free_port(), free_port()
    env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{main}/0",
           "CELERY_BROKER_URL": f"redis://127.0.0.1:{broker}/0",
           "GATEWAY_HOST": "127.0.0.1", "GATEWAY_PORT": str(port), **GATEWAY_ENV, **(extra_env or {})}
    url = f"http://127.0.0.1:{port}"
    procs = [
        ManagedProcess("main-redis", redis_argv(port=main, binary=binary, workdir=str(logs)), env=env,
                       log_path=logs / "main-redis.log", ready=lambda: _redis_ok(main)),
        ManagedProcess("celery-redis", redis_argv(port=broker, binary=binary, workdir=str(logs)), env=env,
                       log_path=logs / "celery-redis.log", ready=lambda: _redis_ok(broker)),
        ManagedProcess("gateway", [sys.executable, "-m", "system_under_test.gateway"], env=env,
                       log_path=logs / "gateway.log",
                       ready=lambda: requests.get(url + "/health", timeout=0.5).status_code == 200),
    ]
    started: list[ManagedProcess] = []
    try:
        for proc in procs:
            proc.start()
            started.append(proc)
            proc.wait_ready()
    except BaseException:
        for proc in reversed(started):
            proc.stop()
        raise
    return url, procs


@pytest.fixture(scope="module")
def lone_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, procs = start_gateway_alone(tmp_path_factory.mktemp("gateway-alone"))
    try:
        yield url
    finally:
        for proc in reversed(procs):
            proc.stop()


def _schema() -> schemathesis.schemas.BaseSchema:
    """The schema a gateway with ``GATEWAY_ENV`` publishes, built in-process at import.

    The seed is the harness's (``HARNESS_SEED``; ``--seed`` is not known yet at import).
    Schemathesis's lazy loader (``schemathesis.pytest.from_fixture``) does not work under pytest 9
    (it sets ``Function._nodeid``, which pytest 9 removed), so the operations are known at collection
    from the app itself; ``test_the_served_schema_is_the_one_under_test`` holds the served one to it.
    """
    config = SchemathesisConfig.from_dict({
        **tomllib.loads(PROJECT_CONFIG.read_text()),
        "seed": SEED,
        "generation": {"max-examples": MAX_EXAMPLES},
        "auth": {"openapi": {"HTTPBearer": {"bearer": ADMIN_TOKEN}}},
        "request-timeout": 10,
    })
    return schemathesis.openapi.from_dict(create_app(GatewaySettings.from_env(GATEWAY_ENV)).openapi(), config=config)


schema = _schema()


def test_the_served_schema_is_the_one_under_test(lone_gateway: str) -> None:
    served = requests.get(lone_gateway + "/openapi.json", timeout=10).json()
    assert served == create_app(GatewaySettings.from_env(GATEWAY_ENV)).openapi()


@schema.parametrize()
# database=None: under CI=true Hypothesis loads the "ci" profile, which the parity suite registers with its
# own example database; Schemathesis derandomizes, and a derandomized run may keep no database.
@settings(suppress_health_check=list(HealthCheck), deadline=None, database=None)
def test_every_answer_conforms_to_the_published_schema(case: schemathesis.Case, lone_gateway: str) -> None:
    case.call_and_validate(base_url=lone_gateway)


def test_workflows_that_follow_the_links_conform_too(lone_gateway: str, harness_seed: int) -> None:
    """Stateful: submit, then read what was submitted (the 201's link), change and read the split."""

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, str]:
            return {"base_url": lone_gateway}

    seed(harness_seed)(Workflow).run(settings=settings(
        max_examples=STATEFUL_RUNS, stateful_step_count=6, deadline=None, suppress_health_check=list(HealthCheck),
        database=None))


def _conforms(method: str, path: str, resp: requests.Response) -> None:
    operation = schema[path][method]
    assert str(resp.status_code) in operation.definition.raw["responses"], f"{resp.status_code} is not documented"
    operation.validate_response(resp)


def test_unreachable_backends_get_documented_503s(tmp_path: Path) -> None:
    # A submission refused because celery-redis is down takes the gateway ~19 s to answer (Celery's
    # own reconnect retries); test_faults.py covers it; its body is the same Unavailable as below.
    url, procs = start_gateway_alone(tmp_path)
    main_redis, celery_redis, _ = procs
    try:
        celery_redis.stop()
        health = requests.get(url + "/health", timeout=10)
        _conforms("GET", "/health", health)
        assert health.status_code == 503 and health.json()["backends"]["celery_broker"].startswith("unreachable")
        main_redis.stop()
        for method, path, call in (
                ("POST", "/api/eval", lambda: requests.post(url + "/api/eval", timeout=60,
                                                            json={"code": "pass", "language": "python"})),
                ("GET", "/api/eval/{eval_id}", lambda: requests.get(url + "/api/eval/x", timeout=60))):
            resp = call()
            _conforms(method, path, resp)
            assert resp.status_code == 503 and resp.json()["backend"] == "main redis", resp.text
    finally:
        for proc in reversed(procs):
            proc.stop()
