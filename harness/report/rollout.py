"""``rollout.html`` and ``rollout.md``: one page for a whole ``harness rollout --plan ...``.

The rollout writes ``rollout.json`` (the plan's steps, one entry per move the gate judged, the exit
code and the step it ended at); each move's evidence lives in its own run folder. This module reads
that document and the run folders (``load_requests.parquet`` and ``verdict.json``, both optional) and
writes two files:

- the outcome first: how far the rollout got and what its exit code means, then one row per move
  (from → to, kind, verdict, the action taken, time taken, a link to the move's own report);
- the rollout timeline: ONE chart on one time axis (seconds since the rollout started). Top panel:
  completed evaluations per path per 5 s bucket, from every move's load requests. Bottom panel: the
  configured Celery share as a step line, the observed share (the gate's split criterion) as dots
  with their confidence interval, phases shaded, each move's start marked by a dashed line named
  after the step it leaves, and each move's verdict as a coloured diamond at its end;
- the same table and a paragraph of the timeline's numbers in Markdown.

Missing data never raises: a move without a run folder or load requests says "no load evidence" and
leaves its window of the chart empty; a rollout without moves gets a page that says so.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from harness.report import _write
from harness.report._common import _seconds, _strings
from harness.report.charts import Chart, _figure, _svg, ordered_paths, path_colour, path_label
from harness.report.html import CSS, _e, _pill, _table

OUTPUTS = ("rollout.html", "rollout.md")
BUCKET_S = 5.0  # completions are counted per this many seconds
VERDICT_COLOURS = {"PASS": "#1a7f37", "FAIL": "#cf222e", "INCONCLUSIVE": "#9a6700"}  # html.CSS's --pass etc.
PHASE_COLOURS = {1: "#ddf4ff", 2: "#f3e8ff", 3: "#eaeef2"}
PHASE_LABELS = {1: "phase 1: split legacy / Celery", 2: "phase 2: Celery primary, legacy fallback",
                3: "phase 3: legacy decommissioned"}
EXIT_MEANINGS = {0: "every step passed", 1: "a gate said FAIL", 2: "a gate was INCONCLUSIVE"}
EXIT_STATUS = {0: "PASS", 1: "FAIL", 2: "INCONCLUSIVE"}
NO_EVIDENCE = "no load evidence"

_EXTRA_CSS = """
.outcome { font-size: 17px; } table.moves td { vertical-align: middle; } table.moves .note { font-size: 13px; }
table.moves td.num { white-space: nowrap; }
figure.chart svg { width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px; }
.plan .reached { font-weight: 700; text-decoration: underline; }
"""


# -- reading -------------------------------------------------------------------------------------------------


@dataclass
class _Move:
    """One move of the rollout with what its run folder holds (every part optional)."""

    index: int
    frm: str
    to: str
    kind: str
    verdict: str
    headline: str
    action: str
    started: float | None  # seconds since the rollout started
    finished: float | None
    run: Path | None
    configured: float | None  # Celery share (%) during the move: its ``from`` step's percentage
    phase: int
    observed: float | None = None  # observed share (%), the split criterion's estimate
    observed_bounds: tuple[float, float] | None = None
    completions: pd.DataFrame | None = None  # E2E rows: ``t`` (s since the rollout started), ``path``
    problem: str | None = None  # why there is no load evidence
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.frm} → {self.to}"

    @property
    def duration(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return max(self.finished - self.started, 0.0)

    @property
    def evidence(self) -> bool:
        return self.completions is not None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _steps(doc: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    steps = doc.get("steps") or []
    return {str(s.get("text")): s for s in steps if isinstance(s, Mapping)}


def _percentage(steps: Mapping[str, Mapping[str, Any]], text: str) -> float | None:
    if text in steps:
        return _number(steps[text].get("percentage"))
    if text.startswith("decommission"):
        return 100.0
    return _number(text.split("@")[-1].split(":")[0])


def _phase(steps: Mapping[str, Mapping[str, Any]], text: str) -> int:
    phase = _number(steps[text].get("phase")) if text in steps else None
    if phase is None:
        phase = 3 if text.startswith("decommission") else 2 if text.startswith("phase2") else 1
    return int(phase) if int(phase) in PHASE_LABELS else 1


def _read_verdict(run: Path) -> Mapping[str, Any] | None:
    try:
        doc = json.loads((run / "verdict.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, Mapping) else None


def _split_share(verdict: Mapping[str, Any] | None) -> tuple[float | None, tuple[float, float] | None]:
    """The observed Celery share (%) and its interval from the gate's split criterion, if it has them."""
    for c in (verdict or {}).get("criteria") or []:
        if not isinstance(c, Mapping) or "split" not in str(c.get("name", "")):
            continue
        raw = c.get("values")
        values: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        observed = _number(values.get("observed"))
        if observed is None:
            return None, None
        lower, upper = _number(values.get("lower")), _number(values.get("upper"))
        bounds = (100 * lower, 100 * upper) if lower is not None and upper is not None else None
        return 100 * observed, bounds
    return None, None


