"""pytest integration: markers, stack options and the session-scoped ``stack`` fixture.

Installed with the harness, pytest loads it by itself (the ``pytest11`` entry point ``harness``;
``-p no:harness`` turns it off). ``pytest --fixtures`` lists its fixtures with what each gives.
Options: ``--stack=processes|containers|external`` (default processes), ``--stack-url`` for an
external deployment (with ``--stack=external`` and no URL: the one stack ``harness up`` runs in this
workspace), ``--seed`` for every random choice, ``--explore`` (with ``--explore-budget`` and
``--explore-profile``) to collect the generative chaos search, marked ``explore`` and otherwise
deselected. The session's run folder is created under the
workspace's ``reports/`` (``harness.run.workspace``) and printed at the end.

Parity fixtures: ``parity_profile`` (Hypothesis's own ``--hypothesis-profile``, else the
``HYPOTHESIS_PROFILE`` environment variable, else ``ci`` under CI and ``dev`` elsewhere),
``parity_dispatcher`` (sends batches through the session stack's gateway, recording every operation
in one history) and ``parity_recorder`` (every parity session of the test run; written to
``observations.parquet``, ``parity_history.parquet`` and ``parity.md`` in the run folder at the end).
The terminal summary shows the coverage table of the parity surface when parity ran.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from harness import arguments
from harness.errors import HarnessError, StackError
from harness.parity import coverage
from harness.parity.dispatch import Dispatcher
from harness.parity.suite import ParitySession, check_profile, register_profiles, write_outputs
from harness.run import RunFolder
from harness.stack.config import StackConfig
from harness.stack.opening import open_stack
from harness.stack.protocol import Stack

MARKERS = {
    "parity": "output, exit-code and error parity between the legacy and Celery paths",
    "chaos": "faults under a workload, checked against the history",
    "load": "load through the gateway with Locust",
    "security": "hostile submissions are contained the same way on both paths",
    "containers": "the stack in containers through Testcontainers (needs a Docker engine)",
    "slow": "takes more than a few seconds",
    "transition": "the migration's moves (phase 2 fallback, decommission, rollback, topology) under a workload",
    "explore": "a generative chaos search (harness chaos explore): collected only with --explore "
               "[--explore-budget 5m] [--explore-profile any|safe]",
    "stack": "starts a stack of the system under test (set automatically on every test that requests "
             "`stack`, `launch_stack` or a fixture built on them); `make check` runs the others",
}
# Requesting any of these starts a stack (directly or through a fixture built on them).
STACK_FIXTURES = frozenset({"stack", "launch_stack", "parity_dispatcher"})


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "queue-migration harness")
    group.addoption("--stack", default=os.environ.get("HARNESS_STACK", "processes"),
                    choices=("processes", "containers", "external"),
                    help="where the system under test runs (default: processes)")
    group.addoption("--stack-url", default=os.environ.get("HARNESS_STACK_URL"),
                    help="gateway URL of an already-running deployment (with --stack=external; default: the "
                         "gateway of the one stack `harness up` runs in this workspace)")
    group.addoption("--seed", type=int, default=int(os.environ.get("HARNESS_SEED", "0")),
                    help="seed for every random choice of the harness")
    group.addoption("--explore", action="store_true", default=False,
                    help="also run the generative chaos search (tests marked explore; with -m chaos: "
                         "`pytest -m chaos --explore`), bounded by --explore-budget")
    group.addoption("--explore-budget", type=arguments.duration(24 * 3600.0), default=300.0, metavar="T",
                    help="time budget of the search, e.g. 5m, 600, 1h (default 5m)")
    group.addoption("--explore-profile", choices=("any", "safe"), default="any",
                    help="what the search draws: any (every knob and fault; the default) or safe")


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    config._harness_run = None  # type: ignore[attr-defined]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that starts a stack (by the fixtures it requests) with ``stack``; leave out the
    generative search (marked ``explore``) unless ``--explore`` asks for it (deselected, not skipped)."""
    for item in items:
        if STACK_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.stack)
    if not config.getoption("--explore"):
        left = [item for item in items if item.get_closest_marker("explore")]
        if left:
            config.hook.pytest_deselected(items=left)
            items[:] = [item for item in items if not item.get_closest_marker("explore")]


@pytest.fixture(scope="session")
def launch_stack() -> Callable[..., AbstractContextManager[Stack]]:
    """Opens a stack of your own: ``with launch_stack(config, run) as stack:`` (the processes launcher
    unless ``kind=`` says otherwise; any other keyword goes to ``harness.stack.opening.open_stack``).
    Requesting it marks the test ``stack``."""
    def launch(config: StackConfig, run: RunFolder, kind: str = "processes", **options: Any
               ) -> AbstractContextManager[Stack]:
        return open_stack(kind, config, run, **options)
    return launch


@pytest.fixture(scope="session")
def harness_seed(request: pytest.FixtureRequest) -> int:
    """The seed of every random choice in the session (``--seed``, or ``HARNESS_SEED``; default 0)."""
    return int(request.config.getoption("--seed"))


