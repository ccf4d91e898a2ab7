"""Observations and their comparison, in GitHub Scientist's terms.

An ``Observation`` is one path's result for one evaluation (control = legacy, candidate = celery).
``compare`` normalises both sides with the declared normalisers (``normalisers.toml``: each rule
names its fields, pattern, replacement and reason; every hit is counted), then compares the fields
that matter. The outcome's class is one of:

- ``matched``: every compared field agrees after normalisation;
- ``mismatched``: some field differs;
- ``ignored``: it differs, but only as a declared ignore rule allows (counted, never dropped);
- ``noise``: the control disagreed with itself (A/A), so this evaluation cannot judge the candidate;
- ``wrong``: the candidate disagrees with the oracle (the control may be wrong too: see ``control_wrong``);
- ``missing``: a path has no terminal result (one half of a dual-write never arrived within the
  evaluation's deadline): nothing can be compared, and the path is named in ``missing``.

Which path is wrong is the oracle's to say, never the comparison's: ``wrong_paths`` names every path
that disagrees with it (legacy, the control, included); with no oracle (a raw program) nobody is
blamed and only the difference is reported.
"""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.vocabulary import PATHS, TERMINAL, ParityClass
from harness.vocabulary import Path as Path_

ComparisonClass = ParityClass
COMPARED_FIELDS = ("status", "output", "error", "exit_code", "timed_out", "truncated")
DEFAULT_CONFIG = Path(__file__).with_name("normalisers.toml")


class ParityError(HarnessError):
    """A parity configuration or observation is unusable."""


@dataclass(frozen=True)
class Normaliser:
    name: str
    fields: tuple[str, ...]
    pattern: re.Pattern[str]
    replacement: str
    reason: str

    def apply(self, value: str) -> tuple[str, int]:
        return self.pattern.subn(self.replacement, value)


@dataclass(frozen=True)
class IgnoreRule:
    name: str
    field: str
    reason: str


@dataclass(frozen=True)
class Observation:
    eval_id: str
    path: Path_
    values: Mapping[str, Any]

    @classmethod
    def from_result(cls, eval_id: str, path: Path_, result: Mapping[str, Any]) -> Observation:
        return cls(eval_id, path, {f: result.get(f) for f in COMPARED_FIELDS})

    @property
    def complete(self) -> bool:
        """The path produced a terminal result (a missing or still-running one is not)."""
        return self.values.get("status") in TERMINAL


@dataclass(frozen=True)
class Comparison:
    eval_id: str
    cls: ComparisonClass
    differing: tuple[str, ...]
    control: Mapping[str, Any]  # normalised
    candidate: Mapping[str, Any]
    hits: Mapping[str, int] = field(default_factory=dict)
    control_wrong: tuple[str, ...] = ()
    candidate_wrong: tuple[str, ...] = ()
    missing: tuple[Path_, ...] = ()  # paths with no terminal result

    def wrong_paths(self) -> tuple[Path_, ...]:
        """The paths that disagree with the oracle, control first (empty: none, or no oracle)."""
        return tuple(p for p, w in zip(PATHS, (self.control_wrong, self.candidate_wrong), strict=True) if w)


@dataclass(frozen=True)
class ParityConfig:
    normalisers: tuple[Normaliser, ...]
    ignore: tuple[IgnoreRule, ...] = ()

    @classmethod
    def load(cls, path: Path = DEFAULT_CONFIG) -> ParityConfig:
        try:
            doc = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ParityError(f"{path}: cannot read the parity configuration: {exc}") from exc
        normalisers = []
        for i, rule in enumerate(doc.get("normaliser", [])):
            where = f"{path}: normaliser[{i}]"
            missing = [k for k in ("name", "fields", "pattern", "replacement", "reason") if k not in rule]
            if missing:
                raise ParityError(f"{where} is missing {missing}")
            bad = [f for f in rule["fields"] if f not in ("output", "error")]
            if bad:
                raise ParityError(f"{where}.fields may name only 'output' and 'error', got {bad}")
            try:
                pattern = re.compile(rule["pattern"])
            except re.error as exc:
                raise ParityError(f"{where}.pattern is not a regular expression: {exc}") from exc
            normalisers.append(Normaliser(rule["name"], tuple(rule["fields"]), pattern, rule["replacement"],
                                          rule["reason"]))
        ignore = tuple(IgnoreRule(r["name"], r["field"], r["reason"]) for r in doc.get("ignore", []))
        return cls(tuple(normalisers), ignore)

    def normalise(self, values: Mapping[str, Any], hits: Counter[str]) -> dict[str, Any]:
        out = dict(values)
        for rule in self.normalisers:
            for f in rule.fields:
                if isinstance(out.get(f), str):
                    out[f], n = rule.apply(out[f])
                    hits[rule.name] += n
        return out


def differing_fields(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(f for f in COMPARED_FIELDS if a.get(f) != b.get(f))


def compare(control: Observation, candidate: Observation, config: ParityConfig, *,
            control_again: Observation | None = None, oracle: Any = None) -> Comparison:
    """Classify one evaluation. ``control_again`` is a second control run (A/A); ``oracle`` an ``Expected``
    (None: no oracle, only the paths are compared)."""
    missing = tuple(o.path for o in (control, candidate) if not o.complete)
    if missing:
        return Comparison(control.eval_id, "missing", (), dict(control.values), dict(candidate.values), {}, (), (),
                          missing)
    hits: Counter[str] = Counter()
    c = config.normalise(control.values, hits)
    k = config.normalise(candidate.values, hits)
    differing = differing_fields(c, k)
    control_wrong = tuple(oracle.differences(control.values)) if oracle is not None else ()
    candidate_wrong = tuple(oracle.differences(candidate.values)) if oracle is not None else ()
    if control_again is not None and differing_fields(c, config.normalise(control_again.values, Counter())):
        cls: ComparisonClass = "noise"
    elif candidate_wrong:
        cls = "wrong"
    elif not differing:
        cls = "matched"
    elif set(differing) <= {rule.field for rule in config.ignore}:
        cls = "ignored"
    else:
        cls = "mismatched"
    return Comparison(control.eval_id, cls, differing, c, k, dict(hits), control_wrong, candidate_wrong)
