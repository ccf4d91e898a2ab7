"""The gate: may the Celery split move from --current to --target percent?

Evidence (parity counts, chaos outcomes, latency samples and error counts, split counts) goes in;
a verdict comes out: ``PASS`` / ``FAIL`` / ``INCONCLUSIVE`` (exit code 0 / 1 / 2), with every
criterion's observed value, threshold, sample size and confidence bound. The logic is pure:

- ``stats``: rule of three, Clopper–Pearson, samples needed, Newcombe's rate difference,
  Hodges–Lehmann shift with the Mann–Whitney interval, binomial share test, percentiles;
- ``decide``: ``Evidence`` → ``Verdict`` against ``Thresholds`` loaded from ``thresholds.toml``
  (the one reviewed configuration), and ``render_text`` for people.

Reading the evidence from run folders is ``evidence`` (pure readers); gathering it on a stack,
applying the new split on PASS and ``harness gate`` / ``harness rollout`` are ``cli``.
"""

from harness.gate.decide import (
    DEFAULT_THRESHOLDS,
    EXIT_CODES,
    Budget,
    ChaosOutcome,
    Criterion,
    ErrorCount,
    Evidence,
    GateError,
    LatencyEvidence,
    ParityEvidence,
    SplitEvidence,
    Status,
    Thresholds,
    ThresholdsError,
    Verdict,
    check_step,
    decide,
    load_thresholds,
    render_text,
)
from harness.gate.stats import StatsError

__all__ = [
    "DEFAULT_THRESHOLDS",
    "EXIT_CODES",
    "Budget",
    "ChaosOutcome",
    "Criterion",
    "ErrorCount",
    "Evidence",
    "GateError",
    "LatencyEvidence",
    "ParityEvidence",
    "SplitEvidence",
    "StatsError",
    "Status",
    "Thresholds",
    "ThresholdsError",
    "Verdict",
    "check_step",
    "decide",
    "load_thresholds",
    "render_text",
]
