"""Small helpers the report's frame modules share: the two paths in the order every table shows them
(``PATHS``, ``sort_paths``), whether a frame has the columns a frame needs (``_has``), seconds and
strings read from stored columns (``_seconds``, ``_strings``), and milliseconds as text (``fmt_ms``).
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from harness.vocabulary import PATHS

__all__ = ["PATHS", "_has", "_seconds", "_strings", "fmt_ms", "sort_paths"]



def _has(frame: pd.DataFrame | None, *columns: str) -> bool:
    return frame is not None and not frame.empty and all(c in frame.columns for c in columns)


def _seconds(values: pd.Series) -> pd.Series:
    """Seconds as floats whether stored as epoch numbers or as timestamps."""
    if pd.api.types.is_datetime64_any_dtype(values):
        as_utc = values.dt.tz_localize("UTC") if values.dt.tz is None else values
        return (as_utc - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    return pd.to_numeric(values, errors="coerce").astype("float64")


def _strings(frame: pd.DataFrame, column: str, default: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(default, index=frame.index, dtype="object")
    return frame[column].astype("object").where(frame[column].notna(), default).astype(str)


def sort_paths(frame: pd.DataFrame, keys: Iterable[str] = ()) -> pd.DataFrame:
    """Order rows by ``keys`` (in first-seen order) then path: legacy, celery, then the others by name."""
    if frame.empty or "path" not in frame.columns:
        return frame.reset_index(drop=True)
    rank = {p: i for i, p in enumerate(PATHS)}
    keys = list(keys)
    firsts = {k: {v: i for i, v in enumerate(dict.fromkeys(frame[k]))} for k in keys}
    order = [(*(firsts[k][r[k]] for k in keys), rank.get(r["path"], len(rank)), str(r["path"]))
             for r in frame.to_dict("records")]
    positions = sorted(range(len(order)), key=order.__getitem__)
    return frame.iloc[positions].reset_index(drop=True)


def fmt_ms(value: float) -> str:
    """Milliseconds with as many decimals as make sense for their size."""
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}" if abs(value) >= 1 else f"{value:.2f}"
