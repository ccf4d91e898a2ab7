"""``report.html``: one self-contained page (inline CSS, charts as SVG data URIs, no scripts, no fonts
or links to fetch) that works offline and from a CI artifact.

The gate's verdict comes first (its criteria, each linked to the section showing its evidence, the
latency by stage of both paths with the A/A noise floor, and how a sequential gate gathered its
evidence: one look per round), then one section per part of the evidence the run folder holds: parity
(classes, mismatches by field, mismatch samples with their diffs), the load that was run (its settings
and program mix) with the latency per path, throughput, chaos (the findings table and a timeline per
scenario with its fault windows shaded), then the run's details. A part that is absent has no section and no entry in the contents.
"""

from __future__ import annotations

import difflib
import html
import json
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from harness.parity.compare import COMPARED_FIELDS
from harness.parity.coverage import coverage_frame as parity_coverage
from harness.parity.coverage import missing as coverage_missing
from harness.parity.explain import first_difference
from harness.report import charts
from harness.report.frames import (
    CHAOS_CLASSES,
    NOISE_FLOOR_NOTE,
    STAGE_ROWS,
    STAGES_NOTE,
    Frames,
    ScenarioFrames,
    criterion_section,
    fmt_ms,
    look_criteria,
    noise_floor_text,
    sample_headline,
    sequential_text,
)

_DIFF_CONTEXT = 160  # at most this many characters before the first difference (and 2x after it)
_DIFF_LINES = 3
_OPEN_SAMPLES = 2  # mismatch samples shown open; the others are folded  # and at most this many lines before it (and 2x after it)

CSS = """
:root { --fg:#1f2328; --muted:#57606a; --line:#d0d7de; --bg:#f6f8fa; --pass:#1a7f37; --fail:#cf222e;
        --inconclusive:#9a6700; --legacy:#0072B2; --celery:#E69F00; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: var(--fg);
       margin: 0 auto; max-width: 1180px; padding: 24px 32px 64px; }
h1 { font-size: 26px; margin: 0 0 4px; } h2 { font-size: 21px; margin: 40px 0 10px; padding-bottom: 6px;
border-bottom: 1px solid var(--line); } h3 { font-size: 17px; margin: 26px 0 8px; } h4 { margin: 0 0 6px; font-size: 15px; }
.meta, .note { color: var(--muted); } .note { font-size: 14px; }
nav { margin: 12px 0 8px; font-size: 14px; } nav a { margin-right: 14px; color: #0969da; }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 14px; }
th, td { border: 1px solid var(--line); padding: 4px 9px; text-align: left; vertical-align: top; }
th { background: var(--bg); } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.bad td { background: #fff5f5; }
code, pre { font: 13px/1.45 ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
pre { background: var(--bg); border: 1px solid var(--line); padding: 8px 10px; overflow-x: auto; margin: 6px 0;
      white-space: pre-wrap; word-break: break-all; }
.pill { display: inline-block; padding: 1px 9px; border-radius: 10px; color: #fff; font-weight: 600;
        font-size: 13px; letter-spacing: .02em; }
.PASS { background: var(--pass); } .FAIL { background: var(--fail); }
.INCONCLUSIVE, .unknown { background: var(--inconclusive); } .finding { background: #6e7781; }
.verdict { border: 2px solid; border-radius: 8px; padding: 14px 18px; margin: 18px 0; }
.verdict.v-PASS { border-color: var(--pass); background: #f0fff4; } .verdict.v-FAIL { border-color: var(--fail);
background: #fff5f5; } .verdict.v-INCONCLUSIVE { border-color: var(--inconclusive); background: #fff8e5; }
.verdict .big { font-size: 24px; padding: 3px 14px; border-radius: 14px; margin-right: 10px; vertical-align: middle; }
.verdict .headline { font-size: 16px; font-weight: 600; } .verdict td { background: #fff; }
.verdict tr.bad td { background: #ffebe9; }
table.facts th { text-align: left; font-weight: 600; white-space: nowrap; vertical-align: top; padding-right: 12px; }
.dot { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 6px; }
figure { margin: 10px 0 18px; } figure img { width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px; }
.sample { border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; margin: 12px 0; }
.code .ln { color: #8c959f; user-select: none; }
.diffcol { display: grid; grid-template-columns: 1fr 1fr; gap: 10px; } .diffcol h5 { margin: 4px 0 0; font-size: 13px; }
.del { background: #ffd7d5; outline: 1px solid #ff818266; } .ins { background: #ffe9b3; outline: 1px solid #d4a72c66; }
.ws { color: #8c959f; } .del .ws, .ins .ws { color: #a40e26; font-weight: bold; }
.skip { color: var(--muted); font-style: italic; } .nowrap { white-space: nowrap; }
table.fields { width: 100%; table-layout: fixed; } table.fields td { overflow-wrap: anywhere; }
table.fields th:first-child { width: 120px; }
.problems { border-left: 4px solid var(--inconclusive); background: #fff8e5; padding: 8px 14px; }
details summary { cursor: pointer; color: var(--muted); }
.cs { color: var(--muted); font-size: 13px; }
.load { display: grid; grid-template-columns: minmax(260px, auto) 1fr; gap: 8px 36px; align-items: start; }
.load h3 { margin-top: 14px; } .verdict td a { color: #0969da; } .crit { display: inline-block; min-width: 9.5em; }
"""


