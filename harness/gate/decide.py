"""The gate's decision: evidence in, a verdict out, every step explained. Pure; no stack, no I/O but
reading ``thresholds.toml``.

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
after every round of evidence and stop at the first decisive look; α = 1 − c per criterion, α/2 per
path where two paths are compared.

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
   INCONCLUSIVE. The CS of the median of paired differences (the i-th Celery evaluation minus the
   i-th legacy one, both in submission order: pairs submitted at about the same time at a 50 % split;
   at uneven splits they drift apart in time and stay independent draws; the shorter path sets the
   number of pairs): upper end <= tolerance → PASS, lower end > tolerance → FAIL, else INCONCLUSIVE;
   tolerance = max(tolerance_ms, tolerance_fraction × legacy median). First, the A/A noise floor
   (per path, |median of the differences between consecutive evaluations|, two halves sharing the
   same time windows whose true difference is zero; the larger path's) must be within the
   tolerance, else INCONCLUSIVE: the machine is noisier than the difference the gate is asked to
   see. Each Celery evaluation still in flight at the end adds a pair Celery lost by +inf; legacy
   ones still in flight count only as errors.
6. execution time: the same rule on the executions' own time; both paths run the same executor code,
   so a difference means the executors differ (image, settings, host), not the queue.
7. resources (CPU, peak memory): the same rule on each execution's CPU time and peak RSS (seed 000,
   Q7: Celery's memory may not exceed legacy's), without the noise floor.
8. error rate: a rare-event CS per path at α/2 over the load run's evaluations and parity's dual-write
   programs: upper end of (celery − legacy) <= ``max_increase`` → PASS, lower end > it → FAIL, else
   INCONCLUSIVE.
9. split accuracy: the evidence must have been collected at ``current`` percent and have at least
   ``split_min_samples`` routed evaluations (else INCONCLUSIVE); the configured share outside the
   share's CS at level ``split_p_value_floor`` → FAIL; the CS at c within configured ±
   ``split_tolerance`` → PASS; else INCONCLUSIVE.

Overall: any FAIL → FAIL; else any INCONCLUSIVE → INCONCLUSIVE; else PASS. ``Verdict`` carries
the headline (the first line of ``render_text``), every criterion with observed value, threshold,
sample size and bound, and ``samples_needed``: the sample sizes this step requires up front.
Bad input (current/target, inconsistent counts, a broken thresholds file) raises ``GateError``
naming the problem; the thresholds file's errors name the file and the key.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from harness.errors import HarnessError
from harness.gate import sequential, stats
from harness.vocabulary import PATHS, VERDICT_EXIT_CODES, Outcome, VocabularyError, outcome_of
from harness.vocabulary import Verdict as Status

__all__ = ["DEFAULT_THRESHOLDS", "EXIT_CODES", "Budget", "ChaosOutcome", "Criterion", "ErrorCount", "Evidence",
           "GateError", "LatencyEvidence", "ParityEvidence", "SplitEvidence", "Status", "Thresholds",
           "ThresholdsError", "TransitionCheck", "TransitionEvidence", "Verdict", "check_step", "decide",
           "load_thresholds", "render_text", "samples_needed"]

EXIT_CODES: Mapping[Status, int] = VERDICT_EXIT_CODES
DEFAULT_THRESHOLDS = Path(__file__).with_name("thresholds.toml")


class GateError(HarnessError):
    """The gate was given arguments or evidence it cannot judge."""


class ThresholdsError(GateError):
    """The thresholds file is unreadable or invalid; the message names the file and the key."""


# ---------------------------------------------------------------------------------------------
# thresholds


@dataclass(frozen=True)
class Budget:
    """Mismatch error budget ``epsilon`` for every target percentage up to and including ``up_to``."""

    up_to: float
    epsilon: float


@dataclass(frozen=True)
class Thresholds:
    confidence: float
    budgets: tuple[Budget, ...]
    critical_fields: tuple[str, ...]
    latency_min_samples: int
    latency_tolerance_ms: float
    latency_tolerance_fraction: float
    error_rate_max_increase: float
    split_p_value_floor: float
    split_min_samples: int
    split_tolerance: float
    cpu_tolerance_ms: float
    cpu_tolerance_fraction: float
    memory_tolerance_kb: float
    memory_tolerance_fraction: float
    # scenario name -> the reviewed reason a step may move past its known failure
    accepted_known_failures: Mapping[str, str] = field(default_factory=dict, hash=False)

    def epsilon(self, target: float) -> float:
        for budget in self.budgets:
            if target <= budget.up_to:
                return budget.epsilon
        raise GateError(f"no mismatch budget covers a target of {target} %")

    @classmethod
    def load(cls, path: Path = DEFAULT_THRESHOLDS) -> Thresholds:
        try:
            doc = tomllib.loads(path.read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ThresholdsError(f"{path}: cannot read the gate's thresholds: {exc}") from exc
        return _Reader(path).thresholds(doc)


class _Reader:
    """Validates a parsed thresholds document; every error names the file and the dotted key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str) -> ThresholdsError:
        return ThresholdsError(f"{self.path}: {key}: {problem}")

    def table(self, doc: Mapping[str, Any], key: str, allowed: set[str], where: str = "") -> Mapping[str, Any]:
        name = f"{where}{key}"
        value = doc.get(key)
        if not isinstance(value, dict):
            raise self.fail(name, f"missing table [{name}]" if value is None else "must be a table")
        self.only(value, allowed, f"{name}.")
        return value

    def only(self, table: Mapping[str, Any], allowed: set[str], prefix: str) -> None:
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise self.fail(f"{prefix}{unknown[0]}", f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def number(self, table: Mapping[str, Any], key: str, where: str, lo: float, hi: float, *,
               lo_open: bool = False, hi_open: bool = False, integer: bool = False) -> float:
        name = f"{where}{key}"
        if key not in table:
            raise self.fail(name, "missing")
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)) \
                or not math.isfinite(value):
            raise self.fail(name, f"must be {'an integer' if integer else 'a number'}, got {value!r}")
        if (value <= lo if lo_open else value < lo) or (value >= hi if hi_open else value > hi):
            span = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
            raise self.fail(name, f"must be within {span}, got {value!r}")
        return value

    def thresholds(self, doc: Mapping[str, Any]) -> Thresholds:
        self.only(doc, {"confidence", "parity", "latency", "error_rate", "split", "resources", "chaos"}, "")
        confidence = self.number(doc, "confidence", "", 0, 1, lo_open=True, hi_open=True)
        parity = self.table(doc, "parity", {"critical_fields", "budget"})
        fields = parity.get("critical_fields")
        if not isinstance(fields, list) or not all(isinstance(f, str) and f for f in fields):
            raise self.fail("parity.critical_fields", f"must be a list of field names, got {fields!r}")
        if len(set(fields)) != len(fields):
            raise self.fail("parity.critical_fields", "names a field twice")
        budgets = self.budgets(parity.get("budget"))
        latency = self.table(doc, "latency", {"min_samples", "tolerance_ms", "tolerance_fraction"})
        error_rate = self.table(doc, "error_rate", {"max_increase"})
        split = self.table(doc, "split", {"p_value_floor", "min_samples", "tolerance"})
        resources = self.table(doc, "resources", {"cpu_tolerance_ms", "cpu_tolerance_fraction",
                                                  "memory_tolerance_kb", "memory_tolerance_fraction"})
        return Thresholds(
            confidence=float(confidence),
            budgets=budgets,
            critical_fields=tuple(fields),
            latency_min_samples=int(self.number(latency, "min_samples", "latency.", 2, math.inf, integer=True)),
            latency_tolerance_ms=float(self.number(latency, "tolerance_ms", "latency.", 0, math.inf,
                                                   hi_open=True)),
            latency_tolerance_fraction=float(self.number(latency, "tolerance_fraction", "latency.", 0, 10)),
            error_rate_max_increase=float(self.number(error_rate, "max_increase", "error_rate.", 0, 1,
                                                      hi_open=True)),
            split_p_value_floor=float(self.number(split, "p_value_floor", "split.", 0, 1, lo_open=True,
                                                  hi_open=True)),
            split_min_samples=int(self.number(split, "min_samples", "split.", 1, math.inf, integer=True)),
            split_tolerance=float(self.number(split, "tolerance", "split.", 0, 1, lo_open=True, hi_open=True)),
            cpu_tolerance_ms=float(self.number(resources, "cpu_tolerance_ms", "resources.", 0, math.inf,
                                               hi_open=True)),
            cpu_tolerance_fraction=float(self.number(resources, "cpu_tolerance_fraction", "resources.", 0, 10)),
            memory_tolerance_kb=float(self.number(resources, "memory_tolerance_kb", "resources.", 0, math.inf,
                                                  hi_open=True)),
            memory_tolerance_fraction=float(self.number(resources, "memory_tolerance_fraction", "resources.", 0,
                                                        10)),
            accepted_known_failures=self.accepted(doc.get("chaos", {})),
        )

    def accepted(self, chaos: Any) -> dict[str, str]:
        """``[chaos.accepted_known_failures]``: scenario name = "the reviewed reason" (optional)."""
        if not isinstance(chaos, dict):
            raise self.fail("chaos", "must be a table")
        self.only(chaos, {"accepted_known_failures"}, "chaos.")
        table = chaos.get("accepted_known_failures", {})
        if not isinstance(table, dict):
            raise self.fail("chaos.accepted_known_failures", "must be a table of scenario = \"reason\"")
        for scenario, reason in table.items():
            if not isinstance(reason, str) or len(reason.split()) < 3:
                raise self.fail(f"chaos.accepted_known_failures.{scenario}",
                                f"needs the reviewed reason as a sentence, got {reason!r}")
        return {str(k): " ".join(v.split()) for k, v in table.items()}

    def budgets(self, entries: Any) -> tuple[Budget, ...]:
        if not isinstance(entries, list) or not entries:
            raise self.fail("parity.budget", "needs at least one [[parity.budget]] entry")
        out: list[Budget] = []
        for i, entry in enumerate(entries):
            where = f"parity.budget[{i}]."
            if not isinstance(entry, dict):
                raise self.fail(f"parity.budget[{i}]", "must be a table")
            self.only(entry, {"up_to", "epsilon"}, where)
            up_to = self.number(entry, "up_to", where, 0, 100, lo_open=True)
            epsilon = self.number(entry, "epsilon", where, 0, 1, lo_open=True, hi_open=True)
            if out and up_to <= out[-1].up_to:
                raise self.fail(f"{where}up_to", f"must be greater than the previous entry's {out[-1].up_to:g}")
            if out and epsilon > out[-1].epsilon:
                raise self.fail(f"{where}epsilon", f"must not exceed the previous entry's {out[-1].epsilon:g}: "
                                "the budget shrinks as the target share grows")
            out.append(Budget(float(up_to), float(epsilon)))
        if out[-1].up_to != 100:
            raise self.fail(f"parity.budget[{len(out) - 1}].up_to", "the last budget must cover 100")
        return tuple(out)