@pytest.fixture(scope="session")
def run_folder(request: pytest.FixtureRequest) -> RunFolder:
    """The session's run folder, ``reports/<run-id>/`` of the workspace (or ``HARNESS_REPORTS``): the
    stack's logs and ledgers, and what the suites store (observations, findings); printed at the end."""
    run = RunFolder.create()
    request.config._harness_run = run  # type: ignore[attr-defined]
    return run


@pytest.fixture(scope="session")
def stack_config(harness_seed: int) -> StackConfig:
    """The session stack's configuration: the platform's defaults with short test timeouts."""
    return StackConfig.for_tests(seed=harness_seed)


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest, stack_config: StackConfig, run_folder: RunFolder) -> Iterator[Stack]:
    """The session's stack, from ``--stack`` (processes, containers, or external with ``--stack-url``);
    started once, healthy when yielded, stopped at the end. A stack that cannot start fails the
    tests that need it with the launcher's message (what went wrong and what to do)."""
    kind = request.config.getoption("--stack")
    url, endpoints_file = request.config.getoption("--stack-url"), None
    if kind == "external" and not url:
        url, endpoints_file = _detached_stack()
    opened = open_stack(kind, stack_config, run_folder, url=url, endpoints_file=endpoints_file)
    try:
        running = opened.__enter__()
    except StackError as exc:  # no engine, a failed build, an unhealthy component, no URL
        pytest.fail(f"--stack={kind}: {exc}", pytrace=False)
    try:
        yield running
    finally:
        opened.__exit__(None, None, None)


def _detached_stack() -> tuple[str | None, Path | None]:
    """The gateway and state file of the one stack ``harness up`` runs in this workspace (None, None when
    there is none); fails the session if there are several."""
    from harness.stack import state

    try:
        running = state.running()
    except HarnessError as exc:
        pytest.fail(str(exc), pytrace=False)
    if len(running) > 1:
        pytest.fail(f"--stack=external: {len(running)} stacks run here ({', '.join(running)}); choose one with "
                    "--stack-url (`harness status` shows each gateway)", pytrace=False)
    for name, found in running.items():
        return str(found["endpoints"]["gateway"]), state.state_file(name)
    return None, None


register_profiles()  # before Hypothesis's own plugin loads --hypothesis-profile


@pytest.fixture(scope="session")
def parity_profile(request: pytest.FixtureRequest) -> str:
    """The Hypothesis profile of the parity search: ``--hypothesis-profile``, else ``HYPOTHESIS_PROFILE``,
    else ``ci`` under CI and ``dev`` elsewhere (dev: quick, a few small batches; ci; thorough)."""
    chosen = (request.config.getoption("hypothesis_profile", default=None)
              or os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))
    try:
        return check_profile(chosen)
    except Exception as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def parity_dispatcher(stack: Any) -> Iterator[Dispatcher]:
    """Sends batches of programs through the session stack's gateway (dual-write or forced routes) and
    waits for every path's result until the evaluation's deadline (``harness.parity.dispatch.Dispatcher``),
    recording every operation in its history. Requesting it starts the stack."""
    with Dispatcher(stack.endpoints.gateway, default_timeout_s=stack.config.executor_timeout_s) as dispatcher:
        yield dispatcher


@pytest.fixture(scope="session")
def parity_recorder(request: pytest.FixtureRequest, run_folder: RunFolder) -> Iterator[list[ParitySession]]:
    """A list to append each ``ParitySession`` of a test to; at the end of the session their checks are
    written to ``observations.parquet``, ``parity_history.parquet`` and ``parity.md`` in the run folder,
    and the coverage table of the parity surface goes to the terminal summary."""
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


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A session that used a run folder ends, like every command, with its three reports."""
    run = getattr(session.config, "_harness_run", None)
    if run is None or not run.path.is_dir():
        return
    try:
        from harness.report import build_frames, build_reports, read_run

        session.config._harness_reports = build_reports(run.path)  # type: ignore[attr-defined]
        session.config._harness_frames = build_frames(read_run(run.path))  # type: ignore[attr-defined]
    except Exception as exc:  # the tests' own result stands; say why there is no report
        session.config._harness_reports = exc  # type: ignore[attr-defined]


def _evidence_lines(config: pytest.Config) -> list[str]:
    """What the session's run folder holds, counted: programs per parity class, scenarios per outcome."""
    frames = getattr(config, "_harness_frames", None)
    lines = []
    if frames is not None and frames.has_parity:
        classes = frames.parity_classes
        lines.append(f"parity: {int(classes['programs'].sum())} programs: "
                     + ", ".join(f"{r['cls']} {r['programs']}" for r in classes.to_dict("records")))
    if frames is not None and frames.has_chaos:
        outcomes = frames.chaos_scenarios["outcome"].fillna("unknown").value_counts()
        lines.append(f"chaos: {len(frames.chaos_scenarios)} scenario run(s): "
                     + ", ".join(f"{o} {n}" for o, n in outcomes.items()))
    return lines


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
        terminalreporter.section("harness")
        for line in _evidence_lines(terminalreporter.config):
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"harness run folder: {run.path}")
        reports = getattr(terminalreporter.config, "_harness_reports", None)
        if isinstance(reports, dict):
            for name, path in reports.items():
                terminalreporter.write_line(f"{name}: {path}")
        elif reports is not None:
            terminalreporter.write_line(f"no report: {type(reports).__name__}: {reports}")