def _e(value: Any) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "–"  # a missing value read back from parquet
    return html.escape("" if value is None else str(value))


def _dot(path: str) -> str:
    return f'<span class="nowrap"><span class="dot" style="background:{charts.path_colour(path)}"></span>{_e(path)}</span>'


def _pill(status: str, css: str | None = None) -> str:
    return f'<span class="pill {_e(css or status)}">{_e(status)}</span>'


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return fmt_ms(value)
    return _e(value)


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], *, numeric: Iterable[int] = (),
           bad: Iterable[bool] | None = None, css: str = "") -> str:
    """A table whose cells are already HTML; ``numeric`` columns are right-aligned."""
    right = set(numeric)
    head = "".join(f'<th{" class=num" if i in right else ""}>{_e(h)}</th>' for i, h in enumerate(header))
    flags = list(bad) if bad is not None else None
    body = []
    for n, row in enumerate(rows):
        cells = "".join(f'<td{" class=num" if i in right else ""}>{c}</td>' for i, c in enumerate(row))
        body.append(f'<tr{" class=bad" if flags and flags[n] else ""}>{cells}</tr>')
    klass = f' class="{css}"' if css else ""
    thead = f"<thead><tr>{head}</tr></thead>" if any(header) else ""
    return f"<table{klass}>{thead}<tbody>{''.join(body)}</tbody></table>"


def _figure(chart: charts.Chart | None) -> str:
    if chart is None:
        return ""
    return f'<figure><img src="{chart.data_uri()}" alt="{_e(chart.alt)}" title="{_e(chart.alt)}"></figure>'


# -- verdict ---------------------------------------------------------------------------------------------


def _criterion(name: Any, present: Collection[str]) -> str:
    """A criterion's name, linked to the section of this report that shows its evidence (if it has one)."""
    section = criterion_section(str(name), present)
    text = f'<a href="#{section}">{_e(name)}</a>' if section else _e(name)
    return f'<span class="crit">{text}</span>'


def _verdict(f: Frames, present: Collection[str] = ()) -> str:
    """The verdict; each criterion links to the section among ``present`` that shows its evidence."""
    v = f.verdict
    if not v:
        return ""
    status = str(v.get("verdict") or "INCONCLUSIVE")
    step = ""
    if v.get("target") is not None:
        step = (f"split {_num(v.get('current'))} % → {_num(v.get('target'))} %"
                + (f" · error budget ε = {100 * float(v['epsilon']):.3g} %" if v.get("epsilon") else "")
                + (f" · confidence {100 * float(v['confidence']):.3g} %" if v.get("confidence") else ""))
    rows = [(_pill(str(r["status"])), _criterion(r["name"], present), _e(r["observed"]), _e(r["threshold"]),
             _num(r["sample_size"]), _e(r["bound"]), _e(r["detail"])) for r in f.criteria.to_dict("records")]
    criteria = _table(("status", "criterion", "observed", "threshold", "n", "bound", "detail"), rows, numeric=(4,),
                      bad=[r["status"] == "FAIL" for r in f.criteria.to_dict("records")]) if rows else ""
    needed = v.get("samples_needed") or {}
    needs = ("<p class=note>Samples this step needs: " + ", ".join(f"{_e(k.replace('_', ' '))} {_e(n)}"
                                                                  for k, n in needed.items()) + "</p>") if needed else ""
    return (f'<section id="verdict" class="verdict v-{_e(status)}"><div><span class="pill big {_e(status)}">{_e(status)}'
            f'</span><span class="headline">{_e(v.get("headline") or status)}</span></div>'
            f'<p class="meta">{_e(step)}</p>{criteria}{needs}{_stages(v)}{_sequential(v)}</section>')


