"""What a parity run leaves in its run folder: ``observations.parquet``, ``parity_history.parquet`` and ``parity.md``.

``parity.md`` is the short human summary: programs checked and how fast, per population (the
search, or a sample of a declared mix), per class, the normaliser hits, the coverage table (every
declared edge of the parity surface and how many programs reached it) and whatever the caller adds.
"""

from __future__ import annotations

from pathlib import Path

from harness.parity import coverage
from harness.parity.session import ParitySession


def write_outputs(session: ParitySession, folder: Path, *, title: str, extra: list[str] | None = None) -> Path:
    """``observations.parquet``, ``parity_history.parquet`` and ``parity.md`` in ``folder``; returns the summary."""
    folder.mkdir(parents=True, exist_ok=True)
    frame = session.frame()
    if not frame.empty:
        frame.to_parquet(folder / "observations.parquet", index=False)
    history = session.dispatcher.history.to_frame()
    if not history.empty:
        history.to_parquet(folder / "parity_history.parquet", index=False)
    counts = session.counts()
    rate = len(session.checks) / session.elapsed_s if session.elapsed_s else 0.0
    lines = [f"# {title}", "", f"- programs checked: {len(session.checks)} in {session.elapsed_s:.1f} s "
             f"({rate:.1f} per second)", f"- plan: {'+'.join(session.plan)}"]
    if not frame.empty:
        lines += [f"- population `{p}`: {n} programs" for p, n in frame["population"].value_counts().items()]
    lines += ["", "| class | programs |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(counts.items())]
    lines += ["", "Normaliser hits: " + (", ".join(f"{k} ×{v}" for k, v in sorted(session.hits.items())) or "none")]
    lines += ["", "## Coverage of the parity surface", "", *coverage.markdown(coverage.coverage_frame(frame))]
    lines += extra or []
    path = folder / "parity.md"
    path.write_text("\n".join(lines) + "\n")
    return path
