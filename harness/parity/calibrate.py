"""A/A calibration: the same programs twice through one path, so that noise is measured, not guessed.

Any field on which a path disagrees with itself is noise that a real A/B comparison would misread:
``calibrate`` counts, per field, the programs whose two runs disagree (after the declared
normalisers), and keeps a few of them to show. The A/A test fails on any disagreement for the
generated programs (whose results are deterministic by construction); a genuinely nondeterministic
program (one that prints the time, say) shows up here as noisy, and in a comparison as ``noise``,
never as a mismatch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.generate.spec import Program
from harness.parity.compare import Observation, ParityConfig, compare
from harness.parity.dispatch import Dispatcher, Plan, Submission
from harness.vocabulary import Path


@dataclass(frozen=True)
class Calibration:
    path: str
    programs: int
    disagreements: dict[str, int]  # field -> programs on which the path disagreed with itself
    samples: tuple[tuple[Program, dict[str, Any], dict[str, Any]], ...]  # a few disagreeing pairs

    @property
    def noisy(self) -> bool:
        return bool(self.disagreements)


def calibrate(dispatcher: Dispatcher, config: ParityConfig, programs: Sequence[Program], path: Path) -> Calibration:
    """A/A: every program twice through ``path``; count, per field, how often the two runs disagree."""
    plan: Plan = (path, path)
    subs = [Submission(p.code, p.language, p.timeout_s) for p in programs]
    disagreements: Counter[str] = Counter()
    samples: list[tuple[Program, dict[str, Any], dict[str, Any]]] = []
    for program, out in zip(programs, dispatcher.run(subs, plan), strict=True):
        first = Observation.from_result(out.eval_ids[0], path, out.results.get(path, {}))
        second = Observation.from_result(out.eval_ids[1], path, out.results.get(f"{path}#2", {}))
        differing = compare(first, second, config).differing or (() if first.complete and second.complete
                                                                    else ("status",))
        disagreements.update(differing)
        if differing and len(samples) < 5:
            samples.append((program, dict(first.values), dict(second.values)))
    return Calibration(path, len(programs), dict(disagreements), tuple(samples))