def _median_cs(summary: Any) -> str:
    """``median [lower, upper]`` of one stage of one path (a null bound is an infinite one)."""
    if not isinstance(summary, Mapping) or not summary.get("n") or summary.get("p50") is None:
        return "–"

    def num(x: Any, inf: str) -> str:
        return inf if x is None else fmt_ms(float(x))

    return (f'{num(summary["p50"], "–")} <span class="cs">[{num(summary.get("lower"), "−∞")}, '
            f'{num(summary.get("upper"), "∞")}]</span>')


def _stages(v: Mapping[str, Any]) -> str:
    """The gate's latency by stage (both paths side by side) and the A/A noise floor per latency criterion."""
    raw = v.get("stages")
    stages: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    paths = [p for p in ("legacy", "celery") if isinstance(stages.get(p), Mapping)]
    out = []
    if any((stages[p].get(k) or {}).get("n") for p in paths for k, _ in STAGE_ROWS):
        rows = [(f"<b>{_e(label)}</b>" if key == "overhead" else _e(label), *(_median_cs(stages[p].get(key)) for p in paths),
                 *(_num((stages[p].get(key) or {}).get("n")) for p in paths)) for key, label in STAGE_ROWS]
        confidence = (f" (the two paths' together at {100 * float(v['confidence']):.3g} % confidence)"
                      if v.get("confidence") else "")
        out += ["<h3>Latency by stage</h3>",
                _table(("", *(f"{p} median [CS]" for p in paths), *(f"n {p}" for p in paths)), rows,
                       numeric=range(1, 1 + 2 * len(paths)), css="stages"),
                f"<p class=note>{_e(STAGES_NOTE)} Medians in ms (CPU time in ms, peak memory in KiB); in brackets "
                f"each path's confidence sequence for its median{_e(confidence)}.</p>"]
    floor = v.get("noise_floor")
    if isinstance(floor, Mapping) and floor:
        out.append(f"<p class=note><b>{_e(noise_floor_text(floor))}</b>: {_e(NOISE_FLOOR_NOTE)}</p>")
    return "".join(out)


def _sequential(v: Mapping[str, Any]) -> str:
    """How the evidence was gathered: the rounds of a sequential gate, one look after each (none for a gate
    over stored evidence)."""
    seq = v.get("sequential")
    if not isinstance(seq, Mapping) or not seq:
        return ""
    looks = [look for look in seq.get("looks") or () if isinstance(look, Mapping)]
    out = ["<h3>How the evidence was gathered</h3>", f"<p>{_e(sequential_text(seq))}</p>"]
    names = look_criteria(looks)
    if looks and names:
        rows = []
        for look in looks:
            statuses, samples = look.get("statuses") or {}, look.get("samples") or {}
            cells = []
            for name in names:
                status = statuses.get(name)
                n = samples.get(name)
                cells.append("–" if status is None else _pill(str(status)) + (f"<br><span class=note>n {_e(n)}</span>"
                                                                             if n is not None else ""))
            rows.append((_num(look.get("round")), _e(look.get("elapsed_s")), *cells))
        out.append(_table(("round", "elapsed s", *names), rows, numeric=(0, 1), css="looks"))
    if seq.get("method"):
        out.append(f"<p class=note>Every look is valid at any round: {_e(seq['method'])}.</p>")
    return "".join(out)


# -- parity ----------------------------------------------------------------------------------------------


