"""The power of `harness chaos explore`: from an empty example database, how long does a search take to
find each hazard the hand-written scenarios document, and to shrink it to at most 2 faults and confirm
it; and does a search of the safe profile stay quiet?

Each configuration (``any``: every knob and fault, the scenario files' bounds; ``strict``: the same with
nothing lost, duplicated or stuck allowed, whatever the configuration allows; ``safe``: the safe profile;
``focused-*``: narrowed to the region of one hazard, as ``--kinds`` and ``--targets`` do)
runs ``harness.chaos.explore.explore`` once per seed on fresh processes stacks with the time budget of the
issue (10 min), found files going to a temporary folder. Each discovery is labelled with the documented
hazard it is (by its broken invariants, faults and knobs; ``label``), or "other". The table gives, per
hazard, the median over seeds of the seconds until it was found and until it was shrunk and confirmed (a
seed that did not find it counts as later than any that did: the median is "not found" when most did
not). Results: ``benchmarks/results/chaos_explore_power.md``.

    .venv/bin/python benchmarks/chaos_explore_power.py [--seeds 0,1,2] [--budget 600] [--configs any,safe] [--out F]
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import tempfile
import time
from pathlib import Path

from harness.chaos.cli import scenarios_dir, transitions_dir
from harness.chaos.explore import (
    PROFILES,
    Discovery,
    Exploration,
    Space,
    compact,
    explore,
    key_of,
    stack_runner,
)
from harness.chaos.explore_report import write_report
from harness.chaos.scenario import load_all
from harness.run import RunFolder

HAZARDS = ("ambiguous publish (gateway-broker-resets)", "loss under allkeys-lru memory pressure",
           "duplicates beyond the visibility timeout (countdown or backlog)", "loss with early acks on a worker kill")
CONFIGS = {"any": Space(), "strict": Space(strict=True), "safe": Space(PROFILES["safe"]),
           # focused: the region each hazard lives in (what --kinds and --targets do), for its time to find
           "focused-publish": Space(kinds=frozenset({"toxic", "disable"}), targets=("gateway-celery-redis",)),
           "focused-worker-kill": Space(strict=True, kinds=frozenset({"kill", "kill-pool-child"}),
                                        targets=("celery-worker-*",)),
           "focused-broker-fill": Space(strict=True, kinds=frozenset({"memory-pressure"}), targets=("celery-redis",))}
RESULTS = Path(__file__).parent / "results" / "chaos_explore_power.md"


def label(f: Discovery) -> str:
    """The documented hazard a discovery is, from its shrunk schedule, broken invariants and run evidence;
    else "other: ..."."""
    s, broke = f.shrunk, set(f.invariants)
    if f.known:  # a declared known failure is that failure, whatever its invariants look like
        name = Path(f.known).stem
        return HAZARDS[0] if name == "gateway-broker-resets" else f"known failure: {name}"
    targets = {x["target"] for x in s["faults"]}
    kinds = {x["kind"] for x in s["faults"]}
    # the run's evidence first: a fault on the broker link does not make a backlog's redeliveries a publish's
    if broke & {"duplicated", "executions"} and redelivered_after_visibility(failing_folder(f)):
        return HAZARDS[2]
    if "gateway-celery-redis" in targets and broke & {"unexpected", "duplicated"}:
        return HAZARDS[0]
    if ("memory-pressure", "celery-redis") in {(x["kind"], x["target"]) for x in s["faults"]} and "lost" in broke \
            and str(s["stack"].get("celery_redis_policy", "allkeys-lru")).startswith("allkeys"):
        return HAZARDS[1]
    if kinds & {"kill", "kill-pool-child"} and any(t.startswith("celery-worker") for t in targets) \
            and broke & {"lost", "stuck"} and not s["stack"].get("acks_late", False):  # stuck: ran, result never stored
        return HAZARDS[3]
    return f"other (new): {', '.join(sorted(broke))} under {', '.join(sorted(kinds))}"


def failing_folder(f: Discovery) -> Path:
    """The run folder of the last failing run of the discovery's shrunk schedule."""
    runs = [s for s in [f.first, *f.shrink_steps] if key_of(s.schedule) == key_of(f.shrunk) and s.trial.failing]
    return Path((runs[-1] if runs else f.first).trial.folder)


def redelivered_after_visibility(folder: Path) -> bool:
    """The run's evidence shows the hazard itself: an evaluation executed twice under one attempt number
    (a redelivery, not a retry after an ambiguous executor call, which counts its attempts), and
    evaluations that waited the visibility timeout or longer before their last attempt started."""
    text = (folder / "findings.md").read_text() if (folder / "findings.md").is_file() else ""
    attempts = [re.findall(r"\d+", a) for a in re.findall(r"executed \d+x \(attempts ([\d, ]+) on", text)]
    return "waited the visibility timeout" in text and any(len(set(a)) < len(a) for a in attempts)


