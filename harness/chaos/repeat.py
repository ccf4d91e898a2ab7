"""Repeating a scenario: K runs with seeds in a row, each count turned into a rate with an interval.

One run is one sample of a race: the allkeys-lru scenario lost work silently in 2 of 4 runs, so a
single seed can miss it, and a single hit says little about how often. ``harness chaos NAME --runs K``
runs a scenario K times (seeds ``seed``, ``seed + 1``, ...) and ``rates`` reports, per path and class,
in how many runs the count was above zero, with a two-sided Clopper–Pearson interval at 95 % on that
share ("lost > 0 in 2 of 4 runs (95 % CI 7–93 %)"). The scenario's outcome over the runs is the
worst of theirs (``combine_outcomes``), so one failing run fails it; the gate reads every run's
findings row and combines them the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.chaos.result import ScenarioResult
from harness.gate.stats import clopper_pearson_lower, clopper_pearson_upper
from harness.vocabulary import INVARIANTS, Outcome, combine_outcomes

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Rate:
    """How often a class was seen in a scenario's runs: ``hits`` of ``runs`` with a count above 0."""

    scenario: str
    path: str
    name: str
    hits: int
    runs: int
    lower: float
    upper: float
    most: int  # the largest count in one run

    def __str__(self) -> str:
        return (f"{self.path}: {self.name} > 0 in {self.hits} of {self.runs} runs ({CONFIDENCE:.0%} CI "
                f"{self.lower:.0%}–{self.upper:.0%}; at most {self.most} in one run)")


def rates(results: Sequence[ScenarioResult]) -> list[Rate]:
    """Per scenario, path and class: the runs in which it was seen (classes seen in no run are left out,
    except ``lost`` and ``duplicated``, whose zero is the assurance the runs give)."""
    out: list[Rate] = []
    by_scenario: dict[str, list[ScenarioResult]] = {}
    for r in results:
        by_scenario.setdefault(r.scenario.name, []).append(r)
    for name, runs in by_scenario.items():
        checked = [r for r in runs if r.check is not None]
        if not checked:
            continue
        for path in runs[0].scenario.expect:
            for cls in INVARIANTS:
                counts = [getattr(r.check.counts[path], cls) for r in checked if r.check is not None]
                hits = sum(c > 0 for c in counts)
                if hits == 0 and cls not in ("lost", "duplicated"):
                    continue
                n = len(counts)
                two_sided = 1 - (1 - CONFIDENCE) / 2
                out.append(Rate(name, path, cls, hits, n, clopper_pearson_lower(hits, n, two_sided),
                                clopper_pearson_upper(hits, n, two_sided), max(counts)))
    return out


def outcome_over(results: Sequence[ScenarioResult]) -> Outcome:
    """A scenario's outcome over its runs: the worst run's."""
    return combine_outcomes(r.outcome for r in results)
