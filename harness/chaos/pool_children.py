"""Killing one prefork child of a Celery worker (the ``kill-pool-child`` fault of ``nemesis.py``).

Processes: the children of the worker's main process in ``/proc``; containers: ``docker exec`` of a
small Python script that does the same inside the container. A child that is running a task
(``busy_children``: ``celery inspect active`` gives its pid) is preferred, chosen from the seed; the
stop op names the pid and the task. Celery replaces the child; nothing to heal.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
from typing import Any

from harness.chaos.fault_error import FaultError


def children_of(pid: int) -> list[int]:
    """Live direct children of ``pid`` (from /proc; zombies left out), sorted."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError, PermissionError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(name))
    return sorted(out)


# Runs inside a worker's container. The Celery processes are those whose command line is a Celery
# worker's, leaving out pid 1 (docker-init, whose command line repeats the worker's); the main process
# is the one whose parent is not one of them, and its children are the pool. Prints the victim and the
# number of children, after killing the given pid if it is a child, else the one at the given index.
_CONTAINER_KILL_CHILD = r"""
import os, signal, sys
def read(p, name):
    with open(f"/proc/{p}/{name}", "rb") as fh:
        return fh.read()
procs = {}
for n in os.listdir("/proc"):
    if not n.isdigit() or int(n) in (1, os.getpid()):
        continue
    try:
        cmd = read(n, "cmdline").replace(b"\0", b" ").decode(errors="replace")
        ppid = int(read(n, "stat").decode().rsplit(")", 1)[1].split()[1])
    except Exception:
        continue
    if "celery" in cmd and "worker" in cmd and "docker-init" not in cmd:
        procs[int(n)] = ppid
mains = [p for p, pp in procs.items() if pp not in procs]
kids = sorted(p for p, pp in procs.items() if mains and pp == mains[0])
if not kids:
    print("none"); sys.exit(0)
wanted = int(sys.argv[2]) if len(sys.argv) > 2 else -1
victim = wanted if wanted in kids else kids[int(sys.argv[1]) % len(kids)]
os.kill(victim, signal.SIGKILL)
print(victim, len(kids))
"""


def busy_children(broker_url: str, worker: str, timeout_s: float = 0.5) -> dict[int, str]:
    """Pool child pid -> id of the task it runs now, from ``celery inspect active`` (empty if unknown).

    The pids are as the worker sees them (inside its container, for the containers launcher).
    """
    from celery import Celery

    app = Celery("chaos-inspect", broker=broker_url, set_as_current=False)
    app.conf.broker_transport_options = {"priority_steps": list(range(10)), "sep": ":",
                                         "queue_order_strategy": "priority"}
    try:
        # Only this worker, and stop at its reply: the answer must still be true when the kill lands.
        replies = app.control.inspect(timeout=timeout_s, limit=1, pattern=f"{worker}@*", matcher="glob").active() or {}
    except Exception:
        return {}
    finally:
        with contextlib.suppress(Exception):
            app.close()
    out: dict[int, str] = {}
    for name, tasks in replies.items():
        if not str(name).startswith(f"{worker}@"):
            continue
        for task in tasks or []:
            if task.get("worker_pid"):
                out[int(task["worker_pid"])] = str(task.get("id"))
    return out


def kill_pool_child(handle: Any, rng: random.Random, busy: dict[int, str] | None = None) -> dict[str, Any]:
    """SIGKILL one prefork child of a Celery worker; returns what was killed.

    A child running a task (``busy``: pid -> task id) is preferred, chosen by ``rng``; without one,
    any child.
    """
    busy = busy or {}
    container = getattr(handle, "container", None)
    if container is not None and getattr(handle, "proc", None) is None:
        wrapped = handle._require()
        choice = rng.choice(sorted(busy)) if busy else None
        argv = ["python", "-c", _CONTAINER_KILL_CHILD, str(rng.randrange(1 << 16))]
        if choice is not None:
            argv.append(str(choice))
        code, output = wrapped.exec_run(argv)
        text = (output or b"").decode(errors="replace").strip()
        if code != 0 or not text or text == "none":
            raise FaultError(f"{handle.name}: no pool child to kill in its container ({code}: {text})")
        victim, count = (int(x) for x in text.split()[:2])
        return {"pid": victim, "children": count, "task": busy.get(victim), "via": "docker exec"}
    pid = getattr(handle, "pid", None)
    if not pid:
        raise FaultError(f"{handle.name} has no process (is it running?)")
    kids = children_of(int(pid))
    if not kids:
        raise FaultError(f"{handle.name} (pid {pid}) has no pool children to kill")
    running = sorted(set(kids) & set(busy))
    victim = rng.choice(running) if running else rng.choice(kids)
    os.kill(victim, signal.SIGKILL)
    return {"pid": victim, "children": len(kids), "main_pid": int(pid), "task": busy.get(victim)}
