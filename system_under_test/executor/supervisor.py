"""The supervisor of one execution: it starts the submission, decides how it ended, and leaves nothing.

The fork server forks one supervisor per execution (see ``forkserver``). It runs the submission's
**main process** (the interpreter given the submission's source) and writes one report line of JSON
for the executor: the main process's wait status, whether the deadline killed it, and the CPU time
and peak memory of everything the submission ran. A supervisor never raises: a failure of its own
becomes ``{"error": ...}`` in the report.

How an execution ends (the same rule in every isolation mode):

- the wall-clock deadline starts when the main process is forked;
- a main process that exits on its own before the supervisor kills it is never a timeout: its result
  is its own exit status, even if the deadline passed while it was exiting;
- at the deadline, a main process still running is SIGKILLed: ``timed_out`` with exit code 137;
- whatever the submission started in the background (children, daemons, ``setsid`` escapees) is
  killed as soon as the main process has ended, and never changes the result; what such processes
  wrote before that moment is kept.

Modes (``isolation`` in the request):

- ``namespaces`` (root): new mount, PID, network, IPC and UTS namespaces. The supervisor is the PID
  namespace's init (PID 1): it builds the submission's root (``jail``), runs the main process as the
  slot's uid, and at the end kills every other process of the namespace (``kill(-1)``) and reaps
  them: all of them were its children or were re-parented to it. If the supervisor dies, the kernel
  kills the namespace's every process.
- ``uid`` (root, namespaces turned off): the slot's uid and an empty network namespace only; the
  supervisor is a child subreaper, so orphans come back to it, and it kills its children and every
  process of the uid until none is left.
- ``user`` (not root): the service's own user; subreaper and children as in ``uid``, no uid sweep.

Resource use comes from ``getrusage(RUSAGE_CHILDREN)`` of the supervisor once it has reaped
everything: user + system CPU of all the submission's processes, and the largest peak resident set
size among them (KiB). They are forked from the small fork server, never from the executor, so the
numbers are the submission's; a child's peak RSS starts at its parent's resident size when it
forks, so it is about 10 MiB at least.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import select
import signal
import time
from typing import Any, Literal, NoReturn, TypedDict

from system_under_test.executor import jail

Isolation = Literal["namespaces", "uid", "user"]
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_libc = ctypes.CDLL(None, use_errno=True)


class LimitsDoc(TypedDict):
    timeout_s: float
    cpu_s: int
    memory_bytes: int
    max_procs: int
    file_bytes: int


class Request(TypedDict):
    """What the executor asks for: one line of JSON through the fork server."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    uid: int | None
    isolation: Isolation
    limits: LimitsDoc
    readonly: list[str]  # extra host directories the jail shows read-only (the interpreter's)
    root_base: str  # an empty directory for the jail's root (filled in by the fork server)


def report(fd: int, doc: dict[str, Any]) -> None:
    """One JSON line, in a single write (below PIPE_BUF, so it is never torn)."""
    line = json.dumps(doc)
    if len(line) > 3000:
        line = json.dumps({**doc, "error": str(doc.get("error", ""))[:2500]})
    os.write(fd, line.encode() + b"\n")


def _die_with_parent() -> None:
    parent = os.getppid()
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


_own_pid_ns: int | None = None  # the fork server's own PID namespace, to return to after each fork


def start(req: Request, out_fd: int, err_fd: int, report_fd: int, *, server_fd: int) -> int:
    """In the fork server: fork this execution's supervisor and return its pid.

    ``server_fd`` is the fork server's socket, which the supervisor closes first (a supervisor that
    held it would keep requests sent to a dead fork server waiting instead of failing).

    In the ``namespaces`` mode the supervisor is forked into a new PID namespace, as its PID 1: the
    fork server enters it for this one fork only (``unshare``, then ``setns`` back to its own).
    Its pid goes first into the report: the executor's handle should the supervisor ever hang.
    """
    global _own_pid_ns
    own = None
    if req["isolation"] == "namespaces":
        if _own_pid_ns is None:
            _own_pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        own = _own_pid_ns
        jail.unshare(jail.CLONE_NEWPID)
    try:
        pid = os.fork()
        if pid == 0:
            with contextlib.suppress(OSError):
                os.close(server_fd)
                if _own_pid_ns is not None:
                    os.close(_own_pid_ns)
            supervise(req, out_fd, err_fd, report_fd)  # never returns
    finally:
        if own is not None:
            jail.setns(own, jail.CLONE_NEWPID)
    report(report_fd, {"pid": pid})
    return pid


