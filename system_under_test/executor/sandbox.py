"""Run one untrusted submission in a sandboxed subprocess and capture its result.

The sandbox is what every executor (executor-1/2/3) does with a submission:

- a fresh temporary working directory, removed afterwards;
- a scrubbed environment (nothing of the service's own environment leaks in) and no stdin;
- a wall-clock timeout that kills the whole process group;
- rlimits on CPU time, address space, number of processes and file size (and no core files);
- an output cap per stream: output beyond the cap is read and discarded, and ``truncated`` is set,
  so a program that writes cap + 1 bytes ends exactly as it would have without the cap;
- when the executor runs as root, each execution slot runs as its own unprivileged uid. Root is
  exempt from ``RLIMIT_NPROC``, so without the uid drop a fork bomb would not be contained; with it,
  the per-uid process limit holds, the submission cannot read the service's ``/proc/<pid>/environ``
  or root-only files, and every process of that uid is killed when the execution ends (even ones
  that escaped the process group with ``setsid``). The submission also gets an empty network
  namespace: no connection to the platform's Redis instances, executors or the outside. Without root the submission runs as the service
  user with ``RLIMIT_NPROC`` set above that user's current process count and with the network: weaker,
  and documented.

Exit codes follow the shell convention: a program killed by signal N reports ``128 + N``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

LANGUAGES = ("python", "bash")

_SOURCE_NAME = {"python": "main.py", "bash": "main.sh"}
_SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_CLONE_NEWNET = 0x40000000
_READ_CHUNK = 65536
# After the main process exits, children that still hold the output pipes get this long to finish.
_ORPHAN_GRACE_S = 0.1


@dataclass(frozen=True)
class Limits:
    """Resource limits for one execution."""

    timeout_s: float = 10.0
    cpu_s: int = 11
    memory_bytes: int = 256 * 1024 * 1024
    max_procs: int = 64
    file_bytes: int = 10 * 1024 * 1024
    output_bytes: int = 64 * 1024


@dataclass(frozen=True)
class Execution:
    """What one submission did: its output, how it ended and how long it took."""

    output: str
    error: str
    exit_code: int
    timed_out: bool
    truncated: bool
    duration_ms: float


class UnsupportedLanguage(ValueError):
    def __init__(self, language: str) -> None:
        super().__init__(f"unsupported language {language!r}: expected one of {', '.join(LANGUAGES)}")
        self.language = language


class Sandbox:
    """Runs submissions, at most ``concurrency`` at a time, each in its own execution slot."""

    def __init__(
        self,
        *,
        concurrency: int = 4,
        uid_base: int | None = None,
        python: str | None = None,
        bash: str = "/bin/bash",
    ) -> None:
        self.concurrency = concurrency
        self.drop_privileges = os.geteuid() == 0 and uid_base is not None
        self.python = python or default_python(for_other_users=self.drop_privileges)
        self.bash = bash
        self.uid_base = uid_base
        self._slots: queue.Queue[int] = queue.Queue()
        for slot in range(concurrency):
            self._slots.put(slot)
        self._libc = ctypes.CDLL(None, use_errno=True)
        # Orphans of a killed submission become our children, so we can reap them: zombies count
        # against RLIMIT_NPROC, and a slot must not be reused while its uid still owns any.
        self._libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

    def run(self, code: str, language: str, limits: Limits) -> Execution:
        """Run ``code`` and return its result; blocks while every slot is busy.

        Raises UnsupportedLanguage for a language other than python or bash. Never raises because
        of what the submission does: that is its result.
        """
        if language not in LANGUAGES:
            raise UnsupportedLanguage(language)
        slot = self._slots.get()
        try:
            return self._run_in_slot(slot, code, language, limits)
        finally:
            self._slots.put(slot)

    # ---------------------------------------------------------------------------------------------

    def _run_in_slot(self, slot: int, code: str, language: str, limits: Limits) -> Execution:
        uid = self.uid_base + slot if self.drop_privileges and self.uid_base is not None else None
        workdir = tempfile.mkdtemp(prefix="crucible-")
        try:
            source = os.path.join(workdir, _SOURCE_NAME[language])
            with open(source, "w", encoding="utf-8") as fh:
                fh.write(code)
            if uid is not None:
                os.chown(workdir, uid, uid)
                os.chown(source, uid, uid)
            os.chmod(workdir, 0o700)
            argv = (
                [self.python, "-I", "-B", source] if language == "python"
                else [self.bash, "--noprofile", "--norc", source]
            )
            return self._execute(argv, workdir, uid, limits)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _execute(self, argv: list[str], workdir: str, uid: int | None, limits: Limits) -> Execution:
        env = {
            "PATH": _SAFE_PATH,
            "HOME": workdir,
            "TMPDIR": workdir,
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "PYTHONIOENCODING": "utf-8",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        nproc = limits.max_procs if uid is not None else _processes_of(os.getuid()) + limits.max_procs
        libc = self._libc

        def limit_child() -> None:  # runs in the child between fork and exec
            if uid is not None:
                # An empty network namespace (not even loopback is up): the submission cannot reach
                # the platform's Redis, executors or anything else. It needs root, so it comes first.
                if libc.unshare(_CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET) failed")
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
            resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
            resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
            resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            # If the executor dies, its submission dies with it instead of running on unowned.
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

        started = time.monotonic()
        proc = subprocess.Popen(
            argv,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            close_fds=True,
            preexec_fn=limit_child,
        )
        assert proc.stdout is not None and proc.stderr is not None
        deadline = started + limits.timeout_s
        out, err = bytearray(), bytearray()
        captured = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
        truncated = False
        timed_out = False
        exited_at: float | None = None
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            sel.register(proc.stderr, selectors.EVENT_READ)
            while sel.get_map():
                now = time.monotonic()
                if exited_at is None and proc.poll() is not None:
                    exited_at = now
                if not timed_out and now >= deadline:
                    timed_out = True
                    self._kill_all(proc, uid)
                    deadline = now + 1.0  # the pipes close once every holder is dead
                elif timed_out and now >= deadline:
                    break  # a holder we cannot kill (no uid drop); stop reading
                if exited_at is not None and now - exited_at > _ORPHAN_GRACE_S:
                    self._kill_all(proc, uid)  # background children keep the pipes open
                    exited_at = float("inf")
                wait = min(deadline - now, 0.05)
                for key, _ in sel.select(timeout=max(wait, 0.0)):
                    chunk = os.read(key.fd, _READ_CHUNK)
                    if not chunk:
                        sel.unregister(key.fileobj)
                        continue
                    buf = captured[key.fd]
                    room = limits.output_bytes - len(buf)
                    if len(chunk) > room:
                        truncated = True
                        chunk = chunk[: max(room, 0)]
                    buf.extend(chunk)
        self._kill_all(proc, uid)
        returncode = proc.wait()
        self._sweep(uid)
        duration_ms = (time.monotonic() - started) * 1000.0
        proc.stdout.close()
        proc.stderr.close()
        exit_code = returncode if returncode >= 0 else 128 - returncode
        return Execution(
            output=out.decode("utf-8", errors="replace"),
            error=err.decode("utf-8", errors="replace"),
            exit_code=exit_code,
            timed_out=timed_out,
            truncated=truncated,
            duration_ms=round(duration_ms, 3),
        )

    def _kill_all(self, proc: subprocess.Popen[bytes], uid: int | None) -> None:
        """SIGKILL the submission's process group and, with a uid drop, every process of its uid."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        if uid is not None:
            for pid in _pids_of(uid):
                _kill(pid)

    def _sweep(self, uid: int | None) -> None:
        """Kill and reap every remaining process of the slot's uid (a fork bomb may still fork)."""
        if uid is None:
            return
        give_up = time.monotonic() + 5.0
        while time.monotonic() < give_up:
            pids = _pids_of(uid)
            if not pids:
                return
            for pid in pids:
                _kill(pid)
                with contextlib.suppress(ChildProcessError):  # only adopted orphans; never a Popen's
                    os.waitpid(pid, os.WNOHANG)
            time.sleep(0.002)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def default_python(*, for_other_users: bool) -> str:
    """The interpreter submissions run with: this one, unless an unprivileged uid cannot reach it."""
    candidates = [sys.executable, "/usr/local/bin/python3", "/usr/bin/python3"]
    if not for_other_users:
        return sys.executable
    for candidate in candidates:
        if os.path.exists(candidate) and _world_executable(os.path.realpath(candidate)):
            return candidate
    raise RuntimeError(
        "no Python interpreter is executable by other users (tried "
        + ", ".join(candidates) + "); set SANDBOX_PYTHON to one, or run the executor unprivileged"
    )


def _world_executable(path: str) -> bool:
    while True:
        if not os.stat(path).st_mode & 0o001:
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


def _pids_of(uid: int) -> list[int]:
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    pids.append(int(name))
            except FileNotFoundError:
                continue
    return pids


def _processes_of(uid: int) -> int:
    return len(_pids_of(uid))
