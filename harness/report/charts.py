"""Charts for the report: matplotlib (an Agg canvas, no pyplot state) drawn to self-contained SVG.

Each function takes frames from ``harness.report.frames`` and returns a ``Chart`` (the SVG text and
an alt text that states what the chart shows in numbers), or None when there is nothing to draw:
the report shows no chart rather than an empty one. Text is converted to paths, so the SVG needs no
font; heavy scatter layers are rasterised inside the SVG to keep it small.

Colours mean the same everywhere: legacy (control) is blue, celery (candidate) is orange (the
Okabe–Ito palette, readable with colour-blindness); PASS / FAIL / INCONCLUSIVE are green / red / amber.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from harness.report.frames import fmt_ms

PATH_COLOURS = {"legacy": "#0072B2", "celery": "#E69F00", "dual": "#7B5EA7", "both": "#7B5EA7"}
OTHER_COLOURS = ("#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#999999")
CLASS_COLOURS = {"matched": "#1a7f37", "mismatched": "#cf222e", "ignored": "#8c959f", "noise": "#8250df",
                 "wrong": "#a40e26"}
FAULT_COLOUR = "#cf222e"
PATH_LABELS = {"legacy": "legacy (control)", "celery": "celery (candidate)", "dual": "dual-write",
               "both": "both (dual-write)"}
_STYLE: dict[Any, Any] = {
    "font.size": 11, "axes.titlesize": 13, "axes.titleweight": "bold", "axes.labelsize": 11,
    "xtick.labelsize": 10, "ytick.labelsize": 10, "legend.fontsize": 10, "axes.spines.top": False,
    "axes.spines.right": False, "axes.grid": True, "grid.color": "#d0d7de", "grid.linewidth": 0.6,
    "svg.fonttype": "path", "svg.hashsalt": "crucible-report",
}


def path_colour(path: str) -> str:
    """The colour of ``path`` in every chart (stable for paths other than legacy / celery / dual too)."""
    if path in PATH_COLOURS:
        return PATH_COLOURS[path]
    return OTHER_COLOURS[sum(map(ord, path)) % len(OTHER_COLOURS)]


def path_label(path: str) -> str:
    return PATH_LABELS.get(path, path)


@dataclass(frozen=True)
class Chart:
    svg: str
    alt: str

    def data_uri(self) -> str:
        return "data:image/svg+xml;base64," + base64.b64encode(self.svg.encode()).decode()


@contextmanager
def _figure(width: float, height: float, nrows: int = 1, ncols: int = 1) -> Iterator[tuple[Figure, list[Axes]]]:
    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(width, height), layout="constrained")
        FigureCanvasAgg(fig)  # Agg, never pyplot: no window, no global figure state, safe in threads
        axes = fig.subplots(nrows, ncols, squeeze=False)
        yield fig, [ax for row in axes for ax in row]


def _svg(fig: Figure) -> str:
    with matplotlib.rc_context(_STYLE):
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


# -- parity ------------------------------------------------------------------------------------------


def parity_classes_chart(classes: pd.DataFrame) -> Chart | None:
    """Horizontal bars: programs per parity class, labelled with the count and the share (None for a
    single class: the table says it all)."""
    if len(classes) < 2:
        return None
    rows = classes.iloc[::-1]
    with _figure(9, 0.45 * len(rows) + 1.2) as (fig, (ax,)):
        bars = ax.barh(rows["cls"], rows["programs"], height=0.6,
                       color=[CLASS_COLOURS.get(c, "#8c959f") for c in rows["cls"]])
        for bar, n, share in zip(bars, rows["programs"], rows["share"], strict=True):
            ax.annotate(f" {n} ({100 * share:.0f} %)", (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                        va="center", fontsize=11)
        ax.set_xlim(0, rows["programs"].max() * 1.25)
        ax.set_xlabel("programs")
        ax.set_title("Parity classes", loc="left")
        ax.grid(axis="y", visible=False)
        svg = _svg(fig)
    alt = "Parity classes: " + ", ".join(f"{c} {n}" for c, n in zip(classes["cls"], classes["programs"], strict=True))
    return Chart(svg, alt)


def parity_fields_chart(fields: pd.DataFrame) -> Chart | None:
    """Per compared field: programs where the paths differ, where celery is wrong, where legacy is wrong."""
    if fields.empty:
        return None
    series = [("differing", "paths differ", "#57606a"), ("candidate_wrong", "celery wrong (oracle)", path_colour("celery")),
              ("control_wrong", "legacy wrong (oracle)", path_colour("legacy"))]
    series = [s for s in series if fields[s[0]].sum() > 0]
    y = np.arange(len(fields))[::-1]
    height = 0.7 / len(series)
    with _figure(9, 0.4 * len(fields) * len(series) + 1.4) as (fig, (ax,)):
        for i, (column, label, colour) in enumerate(series):
            pos = y + (len(series) - 1 - 2 * i) * height / 2
            bars = ax.barh(pos, fields[column], height=height, color=colour, label=label)
            for bar, n in zip(bars, fields[column], strict=True):
                if n:
                    ax.annotate(f" {n}", (bar.get_width(), bar.get_y() + bar.get_height() / 2), va="center")
        ax.set_yticks(y, fields["field"])
        ax.set_xlim(0, fields[[s[0] for s in series]].to_numpy().max() * 1.2)
        ax.set_xlabel("programs")
        ax.set_title("Mismatches by field (after normalisers)", loc="left")
        ax.grid(axis="y", visible=False)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        svg = _svg(fig)
    alt = "Mismatches by field: " + "; ".join(
        f"{r['field']} " + ", ".join(f"{label} {r[c]}" for c, label, _ in series) for r in fields.to_dict("records"))
    return Chart(svg, alt)


# -- latency and throughput ----------------------------------------------------------------------------


LATENCY_TITLES = {
    ("load", "end-to-end"): "End-to-end latency per path (load run: submission to terminal result)",
    ("load", "submit"): "Submission latency (POST /api/eval, by the path the gateway chose)",
    ("parity", "execution"): "Execution time per path (parity programs: the executors' duration_ms)",
}


def latency_title(source: str, measure: str) -> str:
    return LATENCY_TITLES.get((source, measure), f"{measure} latency per path ({source})")


def latency_chart(samples: pd.DataFrame, table: pd.DataFrame, source: str, measure: str) -> Chart | None:
    """CDF per path of one measure's latencies, p50 / p95 / p99 marked on each curve and given in the
    legend; a log scale when the latencies span more than 30x."""
    part = samples[(samples["source"] == source) & (samples["measure"] == measure)]
    rows = table[(table["source"] == source) & (table["measure"] == measure)].to_dict("records")
    if part.empty or not rows:
        return None
    values = part["latency_ms"].astype("float64")
    positive = values[values > 0]
    log = len(positive) > 1 and positive.max() / positive.min() > 30
    alt: list[str] = []
    with _figure(11, 4.6) as (fig, (ax,)):
        for row in rows:
            path = str(row["path"])
            xs = np.sort(part.loc[part["path"] == path, "latency_ms"].astype("float64").to_numpy())
            xs = xs[xs > 0] if log else xs
            if not len(xs):
                continue
            colour = path_colour(path)
            label = (f"{path_label(path)}: n={row['n']}, p50 {fmt_ms(row['p50'])} · p95 {fmt_ms(row['p95'])} · "
                     f"p99 {fmt_ms(row['p99'])} ms")
            ax.step(np.r_[xs[0], xs], np.r_[0, np.arange(1, len(xs) + 1) / len(xs)], where="post", color=colour,
                    linewidth=2.2, label=label)
            ax.plot([row["p50"], row["p95"], row["p99"]], [0.5, 0.95, 0.99], linestyle="none", marker="o",
                    markersize=7, color=colour, markeredgecolor="white", markeredgewidth=1.2)
            alt.append(f"{path} n {row['n']}, p50 {fmt_ms(row['p50'])} ms, p95 {fmt_ms(row['p95'])} ms, "
                       f"p99 {fmt_ms(row['p99'])} ms")
        for q in (0.5, 0.95, 0.99):
            ax.axhline(q, color="#8c959f", linewidth=0.8, linestyle=":")
            ax.annotate(f"p{round(q * 100)}", (1.0, q), xycoords=("axes fraction", "data"), xytext=(4, 0),
                        textcoords="offset points", va="center", fontsize=10, color="#57606a")
        if log:
            ax.set_xscale("log")
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("latency (ms" + (", log scale)" if log else ")"))
        ax.set_ylabel("share at or below")
        ax.set_title("cumulative distribution per path (dots: p50, p95, p99)", loc="left", fontsize=11,
                     fontweight="normal")
        ax.legend(loc="lower right", frameon=True)
        svg = _svg(fig)
    return Chart(svg, f"{latency_title(source, measure)}, cumulative distribution: " + "; ".join(alt))


def throughput_chart(tp: pd.DataFrame) -> Chart | None:
    """Completed evaluations per second per path (failures dashed in the same colour) and, in grey,
    submissions per second over all paths."""
    if tp.empty:
        return None
    seconds = np.arange(int(tp["second"].min()), int(tp["second"].max()) + 1)
    marker = "o" if len(seconds) < 40 else None
    alt = []
    with _figure(11, 4.2) as (fig, (ax,)):
        done = tp[tp["kind"] == "completed"]
        for path in ordered_paths(done["path"]):
            part = done[done["path"] == path].groupby("second")[["requests", "failures"]].sum()
            part = part.reindex(seconds, fill_value=0)
            colour = path_colour(path)
            ax.plot(seconds, part["requests"], color=colour, linewidth=2.2, marker=marker, markersize=4,
                    label=f"{path_label(path)} completed ({int(part['requests'].sum())})")
            if part["failures"].sum():
                ax.plot(seconds, part["failures"], color=colour, linewidth=1.6, linestyle="--",
                        label=f"{path_label(path)} failed ({int(part['failures'].sum())})")
            alt.append(f"{path} {int(part['requests'].sum())} completed ({int(part['failures'].sum())} failed), "
                       f"peak {int(part['requests'].max())}/s")
        sub = tp[tp["kind"] == "submitted"].groupby("second")["requests"].sum().reindex(seconds, fill_value=0)
        if sub.sum():
            ax.plot(seconds, sub, color="#6e7781", linewidth=1.4, linestyle="-.",
                    label=f"submitted, all paths ({int(sub.sum())})")
            alt.append(f"{int(sub.sum())} submitted")
        ax.set_xlabel("seconds since the first request")
        ax.set_ylabel("per second")
        ax.set_ylim(bottom=0)
        ax.set_xlim(seconds[0], max(seconds[-1], seconds[0] + 1))
        ax.set_title("Throughput over time", loc="left")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        svg = _svg(fig)
    return Chart(svg, f"Throughput over {len(seconds)} s: " + "; ".join(alt))


def ordered_paths(paths: pd.Series) -> list[str]:
    seen = [str(p) for p in dict.fromkeys(paths)]
    return [p for p in PATH_COLOURS if p in seen] + sorted(p for p in seen if p not in PATH_COLOURS)


# -- chaos -----------------------------------------------------------------------------------------------


_OUTCOME_MARKERS = {"ok": "o", "fail": "X", "info": "^", "open": "v"}
_OUTCOME_WORDS = {"fail": "submit failed", "info": "submit unknown (info)", "open": "submit never answered"}


def _shade(ax: Axes, windows: pd.DataFrame, end: float, *, labels: bool) -> None:
    for i, w in enumerate(windows.to_dict("records")):
        stop = w["stop"] if not math.isnan(w["stop"]) else end
        ax.axvspan(w["start"], stop, color=FAULT_COLOUR, alpha=0.13, linewidth=0, zorder=0)
        ax.axvline(w["start"], color=FAULT_COLOUR, linewidth=1, zorder=1)
        if labels:
            text = w["fault"] + ("" if not math.isnan(w["stop"]) else " (not healed)")
            ax.annotate(text, (w["start"], 1.0), xycoords=("data", "axes fraction"), xytext=(4, 4 + 13 * (i % 3)),
                        textcoords="offset points", va="bottom", fontsize=10, color=FAULT_COLOUR, fontweight="bold")


def _log_scale(values: pd.Series) -> bool:
    positive = values[values > 0]
    return len(positive) > 1 and positive.max() / positive.min() > 30


def timeline_chart(name: str, ops: pd.DataFrame, windows: pd.DataFrame,
                   executions: pd.DataFrame | None = None) -> Chart | None:
    """One scenario over time, fault windows shaded and named. Top: every client operation at its
    invoke time and how long the gateway took to answer (colour: path; shape: outcome; probes as
    diamonds; evaluations the checker flagged ringed in red). Bottom, when the ledger could be
    aligned: every execution at its start and its duration (repeats of an evaluation as squares)."""
    if ops.empty:
        return None
    execs = executions if executions is not None and not executions.empty else None
    ends = [ops["time"].max(), windows["start"].max() if not windows.empty else 0,
            windows["stop"].max() if not windows.empty else 0, execs["time"].max() if execs is not None else 0]
    end = float(np.nanmax(ends))
    with _figure(11, 7.4 if execs is not None else 4.6, nrows=2 if execs is not None else 1) as (fig, axes):
        ax = axes[0]
        handles: list[Line2D | Patch] = []
        _shade(ax, windows, end, labels=True)
        if not windows.empty:
            handles.append(Patch(color=FAULT_COLOUR, alpha=0.3, label="fault (inject → heal)"))
        durations = ops["duration_ms"].astype("float64").clip(lower=0.1)
        paths = ordered_paths(pd.concat([ops["path"], execs["path"] if execs is not None else ops["path"][:0]]))
        for path in paths:
            colour = path_colour(path)
            handles.append(Line2D([], [], color=colour, marker="o", linestyle="none", markersize=8,
                                  label=path_label(path)))
            mine = ops["path"] == path
            for outcome, marker in _OUTCOME_MARKERS.items():
                part = ops[mine & (ops["outcome"] == outcome) & (ops["f"] != "probe")]
                if len(part):
                    ax.scatter(part["time"], durations[part.index], s=26 if outcome == "ok" else 60, marker=marker,
                               color=colour, alpha=0.8 if outcome == "ok" else 1.0, linewidths=0, zorder=3,
                               rasterized=len(part) > 400)
            probes = ops[mine & (ops["f"] == "probe")]
            if len(probes):
                ax.scatter(probes["time"], durations[probes.index], s=55, marker="D", color=colour,
                           edgecolors="#1f2328", linewidths=1, zorder=4)
        if (ops["f"] == "probe").any():
            handles.append(Line2D([], [], color="#8c959f", marker="D", markeredgecolor="#1f2328", linestyle="none",
                                  label="steady-state probe"))
        for outcome, marker in _OUTCOME_MARKERS.items():
            if outcome != "ok" and (ops["outcome"] == outcome).any():
                handles.append(Line2D([], [], color="#57606a", marker=marker, linestyle="none", markersize=8,
                                      label=_OUTCOME_WORDS[outcome]))
        flagged = ops[ops["cls"].notna()] if "cls" in ops.columns else ops[:0]
        if len(flagged):
            ax.scatter(flagged["time"], durations[flagged.index], s=170, facecolors="none", edgecolors=FAULT_COLOUR,
                       linewidths=1.8, zorder=5)
            kinds = ", ".join(f"{c} {n}" for c, n in flagged["cls"].value_counts().items())
            handles.append(Line2D([], [], color=FAULT_COLOUR, marker="o", markerfacecolor="none", linestyle="none",
                                  markersize=11, markeredgewidth=1.8, label=f"checker: {kinds}"))
        if _log_scale(durations):
            ax.set_yscale("log")
        ax.set_ylabel("gateway answer (ms)")
        ax.set_title("submissions: time for the gateway to answer", loc="left",
                     pad=24 + 13 * min(len(windows) - 1, 2) if len(windows) else 6)
        if execs is not None:
            ex_ax = axes[1]
            _shade(ex_ax, windows, end, labels=False)
            ex_durations = execs["duration_ms"].astype("float64").clip(lower=0.1)
            for path in paths:
                for repeat in (False, True):
                    part = execs[(execs["path"] == path) & (execs["repeat"] == repeat)]
                    if len(part):
                        ex_ax.scatter(part["time"], ex_durations[part.index], s=70 if repeat else 26,
                                      marker="s" if repeat else "o", color=path_colour(path), alpha=1 if repeat else 0.8,
                                      edgecolors="#1f2328" if repeat else "none", linewidths=1, zorder=3,
                                      rasterized=len(part) > 400)
            if execs["repeat"].any():
                handles.append(Line2D([], [], color="#8c959f", marker="s", markeredgecolor="#1f2328", linestyle="none",
                                      markersize=8, label=f"repeated execution ({int(execs['repeat'].sum())})"))
            if _log_scale(ex_durations):
                ex_ax.set_yscale("log")
            ex_ax.set_ylabel("execution (ms)")
            ex_ax.set_title("executions (the executors' ledger): start and duration", loc="left")
            ex_ax.sharex(ax)
        start = float(np.nanmin([ops["time"].min(), windows["start"].min() if not windows.empty else np.nan,
                                 execs["time"].min() if execs is not None else np.nan]))
        margin = max(0.02 * (end - start), 0.2)
        for a in axes:
            a.set_xlim(start - margin, end + margin)
        axes[-1].set_xlabel("seconds since the history started")
        fig.legend(handles=handles, loc="outside right upper", frameon=False)
        svg = _svg(fig)
    counts = ops.groupby(["path", "outcome"]).size()
    alt = (f"Timeline of {name}: submissions " + ", ".join(f"{p} {o} {n}" for (p, o), n in counts.items())
           + (f"; {len(execs)} executions, {int(execs['repeat'].sum())} repeated" if execs is not None else "")
           + "; faults: " + (", ".join(f"{w['fault']} {w['start']:.1f}-{w['stop']:.1f} s"
                                       for w in windows.to_dict("records")) or "none"))
    return Chart(svg, alt)
