"""The gate's parity evidence: the rate bound is computed on the declared mix's sample and names it; the
search's programs are not a sample but still count, under zero tolerance, for the critical fields and
the oracle."""

from __future__ import annotations

import pandas as pd

from harness.gate.decide import Evidence, ParityEvidence, decide, load_thresholds
from harness.gate.evidence import parity_evidence


def rows(n: int, population: str, failing: set[int] | None = None) -> list[dict[str, object]]:
    out = []
    for i in range(n):
        bad = i in (failing or set())
        out.append({"population": population, "cls": "mismatched" if bad else "matched", "failing": bad,
                    "differing": "exit_code" if bad else "", "legacy_status": "failed", "celery_status": "failed",
                    "legacy_error": "", "celery_error": "", "control_wrong": "",
                    "candidate_wrong": "exit_code" if bad else ""})
    return out


def rate(parity: ParityEvidence) -> object:
    verdict = decide(Evidence(parity=parity), 50, 75, load_thresholds())
    return next(c for c in verdict.criteria if c.name == "parity mismatch rate")


def test_the_bound_is_on_the_mix_sample_and_names_its_population() -> None:
    frame = pd.DataFrame(rows(700, "mix:parity-v1") + rows(40, "search", failing={3}))
    parity = parity_evidence(frame)
    assert parity is not None
    assert (parity.n, parity.mismatches, parity.searched, parity.population) == (700, 0, 40, "mix:parity-v1")
    assert parity.mismatches_by_field == {"exit_code": 1} and parity.wrong == {"legacy": 0, "celery": 1}
    criterion = rate(parity)
    assert criterion.status == "PASS"  # type: ignore[attr-defined]
    assert "0/700 mismatched in programs drawn from mix `parity-v1`" in criterion.detail  # type: ignore[attr-defined]
    verdict = decide(Evidence(parity=parity), 50, 75, load_thresholds())
    critical = next(c for c in verdict.criteria if c.name == "critical fields")
    assert critical.status == "FAIL" and critical.sample_size == 740  # the search's counterexample still counts


def test_search_programs_alone_give_no_bound() -> None:
    parity = parity_evidence(pd.DataFrame(rows(300, "search")))
    assert parity is not None and parity.n == 0 and parity.searched == 300
    criterion = rate(parity)
    assert criterion.status == "INCONCLUSIVE"  # type: ignore[attr-defined]
    assert "the search's 300 programs hunt counterexamples and are not a sample" in criterion.detail  # type: ignore[attr-defined]


def test_observations_stored_before_populations_say_so() -> None:
    frame = pd.DataFrame(rows(700, "")).drop(columns=["population"])
    parity = parity_evidence(frame)
    assert parity is not None and parity.population is None and parity.n == 700
    assert "undeclared population" in rate(parity).detail  # type: ignore[attr-defined]