def load_thresholds(path: Path = DEFAULT_THRESHOLDS) -> Thresholds:
    """The reviewed thresholds (``thresholds.toml`` next to this module unless ``path`` is given)."""
    return Thresholds.load(path)


# ---------------------------------------------------------------------------------------------
# evidence


def _non_negative(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise GateError(f"evidence: {name} must be a non-negative integer, got {value!r}")


class ErrorCount(NamedTuple):
    n: int  # evaluations submitted on the path
    errors: int  # of those, ending in a platform error (status "error", lost, stuck), not a user program failure


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


STAGES = ("submit", "queue", "execution", "delivery")  # the parts of end-to-end latency, in order
OVERHEAD = "overhead"  # submit + queue + delivery = end-to-end − execution: what the migration changes
RESOURCES = ("cpu_ms", "peak_rss_kb")


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
class Criterion:
    name: str
    status: Status
    observed: str
    threshold: str
    sample_size: int | None
    bound: str
    detail: str  # short; the headline quotes it
    values: Mapping[str, float | int | str | None] = field(default_factory=dict)  # raw numbers for JSON


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
# formatting


def _num(x: float) -> str:
    return f"{x:g}"


def _pct(share: float) -> str:
    return f"{100 * share:.3g} %"


def _ms(x: float) -> str:
    return f"{x:+}" if math.isinf(x) else f"{x:+.1f}" if x else "0.0"


def _pp(share: float) -> str:
    return f"{100 * share:.3g} pp"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 'es' if word.endswith('ch') else 's'}"


