"""Where the search draws, without a stack: from how many examples on does a search draw the cell each
documented hazard lives in? A stack that always holds, so the draw alone is measured (discoveries steer
later draws elsewhere; with none, this is the draw's own coverage).

For each seed, ``explore`` runs with a fake ``RunFn`` (every run held, 1 s each) for ``--examples``
examples of the default space; the table gives, per hazard cell, in how many seeds it was drawn within
10, 15 and 20 examples and the median example it was first drawn at. A 10-minute search on this machine
runs 15-26 examples. Results: ``benchmarks/results/chaos_explore_draw.md``. The script uses only what
older checkouts have too, so it measures them side by side (``--label`` names the code, ``--append`` adds
its table to the file):

    .venv/bin/python benchmarks/chaos_explore_draw.py [--seeds 60] [--examples 30] [--label L] [--append] [--out F]
    git worktree add /tmp/before f674534 && PYTHONPATH=/tmp/before .venv/bin/python benchmarks/chaos_explore_draw.py --label f674534 --append
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness.chaos.cli import scenarios_dir, transitions_dir
from harness.chaos.explore import Space, Trial, explore
from harness.chaos.scenario import Scenario, load_all
from harness.stack.config import StackConfig

RESULTS = Path(__file__).parent / "results" / "chaos_explore_draw.md"


def _lose_reply_publish(f: Mapping[str, Any], _cfg: StackConfig) -> bool:  # ``cell`` "lose reply", spelled out
    toxic = f.get("toxic", {})  # so that the script also measures checkouts from before cells
    return f["target"] == "gateway-celery-redis" and toxic.get("stream", "downstream") == "downstream" \
        and toxic.get("type") in ("reset_peer", "timeout", "limit_data")


def _early_ack_kill(f: Mapping[str, Any], cfg: StackConfig) -> bool:
    return f["kind"] in ("kill", "kill-pool-child") and f["target"].startswith("celery-worker") and not cfg.acks_late


def _allkeys_fill(f: Mapping[str, Any], cfg: StackConfig) -> bool:
    return f["kind"] == "memory-pressure" and f["target"] == "celery-redis" and cfg.celery_redis_policy.startswith("allkeys")


CELLS: dict[str, Callable[[Mapping[str, Any], StackConfig], bool]] = {
    "the gateway's broker link loses a reply (ambiguous publish)": _lose_reply_publish,
    "a Celery worker killed under early acks": _early_ack_kill,
    "the broker filled under allkeys-lru": _allkeys_fill,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=60)
    parser.add_argument("--examples", type=int, default=30)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--append", action="store_true")
    args = parser.parse_args()
    known = [s for d in (scenarios_dir(), transitions_dir()) for s in load_all(d)]

    def held(_s: Scenario, _seed: int, _folder: str) -> Trial:
        return Trial("held", 1.0)

    firsts: dict[str, list[int | None]] = {name: [] for name in CELLS}
    for seed in range(args.seeds):
        r = explore(run=held, seed=seed, max_time_s=1e9, examples=args.examples, space=Space(), known=known,
                    found_dir=Path(tempfile.mkdtemp(prefix="explore-draw-")), say=lambda _m: None)
        for name, wanted in CELLS.items():
            at = None
            for i, step in enumerate(r.examples, 1):
                cfg = StackConfig.for_tests().replace(**step.schedule["stack"])
                if any(wanted(f, cfg) for f in step.schedule["faults"]):
                    at = i
                    break
            firsts[name].append(at)
    rows = ["| hazard cell | drawn within 10 examples | within 15 | within 20 | median first example |",
            "|---|---|---|---|---|"]
    for name, ats in firsts.items():
        within = [sum(a is not None and a <= k for a in ats) for k in (10, 15, 20)]
        m = statistics.median_low([a if a is not None else args.examples + 1 for a in ats])
        rows.append(f"| {name} | {within[0]} of {args.seeds} | {within[1]} of {args.seeds} | {within[2]} of "
                    f"{args.seeds} | {m if m <= args.examples else f'not within {args.examples}'} |")
    head = ("# Generative chaos: where the search draws (no stack)\n\n"
            "Default space (any profile, `--max-faults 2`), every run held, so no discovery steers the draw. A "
            "10-minute search on this machine runs 15-26 examples.\n" if not args.append else "")
    with args.out.open("a" if args.append else "w") as out:
        out.write(f"{head}\n## {args.label}\n\n`benchmarks/chaos_explore_draw.py --seeds {args.seeds} --examples "
                  f"{args.examples}` (seeds 0-{args.seeds - 1}), code: {args.label}\n\n" + "\n".join(rows) + "\n")
    print("\n".join(rows))
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
