"""The containers launcher: every component in its own container, through Testcontainers.

Same components, names, environment and endpoints as the processes launcher; only where they run
differs. Each role runs from the project image (``harness.stack.images``: built locally, tagged by
content, so an unchanged tree starts with no build) on a private Docker network, where components
find each other by alias (``main-redis``, ``celery-redis``, ``executor-1..3``, ``fault-proxy``,
``gateway``, ``flower``, ``legacy-worker-N``, ``celery-worker-N``). The host reaches them through
ports published on 127.0.0.1 only; :class:`~harness.stack.protocol.Endpoints` holds those host URLs
(for links: the proxy's published port as ``listen`` and the server's published port as
``upstream``). Every link of ``LINKS`` goes through the fault proxy container, as on processes: the
harness's own ``harness.faultproxy`` from the same image, or a real Toxiproxy when an image of
``ghcr.io/shopify/toxiproxy`` or ``shopify/toxiproxy`` is present locally (never pulled).

Containers:

- executors run as root with ``CAP_SYS_ADMIN`` (the sandbox gives each execution its own uid and
  an empty network namespace); every other role runs as the image's ``crucible`` user;
- the run folder's ``ledger/`` is bind-mounted into the executors at the same path, with
  ``EXECUTOR_LEDGER_PATH`` pointing into it, so the harness reads the ledgers where it always does
  (this needs a local engine: a bind mount names a path on the engine's machine);
- ``init`` (docker-init) is PID 1, so SIGTERM reaches the role and zombies are reaped;
- host ports are chosen before start and fixed, so a restarted component keeps its URL.

All containers are created and started at once and then waited on, each with its readiness check
(a Testcontainers wait strategy: Redis PING, HTTP health routes, the workers' ready log line).
A component that exits or does not become healthy fails the start with its name, its last log
lines and a hint, after everything already started has been removed.

Nothing is left behind: ``stop`` (also on an exception, Ctrl-C, SIGTERM and ``atexit``) saves every
container's log to ``<run>/logs/<component>.log`` and then removes the containers and the network.
Every container and network carries the labels ``crucible.harness.run=<run id>``,
``crucible.harness.owner=<pid>:<start ticks>`` and ``crucible.harness.host=<hostname>``; if the
harness is SIGKILLed, the next start (or ``python -m harness.stack.containers reap``) removes what
belongs to harness processes that are gone. Testcontainers' Ryuk reaper is used only when its
image is present locally; with no registry it cannot be pulled, so it is disabled and the label
clean-up does its job.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import socket
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import requests

from harness.errors import ComponentExited, ReadinessTimeout, StackError
from harness.run import RunFolder
from harness.stack import cleanup
from harness.stack.config import StackConfig
from harness.stack.images import (
    LABEL_HOST,
    LABEL_OWNER,
    LABEL_RUN,
    DockerUnavailable,
    ImageSet,
    docker_client,
    ensure_images,
    image_exists,
    owner_labels,
)
from harness.stack.ports import free_port
from harness.stack.process import owner_token
from harness.stack.protocol import LINKS, Endpoints, Link
from system_under_test.redis_server import redis_argv

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.network import Network

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
LABEL_COMPONENT = "crucible.harness.component"
LABEL_LOGS = "crucible.harness.logs"
# Ports inside the containers (each container has its own network namespace).
REDIS_PORT, EXECUTOR_PORT, GATEWAY_PORT, FLOWER_PORT, PROXY_API_PORT = 6379, 8001, 8000, 5555, 8474
LINK_PORT_BASE = 20001  # the links' listen ports on the fault proxy container
PROXY_CONFIG = "/etc/crucible/faultproxy.json"
SANDBOX_UID_FLOOR = 100_000  # containers stacks' sandbox uids start here (see sandbox_uid_base)
SERVICE_USER = "crucible"  # every role but the executors (see the Dockerfile)
_GONE = ("exited", "dead", "removing")


def sandbox_uid_base(run_id: str) -> int:
    """First sandbox uid of this stack's executor-1 (executor-2/3 follow, 64 uids each).

    Containers share the host's user namespace: a uid is the same uid in every container and on the
    host. The kernel counts RLIMIT_NPROC per uid across all of them, and an executor started as a
    local process (the processes launcher, uids 61000 + 64 n) sweeps *every* process of its slot's
    uid that it can see, which includes processes inside containers. So each containers stack takes
    its own range above 100000, chosen from its run id, away from the processes launcher's and,
    almost always, from any other containers stack's.
    """
    digest = int(hashlib.sha256(run_id.encode()).hexdigest(), 16)
    return SANDBOX_UID_FLOOR + 192 * (digest % 4096)


def _labels(run: RunFolder, component: str | None = None) -> dict[str, str]:
    labels = {**owner_labels(run.run_id), LABEL_LOGS: str(run.logs)}
    if component:
        labels[LABEL_COMPONENT] = component
    return labels


def _owner_gone(labels: dict[str, str]) -> bool:
    """The harness process that labelled this is gone (only judged for this host's own labels)."""
    if labels.get(LABEL_HOST) != socket.gethostname():
        return False
    token = labels.get(LABEL_OWNER, "")
    pid, _, _ = token.partition(":")
    return not pid.isdigit() or owner_token(int(pid)) != token


def reap(client: Any | None = None, *, run_id: str | None = None, everything: bool = False) -> list[str]:
    """Remove the harness's containers and networks; returns their names.

    With ``run_id``: those of that run. With ``everything``: all of them. Otherwise: those whose
    owning harness process (on this host) is gone. A container's log is saved into its run folder's
    ``logs/`` first when that folder still exists and has no log of that component yet.
    """
    from docker.errors import APIError, NotFound

    client = client or docker_client()
    selector = f"{LABEL_RUN}={run_id}" if run_id else LABEL_OWNER

    def chosen(labels: dict[str, str]) -> bool:
        return bool(run_id) or everything or _owner_gone(labels)

    removed: list[str] = []
    for container in client.containers.list(all=True, filters={"label": selector}):
        labels = container.labels or {}
        if not chosen(labels):
            continue
        logs_dir, component = labels.get(LABEL_LOGS), labels.get(LABEL_COMPONENT)
        if logs_dir and component and Path(logs_dir).is_dir() and not (Path(logs_dir) / f"{component}.log").exists():
            with contextlib.suppress(Exception):
                (Path(logs_dir) / f"{component}.log").write_bytes(container.logs())
        with contextlib.suppress(NotFound):
            container.remove(force=True, v=True)
            removed.append(container.name)
    for network in client.networks.list(filters={"label": selector}):
        if not chosen(network.attrs.get("Labels") or {}):
            continue
        for attempt in range(5):
            try:
                network.remove()
                removed.append(network.name)
                break
            except NotFound:
                break
            except APIError:  # an endpoint still being torn down
                time.sleep(0.2 * (attempt + 1))
    return removed


# -- readiness checks ---------------------------------------------------------------------------------

Probe = Callable[["ContainerComponent"], bool]  # a readiness check, run on the host


def _http_probe(url: str) -> Probe:
    return lambda _c: requests.get(url, timeout=1.0).status_code == 200


def _redis_probe(port: int) -> Probe:
    def check(_c: ContainerComponent) -> bool:
        with socket.create_connection((HOST, port), timeout=1.0) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    return check


def _proxy_probe(api: str, names: list[str]) -> Probe:
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


def _contains(needle: str) -> Callable[[str], bool]:
    return lambda line: needle in line


def _celery_ready(name: str) -> Callable[[str], bool]:
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
        kwargs: dict[str, Any] = {"labels": _labels(run, spec.name), "hostname": spec.name, "init": True}
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


# -- the stack ----------------------------------------------------------------------------------------



def configure_ryuk(client: Any) -> str:
    """Use Testcontainers' Ryuk only when its image is present locally; say what was decided."""
    from testcontainers.core.config import testcontainers_config as tc

    if tc.ryuk_disabled:
        return "disabled by configuration; leftovers are removed by label"
    if image_exists(client, tc.ryuk_image):
        return f"enabled ({tc.ryuk_image})"
    tc.ryuk_disabled = True
    return f"disabled: {tc.ryuk_image} is not present locally (no registry); leftovers are removed by label"


class ContainersStack:
    """``with ContainersStack(config) as stack:`` yields once every container is healthy."""

    kind = "containers"

    def __init__(self, config: StackConfig | None = None, run: RunFolder | None = None,
                 on_progress: Callable[[str, float], None] | None = None, *,
                 images: ImageSet | None = None, build_log: Callable[[str], None] | None = None) -> None:
        self.config = config or StackConfig()
        self.run = run or RunFolder.create()
        self.sandbox_uids = range(sandbox_uid_base(self.run.run_id), sandbox_uid_base(self.run.run_id) + 192)
        self.on_progress = on_progress
        self.images = images
        self.build_log = build_log
        self.components: dict[str, ContainerComponent] = {}
        self.endpoints: Endpoints | None = None
        self.startup_s: dict[str, float] = {}
        self.ryuk = "not started"
        self.network_name: str | None = None
        self._network: Network | None = None
        self._client: Any = None
        self._cancel = threading.Event()
        self._pool: ThreadPoolExecutor | None = None
        self._urls: dict[str, str] = {}
        self._in_network: dict[str, Any] = {}

    # -- protocol ---------------------------------------------------------------------------------------

    def __enter__(self) -> ContainersStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def component(self, name: str) -> ContainerComponent:
        try:
            return self.components[name]
        except KeyError:
            raise StackError(f"no component {name!r}; components: {sorted(self.components)}") from None

    def start(self) -> Endpoints:
        self._client = docker_client()  # DockerUnavailable, with how to start an engine
        self._cancel.clear()
        cleanup.track(self)
        try:
            with contextlib.suppress(Exception):
                gone = reap(self._client)
                if gone:
                    log.warning("removed %d containers/networks left by harness processes that are gone: %s",
                                len(gone), ", ".join(gone))
            if self.images is None:
                self.images = ensure_images(self._client, log=self.build_log)  # ImageBuildError
            self.ryuk = configure_ryuk(self._client)
            if not self.ryuk.startswith("disabled"):
                from testcontainers.core.container import Reaper

                Reaper.get_instance()  # once, before the parallel starts (it is not thread-safe)
            self._build()
            self._start_all()
        except BaseException:
            self.stop()
            raise
        self.run.write_run_json(seed=self.config.seed, launcher=self.kind, config=self.config.as_dict(),
                                extra={"endpoints": self.describe(), "images": dataclasses.asdict(self.images),
                                       "ryuk": self.ryuk, "network": self.network_name,
                                       "in_network": self._in_network})
        assert self.endpoints is not None
        return self.endpoints

    def stop(self) -> None:
        """Save every container's log, remove the containers and the network; safe to call twice."""
        self._cancel.set()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        components = list(self.components.values())
        if components:
            with ThreadPoolExecutor(max_workers=len(components)) as pool:
                for _ in pool.map(lambda c: c.remove(), components):
                    pass
        if self._network is not None:
            with contextlib.suppress(Exception):
                self._network.remove()
            with contextlib.suppress(Exception):
                self._network._docker.client.close()
            self._network = None
        if self._client is not None:
            with contextlib.suppress(Exception):  # anything of this run that escaped the above
                reap(self._client, run_id=self.run.run_id)
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None
        cleanup.untrack(self)

    def describe(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for name, comp in self.components.items():
            rows.append({"component": name, "pid": comp.pid, "container": comp.container_id,
                         "image": comp.spec.image, "url": self._urls.get(name), "log": str(comp.log_path)})
        return rows

    # -- starting -----------------------------------------------------------------------------------------

    def _start_all(self) -> None:
        """Start every container at once, then report each as it becomes healthy."""
        comps = list(self.components.values())
        t0 = time.monotonic()
        self._pool = ThreadPoolExecutor(max_workers=len(comps), thread_name_prefix="container-start")
        futures: dict[Future[float], ContainerComponent] = {self._pool.submit(c.start): c for c in comps}
        pending = set(futures)
        failure: BaseException | None = None
        while pending and failure is None:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: comps.index(futures[f])):
                error = future.exception()
                if error is not None:
                    failure = failure or error
                    continue
                name = futures[future].name
                self.startup_s[name] = time.monotonic() - t0
                if self.on_progress is not None:
                    self.on_progress(name, self.startup_s[name])
        if failure is not None:
            self._cancel.set()  # the others stop waiting; stop() (by the caller) removes everything
            raise failure
        self._pool.shutdown(wait=True)
        self._pool = None
        # Report in the processes launcher's order, whatever order they became healthy in.
        self.startup_s = {name: self.startup_s[name] for name in self.components}

    def _build(self) -> None:
        from testcontainers.core.network import Network

        assert self.images is not None
        cfg, run, image = self.config, self.run, self.images.sut
        names = ["main-redis", "celery-redis", "executor-1", "executor-2", "executor-3", "gateway", "flower",
                 "fault-proxy"]
        hp = {name: free_port() for name in names}  # host ports, fixed for the stack's life
        hp["gateway"] = cfg.gateway_port or hp["gateway"]
        hp["flower"] = cfg.flower_port or hp["flower"]
        inner = {"main-redis": f"main-redis:{REDIS_PORT}", "celery-redis": f"celery-redis:{REDIS_PORT}",
                 **{f"executor-{i}": f"executor-{i}:{EXECUTOR_PORT}" for i in (1, 2, 3)}}
        link_inner_port = {name: LINK_PORT_BASE + i for i, name in enumerate(LINKS)}
        link_hp = {name: free_port() for name in LINKS} if cfg.fault_proxy else {}

        network = Network(docker_network_kw={"labels": _labels(run), "driver": "bridge"})
        network.name = f"crucible-{run.run_id}"
        network.create()
        self._network, self.network_name = network, network.name

        def via(link: str) -> str:
            """The address a client inside the network dials for ``link``."""
            server = LINKS[link][1]
            return f"fault-proxy:{link_inner_port[link]}" if cfg.fault_proxy else inner[server]

        base_env = {"PYTHONUNBUFFERED": "1", "LANG": "C.UTF-8", **cfg.extra_env}
        specs: list[Spec] = []

        def add(spec: Spec) -> None:
            spec.env = {**base_env, **spec.env}
            specs.append(spec)
            if spec.url:
                self._urls[spec.name] = spec.url

        for name, maxmem, policy in (("main-redis", cfg.main_redis_maxmemory, cfg.main_redis_policy),
                                     ("celery-redis", cfg.celery_redis_maxmemory, cfg.celery_redis_policy)):
            add(Spec(name, image, redis_argv(port=REDIS_PORT, bind="0.0.0.0", maxmemory=maxmem,
                                             maxmemory_policy=policy, binary="redis-server", workdir="/tmp"),
                     {}, _redis_probe(hp[name]), "Redis answers PING once it accepts connections",
                     ports={REDIS_PORT: hp[name]}, url=f"redis://{HOST}:{hp[name]}/0"))

        if cfg.fault_proxy:
            config = [{"name": n, "listen": f"0.0.0.0:{link_inner_port[n]}", "upstream": inner[LINKS[n][1]],
                       "enabled": True} for n in LINKS]
            config_file = run.path / "faultproxy.json"
            config_file.write_text(json.dumps(config, indent=2))
            config_file.chmod(0o644)
            api = f"http://{HOST}:{hp['fault-proxy']}"
            assert self.images is not None
            if self.images.toxiproxy:
                command, user = ["-host=0.0.0.0", f"-port={PROXY_API_PORT}", f"-config={PROXY_CONFIG}"], None
            else:
                command = ["python", "-m", "harness.faultproxy", "--host", "0.0.0.0", "--port", str(PROXY_API_PORT),
                           "--config", PROXY_CONFIG, "--seed", str(cfg.seed)]
                user = SERVICE_USER
            add(Spec("fault-proxy", self.images.fault_proxy, command, {}, _proxy_probe(api, list(LINKS)),
                     "the fault proxy serves GET /proxies with every link once its config is loaded",
                     user=user, ports={PROXY_API_PORT: hp["fault-proxy"], **{link_inner_port[n]: link_hp[n] for n in LINKS}},
                     volumes=[(str(config_file), PROXY_CONFIG, "ro")], url=api))

        uid_base = sandbox_uid_base(run.run_id)
        for i in (1, 2, 3):
            name = f"executor-{i}"
            add(Spec(name, image, ["python", "-m", "system_under_test.executor"],
                     {**cfg.executor_env(), "EXECUTOR_ID": name, "EXECUTOR_HOST": "0.0.0.0",
                      "EXECUTOR_PORT": str(EXECUTOR_PORT), "EXECUTOR_LEDGER_PATH": str(run.ledger / f"{name}.jsonl"),
                      "SANDBOX_UID_BASE": str(uid_base + 64 * (i - 1))},
                     _http_probe(f"http://{HOST}:{hp[name]}/health"),
                     "the executor serves GET /health when up; it runs as root with CAP_SYS_ADMIN (sandbox uids, "
                     "an empty network namespace per submission)",
                     user=None, cap_add=["SYS_ADMIN"], ports={EXECUTOR_PORT: hp[name]},
                     volumes=[(str(run.ledger), str(run.ledger), "rw")], url=f"http://{HOST}:{hp[name]}"))

        legacy_env = {"REDIS_URL": f"redis://{via('legacy-main-redis')}/0",
                      "LEGACY_EXECUTOR_URLS": f"http://{via('legacy-executor-1')},http://{via('legacy-executor-2')}"}
        for i in range(1, cfg.legacy_workers + 1):
            name = f"legacy-worker-{i}"
            needle = f"{name} ready"  # the legacy worker's own ready line
            add(Spec(name, image, ["python", "-m", "system_under_test.legacy"], {**legacy_env, "LEGACY_WORKER_ID": name},
                     LogLineProbe(_contains(needle)),
                     "the legacy worker prints '<id> ready' once connected to the main Redis"))

        celery_env = {**cfg.celery_env(), "CELERY_BROKER_URL": f"redis://{via('celery-worker-celery-redis')}/0",
                      "REDIS_URL": f"redis://{inner['main-redis']}/0",
                      "EXECUTOR_SERVICE_URL": f"http://{via('celery-executor-3')}"}
        for i in range(1, cfg.celery_workers + 1):
            name = f"celery-worker-{i}"
            add(Spec(name, image, ["celery", "-A", "system_under_test.tasks", "worker", "-Q", ",".join(cfg.celery_queues),
                                   "-c", str(cfg.celery_concurrency), "-n", f"{name}@%h", "-l", "INFO",
                                   "--pool=prefork", "--without-mingle", "--without-gossip"],
                     celery_env, LogLineProbe(_celery_ready(name)),
                     "a Celery worker logs '<name>@<host> ready.'"))

        add(Spec("gateway", image, ["python", "-m", "system_under_test.gateway"],
                 {**cfg.gateway_env(), "GATEWAY_HOST": "0.0.0.0", "GATEWAY_PORT": str(GATEWAY_PORT),
                  "REDIS_URL": f"redis://{via('gateway-main-redis')}/0",
                  "CELERY_BROKER_URL": f"redis://{via('gateway-celery-redis')}/0"},
                 _http_probe(f"http://{HOST}:{hp['gateway']}/health"),
                 "GET /health answers 200 once both Redis instances are reachable (through the fault proxy)",
                 ports={GATEWAY_PORT: hp["gateway"]}, url=f"http://{HOST}:{hp['gateway']}"))

        if cfg.flower:
            add(Spec("flower", image, ["python", "-m", "system_under_test.flower"],
                     {"CELERY_BROKER_URL": f"redis://{inner['celery-redis']}/0", "FLOWER_HOST": "0.0.0.0",
                      "FLOWER_PORT": str(FLOWER_PORT), "FLOWER_UNAUTHENTICATED_API": "true"},
                     _http_probe(f"http://{HOST}:{hp['flower']}/healthcheck"), "Flower serves /healthcheck when up",
                     ports={FLOWER_PORT: hp["flower"]}, url=f"http://{HOST}:{hp['flower']}"))

        # Same order as the processes launcher: Redis, fault proxy, executors, workers, gateway, Flower.
        for spec in specs:
            self.components[spec.name] = ContainerComponent(spec, run, network, cfg.ready_timeout_s, self._cancel)

        server_hp = {"main-redis": hp["main-redis"], "celery-redis": hp["celery-redis"],
                     **{f"executor-{i}": hp[f"executor-{i}"] for i in (1, 2, 3)}}
        links = {}
        for name, (_, server) in LINKS.items():
            upstream = f"{HOST}:{server_hp[server]}"
            links[name] = Link(name, upstream, f"{HOST}:{link_hp[name]}" if cfg.fault_proxy else upstream)
        self._in_network = {"network": network.name,
                            "links": {n: {"listen": via(n), "upstream": inner[LINKS[n][1]]} for n in LINKS}}
        self.endpoints = Endpoints(
            gateway=f"http://{HOST}:{hp['gateway']}",
            flower=f"http://{HOST}:{hp['flower']}" if cfg.flower else None,
            main_redis=f"redis://{HOST}:{hp['main-redis']}/0",
            celery_redis=f"redis://{HOST}:{hp['celery-redis']}/0",
            executors={f"executor-{i}": f"http://{HOST}:{hp[f'executor-{i}']}" for i in (1, 2, 3)},
            proxy_api=f"http://{HOST}:{hp['fault-proxy']}" if cfg.fault_proxy else None,
            links=links,
        )


# -- command line ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.stack.containers",
                                     description="Housekeeping for the containers launcher.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("reap", help="remove containers and networks of harness runs whose process is gone")
    p.add_argument("--all", action="store_true", help="remove every harness container and network, live or not")
    p.add_argument("--run", help="remove those of one run id")
    sub.add_parser("ls", help="list the harness's containers")
    args = parser.parse_args(argv)
    try:
        client = docker_client()
    except DockerUnavailable as exc:
        print(f"containers: {exc}", file=sys.stderr)
        return 1
    if args.command == "reap":
        for name in reap(client, run_id=args.run, everything=args.all):
            print(f"removed {name}")
        return 0
    for c in client.containers.list(all=True, filters={"label": LABEL_OWNER}):
        labels = c.labels or {}
        print(f"{c.name:<48} {c.status:<10} run={labels.get(LABEL_RUN)} owner={labels.get(LABEL_OWNER)}"
              + (" (owner gone)" if _owner_gone(labels) else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
