"""The gate's criteria: one function per criterion (parity rate, critical fields, oracle, chaos, latency,
execution time, resources, error rate, split accuracy, a phase transition), each turning its part of the
evidence and the thresholds into a ``Criterion``; ``stage_table`` (the per-stage summary of a verdict) and
the number formatting they share. ``decide`` documents every rule and combines them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from harness.gate import sequential, stats
from harness.gate.base import OVERHEAD, RESOURCES, STAGES, Criterion, ErrorCount, GateError, Status
from harness.gate.thresholds import Thresholds
from harness.vocabulary import PATHS

if TYPE_CHECKING:  # the evidence types live in decide, which imports this module
    from harness.gate.decide import (
        ChaosOutcome,
        LatencyEvidence,
        ParityEvidence,
        SplitEvidence,
        TransitionEvidence,
    )


# ---------------------------------------------------------------------------------------------
# formatting


def _num(x: float) -> str:
    return f"{x:g}"


def _pct(share: float) -> str:
    return f"{100 * share:.3g} %"


def _ms(x: float) -> str:
    return f"{x:+}" if math.isinf(x) else f"{x:+.1f}" if x else "0.0"


def _pp(share: float) -> str:
    return f"{100 * share:.3g} pp"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 'es' if word.endswith('ch') else 's'}"


# ---------------------------------------------------------------------------------------------
# criteria


def _missing(name: str, threshold: str, what: str) -> Criterion:
    return Criterion(name, "INCONCLUSIVE", "not collected", threshold, None, "-", f"no {what} evidence")


def _alpha(th: Thresholds) -> float:
    return 1 - th.confidence


def _parity_rate(parity: ParityEvidence | None, eps: float, th: Thresholds, target: float) -> Criterion:
    name = "parity mismatch rate"
    threshold = f"upper < ε = {_pct(eps)} (target {_num(target)} %)"
    if parity is None:
        return _missing(name, threshold, "parity")
    k, n = parity.mismatches, parity.n
    noise = "" if parity.noise is None else f"; {parity.noise} A/A noise evaluations excluded"
    drawn = (f"programs drawn from mix `{parity.population.removeprefix('mix:')}`" if parity.population
             else "programs of an undeclared population (stored before populations were recorded)")
    needed = sequential.min_clean_samples(eps, _alpha(th))
    cs = sequential.proportion_cs(k, n, _alpha(th), rare=True, prior_mean=eps)
    values = {"k": k, "n": n, "estimate": cs.estimate, "lower": cs.lower, "upper": cs.upper, "epsilon": eps,
              "noise": parity.noise, "samples_needed": needed, "population": parity.population,
              "searched": parity.searched}
    if n == 0:
        searched = (f"; the search's {parity.searched} programs hunt counterexamples and are not a sample"
                    if parity.searched else "")
        return Criterion(name, "INCONCLUSIVE", "0 paired comparisons", threshold, 0, "-",
                         f"no programs drawn from a declared mix: need >= {needed} with zero mismatches"
                         f"{searched}{noise}", values)
    observed = f"{k}/{n} = {_pct(k / n)}"
    bound = f"{_pct(th.confidence)} CS [{_pct(cs.lower)}, {_pct(cs.upper)}]"
    if cs.upper < eps:
        status: Status = "PASS"
        detail = f"{k}/{n} mismatched in {drawn}: bound below ε{noise}"
    elif cs.lower > eps:
        status = "FAIL"
        detail = (f"mismatch rate above ε = {_pct(eps)}: at least {_pct(cs.lower)} ({k}/{n} mismatched in "
                  f"{drawn}){noise}")
    elif k == 0:
        status = "INCONCLUSIVE"
        detail = f"too few samples: 0/{n} mismatched in {drawn}, need >= {needed} with zero mismatches{noise}"
    else:
        status = "INCONCLUSIVE"
        detail = f"{k}/{n} mismatched in {drawn}: the bound straddles ε, collect more comparisons{noise}"
    return Criterion(name, status, observed, threshold, n, bound, detail, values)


def _critical(parity: ParityEvidence | None, th: Thresholds) -> Criterion:
    name = "critical fields"
    threshold = f"0 mismatches on {', '.join(th.critical_fields)}"
    if parity is None:
        return _missing(name, threshold, "parity")
    counts = {f: parity.mismatches_by_field.get(f, 0) for f in th.critical_fields}
    observed = ", ".join(f"{f} {c}" for f, c in counts.items())
    values: dict[str, float | int | str | None] = dict(counts)
    hits = [(f, c) for f, c in counts.items() if c]
    failure = None
    if hits:
        first, *rest = hits
        failure = f"{_plural(first[1], 'mismatch')} on {first[0]}" + "".join(f", {c} on {f}" for f, c in rest)
    return _zero_tolerance(name, observed, threshold, parity.checked, values, failure,
                           empty="no paired comparisons to check critical fields on",
                           ok=f"no critical-field mismatch in {parity.checked}")


def _zero_tolerance(name: str, observed: str, threshold: str, n: int, values: dict[str, float | int | str | None],
                    failure: str | None, *, empty: str, ok: str) -> Criterion:
    """FAIL on any hit (``failure`` says which), INCONCLUSIVE with nothing checked, else PASS."""
    if failure:
        return Criterion(name, "FAIL", observed, threshold, n, "zero tolerance", failure, values)
    if n == 0:
        return Criterion(name, "INCONCLUSIVE", observed, threshold, 0, "zero tolerance", empty, values)
    return Criterion(name, "PASS", observed, threshold, n, "zero tolerance", ok, values)


def _oracle(parity: ParityEvidence | None) -> Criterion:
    name = "oracle (wrong results)"
    threshold = "0 wrong on any path"
    if parity is None:
        return _missing(name, threshold, "parity")
    if parity.wrong is None:
        return Criterion(name, "INCONCLUSIVE", "not checked", threshold, parity.checked, "zero tolerance",
                         "no oracle checks in the parity evidence")
    counts = {p: parity.wrong.get(p, 0) for p in (*PATHS, *sorted(set(parity.wrong) - set(PATHS)))}
    observed = ", ".join(f"{p} {c}" for p, c in counts.items())
    values: dict[str, float | int | str | None] = dict(counts)
    hits = [(p, c) for p, c in counts.items() if c]
    failure = ", ".join(f"{c} wrong on {p}" for p, c in hits) or None
    if failure and counts.get("legacy") and not counts.get("celery"):
        failure += " (the oracle or legacy is broken: fix it before trusting parity)"
    return _zero_tolerance(name, observed, threshold, parity.checked, values, failure,
                           empty="no paired comparisons checked against the oracle",
                           ok=f"no wrong result in {parity.checked}")


def _chaos(chaos: Sequence[ChaosOutcome] | None, th: Thresholds) -> Criterion:
    name = "chaos invariants"
    threshold = "Celery invariants hold in every scenario (known failures only if accepted)"
    if not chaos:
        return _missing(name, threshold, "chaos")
    by: dict[str, list[ChaosOutcome]] = {}
    for o in chaos:
        by.setdefault(o.outcome, []).append(o)
    known = by.get("known-failure", [])
    accepted = [o for o in known if o.scenario in th.accepted_known_failures]
    blocking = [o for o in known if o.scenario not in th.accepted_known_failures]
    held = len(by.get("held", [])) + len(by.get("finding", []))
    observed = f"{held}/{len(chaos)} scenarios held" + "".join(
        f", {len(by[o])} {o}" for o in ("failed", "known-failure", "error") if by.get(o))
    values: dict[str, float | int | str | None] = {
        "scenarios": len(chaos), **{o: len(by.get(o, [])) for o in ("held", "finding", "known-failure", "failed",
                                                                     "error")},
        "accepted_known_failures": ", ".join(o.scenario for o in accepted) or None}
    fails = [f"invariant violated in {o.scenario}: {', '.join(o.violations) or 'unnamed'}"
             for o in by.get("failed", [])]
    fails += [f"known failure in {o.scenario} ({', '.join(o.violations) or o.reason}), not accepted in the "
              "thresholds' [chaos.accepted_known_failures]" for o in blocking]
    if fails:
        return Criterion(name, "FAIL", observed, threshold, len(chaos), "zero tolerance", "; ".join(fails), values)
    if by.get("error"):
        detail = "; ".join(f"{o.scenario} could not be carried out ({o.reason or 'no reason stored'})"
                           for o in by["error"])
        return Criterion(name, "INCONCLUSIVE", observed, threshold, len(chaos), "zero tolerance", detail, values)
    detail = f"all Celery invariants held in {_plural(held, 'scenario')}"
    if accepted:
        detail += "; " + "; ".join(_accepted(o, th) for o in accepted)
    return Criterion(name, "PASS", observed, threshold, len(chaos), "zero tolerance", detail, values)


def _accepted(outcome: ChaosOutcome, th: Thresholds) -> str:
    return (f"accepting the known failure of {outcome.scenario} "
            f"({th.accepted_known_failures[outcome.scenario]})")


def _summary(samples: Sequence[float], alpha: float) -> dict[str, float | int | None]:
    """n, p50, p95 and the median's confidence sequence (at ``alpha``) of one path's samples."""
    samples = [v for v in samples if not math.isnan(v)]
    finite = [v for v in samples if math.isfinite(v)]
    cs = sequential.median_cs(samples, alpha)
    p95 = stats.percentiles(finite).p95 if finite else None
    return {"n": len(samples), "p50": cs.estimate if samples else None, "p95": p95, "lower": cs.lower,
            "upper": cs.upper}


Timed = Sequence[tuple[float, float]]  # (submitted at, value) in submission order


def paired_differences(candidate: Timed, control: Timed) -> list[float]:
    """Celery − legacy over pairs formed in submission order: each evaluation is paired with the latest
    evaluation of the other path submitted before it that is still unpaired (none: it waits for the next
    one of the other path). A pair was submitted at about the same time whatever the split (a blocked
    design: a slow minute of the machine slows both), and a pair, once formed, never changes as more
    evaluations arrive, so the differences are one growing sequence (what a confidence sequence needs).
    A +inf candidate stays +inf."""
    events = sorted([(t, 0, v) for t, v in control] + [(t, 1, v) for t, v in candidate], key=lambda e: (e[0], e[1]))
    waiting: tuple[list[float], list[float]] = ([], [])
    out: list[float] = []
    for _, side, value in events:
        other = waiting[1 - side]
        if other:
            mate = other.pop()
            c, x = (value, mate) if side == 1 else (mate, value)
            out.append(math.inf if math.isinf(c) and c > 0 else c - x)
        else:
            waiting[side].append(value)
    return out


def _noise_floor(samples: Mapping[str, Timed], alpha: float) -> tuple[float, dict[str, float]]:
    """The A/A noise floor: per path, |median of the differences between consecutive evaluations of that
    path| (the 2nd minus the 1st, the 4th minus the 3rd, ...: two halves in the same time windows, whose
    true difference is zero); the floor is the larger of the two paths'. It is what the machine's own
    variation makes of "no difference at all" in this run."""
    per_path: dict[str, float] = {}
    for path in PATHS:
        values = [v for _, v in samples.get(path, ()) if math.isfinite(v)]
        diffs = [b - a for a, b in zip(values[0::2], values[1::2], strict=False)]
        per_path[path] = abs(float(sequential.median_cs(diffs, alpha).estimate)) if diffs else math.inf
    return max(per_path.values()), per_path


def _compare_medians(name: str, what: str, unit: str, samples: Mapping[str, Timed], tol_abs: float,
                     tol_fraction: float, th: Thresholds, *, min_samples: int, noise: bool,
                     extra_observed: str = "", extra_detail: str = "", worse: str = "slower by",
                     unfinished_celery: int = 0) -> Criterion:
    """The median of paired Celery − legacy differences (``paired_differences``) may be at most
    max(tol_abs, tol_fraction × legacy's median). Both are confidence sequences at α/2: PASS when the
    difference's upper end is within the tolerance at legacy's lower end, FAIL when its lower end is
    beyond the tolerance at legacy's upper end (a tolerance read off a lucky legacy estimate would move
    the bar), INCONCLUSIVE in between, with too few samples, or (``noise``) when the machine's A/A noise
    floor is above the tolerance and the difference is not beyond both."""
    alpha = _alpha(th)
    rule = (f"median of paired celery − legacy upper <= max({_num(tol_abs)} {unit}, {_pct(tol_fraction)} of "
            "legacy's median)")
    sizes: dict[str, int] = {p: len(samples.get(p, ())) + (unfinished_celery if p == "celery" else 0) for p in PATHS}
    smallest = min(sizes.values())
    if smallest < min_samples:
        return Criterion(name, "INCONCLUSIVE", ", ".join(f"{p} n={c}" for p, c in sizes.items()), rule, smallest,
                         "-", f"too few {what} samples: {', '.join(f'{p} {c}' for p, c in sizes.items())} "
                         f"(need >= {min_samples} per path)", dict(sizes))
    try:
        legacy = sequential.median_cs([v for _, v in samples["legacy"]], alpha / 2)
        celery = sequential.median_cs([*(v for _, v in samples["celery"]), *[math.inf] * unfinished_celery], alpha)
        # each Celery evaluation still in flight at the end is a pair Celery lost by +inf: a PASS on them is a PASS
        diff = sequential.median_cs([*paired_differences(samples["celery"], samples["legacy"]),
                                     *[math.inf] * unfinished_celery], alpha / 2)
    except sequential.SequentialError as exc:
        raise GateError(f"evidence: {what} samples: {exc}") from exc
    tolerance = max(tol_abs, tol_fraction * legacy.estimate)  # reported; the decision reads the two below
    tol_pass = max(tol_abs, tol_fraction * legacy.lower) if math.isfinite(legacy.lower) else tol_abs
    tol_fail = max(tol_abs, tol_fraction * legacy.upper)
    threshold = (f"upper <= {tolerance:.1f} {unit} = max({_num(tol_abs)} {unit}, {_pct(tol_fraction)} × legacy "
                 f"median {legacy.estimate:.1f} {unit})")
    observed = (f"celery − legacy {_ms(diff.estimate)} {unit} (median of {diff.n} pairs); median legacy "
                f"{legacy.estimate:.1f}, celery {celery.estimate:.1f} {unit}{extra_observed}")
    bound = f"{_pct(th.confidence)} CS [{_ms(diff.lower)}, {_ms(diff.upper)}] {unit}"
    values: dict[str, float | int | str | None] = {
        "n_legacy": sizes["legacy"], "n_celery": sizes["celery"], "pairs": diff.n, "legacy_median": legacy.estimate,
        "celery_median": celery.estimate, "difference": diff.estimate, "lower": diff.lower, "upper": diff.upper,
        "tolerance": tolerance, "tolerance_pass": tol_pass, "tolerance_fail": tol_fail, "unit": unit}
    floor = None
    if noise:
        floor, per_path = _noise_floor(samples, alpha)
        values.update({"noise_floor": floor, **{f"noise_{p}": v for p, v in per_path.items()}})
        bound += f"; A/A noise floor {floor:.1f} {unit}"
    if floor is not None and floor > tol_pass and diff.lower > tol_fail + floor:
        # the machine cannot resolve a difference of the tolerance's size, but this one is larger than the
        # tolerance and the noise together: no noise explains it
        status: Status = "FAIL"
        detail = (f"{what} regression: Celery {worse} at least {diff.lower:.1f} {unit}, beyond the tolerance "
                  f"{tol_fail:.1f} {unit} plus the machine's A/A noise {floor:.1f} {unit}")
    elif floor is not None and floor > tol_pass:
        status = "INCONCLUSIVE"
        detail = (f"{what}: the machine's own A/A noise ({floor:.1f} {unit}) is above the tolerance "
                  f"{tolerance:.1f} {unit}: collect more samples or run on a quieter machine")
    elif diff.upper <= tol_pass:
        status = "PASS"
        detail = f"{what}: Celery {worse} at most {_ms(diff.upper)} {unit} (tolerance {tol_pass:.1f} {unit})"
    elif diff.lower > tol_fail:
        status = "FAIL"
        detail = (f"{what} regression: Celery {worse} at least {diff.lower:.1f} {unit} "
                  f"(tolerance {tol_fail:.1f} {unit})")
    else:
        status = "INCONCLUSIVE"
        detail = f"{what}: the confidence sequence straddles the tolerance {tolerance:.1f} {unit}: collect more samples"
    return Criterion(name, status, observed, threshold, smallest, bound, detail + extra_detail, values)


AT = "submitted_at"  # the key of each path's submission times in ``stages_ms`` and ``resources``


def _timed(source: Mapping[str, Mapping[str, Sequence[float]]], key: str) -> dict[str, list[tuple[float, float]]]:
    """Per path, (submitted at, value) of ``key``, missing values dropped; without recorded times (evidence
    built by hand) the position stands for the time."""
    out: dict[str, list[tuple[float, float]]] = {}
    for path in PATHS:
        values = [float(v) for v in source.get(path, {}).get(key, ())]
        times = [float(t) for t in source.get(path, {}).get(AT, ())]
        if len(times) != len(values):
            times = [float(i) for i in range(len(values))]
        out[path] = [(t, v) for t, v in zip(times, values, strict=True) if not math.isnan(v)]
    return out


def _stage(latency: LatencyEvidence, stage: str) -> dict[str, list[tuple[float, float]]]:
    return _timed(latency.stages_ms, stage)


def _latency(latency: LatencyEvidence | None, th: Thresholds) -> Criterion:
    name = "latency (queueing + delivery)"
    if latency is None:
        return _missing(name, "celery − legacy median of end-to-end − execution", "latency")
    if not any(latency.stages_ms.values()):
        return Criterion(name, "INCONCLUSIVE", "no stages", "-", 0, "-",
                         "the load evidence has no latency stages (stored by an older harness): run the load again")
    unfinished: dict[str, list[float]] = {p: list(latency.unfinished_ms.get(p, ())) for p in PATHS}
    samples = _stage(latency, OVERHEAD)
    e2e = {p: stats.percentiles(latency.samples_ms[p]) for p in PATHS if len(latency.samples_ms.get(p, ())) > 0}
    observed = "; end-to-end p50/p95 " + ", ".join(f"{p} {v.p50:.0f}/{v.p95:.0f}" for p, v in e2e.items()) + " ms"
    if any(unfinished.values()):
        observed += "; unfinished " + ", ".join(f"{p} {len(unfinished[p])}" for p in PATHS)
    extra = ""
    if any(unfinished.values()):
        extra = (f"; counted conservatively: {len(unfinished['celery'])} Celery evaluation(s) still in flight at "
                 "the end of the load run as slower than any legacy one (their legacy counterparts, "
                 f"{len(unfinished['legacy'])} unfinished, count as errors only)")
    return _compare_medians(name, "queueing + delivery", "ms", samples, th.latency_tolerance_ms,
                            th.latency_tolerance_fraction, th, min_samples=th.latency_min_samples, noise=True,
                            extra_observed=observed, extra_detail=extra, unfinished_celery=len(unfinished["celery"]))


def _execution(latency: LatencyEvidence | None, th: Thresholds) -> Criterion:
    name = "execution time"
    if latency is None:
        return _missing(name, "celery − legacy median of the executions' own time", "latency")
    return _compare_medians(name, "execution", "ms", _stage(latency, "execution"), th.latency_tolerance_ms,
                            th.latency_tolerance_fraction, th, min_samples=th.latency_min_samples, noise=True)


def _resources(latency: LatencyEvidence | None, th: Thresholds) -> Criterion:
    name = "resources (CPU, peak memory)"
    if latency is None:
        return _missing(name, "celery − legacy median CPU time and peak RSS", "latency")
    parts = []
    for key, unit, tol_abs, tol_fraction in (("cpu_ms", "ms", th.cpu_tolerance_ms, th.cpu_tolerance_fraction),
                                             ("peak_rss_kb", "KiB", th.memory_tolerance_kb,
                                              th.memory_tolerance_fraction)):
        samples = _timed(latency.resources, key)
        what = "CPU time" if key == "cpu_ms" else "peak memory"
        parts.append(_compare_medians(name, what, unit, samples, tol_abs, tol_fraction, th,
                                      min_samples=th.latency_min_samples, noise=False, worse="above legacy by"))
    worst = _worst(tuple(c.status for c in parts))
    values: dict[str, float | int | str | None] = {f"{key}_{k}": v for key, c in zip(RESOURCES, parts, strict=True)
                                                     for k, v in c.values.items()}
    return Criterion(name, worst, "; ".join(c.observed for c in parts), "; ".join(c.threshold for c in parts),
                     min((c.sample_size or 0) for c in parts), "; ".join(c.bound for c in parts),
                     "; ".join(c.detail for c in parts if c.status == worst), values)


def _worst(statuses: Sequence[Status]) -> Status:
    return "FAIL" if "FAIL" in statuses else "INCONCLUSIVE" if "INCONCLUSIVE" in statuses else "PASS"


def _error_rate(latency: LatencyEvidence | None, parity: ParityEvidence | None, th: Thresholds,
                needed: int) -> Criterion:
    name = "error rate"
    threshold = f"celery − legacy upper <= {_pp(th.error_rate_max_increase)}"
    if latency is None and (parity is None or not parity.errors):
        return _missing(name, threshold, "latency/error")
    # An evaluation still in flight when the load run ended (after Locust's stop timeout) is counted
    # as an error: the platform did not answer in time. Without this a queue that starves part of
    # its work would show a clean error rate, and a latency shift the starved work is not part of.
    unfinished = {p: len(latency.unfinished_ms.get(p, ())) if latency else 0 for p in PATHS}
    population = []
    counts: dict[str, ErrorCount] = {}
    for path in PATHS:
        n = errors = 0
        load = latency.errors.get(path) if latency else None
        if load is not None:
            n, errors = load.n + unfinished[path], load.errors + unfinished[path]
        dual = parity.errors.get(path) if parity else None
        if dual is not None:
            n, errors = n + dual.n, errors + dual.errors
        counts[path] = ErrorCount(n, errors)
    if latency is not None and any(latency.errors.values()):
        population.append("the load mix")
    if parity is not None and parity.errors:
        population.append("parity's dual-write programs")
    if any(c.n == 0 for c in counts.values()):
        shown = ", ".join(f"{p} {c.errors}/{c.n}" for p, c in counts.items())
        return Criterion(name, "INCONCLUSIVE", shown, threshold, 0, "-",
                         "no error counts for " + ", ".join(p for p, c in counts.items() if c.n == 0))
    leg, cel = counts["legacy"], counts["celery"]
    alpha = _alpha(th)
    mean = th.error_rate_max_increase
    c_cs = sequential.proportion_cs(cel.errors, cel.n, alpha / 2, rare=True, prior_mean=mean)
    l_cs = sequential.proportion_cs(leg.errors, leg.n, alpha / 2, rare=True, prior_mean=mean)
    diff = sequential.difference_cs(c_cs, l_cs)
    observed = f"legacy {leg.errors}/{leg.n} = {_pct(leg.errors / leg.n)}, celery {cel.errors}/{cel.n} = " \
               f"{_pct(cel.errors / cel.n)} (in {' and '.join(population)})"
    if any(unfinished.values()):
        observed += " (of which unfinished at the end of the load run: " + \
            ", ".join(f"{p} {unfinished[p]}" for p in PATHS) + ")"
    bound = f"{_pct(th.confidence)} CS of difference [{_pp(diff.lower)}, {_pp(diff.upper)}]"
    values: dict[str, float | int | str | None] = {
        "legacy_n": leg.n, "legacy_errors": leg.errors, "celery_n": cel.n, "celery_errors": cel.errors,
        "legacy_unfinished": unfinished["legacy"], "celery_unfinished": unfinished["celery"],
        "difference": diff.estimate, "lower": diff.lower, "upper": diff.upper,
        "max_increase": th.error_rate_max_increase, "population": " and ".join(population)}
    smallest = min(leg.n, cel.n)
    if diff.upper <= th.error_rate_max_increase:
        status: Status = "PASS"
        detail = f"Celery's error rate exceeds legacy's by at most {_pp(diff.upper)}"
    elif diff.lower > th.error_rate_max_increase:
        status = "FAIL"
        detail = f"error-rate regression: Celery's exceeds legacy's by at least {_pp(diff.lower)}"
    elif smallest < needed:
        status = "INCONCLUSIVE"
        detail = f"too few samples for the error rate: {smallest} per path, need >= {needed} with zero errors"
    else:
        status = "INCONCLUSIVE"
        detail = "error-rate confidence sequence straddles the tolerance: collect more samples"
    return Criterion(name, status, observed, threshold, smallest, bound, detail, values)


def _split(split: SplitEvidence | None, th: Thresholds, current: float) -> Criterion:
    name = "split accuracy"
    threshold = (f"configured share within the {_pct(1 - th.split_p_value_floor)} CS, and the "
                 f"{_pct(th.confidence)} CS within ± max(3 pp, {_pp(th.split_tolerance)} × the smaller share / 50 %) "
                 f"(n >= {th.split_min_samples})")
    if split is None:
        return _missing(name, threshold, "split")
    observed = f"{split.to_celery}/{split.routed} to celery (configured {_num(split.configured_percentage)} %)"
    values: dict[str, float | int | str | None] = {
        "configured_percentage": split.configured_percentage, "routed": split.routed, "to_celery": split.to_celery}
    if split.configured_percentage != current:
        return Criterion(name, "INCONCLUSIVE", observed, threshold, split.routed, "-",
                         f"split evidence was collected at {_num(split.configured_percentage)} %, "
                         f"not at the current {_num(current)} %", values)
    if split.routed < th.split_min_samples:
        return Criterion(name, "INCONCLUSIVE", observed, threshold, split.routed, "-",
                         f"too few routed evaluations: {split.routed}, need >= {th.split_min_samples}", values)
    share = split.configured_percentage / 100
    strict = sequential.proportion_cs(split.to_celery, split.routed, th.split_p_value_floor)
    # the PASS sequence's mixing distribution is centred on the configured share (strength 100): tighter near
    # it, valid whatever the truth; the FAIL sequence keeps the flat one (more power against a far share)
    usual = sequential.proportion_cs(split.to_celery, split.routed, _alpha(th),
                                     prior_mean=min(max(share, 0.01), 0.99), prior_strength=100.0)
    observed = f"{_pct(usual.estimate)} of {split.routed} to celery (configured {_num(split.configured_percentage)} %)"
    bound = (f"{_pct(th.confidence)} CS [{_pct(usual.lower)}, {_pct(usual.upper)}]; {_pct(1 - th.split_p_value_floor)}"
             f" CS [{_pct(strict.lower)}, {_pct(strict.upper)}]")
    values.update({"observed": usual.estimate, "lower": usual.lower, "upper": usual.upper,
                   "strict_lower": strict.lower, "strict_upper": strict.upper})
    if not strict.lower <= share <= strict.upper:
        return Criterion(name, "FAIL", observed, threshold, split.routed, bound,
                         f"split inaccurate: {_pct(usual.estimate)} routed to Celery, configured "
                         f"{_num(split.configured_percentage)} % (outside the {_pct(1 - th.split_p_value_floor)} "
                         "confidence sequence)", values)
    # ±10 pp at 50 %, scaled with the smaller of the two shares (at 10 %, 10 points off would be twice the
    # traffic decided), never below ±3 pp (closer needs thousands of evaluations)
    margin = max(0.03, th.split_tolerance * 2 * min(share, 1 - share))
    values["margin"] = margin
    if share - margin <= usual.lower and usual.upper <= share + margin:
        return Criterion(name, "PASS", observed, threshold, split.routed, bound,
                         "routed share consistent with the configured percentage", values)
    return Criterion(name, "INCONCLUSIVE", observed, threshold, split.routed, bound,
                     f"routed share not yet known within ± {_pp(margin)}: collect more evaluations",
                     values)


def stage_table(latency: LatencyEvidence | None, th: Thresholds) -> dict[str, Any]:
    """Per path: every stage's, end-to-end's and every resource's n, p50, p95 and median CS (``verdict.stages``)."""
    if latency is None:
        return {}
    alpha = _alpha(th) / 2
    table: dict[str, Any] = {}
    for path in PATHS:
        row: dict[str, Any] = {"end_to_end": _summary(list(latency.samples_ms.get(path, ())), alpha)}
        for stage in (*STAGES, OVERHEAD):
            row[stage] = _summary([float(v) for v in latency.stages_ms.get(path, {}).get(stage, ())], alpha)
        for key in RESOURCES:
            row[key] = _summary([float(v) for v in latency.resources.get(path, {}).get(key, ())], alpha)
        table[path] = row
    return table


