"""The gate: may the Celery split move from --current to --target percent?

Evidence (parity counts, chaos outcomes, latency samples and error counts, split counts) goes in;
a verdict comes out: ``PASS`` / ``FAIL`` / ``INCONCLUSIVE`` (exit code 0 / 1 / 2), with every
criterion's observed value, threshold, sample size and confidence bound. The logic is pure:

- ``sequential``: anytime-valid confidence sequences (rates, medians): what the criteria decide on,
  so the gate may look after every round of evidence;
- ``stats``: fixed-sample statistics still used for reporting (percentiles) and by ``harness chaos
  --runs`` (Clopper–Pearson rates over runs);
- ``thresholds``: the reviewed ``thresholds.toml`` and its reader; ``criteria``: one function per
  criterion; ``render``: ``render_text`` for people; ``base``: the names they share;
- ``decide``: the evidence types and ``decide``: ``Evidence`` → ``Verdict``;
- ``plan``: the migration plan's steps and moves for ``harness rollout --plan``.

Reading the evidence from run folders is ``evidence`` (pure readers); gathering it on a stack in
rounds, applying the new split on PASS and ``harness gate`` / ``harness rollout`` are ``cli``.
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