def _visible(text: str) -> str:
    """HTML for text with its invisible characters shown (the usual culprits of an output mismatch)."""
    out = html.escape(text)
    return (out.replace("\r", '<span class="ws">␍</span>').replace("\t", '<span class="ws">⇥</span>')
            .replace("\n", '<span class="ws">↵</span>\n'))


def _window_start(text: str, first: int) -> int:
    """Where the shown text starts: ``_DIFF_LINES`` whole lines before the first difference's line,
    and no more than ``_DIFF_CONTEXT`` characters before it."""
    cut = first
    for _ in range(_DIFF_LINES + 1):
        newline = text.rfind("\n", 0, cut)
        if newline < 0:
            return max(0, first - _DIFF_CONTEXT)
        cut = newline
    return max(cut + 1, first - _DIFF_CONTEXT)


def _window_end(text: str, first: int) -> int:
    hi = min(len(text), first + 2 * _DIFF_CONTEXT)
    at = first
    for _ in range(2 * _DIFF_LINES):
        newline = text.find("\n", at, hi)
        if newline < 0:
            return hi
        at = newline + 1
    return at


def diff_html(a: str, b: str) -> tuple[str, str]:
    """Legacy's and celery's text, cut to a window around the first difference, with the differing
    runs marked (``del`` on the legacy side, ``ins`` on the celery side)."""
    first = next((k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    lo = _window_start(a, first)
    wa, wb = a[lo:_window_end(a, first)], b[lo:_window_end(b, first)]
    left, right = [], []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, wa, wb, autojunk=False).get_opcodes():
        if op == "equal":
            left.append(_visible(wa[i1:i2]))
            right.append(_visible(wb[j1:j2]))
            continue
        if i2 > i1:
            left.append(f'<span class="del">{_visible(wa[i1:i2])}</span>')
        if j2 > j1:
            right.append(f'<span class="ins">{_visible(wb[j1:j2])}</span>')

    def framed(body: list[str], text: str, shown: str) -> str:
        before = f'<span class="skip">… {lo} characters …</span>' if lo else ""
        rest = len(text) - lo - len(shown)
        after = f'<span class="skip">… {rest} more characters</span>' if rest > 0 else ""
        return before + "".join(body) + after

    return framed(left, a, wa), framed(right, b, wb)


def _short(value: Any, width: int = 60) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    text = repr(value.item() if hasattr(value, "item") else value)
    return text if len(text) <= width else text[: width - 12] + f"…({len(value) if isinstance(value, str) else '?'} chars)"


def _sample(row: Mapping[str, Any]) -> str:
    differing = set(str(row.get("differing") or "").split(","))
    wrong = set(str(row.get("candidate_wrong") or "").split(","))
    legacy_wrong = set(str(row.get("control_wrong") or "").split(","))
    code = str(row.get("code") or "")
    lines = code.splitlines()
    numbered = "\n".join(f'<span class="ln">{i:>3} │ </span>{_e(line)}' for i, line in enumerate(lines, 1))
    fields = []
    for name in COMPARED_FIELDS:
        mark = "≠ " if name in differing else ""
        oracle = row.get(f"oracle_{name}")
        fields.append((f"{mark}{_e(name)}", _e(_short(row.get(f"legacy_{name}"))) + (" ✗" if name in legacy_wrong else ""),
                       _e(_short(row.get(f"celery_{name}"))) + (" ✗" if name in wrong else ""),
                       _e(_short(oracle)) if f"oracle_{name}" in row else "-"))
    table = _table(("field", "legacy (control)", "celery (candidate)", "oracle"), fields,
                   bad=[name in differing or name in wrong or name in legacy_wrong for name in COMPARED_FIELDS], css="fields")
    diffs = []
    for name in COMPARED_FIELDS:
        a, b = row.get(f"legacy_{name}"), row.get(f"celery_{name}")
        if name in differing | wrong and isinstance(a, str) and isinstance(b, str) and a != b:
            left, right = diff_html(a, b)
            diffs.append(f"<p class=note><b>{_e(name)}</b>: {_e(first_difference(a, b))}</p><div class=diffcol>"
                         f"<div><h5>{_dot('legacy')}</h5><pre>{left}</pre></div>"
                         f"<div><h5>{_dot('celery')}</h5><pre>{right}</pre></div></div>")
    noise = "legacy re-run to rule out noise: it agreed with itself" if row.get("noise_checked") else \
        "legacy not re-run (only the first failure of a batch is)"
    plan = "dual-write" if str(row.get("plan")) == "both" else f"forced routes {_e(row.get('plan'))}"
    return (f'<div class="sample"><h4>{_e(sample_headline(row))}</h4>'
            f'<p class=meta>{_e(row.get("language"))}, {len(lines)} lines · evaluation <code>{_e(row.get("eval_ids"))}'
            f'</code> · {plan} · {noise}</p><pre class="code">{numbered}</pre>{table}'
            f'<p class=note>≠ differs between the paths, ✗ disagrees with the oracle (after normalisers; the '
            f'values shown are raw)</p>{"".join(diffs)}</div>')


def _coverage(obs: Any) -> str:
    """The coverage of the parity surface: programs per declared edge, an unreached edge marked."""
    table = parity_coverage(obs)
    gaps = coverage_missing(table)
    rows = [(_e(r.field), _e(r.edge), str(r.python), str(r.bash), str(r.programs), _e(r.meaning))
            for r in table.itertuples(index=False)]
    body = _table(("field", "edge", "python", "bash", "programs", "meaning"), rows, numeric=(2, 3, 4),
                  bad=[not r.programs for r in table.itertuples(index=False)])
    summary = (f"{len(gaps)} of {len(table)} declared edges no program reached: {_e(', '.join(gaps))}" if gaps
               else f"every one of the {len(table)} declared edges reached")
    return (f"<h3>Coverage of the parity surface</h3><p>{_pill('FAIL') if gaps else _pill('PASS')} {summary}</p>"
            f"<details{' open' if gaps else ''}><summary>programs per edge</summary>{body}</details>")


def _parity(f: Frames) -> str:
    if not f.has_parity:
        return ""
    classes = f.parity_classes
    total = int(classes["programs"].sum())
    failing = int(classes["failing"].sum())
    obs = f.data.observations
    assert obs is not None
    langs = ", ".join(f"{_e(k)} {v}" for k, v in obs["language"].value_counts().items()) if "language" in obs else ""
    plans = ", ".join(sorted({"dual-write" if p == "both" else f"forced {p}" for p in obs["plan"].astype(str)})) \
        if "plan" in obs else ""
    head = (f"<p><b>{total} programs</b>, {_pill('FAIL') if failing else _pill('PASS')} "
            f"{failing} failing · {plans} · {langs}</p>")
    if (f.data.parity_run or {}).get("interrupted"):
        head += ("<p class=note><b>Interrupted</b> (Ctrl-C): these are the programs checked before the run was "
                 "stopped; every batch was stored as it was checked.</p>")
    rows = [(_e(r["cls"]), str(r["programs"]), str(r["failing"]), f"{100 * r['share']:.1f} %")
            for r in classes.to_dict("records")]
    table = _table(("class", "programs", "failing", "share"), rows, numeric=(1, 2, 3),
                   bad=[r["failing"] > 0 for r in classes.to_dict("records")])
    hits = ", ".join(f"{_e(k)} ×{v}" for k, v in f.normaliser_hits.items() if v) or "none"
    out = [f'<section id="parity"><h2>Parity</h2>{head}{table}{_figure(charts.parity_classes_chart(classes))}',
           f"<p class=note>Normaliser hits: {hits}</p>", _figure(charts.parity_fields_chart(f.parity_fields)),
           _coverage(obs)]
    samples = f.mismatch_samples
    if not samples.empty:
        total_bad = samples.attrs.get("total", len(samples))
        out.append(f"<h3>Mismatch samples</h3><p class=note>{len(samples)} of {total_bad} distinct failing programs, "
                   "smallest first, one per kind of failure before a second of any kind.</p>")
        shown = [_sample(r) for r in samples.to_dict("records")]
        out += shown[:_OPEN_SAMPLES]
        if len(shown) > _OPEN_SAMPLES:
            out.append(f"<details><summary>{len(shown) - _OPEN_SAMPLES} more samples</summary>"
                       + "".join(shown[_OPEN_SAMPLES:]) + "</details>")
    out.append("</section>")
    return "".join(out)


# -- latency and throughput --------------------------------------------------------------------------------


def _share(part: float) -> str:
    return f"{100 * part:.1f} %"


def _load(f: Frames) -> str:
    """What load was run: its settings (load.json, or the gate's rounds) beside the mix of its evaluations."""
    parts = []
    if f.load_settings:
        cells = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in f.load_settings)
        parts.append(f'<div><h3>Load settings</h3><table class="facts">{cells}</table></div>')
    mix = f.program_mix
    if not mix.empty:
        total, unit = mix.attrs.get("total", 0), mix.attrs.get("unit", "evaluations")

        def line(by: str) -> str:
            rows = mix[mix["by"] == by].to_dict("records")
            sep = ":" if by == "priority" else ""
            return ", ".join(f"{_e(r['value'])}{sep} {_share(r['share'])} ({r['evaluations']})" for r in rows)

        facts = [f"<b>{total} {_e(unit)}</b>"]
        if (mix["by"] == "language").any():
            facts.append(f"by language: {line('language')}")
        if mix.attrs.get("batch_known"):
            batch, known = mix.attrs["batch"], mix.attrs["batch_known"]
            facts.append(f"in batch submissions: {_share(batch / known)} ({batch} of {known})")
        programs = mix[mix["by"] == "program"].to_dict("records")
        table = _table(("program", "languages", _e(unit), "share"),
                       [(_e(r["value"]), _e(r["languages"]), str(r["evaluations"]), _share(r["share"]))
                        for r in programs], numeric=(2, 3)) if programs else ""
        priority = (f"<p class=note>By priority: {line('priority')}.</p>" if (mix["by"] == "priority").any() else "")
        parts.append(f"<div><h3>Program mix</h3><p>{' · '.join(facts)}</p>{table}{priority}</div>")
    return f'<div class="load">{"".join(parts)}</div>' if parts else ""


