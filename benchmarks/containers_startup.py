"""Cold start of the containers stack to all-healthy with its images cached, and teardown: median of N.

Each run starts the default stack in containers (both Redis, three executors, two legacy workers,
one Celery worker, the gateway, Flower and the fault proxy with its links, on a fresh Docker network)
from the already-built project image, records when each component became healthy (seconds since
the containers were started), then stops everything (logs saved, containers and network removed)
and times the teardown.

Also measured: the image check on an unchanged tree (hash of the build context, no build), and
optionally a full image build with no layer cache (``--nocache-build``, into a throwaway tag) and a
rebuild of the debootstrap base (``--rebuild-base``: runs ``scripts/prepare-docker.sh --rebuild-base
--no-images`` as root; the new base has a new id, so the project image is rebuilt too).

Usage: ``.venv/bin/python benchmarks/containers_startup.py [--runs 3] [--nocache-build] [--rebuild-base]``;
needs a Docker engine (``sudo scripts/prepare-docker.sh``); writes ``benchmarks/results/containers_startup.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from harness.run import PROJECT_ROOT, RunFolder
from harness.stack.config import StackConfig
from harness.stack.containers import ContainersStack
from harness.stack.images import build, default_wheelhouse, docker_client, ensure_images, image_id, plan_build

RESULTS = Path(__file__).parent / "results" / "containers_startup.md"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--nocache-build", action="store_true", help="also time a full build with no layer cache")
    parser.add_argument("--rebuild-base", action="store_true", help="also time the debootstrap base image (root)")
    args = parser.parse_args()
    client = docker_client()
    extra: list[str] = []
    if args.rebuild_base:
        t = time.monotonic()
        done = subprocess.run(["bash", str(PROJECT_ROOT / "scripts" / "prepare-docker.sh"), "--rebuild-base",
                               "--no-images"], capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"prepare-docker.sh failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        extra.append(f"- base image `crucible-base:bookworm` (debootstrap --variant=minbase + docker import): "
                     f"**{time.monotonic() - t:.1f} s**")
    t = time.monotonic()
    images = ensure_images(client)
    first = time.monotonic() - t
    if images.built:
        extra.append(f"- project image build after a change (layer cache as found): **{images.build_s:.1f} s** "
                     f"({first:.1f} s with the wheelhouse check)")
    t = time.monotonic()
    again = ensure_images(client)
    check = time.monotonic() - t
    assert not again.built
    extra.append(f"- image check on an unchanged tree (content hash, tag exists, no build): **{check:.2f} s**")
    if args.nocache_build:
        plan = plan_build(images.base, image_id(client, images.base), default_wheelhouse())
        tag = "crucible-sut:benchmark-nocache"
        seconds = build(client, plan, tag=tag, nocache=True)
        with contextlib.suppress(Exception):
            client.images.remove(tag)
        extra.append(f"- project image build with no layer cache (from the local base, wheelhouse): **{seconds:.1f} s**")

    starts: list[float] = []
    stops: list[float] = []
    per_component: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.runs):
            stack = ContainersStack(StackConfig(), RunFolder.create(Path(tmp)), images=images)
            t0 = time.monotonic()
            try:
                stack.start()
                starts.append(time.monotonic() - t0)
                for name, seconds in stack.startup_s.items():
                    per_component.setdefault(name, []).append(seconds)
            finally:
                t1 = time.monotonic()
                stack.stop()
                stops.append(time.monotonic() - t1)
    version = client.version()
    lines = [
        "# Containers stack: cold start to all-healthy (images cached), and teardown", "",
        f"Measured {dt.date.today()} on this machine (2 cores, noisy), {args.runs} runs, default StackConfig "
        f"({len(per_component)} containers), Docker {version.get('Version')} "
        f"({client.info().get('Driver')} storage), image `{images.sut}` from `{images.base}`, "
        f"fault proxy `{'Toxiproxy' if images.toxiproxy else 'harness.faultproxy'}`.", "",
        f"- **start: median {statistics.median(starts):.2f} s** (runs: {', '.join(f'{s:.2f}' for s in starts)}): "
        "network, 11 containers created and started at once, each waited on until healthy",
        f"- **teardown: median {statistics.median(stops):.2f} s** (runs: {', '.join(f'{s:.2f}' for s in stops)}): "
        "every log saved to the run folder, containers force-removed in parallel, network removed",
        *extra,
        "", "Breakdown: seconds from the start of all containers until each component was seen healthy "
        "(they start in parallel, so these overlap; the slowest sets the start time).", "",
        "| component | median healthy after |", "|---|---|",
    ]
    lines += [f"| {name} | {statistics.median(v):.2f} s |" for name, v in per_component.items()]
    command = ["--runs", str(args.runs)] + [f for f, on in (("--nocache-build", args.nocache_build),
                                                            ("--rebuild-base", args.rebuild_base)) if on]
    lines += ["", f"Command: `.venv/bin/python benchmarks/containers_startup.py {' '.join(command)}`"]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
