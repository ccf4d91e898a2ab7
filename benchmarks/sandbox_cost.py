"""What the sandbox's isolation costs per execution: before, uid-only, and with the namespaces.

Three sandboxes run the same trivial programs in one process, interleaved (each round runs every
variant once, in a rotating order), one execution at a time:

- ``before``: the sandbox as it was before the namespaces (``system_under_test/executor/sandbox.py``
  at commit ``BEFORE_REV``, loaded from git): the executor forks the submission itself, with the
  slot's uid and an empty network namespace;
- ``uid``: today's sandbox with ``namespaces=False`` (``SANDBOX_NAMESPACES=false``): the same
  isolation, through the fork server and the per-execution supervisor;
- ``namespaces``: today's default: also mount, PID, IPC and UTS namespaces and the jail's root.

The time is the wall-clock time of ``Sandbox.run`` as the executor sees it (start to result, working
directory set-up and removal included). The process first imports the executor's web app, so it is
as large as an executor: the ``before`` variant forks it for every execution. Needs root.

Usage: ``.venv/bin/python benchmarks/sandbox_cost.py [--n 60]``; writes ``benchmarks/results/sandbox_cost.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import system_under_test.executor.app  # noqa: F401 - an executor-sized process (see the docstring)
from system_under_test.executor.sandbox import Limits, Sandbox

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results" / "sandbox_cost.md"
BEFORE_REV = "24695b2"  # main before the namespaces: the uid + network namespace sandbox
LIMITS = Limits(timeout_s=10.0, cpu_s=11)
PROGRAMS = {"python print(1)": ("print(1)", "python"), "bash exit 0": ("exit 0", "bash")}


def load_before() -> Any:
    """The old sandbox module, from git (it imports only the standard library)."""
    try:
        source = subprocess.run(["git", "-C", str(ROOT), "show", f"{BEFORE_REV}:system_under_test/executor/sandbox.py"],
                                capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        sys.exit(f"cannot read the old sandbox at {BEFORE_REV} from git in {ROOT}: {exc}; run from a clone "
                 "with the project's history")
    path = Path(tempfile.mkdtemp()) / "sandbox_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("sandbox_before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def ms(samples: list[float]) -> str:
    return f"{statistics.median(samples):6.1f} ms (p95 {statistics.quantiles(samples, n=20)[18]:5.1f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=60, help="executions per variant and program")
    n = parser.parse_args().n
    if os.geteuid() != 0:
        sys.exit("the namespaces and the uid drop need root: run this benchmark as root")
    old = load_before()
    boxes: dict[str, Any] = {
        "before": old.Sandbox(concurrency=1, uid_base=63500),
        "uid": Sandbox(concurrency=1, uid_base=63510, namespaces=False),
        "namespaces": Sandbox(concurrency=1, uid_base=63520),
    }
    limits = {"before": old.Limits(timeout_s=10.0, cpu_s=11), "uid": LIMITS, "namespaces": LIMITS}
    names = list(boxes)
    times: dict[tuple[str, str], list[float]] = {(v, p): [] for v in names for p in PROGRAMS}
    inside: dict[tuple[str, str], list[float]] = {(v, p): [] for v in names for p in PROGRAMS}
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    load = os.getloadavg()[0]
    try:
        for i in range(n + 5):
            order = names[i % 3:] + names[: i % 3]
            for program, (code, language) in PROGRAMS.items():
                for variant in order:
                    run: Callable[..., Any] = boxes[variant].run
                    t0 = time.perf_counter()
                    result = run(code, language, limits[variant])
                    elapsed = (time.perf_counter() - t0) * 1000
                    assert result.exit_code == 0 and result.output in ("", "1\n"), result
                    if i >= 5:  # the first rounds warm caches and start the fork servers
                        times[(variant, program)].append(elapsed)
                        inside[(variant, program)].append(result.duration_ms)
    finally:
        for variant in ("uid", "namespaces"):
            boxes[variant].close()
    write(n, times, inside, rss_kb, load)


def write(n: int, times: dict[tuple[str, str], list[float]], inside: dict[tuple[str, str], list[float]],
          rss_kb: int, load: float) -> None:
    lines = [
        "# What the sandbox's isolation costs per execution",
        "",
        f"Measured {dt.date.today().isoformat()} on this machine (2 cores, shared with other work: load average "
        f"{load:.1f} at the start), as root, one "
        f"execution at a time, n = {n} per cell, the three variants interleaved (rotating order). Median (p95) "
        f"of the wall-clock time of `Sandbox.run` (start to result), and the sandbox's own `duration_ms`. "
        f"The measuring process is executor-sized ({rss_kb // 1024} MiB peak RSS).",
        "",
        "- **before**: the sandbox before the namespaces (commit " + BEFORE_REV + "): the executor forks the "
        "submission; uid + empty network namespace",
        "- **uid**: today's sandbox, `SANDBOX_NAMESPACES=false`: same isolation, through the fork server",
        "- **namespaces**: today's default: + mount, PID, IPC, UTS namespaces and the jail's root",
        "",
        "| program | variant | Sandbox.run | duration_ms | vs before (median) |",
        "|---|---|---|---|---|",
    ]
    for program in PROGRAMS:
        base = statistics.median(times[("before", program)])
        for variant in ("before", "uid", "namespaces"):
            t = times[(variant, program)]
            delta = statistics.median(t) - base
            lines.append(f"| {program} | {variant} | {ms(t)} | {ms(inside[(variant, program)])} | "
                         f"{'' if variant == 'before' else f'{delta:+.1f} ms ({delta / base:+.0%})'} |")
    lines += ["", f"Command: `{Path(sys.executable).parent.parent.name}/bin/python benchmarks/sandbox_cost.py --n {n}`", ""]
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
