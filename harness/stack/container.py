"""One container of the containers stack: start it, wait until it is healthy, fault it, remove it.

A :class:`Spec` says what one container runs (image, command, environment, user, capabilities,
published ports, bind mounts, readiness check); :class:`ContainerComponent` turns it into a
Testcontainers container on the stack's network, reachable there by its component name. ``init``
(docker-init) is PID 1, so SIGTERM reaches the role and zombies are reaped. Ports are published on
127.0.0.1 only, at the host ports the spec names (chosen by the stack before start), so a restarted
container keeps its URL.

Readiness is a check run on the host (Redis PING, HTTP health routes, the workers' ready log line),
plugged in as a Testcontainers wait strategy. A component that exits or does not become healthy
raises ``ComponentExited`` / ``ReadinessTimeout`` with its name, its last log lines and a hint.
``kill`` is SIGKILL to init, ``terminate`` SIGTERM with a grace period before SIGKILL,
``pause``/``resume`` the cgroup freezer, ``restart`` stops and starts the same container and waits
for health. ``remove`` saves the container's whole log to ``<run>/logs/<component>.log`` first.
"""

from __future__ import annotations

import contextlib
import math
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import requests

from harness.errors import ComponentExited, ReadinessTimeout, StackError
from harness.run import RunFolder
from harness.stack.container_cleanup import run_labels

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.network import Network

HOST = "127.0.0.1"
SERVICE_USER = "crucible"  # every role but the executors (see the Dockerfile)
_GONE = ("exited", "dead", "removing")


# -- readiness checks ---------------------------------------------------------------------------------

Probe = Callable[["ContainerComponent"], bool]  # a readiness check, run on the host


def http_probe(url: str) -> Probe:
    return lambda _c: requests.get(url, timeout=1.0).status_code == 200


def redis_probe(port: int) -> Probe:
    def check(_c: ContainerComponent) -> bool:
        with socket.create_connection((HOST, port), timeout=1.0) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    return check


def proxy_probe(api: str, names: list[str]) -> Probe:
    """The proxy answers and every link's proxy exists (loaded from its config file)."""
    def check(_c: ContainerComponent) -> bool:
        resp = requests.get(f"{api}/proxies", timeout=1.0)
        return resp.status_code == 200 and set(names) <= set(resp.json())
    return check


class LogLineProbe:
    """Ready once a line that ``matches`` appeared since the last (re)start. A container's log keeps
    its earlier runs, so a restart takes the count before it as the baseline."""

    def __init__(self, matches: Callable[[str], bool]) -> None:
        self.matches = matches

    def counts(self, component: ContainerComponent) -> int:
        return component.count_log_lines(self.matches)

    def __call__(self, component: ContainerComponent) -> bool:
        return self.counts(component) > component.log_baseline


def contains(needle: str) -> Callable[[str], bool]:
    return lambda line: needle in line


def celery_ready(name: str) -> Callable[[str], bool]:
    """Celery logs ``<name>@<host> ready.`` once it consumes from its queues."""
    return lambda line: name + "@" in line and "ready." in line


def _readiness_strategy(component: ContainerComponent) -> Any:
    """A Testcontainers wait strategy that runs the component's readiness check."""
    from testcontainers.core.waiting_utils import WaitStrategy

    class ReadinessWait(WaitStrategy):
        def wait_until_ready(self, container: Any) -> None:
            component.wait_ready()

    return ReadinessWait().with_startup_timeout(math.ceil(component.ready_timeout_s))


# -- one component ------------------------------------------------------------------------------------


@dataclass
class Spec:
    """What one container runs."""

    name: str
    image: str
    command: list[str]
    env: dict[str, str]
    probe: Probe
    hint: str
    user: str | None = SERVICE_USER
    ports: dict[int, int] = field(default_factory=dict)  # container port -> host port (127.0.0.1)
    volumes: list[tuple[str, str, str]] = field(default_factory=list)  # host, container, mode
    cap_add: list[str] = field(default_factory=list)
    url: str | None = None


