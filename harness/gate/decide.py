"""The gate's decision: evidence in, a verdict out, every step explained. Pure; no stack, no I/O but
reading ``thresholds.toml``. This module holds the evidence, the ``Verdict`` and ``decide``; the
thresholds and their reader are in ``thresholds``, every criterion's rule in ``criteria``, the text
rendering in ``render`` and ``GateError``, ``Criterion`` and the stage names in ``base``; all of
them are re-exported here.

Question: may the Celery split move from ``current`` to ``target`` percent (0 <= current < target
<= 100)? Answer: ``PASS`` / ``FAIL`` / ``INCONCLUSIVE`` (exit code 0 / 1 / 2). FAIL means the
evidence shows Celery is not good enough (roll back); INCONCLUSIVE means it cannot tell yet (hold
the split, collect more). Too little data is never a PASS (Flagger#1095, Kayenta#700, Argo#3850).

Evidence (``Evidence``) has four optional parts; a part that is ``None`` was not collected and
makes its criteria INCONCLUSIVE:

- ``parity``: ``n`` paired comparisons = matched + mismatched + ignored (Scientist's classes) of
  programs drawn independently from a declared mix (``population``, e.g. ``mix:parity-v1``); the
  search's programs (``searched``: not a sample) count only for the zero-tolerance criteria.
  ``noise`` evaluations (the A/A control disagreed with itself) are *excluded* from ``n``: they
  cannot judge the candidate; their count is reported. ``mismatches`` = k mismatched evaluations
  (ignored ones are in n, not in k). ``mismatches_by_field`` counts, per compared field, the
  evaluations that differ on it (an evaluation may count on several fields). ``wrong`` counts oracle
  disagreements per path (``None``: no oracle was checked).
- ``chaos``: one ``ChaosOutcome`` per scenario run: the Celery path's outcome
  (``harness.vocabulary.Outcome``: held, finding, known-failure, failed, error), what broke and why.
- ``latency``: end-to-end latency samples (ms) per path, their stages and resources, and platform
  error counts per path.
- ``split``: the configured percentage, evaluations routed, and how many went to Celery.

Criteria, in order (``Thresholds`` supplies confidence c, ε(target) and the tolerances). Every bound
is a confidence sequence (``sequential``): valid at every sample size at once, so the gate may look
after every round of evidence and stop at the first decisive look; α = 1 − c per criterion, split in
two where a criterion reads two sequences (the error rate's two paths; a latency criterion's paired
difference and legacy's median for the relative tolerance).

1. parity mismatch rate: the rare-event CS of k/n: upper end < ε → PASS; lower end > ε → FAIL;
   otherwise INCONCLUSIVE: with k = 0 that is only "too few samples" and the gate says how many it
   needs; with k > 0 the sequence straddles ε. n = 0 → INCONCLUSIVE. The detail names the population
   ("0/304 mismatched in programs drawn from mix `parity-v1`").
2. critical fields: any mismatch on a field of ``thresholds.critical_fields`` → FAIL.
3. oracle: any wrong result on any path → FAIL. A wrong legacy result also fails: it means the
   oracle or the platform is broken and no parity claim can be trusted until it is fixed.
4. chaos invariants: any scenario ``failed`` → FAIL; any ``known-failure`` the thresholds do not accept
   by name (``[chaos.accepted_known_failures]``) → FAIL (a known defect is never "held"); else any
   ``error`` (the scenario could not be carried out) → INCONCLUSIVE; no scenario run → INCONCLUSIVE;
   else PASS, and an accepted known failure is named in the verdict's headline with its reason.
5. latency (queueing + delivery): the stage the migration changes, end-to-end − execution, per
   single-path evaluation of the load run. Fewer than ``latency_min_samples`` per path →
   INCONCLUSIVE. The CS (at α/2) of the median of paired differences: each evaluation paired with the
   latest unpaired one of the other path submitted before it (``criteria.paired_differences``: pairs
   submitted at about the same time whatever the split, never changed once formed). The tolerance is
   max(tolerance_ms, tolerance_fraction × legacy's median), read at the ends of legacy's median CS (at
   α/2): upper end <= the tolerance at legacy's lower end → PASS, lower end > the tolerance at legacy's
   upper end → FAIL, else INCONCLUSIVE. First, the A/A noise floor (per path, |median of the
   differences between consecutive evaluations|, whose true value is zero; the larger path's) must be
   within the tolerance, else INCONCLUSIVE (the machine is noisier than the difference the gate is
   asked to see), unless the lower end is beyond the tolerance plus the noise floor: FAIL, no noise
   explains it. Each Celery evaluation still in flight at the end adds a pair Celery lost by +inf;
   legacy ones still in flight count only as errors.
6. execution time: the same rule on the executions' own time; both paths run the same executor code,
   so a difference means the executors differ (image, settings, host), not the queue.
7. resources (CPU, peak memory): the same rule on each execution's CPU time and peak RSS (seed 000,
   Q7: Celery's memory may not exceed legacy's), without the noise floor.
8. error rate: a rare-event CS per path at α/2 over the load run's evaluations and parity's dual-write
   programs: upper end of (celery − legacy) <= ``max_increase`` → PASS, lower end > it → FAIL, else
   INCONCLUSIVE.
9. split accuracy: the evidence must have been collected at ``current`` percent and have at least
   ``split_min_samples`` evaluations the gateway routed (forced ones left out; else INCONCLUSIVE); the
   configured share outside the share's CS at level ``split_p_value_floor`` → FAIL; the CS at c within
   configured ± max(3 pp, ``split_tolerance`` × the smaller share / 50 %) → PASS; else INCONCLUSIVE.

Overall: any FAIL → FAIL; else any INCONCLUSIVE → INCONCLUSIVE; else PASS. ``Verdict`` carries
the headline (the first line of ``render_text``), every criterion with observed value, threshold,
sample size and bound, and ``samples_needed``: the sample sizes this step requires up front.
Bad input (current/target, inconsistent counts, a broken thresholds file) raises ``GateError``
naming the problem; the thresholds file's errors name the file and the key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.gate import sequential
from harness.gate.base import OVERHEAD, RESOURCES, STAGES, Criterion, ErrorCount, GateError, Status
from harness.gate.criteria import (
    _accepted,
    _alpha,
    _chaos,
    _critical,
    _error_rate,
    _execution,
    _latency,
    _num,
    _oracle,
    _parity_rate,
    _resources,
    _split,
    _transition,
    stage_table,
)
from harness.gate.render import render_text
from harness.gate.thresholds import DEFAULT_THRESHOLDS, Budget, Thresholds, ThresholdsError, load_thresholds
from harness.vocabulary import VERDICT_EXIT_CODES, Outcome, VocabularyError, outcome_of

__all__ = ["DEFAULT_THRESHOLDS", "EXIT_CODES", "OVERHEAD", "RESOURCES", "STAGES", "Budget", "ChaosOutcome",
           "Criterion", "ErrorCount", "Evidence", "GateError", "LatencyEvidence", "ParityEvidence", "SplitEvidence",
           "Status", "Thresholds", "ThresholdsError", "TransitionCheck", "TransitionEvidence", "Verdict",
           "check_step", "decide", "load_thresholds", "render_text", "samples_needed"]

EXIT_CODES: Mapping[Status, int] = VERDICT_EXIT_CODES


# ---------------------------------------------------------------------------------------------
# evidence


def _non_negative(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise GateError(f"evidence: {name} must be a non-negative integer, got {value!r}")


@dataclass(frozen=True)
class ParityEvidence:
    """``n`` and ``mismatches`` are the sample the rate bound is computed on: programs drawn independently
    from ``population`` (e.g. ``mix:parity-v1``; None: not declared, observations stored before
    populations were). ``searched`` programs (the Hypothesis search: not a sample) count only for the
    zero-tolerance criteria, as do ``mismatches_by_field`` and ``wrong``, which cover both."""

    n: int  # matched + mismatched + ignored; noise excluded
    mismatches: int
    mismatches_by_field: Mapping[str, int] = field(default_factory=dict)
    wrong: Mapping[str, int] | None = None  # oracle disagreements per path; None: no oracle checked
    noise: int | None = None  # evaluations the A/A control disagreed on (excluded from n); None: no A/A
    population: str | None = None
    searched: int = 0
    # path -> (dual-write evaluations, of those ending in a platform error or never finished): every
    # judged program is an evaluation on both paths, so it is evidence for the error-rate criterion too
    errors: Mapping[str, ErrorCount] = field(default_factory=dict)

    @property
    def checked(self) -> int:
        """Every judged program: the sample and the search's."""
        return self.n + self.searched

    def __post_init__(self) -> None:
        _non_negative(self.n, "parity.n")
        _non_negative(self.mismatches, "parity.mismatches")
        _non_negative(self.searched, "parity.searched")
        if self.mismatches > self.n:
            raise GateError(f"evidence: parity.mismatches ({self.mismatches}) exceeds parity.n ({self.n})")
        for name, count in self.mismatches_by_field.items():
            _non_negative(count, f"parity.mismatches_by_field[{name!r}]")
            if count > self.checked:
                raise GateError(f"evidence: parity.mismatches_by_field[{name!r}] ({count}) exceeds the programs "
                                f"checked ({self.checked})")
        for path, count in (self.wrong or {}).items():
            _non_negative(count, f"parity.wrong[{path!r}]")
        if self.noise is not None:
            _non_negative(self.noise, "parity.noise")


