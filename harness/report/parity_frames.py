"""Parity frames: what ``observations.parquet`` (one row per program the parity suite checked) says.

Programs per class, Scientist's classes first (``parity_classes``); per compared field, the programs
whose paths differ on it and those where a path is wrong on it (``parity_fields``); the smallest
failing programs, one per kind of failure (``mismatch_samples``, each put in one line by
``sample_headline``, which names the path the oracle says is wrong, or the one whose result is
missing); the declared normalisers' hits (``normaliser_hits``); and the coverage of the parity
surface, programs per declared edge (``parity_coverage``, from ``harness.parity.coverage``). Pure
functions.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, get_args

import pandas as pd

from harness.parity.compare import COMPARED_FIELDS
from harness.parity.coverage import coverage_frame as parity_coverage
from harness.report._common import _has
from harness.vocabulary import ParityClass

PARITY_CLASSES: tuple[str, ...] = get_args(ParityClass)
__all__ = ["PARITY_CLASSES", "mismatch_samples", "normaliser_hits", "parity_classes", "parity_coverage",
           "parity_fields", "sample_headline"]


def _failing(obs: pd.DataFrame) -> pd.Series:
    if "failing" in obs.columns:
        return obs["failing"].fillna(False).astype(bool)
    return obs["cls"].isin(["mismatched", "wrong"])


def parity_classes(obs: pd.DataFrame | None) -> pd.DataFrame:
    """Programs per class (Scientist's classes first, in their order), with how many fail and the share."""
    columns = ["cls", "programs", "failing", "share"]
    if not _has(obs, "cls"):
        return pd.DataFrame(columns=columns)
    assert obs is not None
    frame = pd.DataFrame({"cls": obs["cls"].astype(str), "failing": _failing(obs)})
    grouped = frame.groupby("cls").agg(programs=("cls", "size"), failing=("failing", "sum")).reset_index()
    order = {c: i for i, c in enumerate(PARITY_CLASSES)}
    grouped = grouped.sort_values("cls", key=lambda s: s.map(lambda c: order.get(c, len(order)))).reset_index(drop=True)
    grouped["failing"] = grouped["failing"].astype("int64")
    grouped["share"] = grouped["programs"] / grouped["programs"].sum()
    return grouped[columns]


def _split_fields(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    return [f for f in str(value).split(",") if f]


def parity_fields(obs: pd.DataFrame | None) -> pd.DataFrame:
    """Per compared field: programs whose paths differ on it, and programs where each path is wrong on it."""
    columns = ["field", "differing", "candidate_wrong", "control_wrong"]
    if not _has(obs, "cls"):
        return pd.DataFrame(columns=columns)
    assert obs is not None
    counts = {c: {f: 0 for f in COMPARED_FIELDS} for c in columns[1:]}
    for column in columns[1:]:
        for value in obs[column] if column in obs.columns else ():
            for f in _split_fields(value):
                counts[column][f] = counts[column].get(f, 0) + 1
    names = list(dict.fromkeys([*COMPARED_FIELDS, *(f for c in counts.values() for f in c)]))
    frame = pd.DataFrame({"field": names, **{c: [counts[c].get(f, 0) for f in names] for c in columns[1:]}})
    return frame[frame[columns[1:]].sum(axis=1) > 0].reset_index(drop=True)


def mismatch_samples(obs: pd.DataFrame | None, limit: int = 6) -> pd.DataFrame:
    """Up to ``limit`` distinct failing programs (or mismatched / wrong ones), the smallest first, one
    per kind of failure (which fields differ, which are wrong, the language) before a second of any kind.

    ``frame.attrs["total"]`` keeps how many distinct programs there were in all.
    """
    if not _has(obs, "cls"):
        return pd.DataFrame()
    assert obs is not None
    bad = obs[_failing(obs) | obs["cls"].isin(["mismatched", "wrong"])]
    # The shrinker re-checks the same program many times: one row per program is enough.
    bad = (bad.drop_duplicates("code") if "code" in bad.columns else bad).copy()
    if bad.empty:
        out = bad.reset_index(drop=True)
        out.attrs["total"] = 0
        return out
    kind = [bad[c].fillna("").astype(str) if c in bad.columns else pd.Series("", index=bad.index)
            for c in ("differing", "candidate_wrong", "control_wrong", "language")]
    bad["_kind"] = kind[0] + "|" + kind[1] + "|" + kind[2] + "|" + kind[3]
    confirmed = bad["noise_checked"].fillna(False).astype(bool) if "noise_checked" in bad.columns else False
    size = bad["code"].fillna("").astype(str).str.len() if "code" in bad.columns else 0
    bad["_order"] = (~pd.Series(confirmed, index=bad.index)).astype(int) * 10**9 + size
    bad = bad.sort_values("_order", kind="stable")
    bad["_rank"] = bad.groupby("_kind").cumcount()
    picked = bad.sort_values(["_rank", "_order"], kind="stable").head(limit)
    out = picked.drop(columns=["_kind", "_order", "_rank"]).reset_index(drop=True)
    out.attrs["total"] = len(bad)
    return out


def normaliser_hits(obs: pd.DataFrame | None) -> dict[str, int]:
    """Total hits per declared normaliser over every program (``normaliser_hits`` is JSON per row)."""
    if not _has(obs, "normaliser_hits"):
        return {}
    assert obs is not None
    total: dict[str, int] = {}
    for value in obs["normaliser_hits"]:
        try:
            hits = json.loads(value) if isinstance(value, str) else {}
        except json.JSONDecodeError:
            continue
        for name, n in (hits or {}).items():
            total[str(name)] = total.get(str(name), 0) + int(n or 0)
    return dict(sorted(total.items()))


def sample_headline(row: Mapping[str, Any]) -> str:
    """One line for a mismatch sample, in the parity suite's words: the path the oracle says is wrong (either
    one), or the one whose result is missing; with no oracle, only that the paths differ."""
    differing, celery, legacy, missing = (_split_fields(row.get(c)) for c in
                                          ("differing", "candidate_wrong", "control_wrong", "missing"))
    if missing:
        return f"{' and '.join(missing)} result missing: no terminal result within the evaluation's deadline"
    wrong = [p for p, w in (("legacy", legacy), ("celery", celery)) if w]
    fields = ", ".join(differing or celery or legacy)
    if not fields:
        return f"classed {row.get('cls')}"
    if not wrong:
        return f"the paths differ on {fields} (no oracle: neither is known to be right)"
    blamed = " and ".join(wrong)
    if differing:
        return f"{blamed} {'is' if len(wrong) == 1 else 'are'} wrong: the paths differ on {fields}"
    return f"{blamed} disagree{'s' if len(wrong) == 1 else ''} with the oracle on {fields}"