class ContainerComponent:
    """A component of the stack running as one container; the ComponentHandle of the protocol."""

    def __init__(self, spec: Spec, run: RunFolder, network: Network, ready_timeout_s: float,
                 cancel: threading.Event) -> None:
        from testcontainers.core.container import DockerContainer

        self.name = spec.name
        self.spec = spec
        self.run = run
        self.ready_timeout_s = ready_timeout_s
        self.hint = spec.hint
        self.log_path = run.logs / f"{spec.name}.log"
        self.log_baseline = 0
        self.paused = False
        self._ready_seen = False
        self._cancel = cancel
        self._removed = False
        kwargs: dict[str, Any] = {"labels": run_labels(run, spec.name), "hostname": spec.name, "init": True}
        if spec.user:
            kwargs["user"] = spec.user
        if spec.cap_add:
            kwargs["cap_add"] = spec.cap_add
        container = (DockerContainer(spec.image)
                     .with_name(f"crucible-{run.run_id}-{spec.name}")
                     .with_command(spec.command)
                     .with_envs(**spec.env)
                     .with_network(network)
                     .with_network_aliases(spec.name)
                     .with_kwargs(**kwargs))
        container.image = spec.image  # a local image: no TESTCONTAINERS_HUB_IMAGE_NAME_PREFIX
        ports = cast("dict[str, Any]", container.ports)
        for inside, outside in spec.ports.items():
            ports[f"{inside}/tcp"] = (HOST, outside)  # published on the loopback interface only
        for host_path, inside_path, mode in spec.volumes:
            container.with_volume_mapping(host_path, inside_path, mode)
        container.waiting_for(_readiness_strategy(self))
        self.container: DockerContainer = container

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> float:
        """Create and start the container, then wait until it is healthy; returns seconds waited."""
        from docker.errors import APIError

        started = time.monotonic()
        try:
            self.container.start()
        except APIError as exc:
            reason = getattr(exc, "explanation", None) or str(exc)
            raise StackError(f"{self.name}: its container could not start: {reason}\n  hint: {self.hint}") from exc
        return time.monotonic() - started

    def wait_ready(self, timeout_s: float | None = None) -> float:
        """Block until the readiness check passes; ComponentExited / ReadinessTimeout with the log tail."""
        limit = self.ready_timeout_s if timeout_s is None else timeout_s
        started = time.monotonic()
        delay = 0.05
        while True:
            if self._cancel.is_set():
                raise StackError(f"{self.name}: start cancelled")
            state = self._state()
            if state.get("Status") in _GONE:
                raise ComponentExited(self.name, state.get("ExitCode"), self.logs(15), self.hint)
            if state.get("Status") == "running":
                with contextlib.suppress(Exception):
                    if self.spec.probe(self):
                        self._ready_seen = True
                        return time.monotonic() - started
            waited = time.monotonic() - started
            if waited >= limit:
                raise ReadinessTimeout(self.name, waited, self.logs(15), self.hint)
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    def remove(self) -> None:
        """Save the container's whole log to the run folder, then remove the container; idempotent."""
        if self._removed:
            return
        self._removed = True
        from docker.errors import NotFound

        wrapped = self._wrapped()
        if wrapped is not None:
            if self.paused:
                with contextlib.suppress(Exception):
                    wrapped.unpause()
            with contextlib.suppress(Exception):
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                self.log_path.write_bytes(wrapped.logs(stdout=True, stderr=True))
            with contextlib.suppress(NotFound):
                wrapped.remove(force=True, v=True)
        with contextlib.suppress(Exception):
            self.container.get_docker_client().client.close()

    # -- faults -------------------------------------------------------------------------------------

    def kill(self) -> None:
        """SIGKILL (to the container's init: everything in the container dies at once)."""
        wrapped = self._require()
        if self.paused:
            self.resume()
        with contextlib.suppress(Exception):
            wrapped.kill()
        self._wait_not_running(10)
        self._ready_seen = False

    def terminate(self, grace_s: float = 10.0) -> None:
        """SIGTERM (forwarded by init to the role), SIGKILL after ``grace_s``."""
        wrapped = self._require()
        if self.paused:
            self.resume()
        wrapped.stop(timeout=max(math.ceil(grace_s), 0))
        self._wait_not_running(grace_s + 10)
        self._ready_seen = False

    def pause(self) -> None:
        """Freeze every process of the container (cgroup freezer, like SIGSTOP)."""
        self._require().pause()
        self.paused = True

    def resume(self) -> None:
        self._require().unpause()
        self.paused = False

    def restart(self, grace_s: float = 3.0) -> float:
        """Stop (SIGTERM, SIGKILL after ``grace_s``) and start the same container; seconds until healthy."""
        wrapped = self._require()
        if self.paused:
            self.resume()
        self.log_baseline = self._baseline()
        self._ready_seen = False
        if self._state().get("Status") == "running":
            wrapped.stop(timeout=max(math.ceil(grace_s), 0))
        started = time.monotonic()
        wrapped.start()
        self.wait_ready()
        return time.monotonic() - started

    # -- observation --------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        pid = self._state().get("Pid")
        return int(pid) if pid else None

    @property
    def container_id(self) -> str | None:
        wrapped = self._wrapped()
        return None if wrapped is None else str(wrapped.short_id)

    def alive(self) -> bool:
        return self._state().get("Status") in ("running", "paused", "restarting")

    def healthy(self) -> bool:
        if self._state().get("Status") != "running" or self.paused:
            return False
        try:
            return bool(self.spec.probe(self))
        except Exception:
            return False

    def logs(self, last: int | None = None) -> list[str]:
        wrapped = self._wrapped()
        if wrapped is None or self._removed:
            try:
                lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
            except FileNotFoundError:
                return []
        else:
            try:
                lines = wrapped.logs(stdout=True, stderr=True).decode("utf-8", errors="replace").splitlines()
            except Exception:
                return []
        return lines if last is None else lines[-last:]

    def count_log_lines(self, matches: Callable[[str], bool]) -> int:
        return sum(1 for line in self.logs() if matches(line))

    # -- helpers ------------------------------------------------------------------------------------

    def _baseline(self) -> int:
        probe = self.spec.probe
        return probe.counts(self) if isinstance(probe, LogLineProbe) else 0

    def _wrapped(self) -> Any:
        return getattr(self.container, "_container", None)

    def _require(self) -> Any:
        wrapped = self._wrapped()
        if wrapped is None or self._removed:
            raise StackError(f"{self.name} has no container (not started, or the stack was stopped)")
        return wrapped

    def _state(self) -> dict[str, Any]:
        wrapped = self._wrapped()
        if wrapped is None or self._removed:
            return {}
        try:
            wrapped.reload()
        except Exception:
            return {}
        state: dict[str, Any] = wrapped.attrs.get("State") or {}
        return state

    def _wait_not_running(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self._state().get("Status") in ("running", "restarting") and time.monotonic() < deadline:
            time.sleep(0.05)
