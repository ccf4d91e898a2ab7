"""One screen that explains a parity failure, and the counterexample files that keep it.

``explain`` renders: a one-line headline that names the path that is wrong per the oracle (either
one: legacy, the control, can be the wrong one), or the path whose result is missing; the minimal
program with line numbers; both results side by side with the oracle, ``≠`` on every field the paths
differ on and ``✗`` beside every value that disagrees with the oracle, on either side; where a
differing text first differs; the normaliser hits; the seed; and a one-line command that replays it.

A counterexample is saved as a small JSON file in ``fixtures/parity/`` (the program, the plan, both
results, the differing fields, the seed): readable in review, committed to the repository, and
replayed first by every later run (``tests/parity``: ``test_saved_counterexamples_match``, and
``harness parity --replay FILE``). The program is either a ``spec`` (``ProgramSpec.to_dict``) or,
for a program the spec language cannot say, a ``submission``: ``{language, code, timeout_s}``, as
in ``fixtures/parity/programs/`` (``fixtures/parity/README.md``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.generate.spec import Program, ProgramSpec, RawProgram, SpecError
from harness.parity.compare import COMPARED_FIELDS
from harness.parity.dispatch import Plan
from harness.parity.session import Check
from harness.run import workspace

COUNTEREXAMPLES = workspace() / "fixtures" / "parity"  # the working directory's (harness.run.workspace)
_WIDTH = 26


def _short(value: Any, width: int = _WIDTH) -> str:
    text = repr(value)
    if len(text) <= width:
        return text
    extra = f"…({len(value)} chars)" if isinstance(value, str) else "…"
    return text[: width - len(extra)] + extra


def _oracle_value(check: Check, name: str) -> Any:
    o = check.oracle
    if o is None:
        return "(no oracle)"
    if name in o.unknown:
        return "(not predicted)"
    if name != "error":
        return getattr(o, name)
    if o.error_exact:
        return o.error_starts
    return f"{o.error_starts!r}…{o.error_ends!r}" if o.error_ends else f"{o.error_starts!r}…"


def first_difference(a: str, b: str) -> str:
    i = next((k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    lo = max(0, i - 8)
    return (f"first difference at character {i} (lengths {len(a)} vs {len(b)}): "
            f"legacy …{a[lo:i + 12]!r}…  celery …{b[lo:i + 12]!r}…")


def explain(check: Check, *, seed: int | None = None, saved: Path | None = None, profile: str | None = None,
            replay: str | None = None) -> str:
    cmp = check.comparison
    code = check.code.splitlines()
    plan = "dual-write" if check.plan == ("both",) else "forced routes " + "+".join(check.plan)
    rerun = ("no (a missing result is not re-run)" if cmp.missing else
             "yes, it agreed with itself" if check.noise_checked else "no")
    lines = [f"PARITY FAILURE: {check.headline}",
             f"evaluation {', '.join(check.eval_ids)} ({plan}; legacy re-run to rule out noise: {rerun})", "",
             f"program ({check.program.language}, {len(code)} lines"
             + (f", timeout {check.program.timeout_s} s" if check.program.timeout_s else "") + "):"]
    lines += [f"  {i:>2} | {line if len(line) <= 100 else line[:97] + '...'}" for i, line in enumerate(code, 1)]
    control, candidate = cmp.control, cmp.candidate
    lines += ["", f"  {'field':<10}   {'legacy (control)':<{_WIDTH + 2}}  {'celery (candidate)':<{_WIDTH + 2}}  oracle"]
    for name in COMPARED_FIELDS:
        mark = "≠" if name in cmp.differing else " "
        left = _short(control.get(name)) + (" ✗" if name in cmp.control_wrong else "")
        right = _short(candidate.get(name)) + (" ✗" if name in cmp.candidate_wrong else "")
        lines.append(f"  {name:<10} {mark} {left:<{_WIDTH + 2}}  {right:<{_WIDTH + 2}}  {_short(_oracle_value(check, name), 40)}")
    lines.append("  (≠ differs between the paths, ✗ disagrees with the oracle; after normalisers)")
    for path in cmp.missing:
        status = (control if path == "legacy" else candidate).get("status")
        lines.append(f"  {path}: no terminal result within the evaluation's deadline (last status: {status!r})")
    for name in cmp.differing:
        a, b = control.get(name), candidate.get(name)
        if isinstance(a, str) and isinstance(b, str):
            lines.append(f"  {name}: {first_difference(a, b)}")
    hits = ", ".join(f"{k} ×{v}" for k, v in cmp.hits.items() if v) or "none"
    lines += ["", f"normaliser hits: {hits}"]
    lines.append(f"seed: {seed if seed is not None else '-'}" + (f" · profile: {profile}" if profile else ""))
    if saved is not None:
        lines.append(f"saved: {_rel(saved)}")
    lines.append(f"replay: {replay or (f'harness parity --replay {_rel(saved)}' if saved else '-')}")
    return "\n".join(lines)


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _program_doc(program: Program) -> dict[str, Any]:
    return {"spec": program.to_dict()} if isinstance(program, ProgramSpec) else {"submission": program.to_dict()}


def save_counterexample(check: Check, directory: Path = COUNTEREXAMPLES, *, seed: int | None = None,
                        note: str = "") -> Path:
    """Write ``check`` as ``<field>-<hash>.json`` (same program and plan, same file) and return its path."""
    program = _program_doc(check.program)
    digest = hashlib.sha256(json.dumps([program, check.plan], sort_keys=True).encode()).hexdigest()[:10]
    cmp = check.comparison
    field = (("missing",) if cmp.missing else cmp.differing or cmp.candidate_wrong or cmp.control_wrong
             or ("unknown",))[0]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{field}-{digest}.json"
    doc = {
        "headline": check.headline, "note": note, "found_at": dt.datetime.now().isoformat(timespec="seconds"),
        "seed": seed, "plan": list(check.plan), **program, "code": check.code,
        "differing": list(cmp.differing), "candidate_wrong": list(cmp.candidate_wrong),
        "control_wrong": list(cmp.control_wrong), "missing": list(cmp.missing),
        "legacy": check.results.get("legacy", {}), "celery": check.results.get("celery", {}),
    }
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return path


def load_counterexample(path: Path) -> tuple[Program, Plan, dict[str, Any]]:
    """The program and plan of a saved counterexample; errors name the file and what is wrong."""
    try:
        doc = json.loads(Path(path).read_text())
        if "spec" in doc:
            program: Program = ProgramSpec.from_dict(doc["spec"])
        elif "submission" in doc:
            program = RawProgram.from_dict(doc["submission"])
        else:
            raise KeyError("'spec' or 'submission'")
        plan = tuple(doc.get("plan", ["both"]))
    except FileNotFoundError as exc:
        raise HarnessError(f"{path}: no such counterexample file") from exc
    except (json.JSONDecodeError, KeyError, ValueError, TypeError, SpecError) as exc:
        raise HarnessError(f"{path}: not a parity counterexample ({exc}); it should be a file written by "
                           "the parity suite, with a 'spec' (or a 'submission': {language, code, timeout_s}) "
                           "and a 'plan'") from exc
    if plan not in (("both",), ("legacy", "celery")):
        raise HarnessError(f"{path}: plan {list(plan)} is not [\"both\"] or [\"legacy\", \"celery\"]")
    return program, plan, doc


def saved_counterexamples(directory: Path = COUNTEREXAMPLES) -> list[Path]:
    return sorted(directory.glob("*.json")) if directory.is_dir() else []
