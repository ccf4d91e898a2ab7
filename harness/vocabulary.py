"""The harness's words, typed once: every part imports them from here and never re-derives them.

Two kinds of words:

- **the platform's** (re-exported from ``system_under_test.contract``, the deployment's contract):
  paths, routes, statuses, terminal statuses, the result of a path, the record of an evaluation,
  a ledger row, the exit-code convention and the Redis keys;
- **the harness's own**: the exit codes of its commands, the gate's verdicts, a parity class, a
  checker class (what the chaos checker calls one evaluation on one path) and a chaos scenario's
  **outcome** on a path, with how outcomes combine and what each means for a gate.

A judgement is made in one function and stored as one of these words; readers (gate, report,
junit, pytest) parse the stored word with ``outcome_of`` / ``verdict_of`` and never guess from
free text: an unknown word is an error, not a pass.

Outcome of a chaos scenario on one path (``Outcome``), worst first:

- ``error``: the run could not be carried out (the stack did not start, the steady state did not
  hold, a fault could not be injected or healed, or it had no observable effect on its target).
  Nothing is known: a gate treats it as INCONCLUSIVE, never as held.
- ``failed``: the Celery path broke a bound of the scenario's ``[expect.celery]``.
- ``known-failure``: it broke only invariants the scenario's ``[known_failure]`` declares (a known
  defect). Never held: it blocks a gate unless the gate's thresholds accept it by name, with a
  reason; junit and pytest show it as an expected failure (xfail) with that reason.
- ``finding``: every bound held, but something was measured that the scenario reports rather
  than gates (a bound marked ``"report"``), or the path is the control (legacy), whose broken
  invariants are findings about the platform being migrated from.
- ``held``: every bound held and nothing was reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal, get_args

from harness.errors import HarnessError
from system_under_test.contract import (
    ADMIN_CHANGES,
    CLAIM_PREFIX,
    DLQ_KEY,
    EVENTS_CHANNEL,
    EXECUTORS,
    FALLBACK_MODES,
    LANGUAGES,
    LEGACY_INHAND,
    LEGACY_QUEUE,
    PATHS,
    RECORD_PREFIX,
    ROUTES,
    SIGNAL_EXIT_BASE,
    STATUSES,
    TERMINAL,
    TIMEOUT_EXIT_CODE,
    AdminChange,
    Event,
    ExecutionOutcome,
    ExecutionPath,
    Fallback,
    FallbackMode,
    InHand,
    Language,
    LedgerRow,
    Path,
    Record,
    Result,
    Route,
    Status,
    TerminalStatus,
    exit_code_of,
    record_key,
    status_of,
)

__all__ = [
    "ADMIN_CHANGES", "CLAIM_PREFIX", "FALLBACK_MODES", "LEGACY_INHAND", "AdminChange", "Fallback", "FallbackMode",
    "InHand",
    "CHECKER_CLASSES", "DLQ_KEY", "EVENTS_CHANNEL", "EXECUTORS", "EXIT_INTERRUPTED", "EXIT_USAGE", "INVARIANTS",
    "LANGUAGES", "LEGACY_QUEUE", "OUTCOMES", "PARITY_CLASSES", "PROMISES", "PATHS", "RECORD_PREFIX", "ROUTES",
    "SIGNAL_EXIT_BASE", "STATUSES", "TERMINAL", "TIMEOUT_EXIT_CODE", "VERDICTS", "VERDICT_EXIT_CODES",
    "CheckerClass", "Event", "ExecutionOutcome", "ExecutionPath", "Invariant", "Language", "LedgerRow", "Outcome",
    "ParityClass", "Path", "Promise", "Record", "Result", "Route", "Status", "TerminalStatus", "Verdict",
    "VocabularyError", "combine_outcomes", "exit_code_of", "outcome_of", "record_key", "status_of",
    "verdict_of", "worst_verdict",
]


class VocabularyError(HarnessError):
    """A stored word is not one of the vocabulary's (a file written by another version, or by hand)."""


# -- the gate's verdicts and the commands' exit codes --------------------------------------------------------

Verdict = Literal["PASS", "FAIL", "INCONCLUSIVE"]
VERDICTS: tuple[Verdict, ...] = get_args(Verdict)
VERDICT_EXIT_CODES: Mapping[Verdict, int] = {"PASS": 0, "FAIL": 1, "INCONCLUSIVE": 2}
EXIT_USAGE = 3  # bad options or input, an unreachable stack: the question could not be asked
EXIT_INTERRUPTED = 130  # Ctrl-C


def verdict_of(word: object) -> Verdict:
    """A stored verdict word; raises VocabularyError for anything else."""
    if word in VERDICTS:
        return word
    raise VocabularyError(f"not a verdict: {word!r} (expected one of {', '.join(VERDICTS)})")


def worst_verdict(verdicts: Iterable[Verdict]) -> Verdict:
    """Any FAIL → FAIL; else any INCONCLUSIVE → INCONCLUSIVE; else PASS (an empty list is PASS)."""
    seen = set(verdicts)
    return "FAIL" if "FAIL" in seen else "INCONCLUSIVE" if "INCONCLUSIVE" in seen else "PASS"


# -- parity -------------------------------------------------------------------------------------------------

# Scientist's classes of one program's observations (control = legacy, candidate = celery), plus
# ``missing``: one path never produced a terminal result within the evaluation's deadline.
ParityClass = Literal["matched", "mismatched", "ignored", "noise", "wrong", "missing"]
PARITY_CLASSES: tuple[ParityClass, ...] = get_args(ParityClass)

# -- chaos: the checker's class of one evaluation on one path -----------------------------------------------

CheckerClass = Literal["ok", "recovered", "lost", "duplicated", "unexpected", "stuck", "wrong", "error", "unknown",
                       "misrouted"]
CHECKER_CLASSES: tuple[CheckerClass, ...] = get_args(CheckerClass)
# The classes a scenario bounds (``[expect.<path>]``); ``executions`` caps one evaluation's executions.
Invariant = Literal["lost", "duplicated", "stuck", "wrong", "unexpected", "error", "misrouted"]
INVARIANTS: tuple[Invariant, ...] = get_args(Invariant)

# -- chaos: the platform's promises about the Celery path (harness/chaos/promises.py) ------------------

Promise = Literal["retry-count", "retry-spacing", "dead-letter", "time-limit", "priority-order"]
PROMISES: tuple[Promise, ...] = get_args(Promise)

# -- chaos: a scenario's outcome on one path ----------------------------------------------------------------

Outcome = Literal["error", "failed", "known-failure", "finding", "held"]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)  # worst first


def outcome_of(word: object) -> Outcome:
    """A stored outcome word; raises VocabularyError for anything else (never read as held)."""
    if word in OUTCOMES:
        return word
    raise VocabularyError(f"not a chaos outcome: {word!r} (expected one of {', '.join(OUTCOMES)})")


def combine_outcomes(outcomes: Iterable[Outcome]) -> Outcome:
    """The outcome of several (paths of one run, or runs of one scenario): the worst of them.

    An empty list is ``error``: no run means nothing is known.
    """
    seen = set(outcomes)
    for outcome in OUTCOMES:
        if outcome in seen:
            return outcome
    return "error"
