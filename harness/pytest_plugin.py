"""pytest integration: markers, stack options and the session-scoped ``stack`` fixture.

Options: ``--stack=processes|containers|external`` (default processes), ``--stack-url`` for an
external deployment, ``--seed`` for every random choice. The run folder of the test session is
printed at the end.

Parity fixtures: ``parity_profile`` (Hypothesis's own ``--hypothesis-profile``, else the
``HYPOTHESIS_PROFILE`` environment variable, else ``ci`` under CI and ``dev`` elsewhere),
``parity_dispatcher`` (sends batches through the session stack's gateway, recording every operation
in one history) and ``parity_recorder`` (every parity session of the test run; written to
``observations.parquet``, ``parity_history.parquet`` and ``parity.md`` in the run folder at the end).
The terminal summary shows the coverage table of the parity surface when parity ran.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from harness.parity import coverage
from harness.parity.dispatch import Dispatcher
from harness.parity.suite import ParitySession, check_profile, register_profiles, write_outputs
from harness.run import RunFolder
from harness.stack.config import StackConfig
from harness.stack.external import ExternalStack
from harness.stack.processes import ProcessesStack

MARKERS = {
    "parity": "output, exit-code and error parity between the legacy and Celery paths",
    "chaos": "faults under a workload, checked against the history",
    "load": "load through the gateway with Locust",
    "security": "hostile submissions are contained the same way on both paths",
    "containers": "the stack in containers through Testcontainers (needs a Docker engine)",
    "slow": "takes more than a few seconds",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "queue-migration harness")
    group.addoption("--stack", default=os.environ.get("HARNESS_STACK", "processes"),
                    choices=("processes", "containers", "external"),
                    help="where the system under test runs (default: processes)")
    group.addoption("--stack-url", default=os.environ.get("HARNESS_STACK_URL"),
                    help="gateway URL of an already-running deployment (with --stack=external)")
    group.addoption("--seed", type=int, default=int(os.environ.get("HARNESS_SEED", "0")),
                    help="seed for every random choice of the harness")


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    config._harness_run = None  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def harness_seed(request: pytest.FixtureRequest) -> int:
    return int(request.config.getoption("--seed"))


@pytest.fixture(scope="session")
def run_folder(request: pytest.FixtureRequest) -> RunFolder:
    run = RunFolder.create()
    request.config._harness_run = run  # type: ignore[attr-defined]
    return run


@pytest.fixture(scope="session")
def stack_config(harness_seed: int) -> StackConfig:
    """The session stack's configuration: the platform's defaults with short test timeouts."""
    return StackConfig(seed=harness_seed, executor_timeout_s=5.0, retry_backoff_s=0.5)


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest, stack_config: StackConfig, run_folder: RunFolder) -> Iterator[Any]:
    """The session's stack, from ``--stack``; it is started once and stopped at the end."""
    kind = request.config.getoption("--stack")
    if kind == "external":
        url = request.config.getoption("--stack-url")
        if not url:
            pytest.fail("--stack=external needs --stack-url <gateway URL> (or HARNESS_STACK_URL)", pytrace=False)
        with ExternalStack.from_url(url, config=stack_config, run=run_folder) as external:
            yield external
        return
    if kind == "containers":
        from harness.errors import StackError
        from harness.stack.containers import ContainersStack

        containers = ContainersStack(stack_config, run_folder)
        try:
            containers.start()
        except StackError as exc:  # no engine, a failed build, an unhealthy component: the message says what to do
            pytest.fail(f"--stack=containers: {exc}", pytrace=False)
        try:
            yield containers
        finally:
            containers.stop()
        return
    with ProcessesStack(stack_config, run_folder) as running:
        yield running


register_profiles()  # before Hypothesis's own plugin loads --hypothesis-profile


@pytest.fixture(scope="session")
def parity_profile(request: pytest.FixtureRequest) -> str:
    chosen = (request.config.getoption("hypothesis_profile", default=None)
              or os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))
    try:
        return check_profile(chosen)
    except Exception as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def parity_dispatcher(stack: Any) -> Iterator[Dispatcher]:
    with Dispatcher(stack.endpoints.gateway, default_timeout_s=stack.config.executor_timeout_s) as dispatcher:
        yield dispatcher


@pytest.fixture(scope="session")
def parity_recorder(request: pytest.FixtureRequest, run_folder: RunFolder) -> Iterator[list[ParitySession]]:
    sessions: list[ParitySession] = []
    yield sessions
    merged = None
    for session in sessions:
        if merged is None:
            merged = ParitySession(session.dispatcher, session.config, session.output_cap, session.plan)
        merged.checks.extend(session.checks)
        merged.elapsed_s += session.elapsed_s
        merged.hits.update(session.hits)
    if merged is not None and merged.checks:
        summary = write_outputs(merged, run_folder.path, title="Parity (pytest)")
        table = coverage.terminal(coverage.coverage_frame(merged.frame()))
        request.config._harness_parity = (len(merged.checks), summary, table)  # type: ignore[attr-defined]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    parity = getattr(terminalreporter.config, "_harness_parity", None)
    if parity is not None:
        programs, summary, table = parity
        terminalreporter.section("parity: coverage of the parity surface")
        terminalreporter.write_line(f"{programs} programs checked; programs per edge (full table: {summary})")
        for line in table:
            terminalreporter.write_line(line)
    run = getattr(terminalreporter.config, "_harness_run", None)
    if run is not None:
        terminalreporter.write_line(f"harness run folder: {run.path}")
