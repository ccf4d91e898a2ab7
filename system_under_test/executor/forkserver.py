"""The fork server: a small process that starts every execution of one executor.

The executor is a large process (FastAPI, uvicorn, their imports). A process forked from it starts
with the executor's resident memory, and the kernel carries that into the peak RSS of everything it
later runs, even across ``exec``: measured from such a fork, ``print(1)`` would "use" as much memory
as the executor. So the executor never forks a submission itself. At its first execution it starts
this fork server, a fresh interpreter (``-I -S``: no site, standard library only) that imports just
the supervisor and the jail, and sends it one request per execution over a Unix seqpacket socket:
the request as JSON and, as ancillary data, the write ends of the execution's stdout, stderr and
report pipes. The fork server forks a ``supervisor`` for it and goes back to waiting; the kernel
reaps the supervisors (SIGCHLD ignored). Forking a small process is also cheaper than forking the
executor.

The fork server runs as the executor's user (root in the isolated modes) in the executor's process
group, and exits when the executor closes the socket or dies (end of file), taking its supervisors
with it (they die with their parent). ``ForkServer`` is the executor's side.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

_PROJECT_ROOT = str(Path(__file__).resolve().parents[2])
_MAX_REQUEST = 1 << 20
_FDS_PER_REQUEST = 3  # stdout, stderr, report
_OWNER_VAR = "HARNESS_OWNER"  # passed on, so that the harness's orphan reaping recognises us


class ForkServerError(RuntimeError):
    """The fork server could not be started or reached."""


class ForkServer:
    """The executor's handle on its fork server; started on first use, restarted if it died."""

    def __init__(self, python: str = sys.executable) -> None:
        self.python = python
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def submit(self, request: dict[str, Any], fds: list[int]) -> None:
        """Ask for one execution; ``fds`` (stdout, stderr, report write ends) are duplicated over.

        Raises ForkServerError if the fork server cannot be started, or cannot be reached even
        after a restart (a restart happens only once the old one is known to be broken).
        """
        payload = json.dumps(request).encode()
        for attempt in (1, 2):
            sock = self._connected()
            try:
                socket.send_fds(sock, [payload], fds)
                return
            except OSError as exc:
                with self._lock:
                    if self._sock is sock:  # not restarted by another thread meanwhile
                        self._stop()
                if attempt == 2:
                    raise ForkServerError(f"the executor's fork server does not take requests: {exc}") from exc
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Stop the fork server (it exits at the end of its socket); safe to call twice."""
        with self._lock:
            self._stop()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def _connected(self) -> socket.socket:
        with self._lock:
            if self._sock is None or self._proc is None or self._proc.poll() is not None:
                self._stop()
                self._start()
            assert self._sock is not None
            return self._sock

    def _start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        boot = (f"import sys; sys.path.insert(0, {_PROJECT_ROOT!r}); "
                f"from system_under_test.executor.forkserver import serve; serve({theirs.fileno()})")
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
               "TMPDIR": tempfile.gettempdir()}
        if _OWNER_VAR in os.environ:
            env[_OWNER_VAR] = os.environ[_OWNER_VAR]
        try:
            self._proc = subprocess.Popen([self.python, "-I", "-S", "-c", boot], env=env, stdin=subprocess.DEVNULL,
                                          pass_fds=[theirs.fileno()], close_fds=True)
        except OSError as exc:
            ours.close()
            raise ForkServerError(f"cannot start the fork server with {self.python}: {exc}") from exc
        finally:
            theirs.close()
        self._sock = ours

    def _stop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._proc is not None:
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None


def serve(fd: int) -> None:
    """The fork server's loop (in its own process): one supervisor per request, until end of file."""
    from system_under_test.executor import supervisor

    sock = socket.socket(fileno=fd)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps finished supervisors
    root_base = tempfile.mkdtemp(prefix="crucible-root-")  # stays empty: each jail mounts over it privately
    try:
        while True:
            payload, fds, _, _ = socket.recv_fds(sock, _MAX_REQUEST, _FDS_PER_REQUEST)
            if not payload:
                return  # the executor is gone
            if len(fds) != _FDS_PER_REQUEST:
                print(f"fork server: a request came with {len(fds)} descriptors, expected "
                      f"{_FDS_PER_REQUEST}; ignored", file=sys.stderr, flush=True)
                for extra in fds:
                    os.close(extra)
                continue
            request = json.loads(payload)
            request["root_base"] = root_base
            try:
                supervisor.start(request, *fds, server_fd=sock.fileno())
            except OSError as exc:  # cannot fork or enter a namespace: the executor hears of it
                with contextlib.suppress(OSError):
                    supervisor.report(fds[2], {"error": f"the fork server cannot start an execution: {exc}"})
            finally:
                for passed in fds:
                    os.close(passed)
    except KeyboardInterrupt:  # Ctrl-C reaches the executor's whole process group
        return
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(root_base)