# ---------------------------------------------------------------------------------------------
# criteria


def _missing(name: str, threshold: str, what: str) -> Criterion:
    return Criterion(name, "INCONCLUSIVE", "not collected", threshold, None, "-", f"no {what} evidence")


def _alpha(th: Thresholds) -> float:
    return 1 - th.confidence


def _parity_rate(parity: ParityEvidence | None, eps: float, th: Thresholds, target: float) -> Criterion:
    name = "parity mismatch rate"
    threshold = f"upper < ε = {_pct(eps)} (target {_num(target)} %)"
    if parity is None:
        return _missing(name, threshold, "parity")
    k, n = parity.mismatches, parity.n
    noise = "" if parity.noise is None else f"; {parity.noise} A/A noise evaluations excluded"
    drawn = (f"programs drawn from mix `{parity.population.removeprefix('mix:')}`" if parity.population
             else "programs of an undeclared population (stored before populations were recorded)")
    needed = sequential.min_clean_samples(eps, _alpha(th))
    cs = sequential.proportion_cs(k, n, _alpha(th), rare=True, prior_mean=eps)
    values = {"k": k, "n": n, "estimate": cs.estimate, "lower": cs.lower, "upper": cs.upper, "epsilon": eps,
              "noise": parity.noise, "samples_needed": needed, "population": parity.population,
              "searched": parity.searched}
    if n == 0:
        searched = (f"; the search's {parity.searched} programs hunt counterexamples and are not a sample"
                    if parity.searched else "")
        return Criterion(name, "INCONCLUSIVE", "0 paired comparisons", threshold, 0, "-",
                         f"no programs drawn from a declared mix: need >= {needed} with zero mismatches"
                         f"{searched}{noise}", values)
    observed = f"{k}/{n} = {_pct(k / n)}"
    bound = f"{_pct(th.confidence)} CS [{_pct(cs.lower)}, {_pct(cs.upper)}]"
    if cs.upper < eps:
        status: Status = "PASS"
        detail = f"{k}/{n} mismatched in {drawn}: bound below ε{noise}"
    elif cs.lower > eps:
        status = "FAIL"
        detail = (f"mismatch rate above ε = {_pct(eps)}: at least {_pct(cs.lower)} ({k}/{n} mismatched in "
                  f"{drawn}){noise}")
    elif k == 0:
        status = "INCONCLUSIVE"
        detail = f"too few samples: 0/{n} mismatched in {drawn}, need >= {needed} with zero mismatches{noise}"
    else:
        status = "INCONCLUSIVE"
        detail = f"{k}/{n} mismatched in {drawn}: the bound straddles ε, collect more comparisons{noise}"
    return Criterion(name, status, observed, threshold, n, bound, detail, values)


def _critical(parity: ParityEvidence | None, th: Thresholds) -> Criterion:
    name = "critical fields"
    threshold = f"0 mismatches on {', '.join(th.critical_fields)}"
    if parity is None:
        return _missing(name, threshold, "parity")
    counts = {f: parity.mismatches_by_field.get(f, 0) for f in th.critical_fields}
    observed = ", ".join(f"{f} {c}" for f, c in counts.items())
    values: dict[str, float | int | str | None] = dict(counts)
    hits = [(f, c) for f, c in counts.items() if c]
    failure = None
    if hits:
        first, *rest = hits
        failure = f"{_plural(first[1], 'mismatch')} on {first[0]}" + "".join(f", {c} on {f}" for f, c in rest)
    return _zero_tolerance(name, observed, threshold, parity.checked, values, failure,
                           empty="no paired comparisons to check critical fields on",
                           ok=f"no critical-field mismatch in {parity.checked}")


