"""``summary.md``: the report in a page of Markdown, for a terminal, a pull request or a CI summary.

The verdict and its criteria first, then a short block per part the run folder holds (parity,
latency, throughput, chaos). Charts and diffs stay in ``report.html``; this names where to find them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from harness.parity import coverage
from harness.parity.explain import first_difference
from harness.report.frames import CHAOS_CLASSES, Frames, fmt_ms, sample_headline


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows), ""]


def render_markdown(f: Frames) -> str:
    """The summary as Markdown text (pure: no I/O)."""
    v = f.verdict
    lines = [f"# Run {f.data.run_id}: {v.get('verdict', 'INCONCLUSIVE') if v else 'no gate verdict'}", ""]
    if v:
        lines += [str(v.get("headline") or ""), ""]
        lines += _table(("criterion", "status", "observed", "threshold", "n", "detail"),
                        ((r["name"], f"**{r['status']}**" if r["status"] == "FAIL" else r["status"], r["observed"],
                          r["threshold"], r["sample_size"], r["detail"]) for r in f.criteria.to_dict("records")))
        needed = v.get("samples_needed") or {}
        if needed:
            lines += ["Samples this step needs: " + ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in needed.items()), ""]
    if f.data.problems:
        lines += ["Unreadable parts of the run folder:", *(f"- {p}" for p in f.data.problems), ""]
    if f.has_parity:
        classes = f.parity_classes
        failing = int(classes["failing"].sum())
        lines += ["## Parity", "", f"{int(classes['programs'].sum())} programs, {failing} failing."
                  + (" Interrupted (Ctrl-C): the programs checked before the run was stopped."
                     if (f.data.parity_run or {}).get("interrupted") else ""), ""]
        lines += _table(("class", "programs", "failing"), classes[["cls", "programs", "failing"]].itertuples(index=False))
        if not f.parity_fields.empty:
            lines += _table(("field", "paths differ", "celery wrong", "legacy wrong"),
                            f.parity_fields.itertuples(index=False))
        reached = coverage.coverage_frame(f.data.observations)
        gaps = coverage.missing(reached)
        lines += [f"Coverage of the parity surface: {len(reached) - len(gaps)} of {len(reached)} declared edges "
                  "reached" + (f"; no program reached {', '.join(gaps)}" if gaps else "")
                  + " (programs per edge: parity.md, report.html).", ""]
        samples = f.mismatch_samples
        if not samples.empty:
            row = samples.iloc[0].to_dict()
            lines += [f"Smallest failing program ({samples.attrs.get('total', len(samples))} distinct; all samples and "
                      f"their diffs in report.html): {sample_headline(row)}", "", "```", str(row.get("code", "")).rstrip(),
                      "```", ""]
            for name in str(row.get("differing") or "").split(","):
                a, b = row.get(f"legacy_{name}"), row.get(f"celery_{name}")
                if isinstance(a, str) and isinstance(b, str):
                    lines += [f"- {name}: {first_difference(a, b)}"]
            lines += [""]
    if not f.latency_percentiles.empty:
        lines += ["## Latency", ""]
        lines += _table(("source", "measure", "path", "n", "p50 ms", "p95 ms", "p99 ms"),
                        ((r["source"], r["measure"], r["path"], r["n"], *(fmt_ms(r[q]) for q in ("p50", "p95", "p99")))
                         for r in f.latency_percentiles.to_dict("records")))
    if not f.throughput.empty:
        tp = f.throughput
        seconds = int(tp["second"].max() - tp["second"].min() + 1)
        totals = tp.groupby(["kind", "path"], sort=False)[["requests", "failures"]].sum()
        lines += ["## Throughput", "", f"Over {seconds} s of the load run:", ""]
        lines += _table(("", "path", "count", "failures", "per second"),
                        ((kind, path, r["requests"], r["failures"], f"{r['requests'] / seconds:.1f}")
                         for (kind, path), r in totals.iterrows()))
    if f.has_chaos:
        lines += ["## Chaos", ""]
        lines += _table(("scenario", "outcome", "detail"),
                        ((r.scenario, r.outcome or "unknown", r.detail) for r in f.chaos_scenarios.itertuples()))
        findings = f.chaos_findings
        if not findings.empty:
            classes = [c for c in CHAOS_CLASSES if c == "ok" or findings[c].fillna(0).sum() > 0]
            lines += _table(("scenario", "path", "acked", *classes, "outcome", "violations"),
                            ((r["scenario"], r["path"], r["acked"], *(r[c] for c in classes), r["outcome"] or "unknown",
                              r["violations"]) for r in findings.to_dict("records")))
    lines += ["Charts, mismatch diffs and chaos timelines: report.html; CI results: junit.xml.", ""]
    return "\n".join(lines)
