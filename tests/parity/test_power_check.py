"""The power check: the parity search catches every candidate defect of the Celery path.

Each candidate defect (``system_under_test/defects.py``: one or more per edge family of the parity
surface, and the environment) is switched on, alone, in a stack of its own; the search must find a
failing program and shrink it to at most 3 lines, and the failure must be on a field the defect
corrupts. With every defect off (the session stack) ``test_parity_suite`` must pass: a suite that
passes with a defect on has no power, one that fails with all off cries wolf. How long each takes
(median over 3 seeds) is measured by ``benchmarks/parity_power.py``.

Also here, because it needs a stack of its own: a Celery path that never produces a result is
reported as ``missing`` within the evaluation's deadline, never as a flaky divergence.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from harness.parity.compare import ParityConfig
from harness.parity.dispatch import DUAL, Dispatcher
from harness.parity.explain import explain
from harness.parity.suite import ParitySession, search
from harness.run import RunFolder
from harness.stack.config import StackConfig
from system_under_test.defects import DEFECTS

pytestmark = [pytest.mark.parity, pytest.mark.slow]

RESULT = {"output", "error", "exit_code", "status"}
# The fields each defect corrupts (any one of them caught is a catch).
CORRUPTS = {
    "drop_trailing_newline": {"output"},
    "merge_stderr": {"output", "error"},
    "signal_exit_code": {"exit_code"},
    "output_cap": {"output", "truncated"},
    "unicode_reencode": {"output"},
    "stderr_cap": {"error", "truncated"},
    "cap_at_character": {"output", "error"},
    "strip_trailing_blanks": {"output", "error"},
    "universal_newlines": {"output", "error"},
    "strip_nul": {"output", "error"},
    "blank_output_dropped": {"output", "error"},
    "timeout_slack": {"status", "timed_out", "exit_code", "output"},  # output: the CPU limit follows the timeout
    "wait_for_children": {"output", "status", "exit_code", "timed_out"},
    "stdin_closed": RESULT,
    "lower_file_limit": RESULT,
    "executor3_umask": {"output"},
    "executor3_timezone": {"output"},
    "executor3_extra_variable": {"output"},
}


def test_every_defect_has_an_expected_field() -> None:
    assert set(CORRUPTS) == set(DEFECTS)


def _stack(launch_stack: Any, run_folder: RunFolder, name: str, seed: int, **options: Any) -> Any:
    config = StackConfig.for_tests(flower=False, fault_proxy=False, legacy_workers=2, seed=seed, **options)
    return launch_stack(config, RunFolder.create(run_folder.path / "power", run_id=name))


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_the_search_catches_the_defect(defect: str, launch_stack: Any, run_folder: RunFolder,
                                       harness_seed: int) -> None:
    with _stack(launch_stack, run_folder, defect, harness_seed, candidate_defects=(defect,)) as stack, \
            Dispatcher(stack.endpoints.gateway, default_timeout_s=5.0) as dispatcher:
        session = ParitySession(dispatcher, ParityConfig.load(), stack.config.executor_output_bytes, DUAL)
        outcome = search(session, profile="ci", seed=harness_seed, budget=400, database=False)
    assert outcome.failure is not None, (
        f"the parity search missed the candidate defect {defect!r}: {outcome.programs} programs, "
        f"{outcome.elapsed_s:.0f} s, no failure (flaky: {outcome.flaky})")
    cmp = outcome.failure.comparison
    assert (set(cmp.differing) | set(cmp.candidate_wrong)) & CORRUPTS[defect], explain(outcome.failure, seed=harness_seed)
    assert "celery" in cmp.wrong_paths() or not cmp.wrong_paths(), explain(outcome.failure, seed=harness_seed)
    assert len(outcome.failure.code.splitlines()) <= 3, "not shrunk:\n" + explain(outcome.failure, seed=harness_seed)


def test_a_half_that_never_arrives_is_missing_within_the_deadline_not_flaky(launch_stack: Any, run_folder: RunFolder,
                                                                            harness_seed: int) -> None:
    """The Celery worker consumes only the maintenance queue: every dual-write's Celery half stays queued."""
    with _stack(launch_stack, run_folder, "missing", harness_seed, celery_queues=("maintenance",)) as stack, \
            Dispatcher(stack.endpoints.gateway, default_timeout_s=5.0, queue_allowance_s=5.0) as dispatcher:
        session = ParitySession(dispatcher, ParityConfig.load(), stack.config.executor_output_bytes, DUAL)
        started = time.monotonic()
        outcome = search(session, profile="dev", seed=harness_seed, database=False)
        elapsed = time.monotonic() - started
    assert outcome.missing is not None and not outcome.flaky and outcome.failure is None
    assert outcome.missing.comparison.missing == ("celery",)
    screen = explain(outcome.missing, seed=harness_seed)
    assert screen.startswith("PARITY FAILURE: celery result missing") and "flaky" not in screen
    # One batch: its deadline is the longest timeout in it (5 s default, 1 s near-deadline programs) + 5 s.
    assert elapsed < 10.0 + 15.0, f"the search took {elapsed:.0f} s to report a missing result"