def _zero_tolerance(name: str, observed: str, threshold: str, n: int, values: dict[str, float | int | str | None],
                    failure: str | None, *, empty: str, ok: str) -> Criterion:
    """FAIL on any hit (``failure`` says which), INCONCLUSIVE with nothing checked, else PASS."""
    if failure:
        return Criterion(name, "FAIL", observed, threshold, n, "zero tolerance", failure, values)
    if n == 0:
        return Criterion(name, "INCONCLUSIVE", observed, threshold, 0, "zero tolerance", empty, values)
    return Criterion(name, "PASS", observed, threshold, n, "zero tolerance", ok, values)


def _oracle(parity: ParityEvidence | None) -> Criterion:
    name = "oracle (wrong results)"
    threshold = "0 wrong on any path"
    if parity is None:
        return _missing(name, threshold, "parity")
    if parity.wrong is None:
        return Criterion(name, "INCONCLUSIVE", "not checked", threshold, parity.checked, "zero tolerance",
                         "no oracle checks in the parity evidence")
    counts = {p: parity.wrong.get(p, 0) for p in (*PATHS, *sorted(set(parity.wrong) - set(PATHS)))}
    observed = ", ".join(f"{p} {c}" for p, c in counts.items())
    values: dict[str, float | int | str | None] = dict(counts)
    hits = [(p, c) for p, c in counts.items() if c]
    failure = ", ".join(f"{c} wrong on {p}" for p, c in hits) or None
    if failure and counts.get("legacy") and not counts.get("celery"):
        failure += " (the oracle or legacy is broken: fix it before trusting parity)"
    return _zero_tolerance(name, observed, threshold, parity.checked, values, failure,
                           empty="no paired comparisons checked against the oracle",
                           ok=f"no wrong result in {parity.checked}")


def _chaos(chaos: Sequence[ChaosOutcome] | None, th: Thresholds) -> Criterion:
    name = "chaos invariants"
    threshold = "Celery invariants hold in every scenario (known failures only if accepted)"
    if not chaos:
        return _missing(name, threshold, "chaos")
    by: dict[str, list[ChaosOutcome]] = {}
    for o in chaos:
        by.setdefault(o.outcome, []).append(o)
    known = by.get("known-failure", [])
    accepted = [o for o in known if o.scenario in th.accepted_known_failures]
    blocking = [o for o in known if o.scenario not in th.accepted_known_failures]
    held = len(by.get("held", [])) + len(by.get("finding", []))
    observed = f"{held}/{len(chaos)} scenarios held" + "".join(
        f", {len(by[o])} {o}" for o in ("failed", "known-failure", "error") if by.get(o))
    values: dict[str, float | int | str | None] = {
        "scenarios": len(chaos), **{o: len(by.get(o, [])) for o in ("held", "finding", "known-failure", "failed",
                                                                     "error")},
        "accepted_known_failures": ", ".join(o.scenario for o in accepted) or None}
    fails = [f"invariant violated in {o.scenario}: {', '.join(o.violations) or 'unnamed'}"
             for o in by.get("failed", [])]
    fails += [f"known failure in {o.scenario} ({', '.join(o.violations) or o.reason}), not accepted in the "
              "thresholds' [chaos.accepted_known_failures]" for o in blocking]
    if fails:
        return Criterion(name, "FAIL", observed, threshold, len(chaos), "zero tolerance", "; ".join(fails), values)
    if by.get("error"):
        detail = "; ".join(f"{o.scenario} could not be carried out ({o.reason or 'no reason stored'})"
                           for o in by["error"])
        return Criterion(name, "INCONCLUSIVE", observed, threshold, len(chaos), "zero tolerance", detail, values)
    detail = f"all Celery invariants held in {_plural(held, 'scenario')}"
    if accepted:
        detail += "; " + "; ".join(_accepted(o, th) for o in accepted)
    return Criterion(name, "PASS", observed, threshold, len(chaos), "zero tolerance", detail, values)


def _accepted(outcome: ChaosOutcome, th: Thresholds) -> str:
    return (f"accepting the known failure of {outcome.scenario} "
            f"({th.accepted_known_failures[outcome.scenario]})")


def _summary(samples: Sequence[float], alpha: float) -> dict[str, float | int | None]:
    """n, p50, p95 and the median's confidence sequence (at ``alpha``) of one path's samples."""
    finite = [v for v in samples if math.isfinite(v)]
    cs = sequential.median_cs(samples, alpha)
    p95 = stats.percentiles(finite).p95 if finite else None
    return {"n": len(samples), "p50": cs.estimate if samples else None, "p95": p95, "lower": cs.lower,
            "upper": cs.upper}


def paired_differences(candidate: Sequence[float], control: Sequence[float]) -> list[float]:
    """candidate[i] − control[i] for i below the shorter length (both in submission order): each pair is a
    random evaluation of each path, submitted at about the same time (a blocked design: a slow minute of
    the machine slows both members of a pair). A +inf candidate stays +inf."""
    return [math.inf if math.isinf(c) and c > 0 else c - x for c, x in zip(candidate, control, strict=False)]