def _latency(f: Frames) -> str:
    table = f.latency_percentiles
    load = _load(f)
    if table.empty and not load:
        return ""
    title = "Load and latency per path" if load else "Latency per path"
    out = [f'<section id="latency"><h2>{title}</h2>', load]
    for (source, measure), part in table.groupby(["source", "measure"], sort=False):
        rows = [(_dot(str(r["path"])), str(r["n"]), *(fmt_ms(r[c]) for c in ("p50", "p95", "p99", "mean", "max")))
                for r in part.to_dict("records")]
        out += [f"<h3>{_e(charts.latency_title(str(source), str(measure)))}</h3>",
                _table(("path", "n", "p50 ms", "p95 ms", "p99 ms", "mean ms", "max ms"), rows, numeric=range(1, 7)),
                _figure(charts.latency_chart(f.latency, table, str(source), str(measure)))]
    if not table.empty:
        only_ok = "Load latencies count successful requests only. " if (table["source"] == "load").any() else ""
        out.append(f"<p class=note>{only_ok}Percentiles interpolate linearly between order statistics, as the gate "
                   "does.</p>")
    out.append("</section>")
    return "".join(out)


def _throughput(f: Frames) -> str:
    tp = f.throughput
    if tp.empty:
        return ""
    seconds = int(tp["second"].max() - tp["second"].min() + 1)
    rows = []
    for kind in ("completed", "submitted"):
        part = tp[tp["kind"] == kind]
        for path in charts.ordered_paths(part["path"]):
            mine = part[part["path"] == path]
            total = int(mine["requests"].sum())
            rows.append((_e(kind), _dot(path), str(total), str(int(mine["failures"].sum())), f"{total / seconds:.1f}",
                         str(int(mine.groupby("second")["requests"].sum().max()))))
    return ('<section id="throughput"><h2>Throughput</h2>'
            + f"<p class=note>Over {seconds} s of the load run; an evaluation counts as completed in the second "
              "it ended.</p>"
            + _table(("", "path", "count", "failures", "mean per s", "peak per s"), rows, numeric=(2, 3, 4, 5))
            + _figure(charts.throughput_chart(tp)) + "</section>")


