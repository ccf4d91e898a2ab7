"""``summary.md``: the report in a page of Markdown, for a terminal, a pull request or a CI summary.

The verdict and its criteria first (each linked to the block showing its evidence), then a short block
per part the run folder holds (parity, the load that was run and its latency, throughput, chaos). Charts and diffs stay in ``report.html``; this names where to find them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from harness.parity import coverage
from harness.parity.explain import first_difference
from harness.report.frames import (
    CHAOS_CLASSES,
    NOISE_FLOOR_NOTE,
    STAGE_ROWS,
    STAGES_NOTE,
    Frames,
    criterion_section,
    fmt_ms,
    look_criteria,
    noise_floor_text,
    sample_headline,
    sequential_text,
)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows), ""]


def _median_cs(summary: Any) -> str:
    if not isinstance(summary, Mapping) or not summary.get("n") or summary.get("p50") is None:
        return "-"
    lower, upper = summary.get("lower"), summary.get("upper")
    return (f"{fmt_ms(float(summary['p50']))} [{'−∞' if lower is None else fmt_ms(float(lower))}, "
            f"{'∞' if upper is None else fmt_ms(float(upper))}]")


def _stages(v: Mapping[str, Any]) -> list[str]:
    """The gate's latency by stage, both paths side by side, and the A/A noise floor."""
    raw = v.get("stages")
    stages: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    paths = [p for p in ("legacy", "celery") if isinstance(stages.get(p), Mapping)]
    lines: list[str] = []
    if any((stages[p].get(k) or {}).get("n") for p in paths for k, _ in STAGE_ROWS):
        lines += ["## Latency by stage", ""]
        lines += _table(("", *(f"{p} median [CS]" for p in paths), *(f"n {p}" for p in paths)),
                        ((f"**{label}**" if key == "overhead" else label, *(_median_cs(stages[p].get(key)) for p in paths),
                          *((stages[p].get(key) or {}).get("n") for p in paths)) for key, label in STAGE_ROWS))
        lines += [f"{STAGES_NOTE} Medians in ms (CPU time in ms, peak memory in KiB); in brackets each path's "
                  "confidence sequence for its median.", ""]
    floor = v.get("noise_floor")
    if isinstance(floor, Mapping) and floor:
        lines += [f"{noise_floor_text(floor)}: {NOISE_FLOOR_NOTE}", ""]
    return lines


def _sequential(v: Mapping[str, Any]) -> list[str]:
    """How the evidence was gathered: the rounds of a sequential gate (nothing for a gate over stored evidence)."""
    seq = v.get("sequential")
    if not isinstance(seq, Mapping) or not seq:
        return []
    looks = [look for look in seq.get("looks") or () if isinstance(look, Mapping)]
    lines = ["## How the evidence was gathered", "", sequential_text(seq), ""]
    names = look_criteria(looks)
    if looks and names:
        def cell(look: Mapping[str, Any], name: str) -> str:
            status = (look.get("statuses") or {}).get(name)
            if status is None:
                return "-"
            n = (look.get("samples") or {}).get(name)
            return (f"**{status}**" if status == "FAIL" else str(status)) + (f" (n {n})" if n is not None else "")
        lines += _table(("round", "elapsed s", *names),
                        ((look.get("round"), look.get("elapsed_s"), *(cell(look, n) for n in names)) for look in looks))
    return lines


def _load(f: Frames) -> list[str]:
    """What load was run: its settings and the mix of its evaluations."""
    lines: list[str] = []
    if f.load_settings:
        lines += ["### Load settings", ""] + _table(("setting", "value"), f.load_settings)
    mix = f.program_mix
    if not mix.empty:
        total, unit = mix.attrs.get("total", 0), mix.attrs.get("unit", "evaluations")

        def line(by: str) -> str:
            sep = ":" if by == "priority" else ""
            return ", ".join(f"{r['value']}{sep} {100 * r['share']:.1f} % ({r['evaluations']})"
                             for r in mix[mix["by"] == by].to_dict("records"))

        facts = [f"{total} {unit}"]
        if (mix["by"] == "language").any():
            facts.append(f"by language: {line('language')}")
        if mix.attrs.get("batch_known"):
            batch, known = mix.attrs["batch"], mix.attrs["batch_known"]
            facts.append(f"in batch submissions: {100 * batch / known:.1f} % ({batch} of {known})")
        if (mix["by"] == "priority").any():
            facts.append(f"by priority: {line('priority')}")
        lines += ["### Program mix", "", "; ".join(facts) + ".", ""]
        programs = mix[mix["by"] == "program"]
        if not programs.empty:
            lines += _table(("program", "languages", unit, "share"),
                            ((r["value"], r["languages"], r["evaluations"], f"{100 * r['share']:.1f} %")
                             for r in programs.to_dict("records")))
    return lines


def _criterion(name: Any, present: set[str]) -> str:
    """A criterion's name, linked to the block of this summary that shows its evidence (if it has one)."""
    section = criterion_section(str(name), present)
    return f"[{name}](#{section})" if section else str(name)


def render_markdown(f: Frames) -> str:
    """The summary as Markdown text (pure: no I/O)."""
    v = f.verdict
    has_latency = not f.latency_percentiles.empty or f.has_load
    # the blocks below, by their headings' anchors (## Parity is #parity, as GitHub and most renderers make them)
    present = {key for key, shown in (("parity", f.has_parity), ("latency", has_latency),
                                      ("throughput", not f.throughput.empty), ("chaos", f.has_chaos)) if shown}
    lines = [f"# Run {f.data.run_id}: {v.get('verdict', 'INCONCLUSIVE') if v else 'no gate verdict'}", ""]
    if v:
        lines += [str(v.get("headline") or ""), ""]
        lines += _table(("criterion", "status", "observed", "threshold", "n", "detail"),
                        ((_criterion(r["name"], present), f"**{r['status']}**" if r["status"] == "FAIL" else r["status"], r["observed"],
                          r["threshold"], r["sample_size"], r["detail"]) for r in f.criteria.to_dict("records")))
        needed = v.get("samples_needed") or {}
        if needed:
            lines += ["Samples this step needs: " + ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in needed.items()), ""]
        lines += _stages(v) + _sequential(v)
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
    if has_latency:
        lines += ["## Latency", ""] + _load(f)
    if not f.latency_percentiles.empty:
        lines += ["### Latency per path", ""] if f.has_load else []
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
