"""The power check: the parity search catches every candidate defect of the Celery path.

Each candidate defect (``system_under_test/defects.py``) is switched on, alone, in a stack of its
own; the search must find a failing program and shrink it, and the failure must be on the field the
defect corrupts. With every defect off (the session stack) ``test_parity_suite`` must pass: a suite
that passes with a defect on has no power, one that fails with all off cries wolf.
"""

from __future__ import annotations

import pytest

from harness.parity.compare import ParityConfig
from harness.parity.dispatch import DUAL, Dispatcher
from harness.parity.explain import explain
from harness.parity.suite import ParitySession, search
from harness.run import RunFolder
from harness.stack.config import StackConfig
from harness.stack.processes import ProcessesStack
from system_under_test.defects import DEFECTS

pytestmark = [pytest.mark.parity, pytest.mark.slow]

# The fields each defect corrupts (any one of them caught is a catch).
CORRUPTS = {
    "drop_trailing_newline": {"output"},
    "merge_stderr": {"output", "error"},
    "signal_exit_code": {"exit_code"},
    "output_cap": {"output", "truncated"},
    "unicode_reencode": {"output"},
}


def test_every_defect_has_an_expected_field() -> None:
    assert set(CORRUPTS) == set(DEFECTS)


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_the_search_catches_the_defect(defect: str, run_folder: RunFolder, harness_seed: int) -> None:
    config = StackConfig(candidate_defects=(defect,), executor_timeout_s=5.0, retry_backoff_s=0.5, flower=False,
                         fault_proxy=False, legacy_workers=2, seed=harness_seed)
    sub = RunFolder.create(run_folder.path / "power", run_id=defect)
    with ProcessesStack(config, sub) as stack, Dispatcher(stack.endpoints.gateway) as dispatcher:
        session = ParitySession(dispatcher, ParityConfig.load(), config.executor_output_bytes, DUAL)
        outcome = search(session, profile="ci", seed=harness_seed, budget=400, database=False)
    assert outcome.failure is not None, (
        f"the parity search missed the candidate defect {defect!r}: {outcome.programs} programs, "
        f"{outcome.elapsed_s:.0f} s, no failure (flaky: {outcome.flaky})")
    caught = set(outcome.failure.comparison.differing) | set(outcome.failure.comparison.candidate_wrong)
    assert caught & CORRUPTS[defect], explain(outcome.failure, seed=harness_seed)
    assert len(outcome.failure.spec.writes) <= 2, "not shrunk:\n" + explain(outcome.failure, seed=harness_seed)