def done_at(r: Exploration, f: Discovery) -> float | None:
    """Seconds into the search when the discovery's confirmation ended (None: not confirmed); a known
    failure is done when seen (its scenario file reproduces it)."""
    if f.known and f.confirmation is None:
        return f.first.at_s
    confirms = [s for s in r.steps if s.stage == "confirm" and s.schedule is f.shrunk]
    return confirms[-1].at_s if f.confirmed and confirms else None


def median_or_none(values: list[float | None], n: int) -> str:
    """The median over ``n`` seeds, a missing value counting as later than any present one."""
    padded = sorted([v for v in values if v is not None]) + [math.inf] * (n - sum(v is not None for v in values))
    m = statistics.median_low(padded) if padded else math.inf
    return "not found" if m == math.inf else f"{m:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--budget", type=float, default=600.0)
    parser.add_argument("--configs", default="any,safe")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    known = [s for d in (scenarios_dir(), transitions_dir()) for s in load_all(d)]
    run = RunFolder.create(None, f"explore-power-{time.strftime('%Y%m%d-%H%M%S')}")
    searches: list[tuple[str, int, Exploration]] = []
    for config in args.configs.split(","):
        for seed in seeds:
            print(f"== {config} seed {seed}", flush=True)
            mine = RunFolder.create(run.path / f"{config}-seed{seed}", f"{config}-seed{seed}")
            r = explore(run=stack_runner(mine), seed=seed, max_time_s=args.budget, space=CONFIGS[config], known=known,
                        found_dir=Path(tempfile.mkdtemp(prefix="explore-found-")), say=lambda m: print(m, flush=True))
            write_report(r, mine.path)  # explore.html / explore.md of this search
            searches.append((config, seed, r))
            write(args, seeds, searches, run)
    print(f"results: {args.out}")


def write(args: argparse.Namespace, seeds: list[int], searches: list[tuple[str, int, Exploration]],
          run: RunFolder) -> None:
    runs = ["| configuration | seed | exit | runs (examples, shrink, confirm) | seconds | discoveries (confirmed) |",
            "|---|---|---|---|---|---|"]
    found = ["| configuration | seed | hazard | broke | found at s (example) | shrunk and confirmed at s | shrink runs "
             "| faults | reproduced | known failure of | shrunk schedule |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for config, seed, r in searches:
        stages = [sum(s.stage == x for s in r.steps) for x in ("example", "shrink", "confirm")]
        runs.append(f"| {config} | {seed} | {1 if r.failed else 0} | {len(r.steps)} ({', '.join(map(str, stages))}) | "
                    f"{r.seconds:.0f} | {len(r.discoveries)} ({len(r.confirmed)}) |")
        for f in r.discoveries:
            c = f.confirmation
            at = done_at(r, f)
            found.append(f"| {config} | {seed} | {label(f)} | {', '.join(f.invariants)} | {f.first.at_s:.0f} "
                         f"({f.example}) | {f'{at:.0f}' if at is not None else '-'} | {len(f.shrink_steps)} | "
                         f"{len(f.shrunk['faults'])} | {f'{c.reproduced} of {len(c.outcomes)}' if c else '-'} | "
                         f"{f.known or '-'} | `{compact(f.shrunk)}` |")
    medians = ["| configuration | hazard | seeds that found it | median s to find | median s to shrink and confirm |",
               "|---|---|---|---|---|"]
    for config in dict.fromkeys(c for c, _, _ in searches):
        mine = [(seed, r) for c, seed, r in searches if c == config]
        labels = sorted({label(f) for _, r in mine for f in r.discoveries} | set(HAZARDS))
        for hazard in labels:
            firsts: list[float | None] = []
            confirmed: list[float | None] = []
            for _, r in mine:
                fs = [f for f in r.discoveries if label(f) == hazard]
                firsts.append(min((f.first.at_s for f in fs), default=None))
                confirmed.append(min((a for f in fs if (a := done_at(r, f)) is not None), default=None))
            medians.append(f"| {config} | {hazard} | {sum(v is not None for v in confirmed)} of {len(mine)} | "
                           f"{median_or_none(firsts, len(mine))} | {median_or_none(confirmed, len(mine))} |")
    args.out.write_text(
        "# Generative chaos: power of `harness chaos explore`\n\n"
        f"`benchmarks/chaos_explore_power.py --seeds {args.seeds} --budget {args.budget:g} --configs {args.configs} "
        f"--out {args.out.name}`: "
        f"one search per configuration and seed from an empty example database, processes stacks on this 2-core "
        f"machine, found files in a temporary folder (run folder `{run.path}`). Confirmed means it failed again "
        "in at least 2 of 3 runs with new seeds.\n\n## Per hazard (median over seeds)\n\n" + "\n".join(medians)
        + "\n\n## Searches\n\n" + "\n".join(runs) + "\n\n## Discoveries\n\n" + "\n".join(found) + "\n")


if __name__ == "__main__":
    main()
