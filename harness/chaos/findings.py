"""Evaluating a chaos run and writing what it found.

``evaluate`` runs the checker (``checker.check``) on the history, the ledger and the records with the
oracle, compares the counts with the scenario's bounds, computes recovery time (last heal → first
completion after it, per path), adds notes (faults, priorities, redelivery) and turns it all into one
findings row per path with a verdict. ``write`` puts ``history.parquet``, ``executions.parquet``,
``evaluations.parquet``, ``findings.parquet``, ``findings.md`` and ``result.json`` into the
scenario's folder; ``combine``, ``findings_table``, ``findings_markdown`` and ``write_combined`` do
the same for several scenarios.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from harness.chaos.allowances import allowances_for
from harness.chaos.checker import MEANING, Violation, check
from harness.chaos.errors import ChaosError
from harness.chaos.promises import Promised, check_promises
from harness.chaos.repeat import rates
from harness.chaos.result import FINDING_COLUMNS, ScenarioResult
from harness.chaos.transitions import check_decommission
from harness.chaos.workload import Submission
from harness.history import History, HistoryError, pairs
from harness.stack.config import StackConfig
from harness.vocabulary import OUTCOMES, PATHS, Record

MARKER = re.compile(r"chaos-[0-9a-f]{8}-\d{6}\.")


def _oracles(records: Mapping[str, Mapping[str, Any]], submissions: Iterable[Submission]) -> dict[str, Any]:
    by_marker = {s.marker: s for s in submissions}
    out = {}
    for eval_id, rec in records.items():
        found = MARKER.search(str(rec.get("code") or ""))
        if found and found.group(0) in by_marker:
            out[eval_id] = by_marker[found.group(0)].expected
    return out


def promised(config: StackConfig, effective: Mapping[str, Mapping[str, Any]],
             priority_overtake: float | None) -> Promised:
    """What the Celery workers promise: the settings they report running with, else the intended ones."""
    def running(name: str) -> Any:
        values = {v[name] for v in effective.values() if v.get(name) is not None}
        return values.pop() if len(values) == 1 else getattr(config, name)
    return Promised(int(running("max_retries")), config.retry_backoff_s, float(running("task_time_limit_s")),
                    float(running("task_soft_time_limit_s")), priority_overtake)


def config_summary(config: StackConfig, path: str) -> str:
    """The configuration that matters for a path, in a few words."""
    if path == "legacy":
        return f"{config.legacy_workers} legacy workers, no ack, no retry"
    ack = "acks_late" + ("+reject_on_worker_lost" if config.reject_on_worker_lost else "") if config.acks_late \
        else "early ack" + ("+reject_on_worker_lost" if config.reject_on_worker_lost else "")
    redis_mem = f"{config.celery_redis_policy} {config.celery_redis_maxmemory}" if config.celery_redis_maxmemory \
        else "no maxmemory"
    specs = config.celery_worker_specs()
    workers = (f"prefetch {config.prefetch_multiplier}x{config.celery_concurrency}, {len(specs)} worker(s)"
               if config.celery_topology == "single" else
               f"prefetch {config.prefetch_multiplier}x, plan topology: "
               + ", ".join(f"{'+'.join(q)} c{c}" for _, q, c in specs))
    return (f"{ack}, vt {config.visibility_timeout_s:g}s, {workers}, retries {config.max_retries}x"
            f"{config.retry_backoff_s:g}s, {redis_mem}")


def _recovery(records: Mapping[str, Mapping[str, Any]], path: str, heal_wall: float) -> float | None:
    finished = [float(r["finished_at"]) for rec in records.values()
                if (r := (rec.get("results") or {}).get(path)) and r.get("status") == "completed"
                and r.get("finished_at") and float(r["finished_at"]) > heal_wall]
    return round(min(finished) - heal_wall, 3) if finished else None


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _priority_notes(records: Mapping[str, Mapping[str, Any]], path: str) -> list[str]:
    """Queue wait (start of the last attempt minus submission) per priority, and overtaking."""
    waits: dict[int, list[tuple[float, float]]] = {}
    for rec in records.values():
        r = (rec.get("results") or {}).get(path) or {}
        if r.get("started_at") and r.get("queued_at"):
            waits.setdefault(int(rec.get("priority", 5)), []).append((float(r["queued_at"]), float(r["started_at"])))
    if len(waits) < 2:
        return []
    notes = []
    for pri in sorted(waits):
        w = [s - q for q, s in waits[pri]]
        notes.append(f"priority {pri}: {len(w)} evaluations, queue wait p50 {_percentile(w, 0.5):.2f}s, "
                     f"p95 {_percentile(w, 0.95):.2f}s")
    low, high = min(waits), max(waits)
    overtook = sum(1 for hq, hs in waits[high] if any(lq < hq and ls > hs for lq, ls in waits[low]))
    notes.append(f"{overtook} of {len(waits[high])} priority-{high} evaluations started before a priority-{low} "
                 f"evaluation submitted earlier (overtaking the backlog)")
    return notes


def _late_notes(records: Mapping[str, Mapping[str, Any]], vt: float) -> list[str]:
    """Evidence of redelivery: Celery evaluations whose last attempt began a visibility timeout or
    more after they were queued (restored by the sweep, or retried after a countdown)."""
    late = [float(r["started_at"]) - float(r["queued_at"]) for rec in records.values()
            if (r := (rec.get("results") or {}).get("celery")) and r.get("started_at") and r.get("queued_at")
            and float(r["started_at"]) - float(r["queued_at"]) >= vt]
    if not late:
        return []
    return [f"{len(late)} evaluation(s) waited the visibility timeout ({vt:g}s) or longer before their last "
            f"attempt started (queued behind the fault, restored, or retried; longest {max(late):.1f}s)"]


def missed_faults(history: History) -> tuple[list[str], list[str]]:
    """Link faults that hit nothing: no connection open when injected, none made and no byte across the
    link while it lasted (the path does not go through it). Returns (errors, notes): a fault whose
    link has no traffic counters (a real Toxiproxy) is a note, since nobody can tell."""
    errors, notes = [], []
    for op in history.ops:
        v = op.value or {}
        if not op.is_nemesis or op.f != "stop" or v.get("kind") not in ("toxic", "disable") or "traffic" not in v:
            continue
        traffic = v["traffic"]
        if traffic is None:
            notes.append(f"{v['fault']}: the fault proxy has no traffic counters, so whether it hit anything on "
                         f"{v['target']} is unknown")
        elif not traffic.get("open_at_inject") and not traffic.get("accepted") and not traffic.get("bytes"):
            errors.append(f"the fault missed: '{v['fault']}' on link {v['target']} hit nothing (no connection was "
                          "open when it was injected, none was made and no byte crossed the link while it lasted); "
                          "the path does not go through this link: check the stack's wiring or the fault's target")
    return errors, notes


def _transition_notes(history: History) -> list[str]:
    """One line per transition: what the operator did and measured (drains: how long, jobs in hand when
    the workers stopped, evaluations still unaccounted for)."""
    notes = []
    for invoke, done in pairs(history.ops):
        if invoke.f != "transition":
            continue
        name = (invoke.value or {}).get("name", "transition")
        if done is None or done.type != "ok":
            notes.append(f"{name} at {invoke.time:.1f}s: FAILED: {done.error if done else 'never completed'}")
            continue
        v = done.value or {}
        text = f"{name}: done at {done.time:.1f}s"
        if "drained_s" in v:
            text += (f"; drained in {v['drained_s']:g}s, {v.get('in_hand_at_stop', 0)} job(s) in a live worker's hand "
                     f"when {', '.join(v.get('stopped') or []) or 'nothing'} stopped"
                     + (f", in the hand of dead workers: {', '.join(v['in_hand_of_dead_workers'])}"
                        if v.get("in_hand_of_dead_workers") else "")
                     + f"; {v.get('unaccounted_count', 0)} legacy evaluation(s) not terminal after it")
        if v.get("restarted") or (v.get("stopped") and "drained_s" not in v):
            text += f"; restarted {', '.join(v.get('restarted') or []) or 'none'}, stopped {', '.join(v.get('stopped') or []) or 'none'}"
        notes.append(text)
    return notes


def _fault_notes(history: History) -> list[str]:
    notes = []
    for op in history.ops:
        if not op.is_nemesis or op.f != "stop" or not op.value:
            continue
        v = op.value
        injected = v.get("injected") or {}
        if v.get("kind") == "memory-pressure":
            other = v.get("other_evicted") or {}
            notes.append(f"{v['fault']}: {injected.get('policy')} maxmemory {injected.get('maxmemory')} B; "
                         f"{v.get('junk_written')} junk keys written, {v.get('writes_refused')} junk writes refused "
                         f"(OOM), {v.get('evicted_total')} keys evicted, of which not junk: "
                         + (", ".join(f"{k} x{n}" for k, n in sorted(other.items())) or "none")
                         + (f" ({v['evicted_unattributed']} evictions without a notification)"
                            if v.get("evicted_unattributed") else ""))
        elif v.get("kind") == "kill-pool-child":
            task = injected.get("task")
            notes.append(f"{v['fault']}: SIGKILL pool child pid {injected.get('pid')} (one of "
                         f"{injected.get('children')}), " + (f"which was running evaluation {task}" if task
                                                             else "no task known to be running on it"))
        if v.get("heal_error"):
            notes.append(f"{v['fault']}: HEAL FAILED: {v['heal_error']}")
        if injected.get("inject_error"):
            notes.append(f"{v['fault']}: INJECT FAILED: {injected['inject_error']}")
    return notes


def evaluate(result: ScenarioResult, history: History, ledger: list[dict[str, Any]],
             records: dict[str, Record], probes: set[str], submissions: list[Submission],
             base: StackConfig, wall0: float, heal_times: list[float]) -> None:
    scenario = result.scenario
    missed, unknown = missed_faults(history)
    result.errors += missed
    result.notes += unknown
    mine = {i: r for i, r in records.items() if i not in probes}
    rows = [r for r in ledger if r.get("eval_id") not in probes]
    queues = result.queues
    queued: dict[str, list[str]] = {
        "celery": [i for ids in (queues.get("celery_queued") or {}).values() for i in ids if i not in probes]
        + [i for i in queues.get("celery_unacked") or [] if i not in probes],
        "legacy": [i for i in queues.get("legacy_queued") or [] if i not in probes],
    }
    try:
        result.check = check(history.ops, rows, mine, expected=_oracles(mine, submissions), queued=queued)
    except (ChaosError, HistoryError) as exc:
        result.errors.append(f"checker: {exc}")
        return
    for p in PATHS:
        mine_ops = [(i, d) for i, d in pairs(history.ops) if i.f == "submit" and i.path in (p, None)]
        result.submits[p] = {"submitted": len(mine_ops),
                                "acked": sum(1 for _, d in mine_ops if d is not None and d.type == "ok"),
                                "failed": sum(1 for _, d in mine_ops if d is not None and d.type == "fail"),
                                "info": sum(1 for _, d in mine_ops if d is None or d.type == "info")}
    result.allowances = scenario.allowances(base)
    result.violations = result.check.violations(result.allowances)
    result.violations += [Violation(path, "liveness", 1, 0, (), (problem,)) for path, problem in result.liveness.items()]
    if scenario.transitions:
        result.violations += check_decommission(history.ops, rows, wall0)
    if "celery" in scenario.expect:
        expectation = scenario.expect["celery"]
        checked = check_promises(mine, result.events, result.queues.get("dead_letters") or [],
                                 promised(result.config, result.effective, expectation.priority_overtake),
                                 result.event_gaps)
        bounds = expectation.promise_bounds()
        result.violations += checked.violations(bounds)
        result.path_notes.setdefault("celery", []).extend(checked.notes)
        result.path_notes["celery"] += [f"reported, not gated: {p} {len(ids)} ({MEANING[p]})"
                                        for p, (ids, _) in checked.broken.items() if bounds.get(p, 0) is None]
    heal_wall = wall0 + max(heal_times) if heal_times else None
    for p in PATHS:
        result.recovery_s[p] = _recovery(mine, p, heal_wall) if heal_wall is not None else None
    if scenario.finding:
        result.notes.insert(0, " ".join(scenario.finding.split()))
    result.notes += _transition_notes(history) + _fault_notes(history)
    if queues.get("problems"):
        result.notes += [f"inspecting the queues: {p}" for p in queues["problems"]]
    for path in scenario.expect:
        result.path_notes.setdefault(path, []).extend(_path_notes(result, path))
        if not isinstance(scenario.workload.priority, int):
            result.path_notes[path] += _priority_notes(mine, path)
        if path == "celery" and scenario.faults:
            result.path_notes[path] += _late_notes(mine, result.config.visibility_timeout_s)
    result.findings = _findings(result)


def _path_notes(result: ScenarioResult, path: str) -> list[str]:
    assert result.check is not None
    scenario = result.scenario
    counts = result.check.counts[path].as_dict()
    expectation = scenario.expect[path]
    derived = allowances_for(result.config, [f.event for f in scenario.faults])  # before "report"/integers
    notes = []
    for name in ("lost", "duplicated", "stuck", "error"):
        bound = getattr(expectation, name)
        allowed = getattr(derived[path], name)
        count = counts[name]
        if bound == "report" and count:
            notes.append(f"reported, not gated: {name} {count} ({MEANING[name]})")
        if bound in ("allowance", "report") and count == 0 and (allowed is None or allowed > 0):
            shown = "unbounded" if allowed is None else f"up to {allowed}"
            notes.append(f"did not reproduce: the configuration allows {name} {shown}, measured 0")
    if path == "celery":
        dl = result.queues.get("dead_letters") or []
        if dl:
            attempts = sorted({int(e.get("attempts", 0)) for e in dl})
            notes.append(f"dead-lettered {len(dl)} (celery:dlq), after {'/'.join(map(str, attempts))} attempts")
    left = _still_queued(result, path)
    if left:
        notes.append(f"{left} message(s) still queued or unacked at the deadline")
    if result.check.unmatched and path in scenario.workload.paths:
        notes.append(f"{len(result.check.unmatched)} indeterminate submission(s) never seen (not lost: never "
                     "acknowledged)")
    return notes


def _still_queued(result: ScenarioResult, path: str) -> int:
    q = result.queues
    if path == "celery":
        return sum(len(v) for v in (q.get("celery_queued") or {}).values()) + len(q.get("celery_unacked") or [])
    return len(q.get("legacy_queued") or [])


def _findings(result: ScenarioResult) -> pd.DataFrame:
    rows = []
    for path in result.scenario.expect:
        mine = [v for v in result.violations if v.path == path]
        row: dict[str, Any] = {
            "scenario": result.scenario.name, "path": path,
            "config": config_summary(result.config, path) + (
                f" (verified on {len(result.effective)} running worker(s))" if path == "celery" and result.effective
                else ""),
            "stack": result.stack_kind, "seed": result.seed,
            "elapsed_s": round(result.timings.get("elapsed_s", 0.0), 1),
        }
        check_ = result.check
        if check_ is not None:
            table = check_.table[check_.table["path"] == path]
            row.update(check_.counts[path].as_dict())
            row["max_executions"] = int(table["executions"].max()) if len(table) else 0
        row.update(result.submits.get(path, {}))
        row["dead_lettered"] = len(result.queues.get("dead_letters") or []) if path == "celery" else 0
        row["still_queued"] = _still_queued(result, path)
        row["recovery_s"] = result.recovery_s.get(path)
        row["outcome"] = result.outcome_on(path)
        known = result.scenario.known_failure
        row["known_failure"] = " ".join(known.reason.split()) if known and row["outcome"] == "known-failure" else None
        row["violations"] = [f"{v.invariant} {v.count} > {v.bound}" for v in mine]
        row["notes"] = list(result.path_notes.get(path, []))
        row["errors"] = list(result.errors)
        rows.append(row)
    frame = pd.DataFrame(rows)
    for col in FINDING_COLUMNS:
        if col not in frame.columns:
            frame[col] = None
    return frame[list(FINDING_COLUMNS)]


# -- writing -----------------------------------------------------------------------------------------------


def write(result: ScenarioResult, history: History, ledger: list[dict[str, Any]], probes: set[str]) -> None:
    folder = result.folder
    folder.mkdir(parents=True, exist_ok=True)
    history.to_frame().to_parquet(folder / "history.parquet", index=False)
    execs = pd.DataFrame(ledger)
    if not execs.empty:
        execs["probe"] = execs["eval_id"].isin(probes)
    execs.to_parquet(folder / "executions.parquet", index=False)
    if result.check is not None:
        result.check.table.to_parquet(folder / "evaluations.parquet", index=False)
    result.findings.to_parquet(folder / "findings.parquet", index=False)
    pd.DataFrame(result.events, columns=["eval_id", "path", "status", "attempts", "at", "received_at"]).to_parquet(
        folder / "events.parquet", index=False)
    (folder / "findings.md").write_text(findings_markdown([result], title=f"Chaos: {result.scenario.name}"))
    summary = {
        "scenario": result.scenario.name, "file": result.scenario.file, "seed": result.seed,
        "title": result.scenario.title, "description": " ".join(result.scenario.description.split()),
        "finding": " ".join(result.scenario.finding.split()),
        "config": {p: config_summary(result.config, p) for p in result.scenario.expect},
        "history_started_at": result.history_started_at,
        "stack": result.stack_kind, "outcome": result.outcome,
        "outcomes": {p: result.outcome_on(p) for p in result.scenario.expect},
        "known_failure": (" ".join(result.scenario.known_failure.reason.split())
                          if result.known and result.scenario.known_failure else None),
        "errors": result.errors,
        "violations": [str(v) for v in result.violations], "notes": result.notes, "timings": result.timings,
        "recovery_s": result.recovery_s, "queues": result.queues, "replay": result.replay,
        "effective_config": result.effective, "event_gaps": result.event_gaps, "admin_history": result.admin_history,
        "workload": None if result.workload is None else {
            k: v for k, v in vars(result.workload).items() if k != "eval_ids"},
    }
    (folder / "result.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")


# -- the findings table --------------------------------------------------------------------------------------

SHORT = (("scenario", "scenario"), ("path", "path"), ("config", "configuration"), ("acked", "acked"),
         ("failed", "refused"), ("ok", "ok"), ("recovered", "recov"), ("lost", "lost"), ("duplicated", "dup"),
         ("stuck", "stuck"), ("wrong", "wrong"), ("error", "error"), ("unexpected", "unexp"),
         ("unknown", "unkn"), ("max_executions", "max exec"), ("recovery_s", "recovery s"), ("outcome", "outcome"))


def combine(results: Iterable[ScenarioResult]) -> pd.DataFrame:
    frames = [r.findings for r in results if not r.findings.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(FINDING_COLUMNS))


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value).replace("|", "\\|")


def findings_table(frame: pd.DataFrame) -> str:
    """The findings as a Markdown table (the short columns)."""
    lines = ["| " + " | ".join(h for _, h in SHORT) + " |", "|" + "---|" * len(SHORT)]
    for row in frame.to_dict("records"):
        lines.append("| " + " | ".join(_cell(row.get(k)) for k, _ in SHORT) + " |")
    return "\n".join(lines)


def findings_markdown(results: Sequence[ScenarioResult], *, title: str = "Chaos findings") -> str:
    frame = combine(results)
    passed = sum(r.passed for r in results)
    by_outcome = Counter(r.outcome for r in results)
    total_s = sum(r.timings.get("elapsed_s", 0.0) for r in results)
    lines = [f"# {title}", "",
             f"{len(results)} scenario(s): " + ", ".join(f"{o} {by_outcome[o]}" for o in OUTCOMES)
             + f"; {passed} hold every Celery bound; {total_s:.0f} s of scenario time.", "",
             "`acked`: submissions the gateway accepted; `refused`: answered with a failure (4xx, or 503 "
             "\"nothing was queued\"). Classes per evaluation and path (checker.py): ok, recov(ered: an "
             "indeterminate submission that ran), lost, dup(licated), stuck, wrong, error (explicit failure, "
             "e.g. dead-lettered), unexp(ected: ran without an accepted submission), unkn(own: indeterminate, "
             "never ran). `max exec` is the most executions of one evaluation; recovery is "
             "the time from the last heal to the first completion after it. Outcome: `held` (every bound held), "
             "`finding` (a legacy weakness, or a bound marked \"report\" that measured something), `known-failure` "
             "(the Celery path broke only what the scenario's [known_failure] declares: a known defect, xfail "
             "under pytest, blocks a gate unless accepted), `failed` (the Celery path broke a bound of its "
             "[expect.celery]), `error` (the run could not be carried out: nothing is known).", "",
             findings_table(frame), ""]
    repeated = [rate for rate in rates(results) if rate.runs > 1]
    if repeated:
        lines += ["## Over the runs", "", "Each class: in how many runs of a scenario its count was above 0 "
                  "(two-sided 95 % Clopper–Pearson interval on that share).", ""]
        lines += [f"- {rate.scenario}: {rate}" for rate in repeated] + [""]
    for r in results:
        lines += [f"## {r.scenario.name}: {r.scenario.title}", ""]
        for e in r.errors:
            lines.append(f"- **ERROR** {e}")
        if r.known and r.scenario.known_failure is not None:
            lines.append(f"- **known-failure** ({', '.join(r.scenario.known_failure.invariants)}): "
                         f"{' '.join(r.scenario.known_failure.reason.split())}")
        for v in r.violations:
            gate = "**violation**" if v.path in r.scenario.gate else f"finding ({v.path}, not gated)"
            lines.append(f"- {gate}: {v.path} {v.invariant} {v.count} > {v.bound}: {MEANING[v.invariant]}; "
                         f"e.g. {', '.join(v.eval_ids[:3])}")
        for n in r.notes:
            lines.append(f"- {n}")
        for path, notes in r.path_notes.items():
            for n in notes:
                lines.append(f"- {path}: {n}")
        if r.check is not None:
            bad = r.check.table[~r.check.table["cls"].isin(["ok"])]
            if len(bad):
                lines += ["", "<details><summary>evaluations not ok</summary>", "",
                          "| eval | path | class | executions | status | detail |", "|---|---|---|---|---|---|"]
                for row in bad.head(40).to_dict("records"):
                    lines.append(f"| {row['eval_id'][:12]} | {row['path']} | {row['cls']} | {row['executions']} | "
                                 f"{_cell(row['status'])} | {_cell(row['detail'])} |")
                lines += ["", "</details>"]
        if not r.passed:
            lines += ["", "replay:", ""] + [f"    {c}" for c in r.replay]
        lines.append("")
    return "\n".join(lines) + "\n"


def write_combined(results: Sequence[ScenarioResult], folder: Path) -> Path:
    """``findings.parquet`` and ``findings.md`` for several scenarios in ``folder``; returns the .md."""
    folder.mkdir(parents=True, exist_ok=True)
    combine(results).to_parquet(folder / "findings.parquet", index=False)
    path = folder / "findings.md"
    path.write_text(findings_markdown(list(results)))
    return path