@dataclass(frozen=True)
class ChaosOutcome:
    """One scenario run as the gate sees it: the Celery path's outcome, what it broke, and why (the
    known failure's reason, or why the run could not be carried out)."""

    scenario: str
    outcome: Outcome
    violations: tuple[str, ...] = ()
    reason: str = ""

    def __post_init__(self) -> None:
        try:
            outcome_of(self.outcome)
        except VocabularyError as exc:
            raise GateError(f"evidence: chaos scenario {self.scenario!r}: {exc}") from exc
        if self.violations and self.outcome in ("held", "finding"):
            raise GateError(f"evidence: chaos scenario {self.scenario!r} is {self.outcome!r} but lists violations "
                            f"{list(self.violations)}: the findings contradict themselves")



@dataclass(frozen=True)
class LatencyEvidence:
    """What the load run measured per path, every sequence in submission order (the A/A noise floor
    splits it alternately). ``stages_ms[path]`` has the ``STAGES`` and ``OVERHEAD`` of every finished
    single-path evaluation whose stages were measured; ``resources[path]`` has ``cpu_ms`` and
    ``peak_rss_kb`` of every finished execution."""

    samples_ms: Mapping[str, Sequence[float]]  # path -> end-to-end latencies (submit to final result)
    errors: Mapping[str, ErrorCount] = field(default_factory=dict)  # path -> (n, errors)
    # path -> time waited so far by evaluations still in flight when the load run ended: their
    # latency is at least this (right-censored). Dropping them would hide a starved queue.
    unfinished_ms: Mapping[str, Sequence[float]] = field(default_factory=dict)
    stages_ms: Mapping[str, Mapping[str, Sequence[float]]] = field(default_factory=dict)
    resources: Mapping[str, Mapping[str, Sequence[float]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for path, count in self.errors.items():
            n, errors = count
            _non_negative(n, f"latency.errors[{path!r}].n")
            _non_negative(errors, f"latency.errors[{path!r}].errors")
            if errors > n:
                raise GateError(f"evidence: latency.errors[{path!r}]: {errors} errors in only {n} evaluations")


@dataclass(frozen=True)
class SplitEvidence:
    configured_percentage: float
    routed: int
    to_celery: int

    def __post_init__(self) -> None:
        _check_percentage(self.configured_percentage, "evidence: split.configured_percentage")
        _non_negative(self.routed, "split.routed")
        _non_negative(self.to_celery, "split.to_celery")
        if self.to_celery > self.routed:
            raise GateError(f"evidence: split.to_celery ({self.to_celery}) exceeds split.routed ({self.routed})")


@dataclass(frozen=True)
class TransitionCheck:
    """What one transition scenario run showed about a move of the plan (``harness.gate.plan``), both paths."""

    scenario: str
    executed_twice: int  # duplicated + unexpected: an evaluation that ran on both paths, or twice on one
    unaccounted: int  # lost + stuck: accepted, and never finished
    legacy_after: int  # legacy accepted or ran work after the decommission
    outcome: str  # the scenario's own outcome (harness.vocabulary.Outcome)


@dataclass(frozen=True)
class TransitionEvidence:
    """A move of the plan that changes phase: ``kind`` phase2 or decommission, and its scenarios' checks."""

    move: str  # e.g. "75 → phase2@90"
    kind: str
    checks: tuple[TransitionCheck, ...] = ()
    needed: tuple[str, ...] = ()  # the scenarios the move needs: one without a check leaves it undecided


@dataclass(frozen=True)
class Evidence:
    parity: ParityEvidence | None = None
    chaos: Sequence[ChaosOutcome] | None = None
    latency: LatencyEvidence | None = None
    split: SplitEvidence | None = None
    transition: TransitionEvidence | None = None  # only for a move of the plan that changes phase


# ---------------------------------------------------------------------------------------------
# verdict


@dataclass(frozen=True)
class Verdict:
    verdict: Status
    exit_code: int
    headline: str
    criteria: tuple[Criterion, ...]
    samples_needed: Mapping[str, int]
    current: float = 0.0
    target: float = 0.0
    epsilon: float = 0.0
    confidence: float = 0.0
    # per path, per stage (``STAGES``, ``OVERHEAD``, ``end_to_end``) and resource: n, p50, p95 and the
    # median's confidence sequence; the A/A noise floor per compared quantity
    stages: Mapping[str, Any] = field(default_factory=dict)
    noise_floor: Mapping[str, Any] = field(default_factory=dict)
    method: str = ""
    # the rounds of a sequential run (``harness gate`` fills it in): looks, why it stopped, the plan
    sequential: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict for ``verdict.json`` (non-finite numbers become null)."""
        doc: dict[str, Any] = _json_safe(asdict(self))
        return doc


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------
# decision


def _check_percentage(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not 0 <= value <= 100:
        raise GateError(f"{name} must be a percentage within 0..100, got {value!r}")


def check_step(current: float, target: float, *, same_allowed: bool = False) -> None:
    """Reject a split move the gate cannot judge: both within 0..100 and target above current (or equal, for a
    move of the plan that changes phase at the same share)."""
    _check_percentage(current, "--current")
    _check_percentage(target, "--target")
    if target < current or (target == current and not same_allowed):
        raise GateError(f"--target ({_num(target)} %) must be greater than --current ({_num(current)} %): "
                        "the gate judges raising Celery's share; lowering it needs no gate")


def decide(evidence: Evidence, current: float, target: float, thresholds: Thresholds) -> Verdict:
    """Judge whether the split may move from ``current`` to ``target`` percent on this evidence (for a move
    of the plan that changes phase, ``evidence.transition``, the share may stay: 100 → decommission)."""
    check_step(current, target, same_allowed=evidence.transition is not None)
    th = thresholds
    eps = th.epsilon(target)
    needed = samples_needed(th, target)
    criteria = (
        _parity_rate(evidence.parity, eps, th, target),
        _critical(evidence.parity, th),
        _oracle(evidence.parity),
        _chaos(evidence.chaos, th),
        _latency(evidence.latency, th),
        _execution(evidence.latency, th),
        _resources(evidence.latency, th),
        _error_rate(evidence.latency, evidence.parity, th, needed["error_rate_per_path"]),
        _split(evidence.split, th, current),
        *((_transition(evidence.transition),) if evidence.transition is not None else ()),
    )
    step = f"{_num(current)} % → {_num(target)} %"
    failing = list(dict.fromkeys(c.detail for c in criteria if c.status == "FAIL"))  # unique, in order
    open_ = list(dict.fromkeys(c.detail for c in criteria if c.status == "INCONCLUSIVE"))
    if failing:
        verdict: Status = "FAIL"
        headline = f"FAIL: may not move the split {step}: " + "; ".join(failing)
    elif open_:
        verdict = "INCONCLUSIVE"
        headline = f"INCONCLUSIVE: cannot decide yet whether the split may move {step}: " + "; ".join(open_)
    else:
        verdict = "PASS"
        headline = f"PASS: may move the split {step}: all {len(criteria)} criteria hold"
    accepted = [_accepted(o, th) for o in evidence.chaos or ()
                if o.outcome == "known-failure" and o.scenario in th.accepted_known_failures]
    if accepted:
        headline += ", " + "; ".join(accepted)
    noise = {c.name: c.values.get("noise_floor") for c in criteria if "noise_floor" in c.values}
    return Verdict(verdict, EXIT_CODES[verdict], headline, criteria, needed, current, target, eps, th.confidence,
                   stages=stage_table(evidence.latency, th), noise_floor=noise, method=sequential.METHOD)


def samples_needed(th: Thresholds, target: float) -> dict[str, int]:
    """The fewest samples with which each counting criterion can PASS (zero events), for the plan."""
    alpha = _alpha(th)
    return {
        "parity_pairs": sequential.min_clean_samples(th.epsilon(target), alpha),
        "latency_per_path": max(th.latency_min_samples, sequential.min_median_samples(alpha / 2)),
        "error_rate_per_path": sequential.min_clean_samples(th.error_rate_max_increase, alpha / 2),
        "split_routed": th.split_min_samples,
    }
