"""The gate's thresholds: ``Thresholds`` (confidence, the mismatch budgets ``Budget`` and the tolerances),
read and validated from the one reviewed file, ``thresholds.toml`` (``load_thresholds``; ``_Reader`` names
the file and the key of every error, raised as ``ThresholdsError``)."""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.gate.base import GateError

__all__ = ["DEFAULT_THRESHOLDS", "Budget", "Thresholds", "ThresholdsError", "load_thresholds"]

DEFAULT_THRESHOLDS = Path(__file__).with_name("thresholds.toml")


class ThresholdsError(GateError):
    """The thresholds file is unreadable or invalid; the message names the file and the key."""


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