def _completions(run: Path, origin: float) -> tuple[pd.DataFrame | None, str | None]:
    """The move's completed evaluations (E2E rows, by the time they ended), or why there are none."""
    path = run / "load_requests.parquet"
    if not path.is_file():
        return None, "no load_requests.parquet"
    try:
        rows = pd.read_parquet(path)
    except Exception as exc:  # a damaged file must not stop the report
        return None, f"load_requests.parquet unreadable: {type(exc).__name__}"
    if rows.empty or not ({"time", "end_time"} & set(rows.columns)):
        return None, "load_requests.parquet holds no requests"
    if "request_type" in rows.columns:
        rows = rows[_strings(rows, "request_type", "") == "E2E"]
    if rows.empty:
        return None, "no completed evaluations (E2E rows)"
    when = _seconds(rows["end_time"] if "end_time" in rows.columns else rows["time"])
    name = _strings(rows, "name", "requests")
    path_col = _strings(rows, "path", "unrouted")
    paths = name.where(name != "requests", path_col)
    frame = pd.DataFrame({"t": when - origin, "path": paths}).dropna(subset=["t"]).reset_index(drop=True)
    if frame.empty:
        return None, "no completed evaluations with an end time"
    return frame, None


def _moves(doc: Mapping[str, Any], origin: float) -> list[_Move]:
    steps = _steps(doc)
    out = []
    for i, m in enumerate(m for m in doc.get("moves") or [] if isinstance(m, Mapping)):
        frm, to = str(m.get("from", "?")), str(m.get("to", "?"))
        run = Path(str(m["run"])) if m.get("run") else None
        started, finished = _number(m.get("started_at")), _number(m.get("finished_at"))
        verdict_doc = _read_verdict(run) if run is not None and run.is_dir() else None
        verdict = str(m.get("verdict") or (verdict_doc or {}).get("verdict") or "unknown")
        headline = str(m.get("headline") or (verdict_doc or {}).get("headline") or "")
        move = _Move(i + 1, frm, to, str(m.get("kind") or "split"), verdict, headline, str(m.get("action") or ""),
                     None if started is None else started - origin, None if finished is None else finished - origin,
                     run, _percentage(steps, frm), _phase(steps, frm))
        move.observed, move.observed_bounds = _split_share(verdict_doc)
        if run is None:
            move.problem = "no run folder recorded"
        elif not run.is_dir():
            move.problem = "run folder missing"
        else:
            move.completions, move.problem = _completions(run, origin)
        if move.completions is not None:
            move.counts = {p: int(n) for p, n in move.completions["path"].value_counts().items()}
            move.counts = {p: move.counts[p] for p in ordered_paths(move.completions["path"])}
        out.append(move)
    return out


def _origin(doc: Mapping[str, Any]) -> float:
    start = _number(doc.get("started_at"))
    if start is not None:
        return start
    starts = [s for m in doc.get("moves") or [] if isinstance(m, Mapping) if (s := _number(m.get("started_at")))]
    return min(starts) if starts else 0.0


# -- text helpers --------------------------------------------------------------------------------------------


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} %".replace(".0 %", " %")


def _exit_code(doc: Mapping[str, Any]) -> int | None:
    code = _number(doc.get("exit_code"))
    return None if code is None else int(code)


def _outcome(doc: Mapping[str, Any], moves: Sequence[_Move]) -> str:
    code = _exit_code(doc)
    final = doc.get("final_step")
    plan = [str(s.get("text")) for s in doc.get("steps") or [] if isinstance(s, Mapping)]
    where = f"the rollout ended at step {final}" if final is not None else "the rollout's final step is not recorded"
    if final is not None and plan:
        where += f" (step {plan.index(str(final)) + 1} of {len(plan)})" if str(final) in plan else ""
    meaning = EXIT_MEANINGS.get(code, "unknown") if code is not None else "not recorded"
    passed = sum(m.verdict == "PASS" for m in moves)
    return f"{where}; exit code {'–' if code is None else code}: {meaning} ({passed} of {len(moves)} moves passed)"


