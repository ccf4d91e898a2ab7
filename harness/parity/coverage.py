"""The coverage table: per declared edge of the parity surface, how many checked programs reached it.

Built from ``observations.parquet`` (its ``edges`` and ``language`` columns), so the same table is in
``parity.md``, the report and pytest's terminal summary. Every declared edge has a row, reached or
not: an edge no program reached shows 0 and is listed as missing, so a gap in the generator is
obvious (``harness.generate.edges`` declares the edges and what each one means).
"""

from __future__ import annotations

from collections import Counter

import pandas as pd

from harness.generate.edges import EDGES, FIELDS, Edge, parse_edges

COLUMNS = ["field", "edge", "meaning", "python", "bash", "programs"]


def coverage_frame(obs: pd.DataFrame | None) -> pd.DataFrame:
    """One row per declared edge: the checked programs (per language, and all) that reached it."""
    counts: dict[str, Counter[Edge]] = {"python": Counter(), "bash": Counter()}
    if obs is not None and not obs.empty and "edges" in obs.columns:
        languages = obs["language"] if "language" in obs.columns else pd.Series("python", index=obs.index)
        for language, text in zip(languages, obs["edges"], strict=True):
            counts.setdefault(str(language), Counter()).update(parse_edges(text))
    rows = [{"field": f, "edge": e, "meaning": meaning, "python": counts["python"][(f, e)],
             "bash": counts["bash"][(f, e)], "programs": sum(c[(f, e)] for c in counts.values())}
            for (f, e), meaning in EDGES.items()]
    return pd.DataFrame(rows, columns=COLUMNS)


def missing(frame: pd.DataFrame) -> list[str]:
    """``field:edge`` of every declared edge no program reached."""
    return [f"{r.field}:{r.edge}" for r in frame.itertuples(index=False) if not r.programs]


def markdown(frame: pd.DataFrame) -> list[str]:
    """The table as markdown lines (an unreached edge's count in bold, and listed under the table)."""
    lines = ["| field | edge | python | bash | programs | meaning |", "|---|---|---:|---:|---:|---|"]
    for r in frame.itertuples(index=False):
        total = f"**{r.programs}**" if not r.programs else str(r.programs)
        lines.append(f"| {r.field} | {r.edge} | {r.python} | {r.bash} | {total} | {r.meaning} |")
    gaps = missing(frame)
    lines += ["", f"Edges no program reached: {', '.join(gaps)}" if gaps else
              f"Every one of the {len(frame)} declared edges was reached."]
    return lines


def terminal(frame: pd.DataFrame, width: int = 110) -> list[str]:
    """A compact form for a terminal: one wrapped line per field, then the unreached edges."""
    lines = []
    for name in FIELDS:
        rows = frame[frame["field"] == name]
        text = f"  {name + ':':<12} " + " · ".join(f"{r.edge} {r.programs}" for r in rows.itertuples(index=False))
        while len(text) > width:
            cut = text.rfind(" · ", 0, width)
            lines.append(text[:cut])
            text = " " * 15 + text[cut + 3:]
        lines.append(text)
    gaps = missing(frame)
    lines.append(f"  UNREACHED: {', '.join(gaps)}" if gaps else f"  every one of the {len(frame)} edges reached")
    return lines