# -- chaos -------------------------------------------------------------------------------------------------

# Outcome words (harness.vocabulary) to the verdict colours: held green, failed red, a known failure,
# an error (nothing known) and a missing outcome amber; a finding has its own.
_OUTCOME_CSS = {"held": "PASS", "finding": "finding", "known-failure": "INCONCLUSIVE", "failed": "FAIL",
                "error": "INCONCLUSIVE", "unknown": "INCONCLUSIVE"}


def _chaos_table(f: Frames) -> str:
    findings = f.chaos_findings
    if findings.empty:
        return ""
    # The classes a scenario bounds are always shown, zeros included: "lost 0" is the assurance.
    always = ("ok", "lost", "duplicated", "stuck", "wrong")
    classes = [c for c in CHAOS_CLASSES if c in always or findings[c].fillna(0).sum() > 0]
    extra = [c for c in ("max_executions", "dead_lettered", "still_queued", "recovery_s") if findings[c].notna().any()
             and (c == "max_executions" or findings[c].fillna(0).sum() > 0)]
    header = ("scenario", "path", "acked", *classes, *(c.replace("_", " ") for c in extra), "outcome",
              "violations and notes")
    rows, bad = [], []
    for r in findings.to_dict("records"):
        outcome = str(r["outcome"] or "unknown")
        text = "; ".join(x for x in (r["errors"], r["violations"], r["known_failure"], r["notes"]) if x)
        rows.append((_e(r["scenario"]), _dot(str(r["path"])), _num(r["acked"]), *(_num(r[c]) for c in classes),
                     *(_num(r[c]) for c in extra), _pill(outcome, _OUTCOME_CSS.get(outcome, "INCONCLUSIVE")),
                     _e(text)))
        bad.append(outcome in ("failed", "known-failure", "error", "unknown"))
    return _table(header, rows, numeric=range(2, 3 + len(classes) + len(extra)), bad=bad)


