"""Run Locust in a subprocess and turn what it wrote into the run folder's load files.

Locust is never imported here: importing it monkey-patches the process with gevent, which breaks
pytest, the stack and requests. ``LocustProcess`` starts ``python -m locust -f
harness/load/locustfile.py ...`` in its own process group (master and any ``--processes`` workers
together), copies its output to ``load/locust.log`` (and to the terminal for the CLI), and always
kills the whole group when it is left, even on an error or Ctrl-C.

``run_headless`` is the Python API the gate calls: a bounded headless run against a gateway URL
that returns a ``LoadSummary``. The files it leaves in the run folder:

- ``load_requests.parquet``: one row per request (``harness.load.rows``);
- ``load_stats.parquet``: per second and request kind: requests, failures, exact p50/p95/p99;
- ``load.json``: the options, the Locust command and its exit code;
- ``load/``: Locust's own ``locust_stats.csv``, ``locust_stats_history.csv``, ``locust_failures.csv``,
  ``locust_exceptions.csv``, ``locust.html`` and ``locust.log``, and ``rows/*.jsonl`` (the raw rows).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from harness.load.config import ENV_ROWS_DIR, LoadError, LoadOptions, Route, Shape
from harness.load.frames import LoadSummary, per_second, read_rows, summarise
from harness.run import RunFolder, workspace

LOCUSTFILE = Path(__file__).resolve().with_name("locustfile.py")
REQUESTS_FILE = "load_requests.parquet"
STATS_FILE = "load_stats.parquet"
LOCUST_OK_EXIT_CODES = (0, 1)  # 1: the run had failures (Locust's --exit-code-on-error), not a crash


def load_dir(run_folder: RunFolder | Path) -> Path:
    return _path(run_folder) / "load"


def rows_dir(run_folder: RunFolder | Path) -> Path:
    return load_dir(run_folder) / "rows"


def _path(run_folder: RunFolder | Path) -> Path:
    return run_folder.path if isinstance(run_folder, RunFolder) else Path(run_folder)


# -- the command line ----------------------------------------------------------------------------------


def locust_command(gateway_url: str, out: Path, options: LoadOptions, *, headless: bool,
                   web_port: int | None = None, master: dict[str, Any] | None = None,
                   run_time: bool = True) -> list[str]:
    """``python -m locust`` for this run. ``master``: ``{bind_host, bind_port, expect_workers}`` for --master.

    With the web UI, ``-u``/``-r`` (and ``-t`` unless ``run_time=False``) only fill in the start form.
    """
    argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "-H", gateway_url.rstrip("/"),
            "--csv", str(out / "locust"), "--csv-full-history", "--html", str(out / "locust.html"),
            "--stop-timeout", f"{options.stop_timeout_s:g}s", "--exit-code-on-error", "1",
            "-u", str(options.users), "-r", f"{options.spawn_rate:g}"]
    if headless or run_time:
        argv += ["-t", f"{options.duration_s:g}s"]
    if headless:
        argv += ["--headless", "--only-summary"]
    else:
        argv += ["--web-host", "127.0.0.1", "--web-port", str(web_port or 8089)]
    if options.processes is not None:
        argv += ["--processes", str(options.processes)]
    if master is not None:
        argv += ["--master", "--master-bind-host", str(master["bind_host"]),
                 "--master-bind-port", str(master["bind_port"]),
                 "--expect-workers", str(master["expect_workers"]),
                 "--expect-workers-max-wait", f"{master.get('max_wait_s', 120):g}"]
    return argv + options.custom_args()


def worker_command(master_host: str, master_port: int, *, processes: int | None = None) -> list[str]:
    """A Locust worker for a master elsewhere (its host, users and options come from the master)."""
    argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker",
            "--master-host", master_host, "--master-port", str(master_port)]
    return argv + (["--processes", str(processes)] if processes is not None else [])


def locust_env(options: LoadOptions | None, rows: Path) -> dict[str, str]:
    env = {**os.environ, ENV_ROWS_DIR: str(rows), "PYTHONUNBUFFERED": "1"}
    env.pop("LOCUST_SKIP_MONKEY_PATCH", None)
    if options is not None:
        env.update(options.env())
    return env


# -- the process -------------------------------------------------------------------------------------------


class LocustProcess:
    """``with LocustProcess(argv, env, log) as proc:`` runs Locust in its own process group; leaving kills it."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], log_path: Path, *, echo: IO[str] | None = None) -> None:
        self.argv = list(argv)
        self.env = env
        self.log_path = log_path
        self.echo = echo
        self.proc: subprocess.Popen[bytes] | None = None
        self._pump: threading.Thread | None = None

    def __enter__(self) -> LocustProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(self.argv, env=self.env, cwd=workspace(), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self._pump = threading.Thread(target=self._copy_output, name="locust-output", daemon=True)
        self._pump.start()

    def _copy_output(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        with open(self.log_path, "ab") as log:
            for line in iter(self.proc.stdout.readline, b""):
                log.write(line)
                log.flush()
                if self.echo is not None:
                    with contextlib.suppress(ValueError, OSError):
                        self.echo.write(line.decode("utf-8", "replace"))
                        self.echo.flush()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def poll(self) -> int | None:
        """The exit code once Locust has ended (its group is killed first), else None."""
        if self.proc is None:
            return None
        if self.proc.returncode is not None:
            return self.proc.returncode
        return self._reap() if self._exited() else None

    def wait(self, timeout_s: float) -> int:
        """The exit code; ``LoadError`` (after killing the group) if Locust is still running after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while (code := self.poll()) is None:
            if time.monotonic() >= deadline:
                self.stop()
                raise LoadError(f"Locust did not finish within {timeout_s:.0f} s and was killed; its log: "
                                f"{self.log_path}\n{self.tail()}")
            time.sleep(0.1)
        return code

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM to the group (Locust writes its stats and rows), SIGKILL after ``grace_s``; safe to call twice."""
        if self.proc is None or self.proc.returncode is not None:
            return
        for signum, patience in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
            if self._exited():
                break
            self._signal(signum)
            deadline = time.monotonic() + patience
            while not self._exited() and time.monotonic() < deadline:
                time.sleep(0.05)
        self._reap()

    def _exited(self) -> bool:
        """Has the leader ended? Checked without reaping it, so its process group id stays ours."""
        assert self.proc is not None
        try:
            return os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True

    def _reap(self) -> int:
        # Workers forked by --processes may outlive the master. Kill the group while the unreaped leader
        # still holds its id: once reaped, that number could be reused by an unrelated process group.
        assert self.proc is not None
        self._signal(signal.SIGKILL)
        code = self.proc.wait()
        if self._pump is not None:
            self._pump.join(timeout=5)
        return code

    def _signal(self, signum: int) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signum)

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except FileNotFoundError:
            return "    (no output)"
        return "\n".join(f"    {line}" for line in text) or "    (no output)"


# -- after the run -------------------------------------------------------------------------------------------


def collect(run_folder: RunFolder | Path, *, locust_exit_code: int | None = None) -> LoadSummary:
    """Read ``load/rows/*.jsonl`` and write ``load_requests.parquet`` and ``load_stats.parquet``.

    Raises ``LoadError`` when there is no row at all (nothing ran, or rows went elsewhere).
    """
    base = _path(run_folder)
    rows = rows_dir(base)
    requests = read_rows(rows)
    if requests.empty:
        raise LoadError(f"no request rows in {rows}: Locust made no request (see {load_dir(base) / 'locust.log'}); "
                        "for workers on other machines, copy their rows/*.jsonl here first")
    requests_path, stats_path = base / REQUESTS_FILE, base / STATS_FILE
    requests.to_parquet(requests_path, index=False)
    per_second(requests).to_parquet(stats_path, index=False)
    return summarise(requests, requests_path=requests_path, stats_path=stats_path, locust_exit_code=locust_exit_code)


def write_load_json(run_folder: RunFolder | Path, doc: dict[str, Any]) -> Path:
    target = _path(run_folder) / "load.json"
    target.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    return target


def deadline_s(options: LoadOptions, *, expect_workers_wait_s: float = 0.0) -> float:
    """How long a headless run may take before it is killed: run time, stop timeout, start-up and slack."""
    return options.duration_s + options.stop_timeout_s + expect_workers_wait_s + 60.0


def run_locust(gateway_url: str, run_folder: RunFolder | Path, options: LoadOptions, *, echo: IO[str] | None = None,
               master: dict[str, Any] | None = None) -> int:
    """A bounded headless Locust run; returns Locust's exit code (0, or 1 when a request failed).

    The rows land in ``load/rows/`` (with ``master``, on the workers' machines instead). Raises
    ``LoadError`` for a Locust that crashes or overruns its deadline (it is killed first).
    """
    out = load_dir(run_folder)
    rows = rows_dir(run_folder)
    rows.mkdir(parents=True, exist_ok=True)
    for stale in rows.glob("*.jsonl"):  # a second run into the same folder starts afresh
        stale.unlink()
    argv = locust_command(gateway_url, out, options, headless=True, master=master)
    doc: dict[str, Any] = {"gateway": gateway_url, "options": options.as_dict(), "command": argv,
                           "master": master, "started_at": time.time()}
    write_load_json(run_folder, doc)
    wait_extra = float(master.get("max_wait_s", 120)) if master else 0.0
    with LocustProcess(argv, locust_env(options, rows), out / "locust.log", echo=echo) as proc:
        code = proc.wait(deadline_s(options, expect_workers_wait_s=wait_extra))
        if code not in LOCUST_OK_EXIT_CODES:
            raise LoadError(f"Locust exited with code {code}; its log: {out / 'locust.log'}\n{proc.tail()}")
    write_load_json(run_folder, {**doc, "finished_at": time.time(), "locust_exit_code": code})
    return code


def run_headless(gateway_url: str, run_folder: RunFolder | Path, users: int, spawn_rate: float, duration_s: float,
                 shape: Shape | None = None, route: Route | None = None, *, echo: IO[str] | None = None,
                 **more: Any) -> LoadSummary:
    """A bounded headless Locust run against ``gateway_url``; the summary is read back from the parquet.

    ``more`` takes the other ``LoadOptions`` fields (``mode``, ``think_time_s``, ``seed``,
    ``processes``, ``stop_timeout_s``, ...). Raises ``LoadError`` for bad options, a Locust that
    crashes or overruns its deadline (it is killed), or a run without a single request.
    """
    options = LoadOptions(users=users, spawn_rate=spawn_rate, duration_s=duration_s, shape=shape, route=route, **more)
    code = run_locust(gateway_url, run_folder, options, echo=echo)
    return collect(run_folder, locust_exit_code=code)