def _noise_floor(samples: Mapping[str, Sequence[float]], alpha: float) -> tuple[float, dict[str, float]]:
    """The A/A noise floor: per path, |median of the differences between consecutive evaluations of that
    path| (the 2nd minus the 1st, the 4th minus the 3rd, ...: two halves in the same time windows, whose
    true difference is zero); the floor is the larger of the two paths'. It is what the machine's own
    variation makes of "no difference at all" in this run."""
    per_path: dict[str, float] = {}
    for path in PATHS:
        values = [v for v in samples.get(path, ()) if math.isfinite(v)]
        diffs = paired_differences(values[1::2], values[0::2])
        per_path[path] = abs(float(sequential.median_cs(diffs, alpha).estimate)) if diffs else math.inf
    return max(per_path.values()), per_path


def _compare_medians(name: str, what: str, unit: str, samples: Mapping[str, Sequence[float]], tol_abs: float,
                     tol_fraction: float, th: Thresholds, *, min_samples: int, noise: bool,
                     extra_observed: str = "", extra_detail: str = "", worse: str = "slower by",
                     unfinished_celery: int = 0) -> Criterion:
    """Celery's median of ``samples`` may exceed legacy's by at most max(tol_abs, tol_fraction × legacy's
    median): PASS / FAIL on the confidence sequence of the difference, INCONCLUSIVE in between, with too
    few samples, or (``noise``) when the machine's A/A noise floor is above the tolerance."""
    alpha = _alpha(th)
    rule = (f"median of paired celery − legacy upper <= max({_num(tol_abs)} {unit}, {_pct(tol_fraction)} of "
            "legacy's median)")
    sizes: dict[str, int] = {p: len(samples.get(p, ())) + (unfinished_celery if p == "celery" else 0) for p in PATHS}
    smallest = min(sizes.values())
    if smallest < min_samples:
        return Criterion(name, "INCONCLUSIVE", ", ".join(f"{p} n={c}" for p, c in sizes.items()), rule, smallest,
                         "-", f"too few {what} samples: {', '.join(f'{p} {c}' for p, c in sizes.items())} "
                         f"(need >= {min_samples} per path)", dict(sizes))
    try:
        legacy = sequential.median_cs(samples["legacy"], alpha)
        celery = sequential.median_cs([*samples["celery"], *[math.inf] * unfinished_celery], alpha)
        # each Celery evaluation still in flight at the end is a pair Celery lost by +inf: a PASS on them is a PASS
        diff = sequential.median_cs([*paired_differences(samples["celery"], samples["legacy"]),
                                     *[math.inf] * unfinished_celery], alpha)
    except sequential.SequentialError as exc:
        raise GateError(f"evidence: {what} samples: {exc}") from exc
    tolerance = max(tol_abs, tol_fraction * legacy.estimate)
    threshold = (f"upper <= {tolerance:.1f} {unit} = max({_num(tol_abs)} {unit}, {_pct(tol_fraction)} × legacy "
                 f"median {legacy.estimate:.1f} {unit})")
    observed = (f"celery − legacy {_ms(diff.estimate)} {unit} (median of {diff.n} pairs); median legacy "
                f"{legacy.estimate:.1f}, celery {celery.estimate:.1f} {unit}{extra_observed}")
    bound = f"{_pct(th.confidence)} CS [{_ms(diff.lower)}, {_ms(diff.upper)}] {unit}"
    values: dict[str, float | int | str | None] = {
        "n_legacy": sizes["legacy"], "n_celery": sizes["celery"], "pairs": diff.n, "legacy_median": legacy.estimate,
        "celery_median": celery.estimate, "difference": diff.estimate, "lower": diff.lower, "upper": diff.upper,
        "tolerance": tolerance, "unit": unit}
    floor = None
    if noise:
        floor, per_path = _noise_floor(samples, alpha)
        values.update({"noise_floor": floor, **{f"noise_{p}": v for p, v in per_path.items()}})
        bound += f"; A/A noise floor {floor:.1f} {unit}"
    if floor is not None and floor > tolerance:
        status: Status = "INCONCLUSIVE"
        detail = (f"{what}: the machine's own A/A noise ({floor:.1f} {unit}) is above the tolerance "
                  f"{tolerance:.1f} {unit}: collect more samples or run on a quieter machine")
    elif diff.upper <= tolerance:
        status = "PASS"
        detail = f"{what}: Celery {worse} at most {_ms(diff.upper)} {unit} (tolerance {tolerance:.1f} {unit})"
    elif diff.lower > tolerance:
        status = "FAIL"
        detail = (f"{what} regression: Celery {worse} at least {diff.lower:.1f} {unit} "
                  f"(tolerance {tolerance:.1f} {unit})")
    else:
        status = "INCONCLUSIVE"
        detail = f"{what}: the confidence sequence straddles the tolerance {tolerance:.1f} {unit}: collect more samples"
    return Criterion(name, status, observed, threshold, smallest, bound, detail + extra_detail, values)


def _stage(latency: LatencyEvidence, stage: str) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {p: [float(v) for v in latency.stages_ms.get(p, {}).get(stage, ())]
                                   for p in PATHS}
    return out