def _scenario_facts(result: Mapping[str, Any] | None) -> str:
    """What the scenario claims and how it ran: the claim, what measuring showed, the configuration
    per path, the seed and the commands that replay it (from its result.json)."""
    if not result:
        return ""
    rows = [("claim", result.get("description")), ("measured before", result.get("finding")),
            *((f"configuration ({p})", c) for p, c in (result.get("config") or {}).items()),
            ("seed", result.get("seed")), ("replay", "<br>".join(f"<code>{_e(c)}</code>"
                                                              for c in result.get("replay") or []) or None)]
    cells = "".join(f"<tr><th>{_e(k)}</th><td>{v if k == 'replay' else _e(v)}</td></tr>" for k, v in rows
                    if v not in (None, ""))
    return f'<table class="facts">{cells}</table>' if cells else ""


def _scenario(s: ScenarioFrames, verdict: Mapping[str, Any] | None, result: Mapping[str, Any] | None = None) -> str:
    chart = charts.timeline_chart(s.name, s.operations, s.windows, s.executions)
    windows = ""
    if not s.windows.empty:
        rows = [(_e(w["fault"]), _e(w["kind"]), _e(w["target"]), f"{w['start']:.1f}",
                 "not healed" if math.isnan(w["stop"]) else f"{w['stop']:.1f}",
                 "-" if math.isnan(w["stop"]) else f"{w['stop'] - w['start']:.1f}") for w in s.windows.to_dict("records")]
        windows = _table(("fault", "kind", "target", "injected at s", "healed at s", "lasted s"), rows, numeric=(3, 4, 5))
    flagged = ""
    if not s.flagged.empty:
        shown = [c for c in ("eval_id", "path", "cls", "submit", "executions", "status", "detail") if c in s.flagged]
        cells = [tuple(_dot(str(r[c])) if c == "path" else _e(r[c]) for c in shown) for r in s.flagged.to_dict("records")]
        total = s.flagged.attrs.get("total", len(s.flagged))
        flagged = (f"<p class=note>Evaluations the checker did not class ok: {total}"
                   + (f" ({len(s.flagged)} shown)" if total > len(s.flagged) else "") + ".</p>" + _table(shown, cells))
    head = f'<h3 id="scenario-{_e(s.name)}">{_e(s.name)}'
    if verdict:
        status = str(verdict["outcome"] or "unknown")
        head += f" {_pill(status, _OUTCOME_CSS.get(status, 'INCONCLUSIVE'))}"
    head += "</h3>" + (f"<p class=note>{_e(verdict['detail'])}</p>" if verdict and verdict["detail"] else "")
    return head + _scenario_facts(result) + _figure(chart) + windows + flagged