def supervise(req: Request, out_fd: int, err_fd: int, report_fd: int) -> NoReturn:
    """Run one execution and report on ``report_fd``; runs in a fresh child of the fork server."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the fork server ignores it; we wait
        _die_with_parent()
        os.setsid()
        uid = req["uid"]
        if req["isolation"] == "namespaces":  # and this process is PID 1 of its own PID namespace
            jail.unshare(jail.NAMESPACES & ~jail.CLONE_NEWPID)
            jail.enter(req["root_base"], workdir=req["cwd"], uid=uid if uid is not None else 0,
                       readonly=req["readonly"])
            report(report_fd, _run(req, out_fd, err_fd, pid1=True))
        else:
            _libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # orphans come back to us
            if req["isolation"] == "uid":
                jail.unshare(jail.CLONE_NEWNET)
            report(report_fd, _run(req, out_fd, err_fd, pid1=False))
        code = 0
    except BaseException as exc:  # noqa: BLE001 - reported, and this process must never return
        with contextlib.suppress(OSError):
            report(report_fd, {"error": f"{type(exc).__name__}: {exc}"})
    finally:
        os._exit(code)


def _run(req: Request, out_fd: int, err_fd: int, *, pid1: bool) -> dict[str, Any]:
    """Fork the main process, wait for it or the deadline, end everything else; the report."""
    wake_r, wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    signal.set_wakeup_fd(wake_w)  # SIGCHLD wakes the select below: no exit goes unnoticed
    signal.signal(signal.SIGCHLD, lambda *_: None)
    exec_r, exec_w = os.pipe2(os.O_CLOEXEC)
    uid, limits = req["uid"], req["limits"]
    nproc = limits["max_procs"] if uid is not None else len(pids_of(os.getuid())) + limits["max_procs"]
    main = os.fork()
    if main == 0:
        _exec_main(req, out_fd, err_fd, exec_w, nproc)
    deadline = time.monotonic() + limits["timeout_s"]
    for fd in (out_fd, err_fd, exec_w):
        os.close(fd)
    status, timed_out = _wait_main(main, deadline, wake_r)
    _end_the_rest(uid, wake_r, pid1=pid1)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    failure = os.read(exec_r, 4096).decode("utf-8", errors="replace")  # every writer is gone by now
    if failure:
        return {"error": f"cannot start {req['argv'][0]}: {failure}"}
    return {"status": status, "timed_out": timed_out, "cpu_ms": round((usage.ru_utime + usage.ru_stime) * 1000, 3),
            "peak_rss_kb": usage.ru_maxrss}


def _exec_main(req: Request, out_fd: int, err_fd: int, exec_w: int, nproc: int) -> NoReturn:
    try:
        os.setsid()
        uid = req["uid"]
        if uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        limits = req["limits"]
        resource.setrlimit(resource.RLIMIT_CPU, (limits["cpu_s"], limits["cpu_s"] + 1))
        resource.setrlimit(resource.RLIMIT_AS, (limits["memory_bytes"], limits["memory_bytes"]))
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_bytes"], limits["file_bytes"]))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # after setuid, which clears it
        os.chdir(req["cwd"])
        stdin = os.open("/dev/null", os.O_RDONLY)
        os.dup2(stdin, 0)
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        signal.set_wakeup_fd(-1)
        # Every disposition back to the default, as a fresh container process has them: SIG_IGN survives exec,
        # and whatever started the executor may ignore some (nohup ignores SIGHUP; a background job of a
        # non-interactive shell ignores SIGINT and SIGQUIT), so `kill -HUP $$` would not end the program.
        for sig in signal.valid_signals():
            if sig not in (signal.SIGKILL, signal.SIGSTOP):
                with contextlib.suppress(OSError, ValueError):
                    signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        os.closerange(3, exec_w)
        os.closerange(exec_w + 1, 1 << 20)
        os.execve(req["argv"][0], req["argv"], req["env"])
    except BaseException as exc:  # noqa: BLE001 - told to the supervisor through exec_w
        with contextlib.suppress(OSError):
            os.write(exec_w, f"{type(exc).__name__}: {exc}".encode())
    os._exit(127)


def _main_ended(main: int) -> bool:
    """Reap every other child that has ended; whether the main process has (it is left unreaped)."""
    while True:
        info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if info is None:
            return False
        if info.si_pid == main:
            return True
        os.waitpid(info.si_pid, 0)


def _wait_main(main: int, deadline: float, wake_r: int) -> tuple[int, bool]:
    """The main process's wait status, and whether the deadline killed it."""
    killed = False
    while not _main_ended(main):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            # Still running at the deadline. If it exits on its own before the kill lands, waitpid
            # returns its own status, and that is its result.
            os.kill(main, signal.SIGKILL)
            killed = True
            break
        select.select([wake_r], [], [], remaining)
        _drain(wake_r)
    # Its group goes with it, while its unreaped pid still names that group and nothing else.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(main, signal.SIGKILL)
    _, status = os.waitpid(main, 0)
    return status, killed and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


def _end_the_rest(uid: int | None, wake_r: int, *, pid1: bool) -> None:
    """Kill and reap every process the submission left; returns when this process has no child."""
    while _has_children():
        if pid1:
            with contextlib.suppress(ProcessLookupError):
                os.kill(-1, signal.SIGKILL)  # from a namespace's init: every other process in it
        else:  # orphans come back to this subreaper, so killing its children round by round ends them all
            for pid in _children_of(os.getpid()) + (pids_of(uid) if uid is not None else []):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        select.select([wake_r], [], [], 0.005)
        _drain(wake_r)


def _has_children() -> bool:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True


def _drain(fd: int) -> None:
    with contextlib.suppress(BlockingIOError):
        while os.read(fd, 512):
            pass


def _proc_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _children_of(parent: int) -> list[int]:
    children = []
    for pid in _proc_pids():
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                if int(fh.read().rsplit(b")", 1)[1].split()[1]) == parent:
                    children.append(pid)
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
    return children


def pids_of(uid: int) -> list[int]:
    """Every process of ``uid`` on this host (or in this PID namespace)."""
    pids = []
    for pid in _proc_pids():
        try:
            if os.stat(f"/proc/{pid}").st_uid == uid:
                pids.append(pid)
        except FileNotFoundError:
            continue
    return pids
