"""A dual-write smoke comparison: the evidence ``make run`` gathers until the full gate exists.

A fixed set of programs (stdout and stderr, unicode, no trailing newline, exit codes, an uncaught
exception, a signal death, a timeout, output over the cap, bash) goes through the gateway with
``route=both``; each evaluation's two observations (control = legacy, candidate = celery) are
compared on status, output, error, exit code, timed_out and truncated, after normalising the temp
paths and executor names that legitimately differ (the declared normalisers of
``harness/parity/normalisers.toml``). The verdict is PASS only when every evaluation finished on both
paths and matched; anything else is FAIL, and no evaluations at all is INCONCLUSIVE.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import requests

from harness.parity.compare import COMPARED_FIELDS as FIELDS
from harness.parity.compare import Observation, ParityConfig, compare

Verdict = Literal["PASS", "FAIL", "INCONCLUSIVE"]

PROGRAMS: list[tuple[str, str, str]] = [
    ("hello", "python", "print('hello')"),
    ("no trailing newline", "python", "import sys; sys.stdout.write('no newline')"),
    ("unicode", "python", "print('héllo wörld ✓ 🚀')"),
    ("crlf", "python", "import sys; sys.stdout.write('a\\r\\nb\\r\\n')"),
    ("stderr and stdout", "python", "import sys; print('out'); print('err', file=sys.stderr)"),
    ("exit 3", "python", "import sys; sys.exit(3)"),
    ("exit 255", "python", "import sys; sys.exit(255)"),
    ("sys.exit with a string", "python", "import sys; sys.exit('bad input')"),
    ("uncaught ValueError", "python", "raise ValueError('nope')"),
    ("syntax error", "python", "def f(:\n  pass"),
    ("signal death", "python", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"),
    ("timeout", "python", "import time; time.sleep(30)"),
    ("memory limit", "python", "x = bytearray(1 << 31)"),
    ("output over the cap", "python", "print('x' * 200000)"),
    ("bash echo", "bash", "echo hi; echo there >&2; exit 4"),
    ("bash printf", "bash", "printf 'a\\tb'"),
]


@dataclass(frozen=True)
class Comparison:
    name: str
    eval_id: str
    matched: bool
    differing: tuple[str, ...]
    control: dict[str, Any]
    candidate: dict[str, Any]


def compare_one(gateway: str, name: str, language: str, code: str, timeout_s: float,
                config: ParityConfig) -> Comparison:
    resp = requests.post(f"{gateway}/api/eval", json={"code": code, "language": language, "route": "both",
                                                       "timeout_s": timeout_s}, timeout=30)
    resp.raise_for_status()
    eval_id = resp.json()["eval_id"]
    record = requests.get(f"{gateway}/api/eval/{eval_id}", params={"wait": timeout_s + 30},
                          timeout=timeout_s + 40).json()
    control = record["results"].get("legacy", {})
    candidate = record["results"].get("celery", {})
    differing = compare(Observation.from_result(eval_id, "legacy", control),
                        Observation.from_result(eval_id, "celery", candidate), config).differing
    done = record["done"]
    return Comparison(name, eval_id, done and not differing, differing if done else ("not finished",),
                      control, candidate)


def run_smoke(gateway: str, out: Path, *, timeout_s: float = 2.0, concurrency: int = 4) -> tuple[Verdict, list[Comparison]]:
    started = time.monotonic()
    config = ParityConfig.load()
    with ThreadPoolExecutor(concurrency) as pool:
        comparisons = list(pool.map(lambda p: compare_one(gateway, p[0], p[1], p[2], timeout_s, config), PROGRAMS))
    verdict: Verdict = ("INCONCLUSIVE" if not comparisons
                        else "PASS" if all(c.matched for c in comparisons) else "FAIL")
    elapsed = time.monotonic() - started
    (out / "smoke.json").write_text(json.dumps([c.__dict__ for c in comparisons], indent=2, default=str))
    lines = [f"# Dual-write smoke comparison: {verdict}", "",
             f"{sum(c.matched for c in comparisons)}/{len(comparisons)} evaluations matched on "
             f"{', '.join(FIELDS)} (control = legacy, candidate = celery) in {elapsed:.1f}s.", "",
             "| program | eval id | matched | differing fields |", "|---|---|---|---|"]
    lines += [f"| {c.name} | `{c.eval_id[:8]}` | {'yes' if c.matched else 'NO'} | {', '.join(c.differing)} |"
              for c in comparisons]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    return verdict, comparisons