def _chaos(f: Frames) -> str:
    if not f.has_chaos:
        return ""
    verdicts = {r["scenario"]: r for r in f.chaos_scenarios.to_dict("records")}
    counts = f.chaos_scenarios["outcome"].fillna("unknown").value_counts()
    summary = ", ".join(f"{n} {v}" for v, n in counts.items())
    results = {s.name: s.result for s in f.data.scenarios}
    parts = [_scenario(s, verdicts.get(s.name), results.get(s.name)) for s in f.scenarios]
    return ('<section id="chaos"><h2>Chaos</h2>'
            + f"<p><b>{len(f.chaos_scenarios)} scenario(s)</b>: {_e(summary)}.</p>" + _chaos_table(f)
            + "<p class=note>Classes per evaluation and path (the checker's): ok; recovered (an unknown submission "
              "that ran); lost, duplicated, stuck, wrong, unexpected, misrouted, error and unknown are bounded by "
              "each scenario's [expect]. Outcomes: held; finding (legacy's weaknesses, or a bound the scenario "
              "reports); known-failure (a known Celery defect: never held); failed; error (the run could not be "
              "carried out: nothing is known).</p>"
            + "".join(parts) + "</section>")


# -- run details -------------------------------------------------------------------------------------------


def _run(f: Frames) -> str:
    run = f.data.run
    if not run:
        return ""
    facts = [(k, run.get(k)) for k in ("run_id", "started_at", "launcher", "seed", "git_revision") if run.get(k) is not None]
    out = ['<section id="run"><h2>Run</h2>', _table(("", ""), [(_e(k), _e(v)) for k, v in facts])]
    if isinstance(run.get("versions"), Mapping):
        out.append("<details><summary>versions</summary>"
                   + _table(("package", "version"), [(_e(k), _e(v)) for k, v in run["versions"].items()]) + "</details>")
    if isinstance(run.get("config"), Mapping):
        out.append("<details><summary>stack configuration</summary>" + _table(
            ("option", "value"), [(_e(k), _e(json.dumps(v, default=str))) for k, v in run["config"].items()])
            + "</details>")
    out.append("</section>")
    return "".join(out)


# -- the page ----------------------------------------------------------------------------------------------


def render_html(f: Frames) -> str:
    """The whole report as one HTML document (pure: no I/O)."""
    evidence = [("parity", "Parity", _parity(f)), ("latency", "Latency", _latency(f)),
                ("throughput", "Throughput", _throughput(f)), ("chaos", "Chaos", _chaos(f)), ("run", "Run", _run(f))]
    shown = {key for key, _, body in evidence if body}
    sections = [("verdict", "Verdict", _verdict(f, shown)), *evidence]
    present = [(key, title, body) for key, title, body in sections if body]
    nav = "<nav>" + "".join(f'<a href="#{key}">{title}</a>' for key, title, _ in present) + "</nav>" if present else ""
    problems = ""
    if f.data.problems:
        problems = ('<div class="problems"><b>Parts of this run folder could not be read</b> (their sections are '
                    "missing):<ul>" + "".join(f"<li>{_e(p)}</li>" for p in f.data.problems) + "</ul></div>")
    empty = "" if present else "<p>This run folder holds no evidence yet: no parity, load, chaos or gate data.</p>"
    run = f.data.run or {}
    meta = " · ".join(_e(x) for x in (run.get("started_at"), run.get("launcher") and f"launcher {run['launcher']}",
                                      run.get("seed") is not None and f"seed {run.get('seed')}",
                                      run.get("git_revision") and f"git {run['git_revision']}") if x)
    return ("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>Report {_e(f.data.run_id)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>Queue-migration report: {_e(f.data.run_id)}</h1><p class=meta>{meta}</p>{nav}</header>"
            + problems + empty + "".join(body for _, _, body in present)
            + f"<footer><p class=note>Rebuilt from the stored data with <code>harness report {_e(f.data.path)}</code>."
              " Legacy is the control, celery the candidate.</p></footer></body></html>\n")
