"""What ``harness chaos explore`` shows: the terminal summary, and ``explore.md`` / ``explore.html``.

For each discovery the report puts the first failing schedule beside the shrunk one, each as a timeline
(the workload's window, each fault as a bar from its start for its duration, or a tick for a kill or a
restart), with the invariants broken, the shrink runs, the confirmation and the file written; then
every run of the search in order. Pure: it reads an ``Exploration`` and writes two files.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.chaos.explore import Discovery, Exploration, compact, fault_words

WIDTH, ROW, LEFT = 560, 22, 230  # px: timeline width, row height, label column
COLOURS = {"process": "#c0392b", "link": "#2471a3", "memory": "#7d3c98"}
FAMILY = {"kill": "process", "pause": "process", "terminate": "process", "restart": "process",
          "component-down": "process", "kill-pool-child": "process", "disable": "link", "toxic": "link",
          "memory-pressure": "memory"}


def _shrunk_heading(f: Discovery) -> str:
    """The shrunk side's title: a known failure is never shrunk (its file reproduces it), and a discovery
    found too late in the budget may not be either."""
    if f.shrink_steps:
        return f"Shrunk ({len(f.shrink_steps)} shrink run(s))"
    return "Not shrunk: a known failure, its file reproduces it" if f.known else "Not shrunk"


def _status(f: Discovery) -> str:
    if f.known:
        return f"the known failure of {f.known}, seen in example {f.example} (replay: harness chaos {f.known})"
    if f.confirmed:
        return f"confirmed (new): {f.confirmation}"
    return f"not confirmed: {f.confirmation}" if f.confirmation else "not confirmed"


def summary(report: Exploration, seed: int) -> str:
    """The lines the terminal ends with: the saved failures, each discovery, and what the search did."""
    lines = []
    still = [r for r in report.replays if r.still_fails]
    if report.replays:
        lines.append(f"saved failures: {len(still)} of {len(report.replays)} still fail")
    errors = sum(s.trial.outcome == "error" for s in report.steps)
    tail = f"; {errors} run(s) could not be carried out (error, not counted)" if errors else ""
    lines.append(f"{report.progress()} in {report.seconds:.0f} s of a {report.budget_s:g} s budget"
                 + (" (the budget ran out)" if report.out_of_time else "")
                 + (f"; stopped: {report.stopped}" if report.stopped else "") + tail
                 + (f"; {report.passed_over} drawn schedule(s) passed over (inside a region found already: nothing else was left under their knobs)"
                    if report.passed_over else ""))
    for i, f in enumerate(report.discoveries, 1):
        lines.append(f"discovery {i} [{', '.join(f.invariants)}]: {compact(f.shrunk)}")
        lines.append(f"  {_status(f)}")
        if f.written is not None:
            lines.append(f"  written: {f.written} (replay: harness chaos {f.written} --seed {seed})")
    known = sum(bool(f.known) for f in report.discoveries)
    if not report.failed:
        lines.append("FOUND NOTHING within the budget: that is no proof" if not report.discoveries else
                     "no discovery was confirmed and no known failure was seen: nothing written")
    else:
        lines.append(f"FOUND: {len(report.confirmed)} new confirmed, {known} known failure(s) seen"
                     + (f", {len(still)} saved failure(s) still fail" if still else ""))
    return "\n".join(lines)


def _timeline(schedule: Mapping[str, Any], span: float) -> str:
    """An inline SVG: the workload window and one row per fault, on a 0..span seconds axis."""
    scale = (WIDTH - LEFT - 10) / span
    rows = [("workload " + "+".join(schedule["workload"]["routes"]) + f" {schedule['workload']['program']} "
             f"{schedule['workload']['rate']:g}/s", 0.0, float(schedule["workload"]["duration_s"]), "#95a5a6")]
    rows += [(fault_words(f), float(f["at_s"]), float(f.get("duration_s", 0.0)),
              COLOURS[FAMILY.get(f["kind"], "process")]) for f in schedule["faults"]]
    height = ROW * (len(rows) + 1)
    out = [f'<svg width="{WIDTH}" height="{height}" role="img" font-size="11" font-family="sans-serif">']
    for i, (label, start, length, colour) in enumerate(rows):
        y = i * ROW + 4
        out.append(f'<text x="0" y="{y + 12}">{html.escape(label[:38])}</text>')
        x = LEFT + start * scale
        w = max(length * scale, 3.0)
        out.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{ROW - 8}" fill="{colour}">'
                   f"<title>{html.escape(label)}</title></rect>")
    axis_y = len(rows) * ROW + 4
    out.append(f'<line x1="{LEFT}" x2="{WIDTH - 10}" y1="{axis_y}" y2="{axis_y}" stroke="#555"/>')
    step = 2 if span <= 20 else 5
    for t in range(0, int(span) + 1, step):
        x = LEFT + t * scale
        out.append(f'<text x="{x:.1f}" y="{axis_y + 13}" text-anchor="middle">{t}s</text>')
    out.append("</svg>")
    return "".join(out)


def _span(*schedules: Mapping[str, Any]) -> float:
    ends = [max([float(s["workload"]["duration_s"])]
                + [float(f["at_s"]) + float(f.get("duration_s", 0.0)) for f in s["faults"]]) for s in schedules]
    return max(ends + [1.0])


def render_html(report: Exploration) -> str:
    esc = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>harness chaos explore</title><style>"
             "body{font-family:sans-serif;margin:24px;max-width:1240px}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 6px;font-size:13px;vertical-align:top}"
             ".pair{display:flex;gap:24px;flex-wrap:wrap}.pair>div{flex:1}code{font-size:12px}"
             "</style></head><body>",
             f"<h1>Generative chaos: seed {report.seed}</h1>",
             f"<p>{esc(report.space.profile.name)} profile ({esc(report.space.profile.about)}); "
             f"{report.space.max_faults} fault(s) per schedule, fewer once shrunk{esc(report.space.narrowing())}; {esc(report.progress())} in {report.seconds:.0f} s "
             f"of a {report.budget_s:g} s budget{' (the budget ran out)' if report.out_of_time else ''}.</p>"]
    if report.replays:
        parts.append("<h2>Saved failures replayed first</h2><ul>" + "".join(
            f"<li><code>{esc(r.file)}</code>: {esc(r.outcome)}</li>" for r in report.replays) + "</ul>")
    parts.append(f"<h2>Discoveries ({len(report.discoveries)})</h2>")
    if not report.discoveries:
        parts.append("<p>None within the budget. That is no proof.</p>")
    for i, f in enumerate(report.discoveries, 1):
        span = _span(f.first.schedule, f.shrunk)
        parts.append(f"<h3>Discovery {i}: {esc(', '.join(f.invariants))}</h3><p>{esc(_status(f))}"
                     + (f"; written to <code>{esc(str(f.written))}</code>" if f.written else "") + "</p>"
                     + "<div class='pair'>"
                     + f"<div><h4>First failing (example {f.example})</h4>{_timeline(f.first.schedule, span)}"
                     + f"<p><code>{esc(compact(f.first.schedule))}</code></p></div>"
                     + f"<div><h4>{esc(_shrunk_heading(f))}</h4>{_timeline(f.shrunk, span)}"
                     + f"<p><code>{esc(compact(f.shrunk))}</code></p></div></div>"
                     + (f"<p>Shrinking stopped: {esc(f.shrink_stopped)}.</p>" if f.shrink_stopped else "")
                     + "<ul>" + "".join(f"<li>{esc(v.splitlines()[0])}</li>" for v in f.first.trial.violations)
                     + "</ul>")
    parts.append("<h2>Every run</h2><table><tr><th>#</th><th>stage</th><th>schedule</th><th>outcome</th>"
                 "<th>broke</th><th>s</th><th>folder</th></tr>")
    for i, s in enumerate(report.steps, 1):
        parts.append(f"<tr><td>{i}</td><td>{s.stage}</td><td><code>{esc(s.words)}</code></td>"
                     f"<td>{esc(s.trial.outcome)}</td><td>{esc(', '.join(s.trial.invariants))}</td>"
                     f"<td>{s.trial.seconds:.0f}</td><td>{esc(Path(s.trial.folder).name)}</td></tr>")
    parts.append("</table></body></html>")
    return "\n".join(parts)


def render_md(report: Exploration, seed: int) -> str:
    lines = [f"# Generative chaos: seed {seed}", "", "```", summary(report, seed), "```", "",
             "| # | stage | schedule | outcome | broke | s |", "|---|---|---|---|---|---|"]
    lines += [f"| {i} | {s.stage} | `{s.words}` | {s.trial.outcome} | {', '.join(s.trial.invariants)} | "
              f"{s.trial.seconds:.0f} |" for i, s in enumerate(report.steps, 1)]
    return "\n".join(lines) + "\n"


def write_report(report: Exploration, folder: Path) -> Path:
    """``folder/explore.md`` and ``folder/explore.html``; returns the HTML's path."""
    (folder / "explore.md").write_text(render_md(report, report.seed))
    path = folder / "explore.html"
    path.write_text(render_html(report))
    return path