def _latency(latency: LatencyEvidence | None, th: Thresholds) -> Criterion:
    name = "latency (queueing + delivery)"
    if latency is None:
        return _missing(name, "celery − legacy median of end-to-end − execution", "latency")
    if not any(latency.stages_ms.values()):
        return Criterion(name, "INCONCLUSIVE", "no stages", "-", 0, "-",
                         "the load evidence has no latency stages (stored by an older harness): run the load again")
    unfinished: dict[str, list[float]] = {p: list(latency.unfinished_ms.get(p, ())) for p in PATHS}
    samples = _stage(latency, OVERHEAD)
    e2e = {p: stats.percentiles(latency.samples_ms[p]) for p in PATHS if len(latency.samples_ms.get(p, ())) > 0}
    observed = "; end-to-end p50/p95 " + ", ".join(f"{p} {v.p50:.0f}/{v.p95:.0f}" for p, v in e2e.items()) + " ms"
    if any(unfinished.values()):
        observed += "; unfinished " + ", ".join(f"{p} {len(unfinished[p])}" for p in PATHS)
    extra = ""
    if any(unfinished.values()):
        extra = (f"; counted conservatively: {len(unfinished['celery'])} Celery evaluation(s) still in flight at "
                 "the end of the load run as slower than any legacy one (their legacy counterparts, "
                 f"{len(unfinished['legacy'])} unfinished, count as errors only)")
    return _compare_medians(name, "queueing + delivery", "ms", samples, th.latency_tolerance_ms,
                            th.latency_tolerance_fraction, th, min_samples=th.latency_min_samples, noise=True,
                            extra_observed=observed, extra_detail=extra, unfinished_celery=len(unfinished["celery"]))


def _execution(latency: LatencyEvidence | None, th: Thresholds) -> Criterion:
    name = "execution time"
    if latency is None:
        return _missing(name, "celery − legacy median of the executions' own time", "latency")
    return _compare_medians(name, "execution", "ms", _stage(latency, "execution"), th.latency_tolerance_ms,
                            th.latency_tolerance_fraction, th, min_samples=th.latency_min_samples, noise=True)


def _resources(latency: LatencyEvidence | None, th: Thresholds) -> Criterion:
    name = "resources (CPU, peak memory)"
    if latency is None:
        return _missing(name, "celery − legacy median CPU time and peak RSS", "latency")
    parts = []
    for key, unit, tol_abs, tol_fraction in (("cpu_ms", "ms", th.cpu_tolerance_ms, th.cpu_tolerance_fraction),
                                             ("peak_rss_kb", "KiB", th.memory_tolerance_kb,
                                              th.memory_tolerance_fraction)):
        samples: dict[str, list[float]] = {p: [float(v) for v in latency.resources.get(p, {}).get(key, ())]
                                           for p in PATHS}
        what = "CPU time" if key == "cpu_ms" else "peak memory"
        parts.append(_compare_medians(name, what, unit, samples, tol_abs, tol_fraction, th,
                                      min_samples=th.latency_min_samples, noise=False, worse="above legacy by"))
    worst = _worst(tuple(c.status for c in parts))
    values: dict[str, float | int | str | None] = {f"{key}_{k}": v for key, c in zip(RESOURCES, parts, strict=True)
                                                     for k, v in c.values.items()}
    return Criterion(name, worst, "; ".join(c.observed for c in parts), "; ".join(c.threshold for c in parts),
                     min((c.sample_size or 0) for c in parts), "; ".join(c.bound for c in parts),
                     "; ".join(c.detail for c in parts if c.status == worst), values)


def _worst(statuses: Sequence[Status]) -> Status:
    return "FAIL" if "FAIL" in statuses else "INCONCLUSIVE" if "INCONCLUSIVE" in statuses else "PASS"