def _transition(transition: TransitionEvidence) -> Criterion:
    """Into phase 2: nothing runs twice, nothing is lost. Into phase 3: nothing accepted is unaccounted for,
    no legacy activity after the decommission (and nothing runs twice)."""
    name = f"transition ({transition.kind})"
    threshold = ("0 executed twice, 0 unaccounted" if transition.kind == "phase2"
                 else "0 unaccounted, 0 legacy activity after it, 0 executed twice")
    checks = transition.checks
    values: dict[str, float | int | str | None] = {
        "move": transition.move, "scenarios": len(checks), "executed_twice": sum(c.executed_twice for c in checks),
        "unaccounted": sum(c.unaccounted for c in checks), "legacy_after": sum(c.legacy_after for c in checks)}
    observed = (f"{transition.move}: " + "; ".join(
        f"{c.scenario}: executed twice {c.executed_twice}, unaccounted {c.unaccounted}"
        + (f", legacy after {c.legacy_after}" if transition.kind == "decommission" else "") for c in checks)
        if checks else "no transition scenario run")
    if not checks:
        return Criterion(name, "INCONCLUSIVE", observed, threshold, 0, "zero tolerance",
                         f"the move {transition.move} needs its transition scenarios, and none was run", values)
    fails = [f"{c.executed_twice} evaluation(s) executed twice in {c.scenario}" for c in checks if c.executed_twice]
    fails += [f"{c.unaccounted} accepted evaluation(s) unaccounted for in {c.scenario}" for c in checks
              if c.unaccounted]
    fails += [f"legacy activity after the decommission in {c.scenario}" for c in checks if c.legacy_after]
    if fails:
        return Criterion(name, "FAIL", observed, threshold, len(checks), "zero tolerance",
                         f"the move {transition.move} is unsafe: " + "; ".join(fails), values)
    missing = [name for name in transition.needed if name not in {c.scenario for c in checks}]
    if missing:
        return Criterion(name, "INCONCLUSIVE", observed, threshold, len(checks), "zero tolerance",
                         f"the move {transition.move} needs {', '.join(missing)}, which did not run", values)
    errors = [c.scenario for c in checks if c.outcome == "error"]
    if errors:
        return Criterion(name, "INCONCLUSIVE", observed, threshold, len(checks), "zero tolerance",
                         f"transition scenario(s) not carried out: {', '.join(errors)}", values)
    return Criterion(name, "PASS", observed, threshold, len(checks), "zero tolerance",
                     f"the move {transition.move} ran every evaluation once and accounted for all", values)
