"""Run one untrusted submission in a sandbox and capture its result.

The sandbox is what every executor (executor-1/2/3) does with a submission:

- a fresh temporary working directory, removed afterwards; a scrubbed environment; no stdin;
- a wall-clock timeout; rlimits on CPU time, address space, number of processes and file size (and
  no core files);
- an output cap per stream: output beyond the cap is read and discarded, and ``truncated`` is set,
  so a program that writes cap + 1 bytes ends exactly as it would have without the cap;
- isolation, in one of three modes (``Sandbox.isolation``):

  - ``namespaces`` (the executor runs as root; the default): each execution slot runs as its own
    unprivileged uid, and each execution gets its own mount, PID, network, IPC and UTS namespaces.
    The submission sees its working directory, a private ``/tmp`` and, read-only, only what its
    interpreter needs (``jail``); its own processes only (its own ``/proc``); no network, not even
    loopback. The checkout, the run folders, the ledgers, other executions' directories, ``/root``,
    ``/home``, ``/work``, the host's ``/tmp`` and every other process do not exist for it. Root is
    exempt from ``RLIMIT_NPROC``, so the uid drop is also what contains a fork bomb.
  - ``uid`` (root with ``namespaces=False``, ``SANDBOX_NAMESPACES=false``): the slot's uid and an
    empty network namespace only: the host's filesystem (where other users may read) and process
    table stay visible. This was the root sandbox before the namespaces; it is kept to measure them.
  - ``user`` (the executor is not root): the service's own user, with ``RLIMIT_NPROC`` set above that
    user's process count, and with the network and the whole host visible: weaker, and said so at
    executor start-up.

How an execution ends (decided in one place, the supervisor, see ``supervisor``): a main process
that exits on its own is never a timeout and keeps its own exit code, even when it ends a moment
before the deadline; one still running at the deadline is killed and reported ``timed_out`` with 137.
Whatever it started in the background is killed as soon as the main process has ended and never
changes the result (what it wrote before then is kept). Exit codes follow the shell convention: a
program killed by signal N reports ``128 + N``. A limit shorter than ``MIN_TIMEOUT_S`` counts as
``MIN_TIMEOUT_S``: below it, whether a trivial program beats the clock is a race of the machine's
scheduling, and the two paths would not agree.

Each execution also reports its resource use: ``cpu_ms`` (user + system CPU time of all its
processes) and ``peak_rss_kb`` (the largest peak resident set size among them, in KiB; about 10 MiB
at least: a child starts with the resident size of the Python process it is forked from).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import selectors
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from system_under_test.contract import LANGUAGES, exit_code_of
from system_under_test.executor.forkserver import ForkServer, ForkServerError
from system_under_test.executor.supervisor import Isolation, pids_of

__all__ = ["LANGUAGES", "MIN_TIMEOUT_S", "Execution", "Isolation", "Limits", "Sandbox", "SandboxError",
           "UnsupportedLanguage", "default_python"]

MIN_TIMEOUT_S = 0.1
_SOURCE_NAME = {"python": "main.py", "bash": "main.sh"}
_SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
_READ_CHUNK = 65536
# How long past its deadline an execution may take to report before the executor kills its supervisor.
_BACKSTOP_S = 10.0


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
    """What one submission did: its output, how it ended, how long it took and what it used."""

    output: str
    error: str
    exit_code: int
    timed_out: bool
    truncated: bool
    duration_ms: float
    cpu_ms: float
    peak_rss_kb: int


class UnsupportedLanguage(ValueError):
    def __init__(self, language: str) -> None:
        super().__init__(f"unsupported language {language!r}: expected one of {', '.join(LANGUAGES)}")
        self.language = language


class SandboxError(RuntimeError):
    """The sandbox itself failed (never the submission): the execution did not run as asked."""


class Sandbox:
    """Runs submissions, at most ``concurrency`` at a time, each in its own execution slot."""

    def __init__(
        self,
        *,
        concurrency: int = 4,
        uid_base: int | None = None,
        python: str | None = None,
        bash: str = "/bin/bash",
        namespaces: bool = True,
    ) -> None:
        self.concurrency = concurrency
        self.uid_base = uid_base
        self.isolation: Isolation = (("namespaces" if namespaces else "uid") if os.geteuid() == 0 and uid_base is not None
                                     else "user")
        self.drop_privileges = self.isolation != "user"
        self.python = python or default_python(for_other_users=self.drop_privileges)
        self.bash = bash
        self._readonly: list[str] = []
        if self.isolation == "namespaces":
            # The jail has /usr and little else: run the interpreter by its real path, and show its
            # installation read-only when it lives elsewhere.
            self.python = os.path.realpath(self.python)
            prefix = os.path.dirname(os.path.dirname(self.python))
            if not prefix.startswith("/usr/"):
                self._readonly.append(prefix)
        self._slots: queue.Queue[int] = queue.Queue()
        for slot in range(concurrency):
            self._slots.put(slot)
        self.fork_server = ForkServer()

    def describe(self) -> str:
        """One line for the executor's start-up log: the isolation mode and what it means."""
        if self.isolation == "user":
            why = "the executor is not root" if os.geteuid() != 0 else "no slot uids were given"
            return (f"sandbox isolation 'user' (WEAKER): {why}, so submissions run as uid {os.getuid()} with the "
                    "network, the host's files and its processes visible; run the executor as root for per-slot "
                    "uids and mount, PID and network namespaces")
        uids = f"uids {self.uid_base}..{(self.uid_base or 0) + self.concurrency - 1}"
        if self.isolation == "uid":
            return (f"sandbox isolation 'uid' (SANDBOX_NAMESPACES=false): {uids} and an empty network namespace; "
                    "the host's files and processes stay visible")
        return (f"sandbox isolation 'namespaces': {uids}; own mount, PID, network, IPC and UTS namespaces "
                f"(working directory, private /tmp, read-only /usr); python {self.python}")

    def check(self) -> None:
        """Run a trivial program; raises SandboxError (what failed and what to do) if it cannot run."""
        try:
            result = self.run("exit 0", "bash", Limits(timeout_s=10, cpu_s=10))
        except SandboxError as exc:
            raise SandboxError(f"the sandbox cannot run a program ({self.isolation} isolation): {exc}. The "
                               "namespaces need CAP_SYS_ADMIN and a runtime that allows mount(2) (in Docker: "
                               "--cap-add SYS_ADMIN, and --security-opt apparmor=unconfined where AppArmor is on); "
                               "or set SANDBOX_NAMESPACES=false for the weaker uid-only isolation") from exc
        if result.exit_code != 0 or result.error:
            raise SandboxError(f"a trivial program failed in the sandbox: exit {result.exit_code}, {result.error!r}")

    def close(self) -> None:
        self.fork_server.close()

    def run(self, code: str, language: str, limits: Limits) -> Execution:
        """Run ``code`` and return its result; blocks while every slot is busy.

        Raises UnsupportedLanguage for a language other than python or bash, and SandboxError when the
        sandbox itself fails. Never raises because of what the submission does: that is its result.
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
        timeout_s = max(limits.timeout_s, MIN_TIMEOUT_S)
        request = {
            "argv": argv, "cwd": workdir, "uid": uid, "isolation": self.isolation, "readonly": self._readonly,
            "env": {"PATH": _SAFE_PATH, "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
                    "PYTHONIOENCODING": "utf-8", "PYTHONDONTWRITEBYTECODE": "1"},
            "limits": {"timeout_s": timeout_s, "cpu_s": limits.cpu_s, "memory_bytes": limits.memory_bytes,
                       "max_procs": limits.max_procs, "file_bytes": limits.file_bytes},
        }
        for attempt in (1, 2):
            started = time.monotonic()
            out, err, report, truncated = self._start_and_collect(request, limits.output_bytes, uid,
                                                                  backstop=started + timeout_s + _BACKSTOP_S)
            if report or attempt == 2:
                break
            # Not even the supervisor's first line: the request reached a fork server that was
            # dying, and nothing ran. Once more, on a fresh fork server.
        duration_ms = (time.monotonic() - started) * 1000.0
        ended = _final(report)
        exit_code = exit_code_of(os.waitstatus_to_exitcode(int(ended["status"])))
        return Execution(
            output=out.decode("utf-8", errors="replace"),
            error=err.decode("utf-8", errors="replace"),
            exit_code=exit_code,
            timed_out=bool(ended["timed_out"]),
            truncated=truncated,
            duration_ms=round(duration_ms, 3),
            cpu_ms=float(ended["cpu_ms"]),
            peak_rss_kb=int(ended["peak_rss_kb"]),
        )

    def _start_and_collect(self, request: dict[str, Any], cap: int, uid: int | None, *,
                           backstop: float) -> tuple[bytearray, bytearray, bytearray, bool]:
        pipes = [os.pipe() for _ in range(3)]  # stdout, stderr, report
        try:
            self.fork_server.submit(request, [w for _, w in pipes])
        except ForkServerError as exc:
            for r, _ in pipes:
                os.close(r)
            raise SandboxError(str(exc)) from exc
        finally:
            for _, w in pipes:
                os.close(w)
        return self._collect([r for r, _ in pipes], cap, uid, backstop=backstop)

    def _collect(self, fds: list[int], cap: int, uid: int | None, *,
                 backstop: float) -> tuple[bytearray, bytearray, bytearray, bool]:
        """Read stdout, stderr (each up to ``cap``) and the report until every writer is gone.

        The supervisor ends everything before it exits, so all three reach end of file together. If it
        has not reported by ``backstop`` (it never should), it is killed; its processes die with it.
        """
        out, err, report = bytearray(), bytearray(), bytearray()
        buffers = dict(zip(fds, (out, err, report), strict=True))
        truncated = False
        killed = False
        with selectors.DefaultSelector() as sel:
            for fd in fds:
                sel.register(fd, selectors.EVENT_READ)
            while sel.get_map():
                now = time.monotonic()
                if now >= backstop:
                    if killed:
                        break
                    self._kill_supervisor(report, uid)
                    killed, backstop = True, now + 2.0
                for key, _ in sel.select(timeout=backstop - now):
                    chunk = os.read(key.fd, _READ_CHUNK)
                    if not chunk:
                        sel.unregister(key.fd)
                        continue
                    buf = buffers[key.fd]
                    if buf is not report and len(chunk) > cap - len(buf):
                        truncated = True
                        chunk = chunk[: max(cap - len(buf), 0)]
                    buf.extend(chunk)
        for fd in fds:
            os.close(fd)
        return out, err, report, truncated

    def _kill_supervisor(self, report: bytearray, uid: int | None) -> None:
        for line in _report_lines(report):
            if "pid" in line:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(line["pid"]), signal.SIGKILL)
        if uid is not None:  # the weaker modes' leftovers; a namespace dies with its supervisor
            for pid in pids_of(uid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def _report_lines(report: bytearray) -> list[dict[str, Any]]:
    return [json.loads(line) for line in report.decode("utf-8", errors="replace").splitlines() if line.strip()]


def _final(report: bytearray) -> dict[str, Any]:
    """The supervisor's verdict; SandboxError if it failed or never gave one.

    The report holds the supervisor's pid (written by the fork server) and its verdict (written by
    the supervisor), in either order.
    """
    verdicts = [line for line in _report_lines(report) if "pid" not in line]
    if verdicts and "error" in verdicts[-1]:
        raise SandboxError(f"the execution's supervisor failed: {verdicts[-1]['error']}")
    if not verdicts or "status" not in verdicts[-1]:
        raise SandboxError("the execution's supervisor ended without a verdict (killed, or the fork server died)")
    return verdicts[-1]


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