def _error_rate(latency: LatencyEvidence | None, parity: ParityEvidence | None, th: Thresholds,
                needed: int) -> Criterion:
    name = "error rate"
    threshold = f"celery − legacy upper <= {_pp(th.error_rate_max_increase)}"
    if latency is None and (parity is None or not parity.errors):
        return _missing(name, threshold, "latency/error")
    # An evaluation still in flight when the load run ended (after Locust's stop timeout) is counted
    # as an error: the platform did not answer in time. Without this a queue that starves part of
    # its work would show a clean error rate, and a latency shift the starved work is not part of.
    unfinished = {p: len(latency.unfinished_ms.get(p, ())) if latency else 0 for p in PATHS}
    population = []
    counts: dict[str, ErrorCount] = {}
    for path in PATHS:
        n = errors = 0
        load = latency.errors.get(path) if latency else None
        if load is not None:
            n, errors = load.n + unfinished[path], load.errors + unfinished[path]
        dual = parity.errors.get(path) if parity else None
        if dual is not None:
            n, errors = n + dual.n, errors + dual.errors
        counts[path] = ErrorCount(n, errors)
    if latency is not None and any(latency.errors.values()):
        population.append("the load mix")
    if parity is not None and parity.errors:
        population.append("parity's dual-write programs")
    if any(c.n == 0 for c in counts.values()):
        shown = ", ".join(f"{p} {c.errors}/{c.n}" for p, c in counts.items())
        return Criterion(name, "INCONCLUSIVE", shown, threshold, 0, "-",
                         "no error counts for " + ", ".join(p for p, c in counts.items() if c.n == 0))
    leg, cel = counts["legacy"], counts["celery"]
    alpha = _alpha(th)
    mean = th.error_rate_max_increase
    c_cs = sequential.proportion_cs(cel.errors, cel.n, alpha / 2, rare=True, prior_mean=mean)
    l_cs = sequential.proportion_cs(leg.errors, leg.n, alpha / 2, rare=True, prior_mean=mean)
    diff = sequential.difference_cs(c_cs, l_cs)
    observed = f"legacy {leg.errors}/{leg.n} = {_pct(leg.errors / leg.n)}, celery {cel.errors}/{cel.n} = " \
               f"{_pct(cel.errors / cel.n)} (in {' and '.join(population)})"
    if any(unfinished.values()):
        observed += " (of which unfinished at the end of the load run: " + \
            ", ".join(f"{p} {unfinished[p]}" for p in PATHS) + ")"
    bound = f"{_pct(th.confidence)} CS of difference [{_pp(diff.lower)}, {_pp(diff.upper)}]"
    values: dict[str, float | int | str | None] = {
        "legacy_n": leg.n, "legacy_errors": leg.errors, "celery_n": cel.n, "celery_errors": cel.errors,
        "legacy_unfinished": unfinished["legacy"], "celery_unfinished": unfinished["celery"],
        "difference": diff.estimate, "lower": diff.lower, "upper": diff.upper,
        "max_increase": th.error_rate_max_increase, "population": " and ".join(population)}
    smallest = min(leg.n, cel.n)
    if diff.upper <= th.error_rate_max_increase:
        status: Status = "PASS"
        detail = f"Celery's error rate exceeds legacy's by at most {_pp(diff.upper)}"
    elif diff.lower > th.error_rate_max_increase:
        status = "FAIL"
        detail = f"error-rate regression: Celery's exceeds legacy's by at least {_pp(diff.lower)}"
    elif smallest < needed:
        status = "INCONCLUSIVE"
        detail = f"too few samples for the error rate: {smallest} per path, need >= {needed} with zero errors"
    else:
        status = "INCONCLUSIVE"
        detail = "error-rate confidence sequence straddles the tolerance: collect more samples"
    return Criterion(name, status, observed, threshold, smallest, bound, detail, values)


def _split(split: SplitEvidence | None, th: Thresholds, current: float) -> Criterion:
    name = "split accuracy"
    threshold = (f"configured share within the {_pct(1 - th.split_p_value_floor)} CS, and the "
                 f"{_pct(th.confidence)} CS within ± {_pp(th.split_tolerance)} (n >= {th.split_min_samples})")
    if split is None:
        return _missing(name, threshold, "split")
    observed = f"{split.to_celery}/{split.routed} to celery (configured {_num(split.configured_percentage)} %)"
    values: dict[str, float | int | str | None] = {
        "configured_percentage": split.configured_percentage, "routed": split.routed, "to_celery": split.to_celery}
    if split.configured_percentage != current:
        return Criterion(name, "INCONCLUSIVE", observed, threshold, split.routed, "-",
                         f"split evidence was collected at {_num(split.configured_percentage)} %, "
                         f"not at the current {_num(current)} %", values)
    if split.routed < th.split_min_samples:
        return Criterion(name, "INCONCLUSIVE", observed, threshold, split.routed, "-",
                         f"too few routed evaluations: {split.routed}, need >= {th.split_min_samples}", values)
    share = split.configured_percentage / 100
    strict = sequential.proportion_cs(split.to_celery, split.routed, th.split_p_value_floor)
    usual = sequential.proportion_cs(split.to_celery, split.routed, _alpha(th))
    observed = f"{_pct(usual.estimate)} of {split.routed} to celery (configured {_num(split.configured_percentage)} %)"
    bound = (f"{_pct(th.confidence)} CS [{_pct(usual.lower)}, {_pct(usual.upper)}]; {_pct(1 - th.split_p_value_floor)}"
             f" CS [{_pct(strict.lower)}, {_pct(strict.upper)}]")
    values.update({"observed": usual.estimate, "lower": usual.lower, "upper": usual.upper,
                   "strict_lower": strict.lower, "strict_upper": strict.upper})
    if not strict.lower <= share <= strict.upper:
        return Criterion(name, "FAIL", observed, threshold, split.routed, bound,
                         f"split inaccurate: {_pct(usual.estimate)} routed to Celery, configured "
                         f"{_num(split.configured_percentage)} % (outside the {_pct(1 - th.split_p_value_floor)} "
                         "confidence sequence)", values)
    if share - th.split_tolerance <= usual.lower and usual.upper <= share + th.split_tolerance:
        return Criterion(name, "PASS", observed, threshold, split.routed, bound,
                         "routed share consistent with the configured percentage", values)
    return Criterion(name, "INCONCLUSIVE", observed, threshold, split.routed, bound,
                     f"routed share not yet known within ± {_pp(th.split_tolerance)}: collect more evaluations",
                     values)


def stage_table(latency: LatencyEvidence | None, th: Thresholds) -> dict[str, Any]:
    """Per path: every stage's, end-to-end's and every resource's n, p50, p95 and median CS (``verdict.stages``)."""
    if latency is None:
        return {}
    alpha = _alpha(th) / 2
    table: dict[str, Any] = {}
    for path in PATHS:
        row: dict[str, Any] = {"end_to_end": _summary(list(latency.samples_ms.get(path, ())), alpha)}
        for stage in (*STAGES, OVERHEAD):
            row[stage] = _summary([float(v) for v in latency.stages_ms.get(path, {}).get(stage, ())], alpha)
        for key in RESOURCES:
            row[key] = _summary([float(v) for v in latency.resources.get(path, {}).get(key, ())], alpha)
        table[path] = row
    return table


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


