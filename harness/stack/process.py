"""One local process of the stack: start it, wait until it is healthy, fault it, stop it.

Every component runs in its own process group (``start_new_session``), so a signal reaches the
component and everything it forked (a Celery worker's pool children, a submission's processes).
Its output goes to one log file in the run folder. ``kill`` is SIGKILL, ``terminate`` SIGTERM with
a grace period before SIGKILL, ``pause``/``resume`` SIGSTOP/SIGCONT, ``restart`` stops and starts
it again and waits for health.

Every process started here is recorded twice as belonging to the harness process that started it
(its ``<pid>:<start ticks>``): in its environment (``HARNESS_OWNER``), which its own children
inherit, and in a registry file under the temp directory (``HARNESS_REGISTRY``; owner-only), because
some programs (redis-server) overwrite their environment area. If the harness itself is SIGKILLed,
nothing can clean up at that moment; the next run calls ``reap_orphans()``, which finds processes whose owner is gone (by either
record, checking start ticks so a reused pid is never killed) and kills their groups.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from harness.errors import ComponentExited, ReadinessTimeout, StackError

OWNER_VAR = "HARNESS_OWNER"
REGISTRY = Path(os.environ.get("HARNESS_REGISTRY", os.path.join(tempfile.gettempdir(), f"harness-{os.getuid()}")))


def _start_ticks(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return None


def owner_token(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{_start_ticks(pid)}"


def _owner_alive(token: str) -> bool:
    pid_text, _, ticks = token.partition(":")
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    return _start_ticks(pid) == ticks


def _register(pid: int) -> None:
    # Owner-only (0700 folder, 0600 files): which processes belong to a stack is nobody else's business.
    REGISTRY.mkdir(mode=0o700, parents=True, exist_ok=True)
    REGISTRY.chmod(0o700)
    fd = os.open(REGISTRY / f"{owner_token().replace(':', '-')}.pids", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a") as fh:
        fh.write(f"{pid} {_start_ticks(pid)}\n")


def _kill_group_of(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(os.getpgid(pid), signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def reap_orphans() -> list[int]:
    """Kill the process groups of stack processes whose harness is gone; returns the pids."""
    killed: list[int] = []
    me = owner_token()
    if REGISTRY.is_dir():
        for file in REGISTRY.glob("*.pids"):
            token = file.stem.replace("-", ":", 1)
            if token == me or _owner_alive(token):
                continue
            for line in file.read_text().splitlines():
                pid_text, _, ticks = line.partition(" ")
                if pid_text.isdigit() and _start_ticks(int(pid_text)) == ticks:
                    _kill_group_of(int(pid_text))
                    killed.append(int(pid_text))
            file.unlink(missing_ok=True)
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as fh:
                environ = fh.read().split(b"\0")
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
        prefix = OWNER_VAR.encode() + b"="
        owner = next((e[len(prefix):].decode() for e in environ if e.startswith(prefix)), None)
        if owner is None or owner == me or _owner_alive(owner):
            continue
        _kill_group_of(int(name))
        killed.append(int(name))
    return killed


class ManagedProcess:
    """A component of the stack running as a local process group."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        env: dict[str, str],
        log_path: Path,
        ready: Callable[[], bool],
        ready_timeout_s: float = 20.0,
        hint: str = "",
        cwd: str | None = None,
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = {**env, OWNER_VAR: owner_token()}
        self.log_path = log_path
        self.ready = ready
        self.ready_timeout_s = ready_timeout_s
        self.hint = hint or f"read {log_path} for the whole log"
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.paused = False
        self.log_offset = 0

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the process (not waiting for health); raises StackError if it cannot be spawned."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
        # Where this start's output begins: a readiness check that reads the log must not pass on
        # the "ready" line of the previous start (restart appends to the same file).
        self.log_offset = log.tell()
        try:
            self.proc = subprocess.Popen(
                self.argv, env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        except OSError as exc:
            raise StackError(f"{self.name}: cannot run {self.argv[0]!r}: {exc}") from exc
        finally:
            log.close()
        _register(self.proc.pid)
        self.paused = False

    def wait_ready(self, timeout_s: float | None = None) -> float:
        """Block until the readiness check passes; returns seconds waited.

        Raises ComponentExited if the process dies first and ReadinessTimeout when time runs out;
        both carry the last log lines and a hint.
        """
        limit = self.ready_timeout_s if timeout_s is None else timeout_s
        started = time.monotonic()
        delay = 0.01
        while True:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise ComponentExited(self.name, code, self.logs(15), self.hint)
            with contextlib.suppress(Exception):
                if self.ready():
                    return time.monotonic() - started
            waited = time.monotonic() - started
            if waited >= limit:
                raise ReadinessTimeout(self.name, waited, self.logs(15), self.hint)
            time.sleep(delay)
            delay = min(delay * 1.5, 0.1)

    def stop(self, grace_s: float = 3.0) -> None:
        """SIGTERM the group, SIGKILL after ``grace_s``; idempotent."""
        if self.proc is None:
            return
        if self.paused:
            self.resume()
        if self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=grace_s)
        # Also kill what the component forked and left behind in its group.
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)

    # -- faults --------------------------------------------------------------------------------------

    def kill(self) -> None:
        """SIGKILL the whole group at once (no clean-up by the component)."""
        self._signal_group(signal.SIGKILL)
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
        self.paused = False

    def terminate(self, grace_s: float = 10.0) -> None:
        """SIGTERM to the main process only (a graceful shutdown), SIGKILL of the group after grace."""
        if self.proc is None or self.proc.poll() is not None:
            return
        if self.paused:
            self.resume()
        self.proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=grace_s)
        self._signal_group(signal.SIGKILL)

    def pause(self) -> None:
        self._signal_group(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self._signal_group(signal.SIGCONT)
        self.paused = False

    def restart(self, grace_s: float = 3.0) -> float:
        self.stop(grace_s)
        self.start()
        return self.wait_ready()

    # -- observation ---------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def healthy(self) -> bool:
        if not self.alive() or self.paused:
            return False
        try:
            return bool(self.ready())
        except Exception:
            return False

    def logs(self, last: int | None = None, since_start: bool = False) -> list[str]:
        """The log's lines (the ``last`` ones); with ``since_start``, only those of the current start."""
        try:
            with open(self.log_path, "rb") as fh:
                if since_start:
                    fh.seek(self.log_offset)
                text = fh.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return []
        lines = text.splitlines()
        return lines if last is None else lines[-last:]

    def _signal_group(self, sig: signal.Signals) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)
