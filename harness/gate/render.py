"""The verdict for people: ``render_text`` (the headline, every criterion as a table, the sample sizes the
step needs, latency by stage, the A/A noise floor and the rounds)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from harness.gate.base import OVERHEAD, STAGES
from harness.gate.criteria import _num, _pct

if TYPE_CHECKING:  # decide imports this module
    from harness.gate.decide import Verdict


_NEEDED_TEXT = {
    "parity_pairs": "paired comparisons with zero mismatches (parity, ε = {eps})",
    "latency_per_path": "latency samples per path",
    "error_rate_per_path": "evaluations per path with zero errors (error rate)",
    "split_routed": "routed evaluations (split accuracy)",
}


def render_text(verdict: Verdict) -> str:
    """The verdict first, then every criterion as a table, then the sample sizes this step needs."""
    header = ("criterion", "status", "observed", "threshold", "n", "bound", "detail")
    rows = [(c.name, c.status, c.observed, c.threshold, "-" if c.sample_size is None else str(c.sample_size),
             c.bound, c.detail) for c in verdict.criteria]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)).rstrip()

    out = [verdict.headline, "", line(header), line(["-" * w for w in widths]), *(line(r) for r in rows), "",
           f"samples needed for {_num(verdict.current)} % → {_num(verdict.target)} % "
           f"(confidence {_pct(verdict.confidence)}):"]
    for key, count in verdict.samples_needed.items():
        text = _NEEDED_TEXT.get(key, key).format(eps=_pct(verdict.epsilon))
        out.append(f"  {count:>6}  {text}")
    if verdict.stages:
        columns = (*STAGES, OVERHEAD, "end_to_end")
        heads = ("submit", "queue", "execution", "delivery", "queue+deliv", "end-to-end")
        out += ["", "latency by stage, median ms:  " + "  ".join(f"{h:>11}" for h in heads) + "      n"]
        for path, row in verdict.stages.items():
            n = (row.get("end_to_end") or {}).get("n", 0)
            out.append(f"  {path:<27} " + "  ".join(f"{_median_text(row.get(c)):>11}" for c in columns) + f"  {n:>5}")
    if verdict.noise_floor:
        out.append("A/A noise floor: " + ", ".join(f"{name} {_ms_or_dash(v)} ms" for name, v in verdict.noise_floor.items()))
    if verdict.sequential:
        seq = verdict.sequential
        out.append(f"evidence: {seq.get('rounds')} round(s) in {seq.get('elapsed_s')} s, stopped: {seq.get('stopped')}")
    return "\n".join(out) + "\n"


def _median_text(summary: Mapping[str, Any] | None) -> str:
    if not summary or not summary.get("n") or summary.get("p50") is None:
        return "-"
    return f"{summary['p50']:.1f}"


def _ms_or_dash(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, int | float) and math.isfinite(value) else "-"