def _transition(transition: TransitionEvidence) -> Criterion:
    """Into phase 2: nothing runs twice, nothing is lost. Into phase 3: nothing accepted is unaccounted for,
    no legacy activity after the decommission (and nothing runs twice)."""
    name = f"transition ({transition.kind})"
    threshold = ("0 executed twice, 0 unaccounted" if transition.kind == "phase2"
                 else "0 unaccounted, 0 legacy activity after it, 0 executed twice")
    checks = transition.checks
    values: dict[str, float | int | str | None] = {
        "move": transition.move, "scenarios": len(checks), "executed_twice": sum(c.executed_twice for c in checks),
        "unaccounted": sum(c.unaccounted for c in checks), "legacy_after": sum(c.legacy_after for c in checks)}
    observed = (f"{transition.move}: " + "; ".join(
        f"{c.scenario}: executed twice {c.executed_twice}, unaccounted {c.unaccounted}"
        + (f", legacy after {c.legacy_after}" if transition.kind == "decommission" else "") for c in checks)
        if checks else "no transition scenario run")
    if not checks:
        return Criterion(name, "INCONCLUSIVE", observed, threshold, 0, "zero tolerance",
                         f"the move {transition.move} needs its transition scenarios, and none was run", values)
    fails = [f"{c.executed_twice} evaluation(s) executed twice in {c.scenario}" for c in checks if c.executed_twice]
    fails += [f"{c.unaccounted} accepted evaluation(s) unaccounted for in {c.scenario}" for c in checks
              if c.unaccounted]
    fails += [f"legacy activity after the decommission in {c.scenario}" for c in checks if c.legacy_after]
    if fails:
        return Criterion(name, "FAIL", observed, threshold, len(checks), "zero tolerance",
                         f"the move {transition.move} is unsafe: " + "; ".join(fails), values)
    missing = [name for name in transition.needed if name not in {c.scenario for c in checks}]
    if missing:
        return Criterion(name, "INCONCLUSIVE", observed, threshold, len(checks), "zero tolerance",
                         f"the move {transition.move} needs {', '.join(missing)}, which did not run", values)
    errors = [c.scenario for c in checks if c.outcome == "error"]
    if errors:
        return Criterion(name, "INCONCLUSIVE", observed, threshold, len(checks), "zero tolerance",
                         f"transition scenario(s) not carried out: {', '.join(errors)}", values)
    return Criterion(name, "PASS", observed, threshold, len(checks), "zero tolerance",
                     f"the move {transition.move} ran every evaluation once and accounted for all", values)


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


_NEEDED_TEXT = {
    "parity_pairs": "paired comparisons with zero mismatches (parity, ε = {eps})",
    "latency_per_path": "latency samples per path",
    "error_rate_per_path": "evaluations per path with zero errors (error rate)",
    "split_routed": "routed evaluations (split accuracy)",
}


def render_text(verdict: Verdict) -> str:
    """The verdict first, then every criterion as a table, then the sample sizes this step needs."""
    header = ("criterion", "status", "observed", "threshold", "n", "bound", "detail")
    rows = [(c.name, c.status, c.observed, c.threshold, "-" if c.sample_size is None else str(c.sample_size),
             c.bound, c.detail) for c in verdict.criteria]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)).rstrip()

    out = [verdict.headline, "", line(header), line(["-" * w for w in widths]), *(line(r) for r in rows), "",
           f"samples needed for {_num(verdict.current)} % → {_num(verdict.target)} % "
           f"(confidence {_pct(verdict.confidence)}):"]
    for key, count in verdict.samples_needed.items():
        text = _NEEDED_TEXT.get(key, key).format(eps=_pct(verdict.epsilon))
        out.append(f"  {count:>6}  {text}")
    if verdict.stages:
        columns = (*STAGES, OVERHEAD, "end_to_end")
        heads = ("submit", "queue", "execution", "delivery", "queue+deliv", "end-to-end")
        out += ["", "latency by stage, median ms:  " + "  ".join(f"{h:>11}" for h in heads) + "      n"]
        for path, row in verdict.stages.items():
            n = (row.get("end_to_end") or {}).get("n", 0)
            out.append(f"  {path:<27} " + "  ".join(f"{_median_text(row.get(c)):>11}" for c in columns) + f"  {n:>5}")
    if verdict.noise_floor:
        out.append("A/A noise floor: " + ", ".join(f"{name} {_ms_or_dash(v)} ms" for name, v in verdict.noise_floor.items()))
    if verdict.sequential:
        seq = verdict.sequential
        out.append(f"evidence: {seq.get('rounds')} round(s) in {seq.get('elapsed_s')} s, stopped: {seq.get('stopped')}")
    return "\n".join(out) + "\n"


def _median_text(summary: Mapping[str, Any] | None) -> str:
    if not summary or not summary.get("n") or summary.get("p50") is None:
        return "-"
    return f"{summary['p50']:.1f}"


def _ms_or_dash(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, int | float) and math.isfinite(value) else "-"