def _relative_link(target: Path, folder: Path) -> str:
    try:
        return Path(os.path.relpath(target, folder)).as_posix()
    except ValueError:  # another drive
        return target.resolve().as_uri()


def _report_target(move: _Move) -> Path | None:
    if move.run is None or not move.run.is_dir():
        return None
    report = move.run / "report.html"
    return report if report.is_file() else move.run


def _counts_text(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{path_label(p)} {n}" for p, n in counts.items()) or "none"


def _totals(moves: Sequence[_Move]) -> dict[str, int]:
    frames = [m.completions for m in moves if m.completions is not None]
    if not frames:
        return {}
    paths = pd.concat([f["path"] for f in frames], ignore_index=True)
    counts = paths.value_counts()
    return {p: int(counts[p]) for p in ordered_paths(paths)}


# -- the chart -----------------------------------------------------------------------------------------------


def _buckets(moves: Sequence[_Move]) -> pd.DataFrame | None:
    """Completions per path per bucket: the bucket's start (s) as index, one column per path; buckets
    outside every window with evidence are NaN, so lines break between moves instead of drawing zeros."""
    frames = [m.completions for m in moves if m.completions is not None]
    if not frames:
        return None
    rows = pd.concat(frames, ignore_index=True)
    rows["bucket"] = np.floor(rows["t"] / BUCKET_S).astype("int64")
    counts = rows.groupby(["bucket", "path"]).size().unstack("path", fill_value=0)
    covered: set[int] = set(counts.index)
    for m in moves:
        if m.completions is not None and m.started is not None and m.finished is not None:
            covered.update(range(math.floor(m.started / BUCKET_S), math.floor(m.finished / BUCKET_S) + 1))
    full = range(min(covered), max(covered) + 1)
    counts = counts.reindex(full).astype("float64")
    inside = counts.index.isin(sorted(covered))
    counts.loc[inside] = counts.loc[inside].fillna(0)
    counts.index = counts.index.astype("float64") * BUCKET_S
    return counts[ordered_paths(pd.Series(list(counts.columns)))]


def _share_line(moves: Sequence[_Move], final_pct: float | None, end: float) -> tuple[list[float], list[float]]:
    """The configured share as a steps-post line: each move's ``from`` percentage from its start to the
    next move's start; after the last move, the final step's percentage until the rollout ended."""
    timed = [m for m in moves if m.started is not None and m.configured is not None]
    xs: list[float] = []
    ys: list[float] = []
    for m in timed:
        assert m.started is not None and m.configured is not None
        xs.append(m.started)
        ys.append(m.configured)
    if not timed:
        return xs, ys
    last = timed[-1]
    stop = last.finished if last.finished is not None else last.started
    assert stop is not None and last.configured is not None
    xs.append(stop)
    ys.append(last.configured)
    if final_pct is not None and end > stop:
        xs.append(stop)
        ys.append(final_pct)
        xs.append(end)
        ys.append(final_pct)
    return xs, ys


def _timeline_chart(moves: Sequence[_Move], end: float, final_pct: float | None, final_phase: int | None) -> Chart | None:
    """The whole rollout on one time axis (None without a single timed move)."""
    timed = [m for m in moves if m.started is not None]
    if not timed:
        return None
    buckets = _buckets(moves)
    finishes = [m.finished for m in timed if m.finished is not None]
    right = max([end, *finishes, *(m.started for m in timed if m.started is not None)])
    left = min(0.0, *(m.started for m in timed if m.started is not None))
    handles: list[Line2D | Patch] = []
    with _figure(11, 6.8, nrows=2) as (fig, (top, bottom)):
        gridspec = top.get_gridspec()
        if gridspec is not None:
            gridspec.set_height_ratios([3, 2])
        bottom.sharex(top)
        # phases in the background: each move's window (to the next move's start) in its ``from`` phase
        spans = []
        for i, m in enumerate(timed):
            assert m.started is not None
            nxt = timed[i + 1].started if i + 1 < len(timed) else (m.finished if m.finished is not None else right)
            spans.append((m.started, nxt if nxt is not None else right, m.phase))
        tail = spans[-1][1] if spans else left
        if final_phase is not None and right > tail:
            spans.append((tail, right, final_phase))
        for ax in (top, bottom):
            for a, b, phase in spans:
                ax.axvspan(a, b, color=PHASE_COLOURS[phase], alpha=0.7, linewidth=0, zorder=0)
        for phase in sorted({p for _, _, p in spans}):
            handles.append(Patch(color=PHASE_COLOURS[phase], label=PHASE_LABELS[phase]))
        # move starts: dashed lines named after the step each move leaves
        for i, m in enumerate(timed):
            assert m.started is not None
            for ax in (top, bottom):
                ax.axvline(m.started, color="#57606a", linewidth=1, linestyle="--", zorder=1)
            top.annotate(m.frm, (m.started, 1.0), xycoords=("data", "axes fraction"), xytext=(3, 3 + 13 * (i % 2)),
                         textcoords="offset points", va="bottom", fontsize=10, color="#1f2328", fontweight="bold")
        # top: completions per path per bucket
        if buckets is not None:
            marker = "o" if len(buckets) <= 60 else None
            for path in buckets.columns:
                series = buckets[path]
                top.plot(series.index + BUCKET_S / 2, series.to_numpy(), color=path_colour(path), linewidth=2,
                         marker=marker, markersize=3.5, zorder=3)
                handles.append(Line2D([], [], color=path_colour(path), linewidth=2,
                                      label=f"{path_label(path)}: {int(np.nansum(series.to_numpy()))} completed"))
            top.set_ylim(bottom=0, top=max(float(np.nanmax(buckets.to_numpy())) * 1.12, 1.0))
        else:
            top.set_ylim(0, 1)
        for m in timed:
            if m.completions is None and m.started is not None:
                mid = m.started + (m.duration or 0) / 2
                top.annotate(NO_EVIDENCE, (mid, 0.5), xycoords=("data", "axes fraction"), ha="center", va="center",
                             fontsize=10, color="#57606a", fontstyle="italic")
        top.tick_params(labelbottom=False)
        top.set_ylabel(f"completed per {BUCKET_S:g} s")
        top.set_title("completed evaluations per path", loc="left", pad=32)
        # bottom: configured share (step line), observed share (dots), verdicts (diamonds)
        xs, ys = _share_line(timed, final_pct, right)
        if xs:
            bottom.plot(xs, ys, drawstyle="steps-post", color="#1f2328", linewidth=2, zorder=3)
            handles.append(Line2D([], [], color="#1f2328", linewidth=2, label="configured Celery share"))
        observed = [m for m in timed if m.observed is not None]
        for m in observed:
            assert m.started is not None and m.observed is not None
            mid = m.started + (m.duration or 0) / 2
            err = None
            if m.observed_bounds is not None:
                err = [[max(m.observed - m.observed_bounds[0], 0)], [max(m.observed_bounds[1] - m.observed, 0)]]
            bottom.errorbar([mid], [m.observed], yerr=err, fmt="o", color=path_colour("celery"), markersize=8,
                            markeredgecolor="#1f2328", markeredgewidth=0.8, capsize=4, elinewidth=1.4, zorder=4)
        if observed:
            handles.append(Line2D([], [], color=path_colour("celery"), marker="o", markeredgecolor="#1f2328",
                                  linestyle="none", markersize=8, label="observed share (split criterion, CI)"))
        seen: list[str] = []
        for m in timed:
            if m.finished is None:
                continue
            colour = VERDICT_COLOURS.get(m.verdict, "#6e7781")
            y = m.configured if m.configured is not None else 50.0
            bottom.plot([m.finished], [y], marker="D", markersize=10, color=colour, markeredgecolor="white",
                        markeredgewidth=1.2, linestyle="none", zorder=5)
            if m.verdict not in seen:
                seen.append(m.verdict)
        for verdict in seen:
            handles.append(Line2D([], [], color=VERDICT_COLOURS.get(verdict, "#6e7781"), marker="D",
                                  markeredgecolor="white", linestyle="none", markersize=9, label=f"gate: {verdict}"))
        bottom.set_ylim(-4, 108)
        bottom.set_yticks([0, 25, 50, 75, 100])
        bottom.set_ylabel("Celery share (%)")
        bottom.set_title("Celery share: configured (line) and observed (dots); verdict at each move's end",
                         loc="left", fontsize=11, fontweight="normal")
        margin = max(0.01 * (right - left), 0.5)
        top.set_xlim(left - margin, right + margin)
        bottom.set_xlabel("seconds since the rollout started")
        fig.legend(handles=handles, loc="outside right upper", frameon=False)
        svg = _svg(fig)
    totals = _totals(moves)
    alt = (f"Rollout timeline over {_duration(right)}: {len(moves)} moves: "
           + "; ".join(f"{m.label} ({m.kind}) {m.verdict}"
                       + (f" at {_pct(m.configured)} configured" if m.configured is not None else "")
                       + (f", observed {_pct(m.observed)}" if m.observed is not None else "")
                       + (f", {_duration(m.duration)}" if m.duration is not None else "")
                       + ("" if m.evidence else f", {NO_EVIDENCE}") for m in moves)
           + f". Completions per path: {_counts_text(totals)}.")
    return Chart(svg, alt)


# -- the two documents ---------------------------------------------------------------------------------------


def _final(doc: Mapping[str, Any]) -> tuple[float | None, int | None]:
    final = doc.get("final_step")
    if final is None:
        return None, None
    steps = _steps(doc)
    return _percentage(steps, str(final)), _phase(steps, str(final))


def _evidence_html(move: _Move, folder: Path) -> str:
    target = _report_target(move)
    link = (f'<a href="{_e(_relative_link(target, folder))}">{"report" if target.name == "report.html" else "run folder"}'
            f"</a>" if target is not None else "")
    if move.evidence:
        detail = f"{sum(move.counts.values())} completed ({_e(_counts_text(move.counts))})"
    else:
        detail = f"<b>{NO_EVIDENCE}</b> <span class=note>({_e(move.problem)})</span>"
    return (link + "<br>" if link else "") + detail


def _plan_html(doc: Mapping[str, Any]) -> str:
    texts = [str(s.get("text")) for s in doc.get("steps") or [] if isinstance(s, Mapping)]
    final = str(doc.get("final_step"))
    if not texts:
        return f"<p class=meta>plan <code>{_e(doc.get('plan', '–'))}</code></p>"
    spans = " → ".join(f'<span class="{"reached" if t == final else ""}">{_e(t)}</span>' for t in texts)
    return f'<p class="meta plan">plan: {spans}</p>'


def _inline_svg(chart: Chart) -> str:
    """The chart's SVG inline (no XML prolog), its alt text as the accessible name and a <title>."""
    svg = chart.svg[chart.svg.find("<svg"):]
    head_end = svg.find(">") + 1
    opening = svg[:head_end].replace("<svg ", f'<svg role="img" aria-label="{_e(chart.alt)}" ', 1)
    return f"<figure class=chart>{opening}<title>{_e(chart.alt)}</title>{svg[head_end:]}</figure>"


def _render_html(doc: Mapping[str, Any], moves: Sequence[_Move], folder: Path) -> str:
    origin = _origin(doc)
    code = _exit_code(doc)
    status = EXIT_STATUS.get(code, "INCONCLUSIVE") if code is not None else "unknown"
    outcome = (f'<section id="outcome" class="verdict v-{_e(status)}"><div><span class="pill big {_e(status)}">'
               f'{_e(status)}</span><span class="headline outcome">{_e(_outcome(doc, moves))}</span></div>')
    if moves:
        rows = [(str(m.index), f'<span class=nowrap>{_e(m.label)}</span>', _e(m.kind),
                 f'<span title="{_e(m.headline)}">{_pill(m.verdict, m.verdict if m.verdict in VERDICT_COLOURS else "unknown")}</span>',
                 _e(m.action) + (f"<br><span class=note>{_e(m.headline)}</span>" if m.headline else ""),
                 _e(_duration(m.duration)), _evidence_html(m, folder)) for m in moves]
        outcome += _table(("#", "move", "kind", "verdict", "action", "time taken", "evidence"), rows, numeric=(0, 5),
                          bad=[m.verdict == "FAIL" for m in moves], css="moves")
    else:
        outcome += "<p><b>This rollout has no moves</b>: the gate never judged a step, so there is nothing to show.</p>"
    outcome += "</section>"
    end = (_number(doc.get("finished_at")) or origin) - origin
    final_pct, final_phase = _final(doc)
    chart = _timeline_chart(moves, end, final_pct, final_phase) if moves else None
    timeline = ""
    if moves:
        figure = _inline_svg(chart) if chart is not None else "<p>No move has a start time: nothing to draw.</p>"
        timeline = (f'<section id="timeline"><h2>Timeline</h2>{figure}<p class=note>{_e(_timeline_text(doc, moves))}'
                    "</p></section>")
    started = _number(doc.get("started_at"))
    when = pd.Timestamp(started, unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M:%S UTC") if started is not None else ""
    meta = " · ".join(x for x in (when, f"took {_duration(end)}" if end > 0 else "") if x)
    return ("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>Rollout {_e(doc.get('plan', ''))}</title><style>{CSS}{_EXTRA_CSS}</style></head><body>"
            f"<header><h1>Rollout: {_e(doc.get('plan', ''))}</h1><p class=meta>{_e(meta)}</p>{_plan_html(doc)}"
            "</header>" + outcome + timeline
            + "<footer><p class=note>Each move's evidence and verdict are in its own run folder (linked above). "
              "Legacy is the control, celery the candidate.</p></footer></body></html>\n")


def _timeline_text(doc: Mapping[str, Any], moves: Sequence[_Move]) -> str:
    origin = _origin(doc)
    end = (_number(doc.get("finished_at")) or origin) - origin
    parts = []
    for m in moves:
        when = (f"from {m.started:.0f} s to {m.finished:.0f} s ({_duration(m.duration)})"
                if m.started is not None and m.finished is not None else "at an unrecorded time")
        share = f" with Celery configured at {_pct(m.configured)}" if m.configured is not None else ""
        observed = f", observed {_pct(m.observed)}" if m.observed is not None else ""
        load = (f"{sum(m.counts.values())} completed ({_counts_text(m.counts)})" if m.evidence
                else f"{NO_EVIDENCE} ({m.problem})")
        parts.append(f"{m.label} ({m.kind}) ran {when}{share}{observed}: {load}; the gate said {m.verdict}"
                     + (f", {m.action}" if m.action else ""))
    totals = _totals(moves)
    return (f"Over {_duration(end) if end > 0 else 'an unrecorded time'}, the rollout made {len(moves)} "
            f"move{'s' if len(moves) != 1 else ''}. " + ". ".join(parts)
            + f". In all: {_counts_text(totals)} completed evaluations"
            + f" (counted per {BUCKET_S:g} s in the chart).")


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _render_markdown(doc: Mapping[str, Any], moves: Sequence[_Move], folder: Path) -> str:
    code = _exit_code(doc)
    status = EXIT_STATUS.get(code, "INCONCLUSIVE") if code is not None else "unknown"
    out = [f"# Rollout: `{doc.get('plan', '')}`", "", f"**{status}**: {_outcome(doc, moves)}.", ""]
    if not moves:
        out += ["This rollout has no moves: the gate never judged a step, so there is nothing to show.", ""]
        return "\n".join(out)
    out += ["| # | move | kind | verdict | action | time taken | evidence |",
            "|--:|------|------|---------|--------|-----------:|----------|"]
    for m in moves:
        target = _report_target(m)
        link = f"[{'report' if target.name == 'report.html' else 'run folder'}]({_relative_link(target, folder)})" \
            if target is not None else ""
        evidence = (f"{sum(m.counts.values())} completed ({_counts_text(m.counts)})" if m.evidence
                    else f"{NO_EVIDENCE} ({m.problem})")
        verdict = f"**{m.verdict}**" if m.verdict != "PASS" else m.verdict
        out.append("| " + " | ".join(_md_cell(c) for c in (
            str(m.index), m.label, m.kind, verdict, m.action, _duration(m.duration),
            (link + " · " if link else "") + evidence)) + " |")
    out += ["", "## Timeline", "", _timeline_text(doc, moves), ""]
    headlines = [m for m in moves if m.headline]
    if headlines:
        out += ["## Gate headlines", ""] + [f"- {m.label}: {_md_cell(m.headline)}" for m in headlines] + [""]
    return "\n".join(out)


def write_rollout_report(folder: Path, doc: Mapping[str, Any]) -> dict[str, Path]:
    """Write ``rollout.html`` (self-contained) and ``rollout.md`` into ``folder`` from the rollout's
    document (what it writes as ``rollout.json``) and each move's run folder; returns
    ``{file name: path}``. Missing or unreadable evidence leaves its part out, never raises."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    moves = _moves(doc, _origin(doc))
    texts = {"rollout.html": _render_html(doc, moves, folder), "rollout.md": _render_markdown(doc, moves, folder)}
    written = {}
    for name in OUTPUTS:
        path = folder / name
        _write(path, texts[name])
        written[name] = path
    return written


__all__ = ["write_rollout_report"]
