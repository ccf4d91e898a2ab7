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

Containers (each one a ``harness.stack.container.ContainerComponent``):

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
Everything carries the harness's labels, so what a SIGKILLed harness left is removed at the next
start, or by hand with ``python -m harness.stack.containers reap``; labels, that clean-up and the
Ryuk decision are in ``harness.stack.container_cleanup``.

Command line::

    python -m harness.stack.containers reap [--all] [--run RUN_ID]
    python -m harness.stack.containers ls
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

from harness.errors import StackError
from harness.run import RunFolder
from harness.stack import cleanup
from harness.stack.config import StackConfig
from harness.stack.container import (
    HOST,
    SERVICE_USER,
    ContainerComponent,
    LogLineProbe,
    Spec,
    celery_ready,
    contains,
    http_probe,
    proxy_probe,
    redis_probe,
)
from harness.stack.container_cleanup import (  # reap: tests import it from here
    configure_ryuk,
    owner_gone,
    reap,
    run_labels,
)
from harness.stack.images import (
    LABEL_OWNER,
    LABEL_RUN,
    DockerUnavailable,
    ImageSet,
    docker_client,
    ensure_images,
)
from harness.stack.ports import free_port
from harness.stack.protocol import LINKS, Endpoints, Link
from system_under_test.redis_server import redis_argv

if TYPE_CHECKING:
    from testcontainers.core.network import Network

log = logging.getLogger(__name__)

# Ports inside the containers (each container has its own network namespace).
REDIS_PORT, EXECUTOR_PORT, GATEWAY_PORT, FLOWER_PORT, PROXY_API_PORT = 6379, 8001, 8000, 5555, 8474
LINK_PORT_BASE = 20001  # the links' listen ports on the fault proxy container
PROXY_CONFIG = "/etc/crucible/faultproxy.json"
SANDBOX_UID_FLOOR = 100_000  # containers stacks' sandbox uids start here (see sandbox_uid_base)


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


# -- the stack ----------------------------------------------------------------------------------------


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
        self._endpoints: Endpoints | None = None
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

    @property
    def endpoints(self) -> Endpoints:
        """Where the running stack listens; raises StackError before it has started."""
        if self._endpoints is None:
            raise StackError(f"the {self.kind} stack has not started: enter it (``with``) or call start() first")
        return self._endpoints

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

        network = Network(docker_network_kw={"labels": run_labels(run), "driver": "bridge"})
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
                     {}, redis_probe(hp[name]), "Redis answers PING once it accepts connections",
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
            add(Spec("fault-proxy", self.images.fault_proxy, command, {}, proxy_probe(api, list(LINKS)),
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
                     http_probe(f"http://{HOST}:{hp[name]}/health"),
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
                     LogLineProbe(contains(needle)),
                     "the legacy worker prints '<id> ready' once connected to the main Redis"))

        celery_env = {**cfg.celery_env(), "CELERY_BROKER_URL": f"redis://{via('celery-worker-celery-redis')}/0",
                      "REDIS_URL": f"redis://{inner['main-redis']}/0",
                      "EXECUTOR_SERVICE_URL": f"http://{via('celery-executor-3')}" if cfg.celery_executor == "executor-3"
                      else f"http://{inner[cfg.celery_executor]}"}
        for name, queues, concurrency in cfg.celery_worker_specs():
            add(Spec(name, image, ["celery", "-A", "system_under_test.tasks", "worker", "-Q", ",".join(queues),
                                   "-c", str(concurrency), "-n", f"{name}@%h", "-l", "INFO",
                                   "--pool=prefork", "--without-mingle", "--without-gossip"],
                     celery_env, LogLineProbe(celery_ready(name)),
                     "a Celery worker logs '<name>@<host> ready.'"))

        add(Spec("gateway", image, ["python", "-m", "system_under_test.gateway"],
                 {**cfg.gateway_env(), "GATEWAY_HOST": "0.0.0.0", "GATEWAY_PORT": str(GATEWAY_PORT),
                  "REDIS_URL": f"redis://{via('gateway-main-redis')}/0",
                  "CELERY_BROKER_URL": f"redis://{via('gateway-celery-redis')}/0"},
                 http_probe(f"http://{HOST}:{hp['gateway']}/health"),
                 "GET /health answers 200 once both Redis instances are reachable (through the fault proxy)",
                 ports={GATEWAY_PORT: hp["gateway"]}, url=f"http://{HOST}:{hp['gateway']}"))

        if cfg.flower:
            add(Spec("flower", image, ["python", "-m", "system_under_test.flower"],
                     {"CELERY_BROKER_URL": f"redis://{inner['celery-redis']}/0", "FLOWER_HOST": "0.0.0.0",
                      "FLOWER_PORT": str(FLOWER_PORT), "FLOWER_UNAUTHENTICATED_API": "true"},
                     http_probe(f"http://{HOST}:{hp['flower']}/healthcheck"), "Flower serves /healthcheck when up",
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
        self._endpoints = Endpoints(
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
              + (" (owner gone)" if owner_gone(labels) else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
