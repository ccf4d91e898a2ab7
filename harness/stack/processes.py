"""The processes launcher (the embedded default): the whole platform as local processes.

Both Redis servers, executor-1/2/3, the legacy workers, the Celery workers (prefork; which ones, with
which queues and concurrency, is ``StackConfig.celery_worker_specs``), the gateway and Flower run on
127.0.0.1 with free ports, each in its own process group with its own log file in
the run folder. Every network link named in ``LINKS`` can go through its own fault proxy, so a fault
targets exactly one link; without the proxy the links are direct.

All processes are spawned at once and then waited on one by one: the workers retry their brokers
until Redis is up, so start-up costs the slowest component, not the sum. If any component fails to
become healthy, everything already started is stopped before the error is raised.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from harness.errors import ComponentExited, StackError
from harness.run import RunFolder
from harness.stack import cleanup
from harness.stack.config import StackConfig
from harness.stack.ports import free_port, is_port_clash
from harness.stack.process import ManagedProcess, reap_orphans
from harness.stack.protocol import LINKS, Endpoints, Link
from system_under_test.redis_server import RedisBinaryNotFound, find_redis_server, redis_argv

HOST = "127.0.0.1"
log = logging.getLogger("harness.stack")
PORT_ATTEMPTS = 3  # starts on fresh ports when a component finds its port taken
SANDBOX_UID_FLOOR = 1_000_000  # processes stacks' sandbox uids (containers stacks use 100000 up)

def _http_ok(url: str) -> Callable[[], bool]:
    return lambda: requests.get(url, timeout=0.5).status_code == 200


def _redis_ok(port: int) -> Callable[[], bool]:
    import socket

    def check() -> bool:
        with socket.create_connection((HOST, port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    return check


def _log_says(proc_ref: list[ManagedProcess], needle: str) -> Callable[[], bool]:
    return lambda: any(needle in line for line in proc_ref[0].logs(200, since_start=True))


def _celery_ready(proc_ref: list[ManagedProcess], name: str) -> Callable[[], bool]:
    """Celery logs ``<name>@<host> ready.`` once it consumes from its queues."""
    return lambda: any(name + "@" in line and "ready." in line
                       for line in proc_ref[0].logs(400, since_start=True))




class ProcessesStack:
    """``with ProcessesStack(config) as stack:`` yields once every component is healthy."""

    kind = "processes"

    def __init__(self, config: StackConfig | None = None, run: RunFolder | None = None,
                 on_progress: Callable[[str, float], None] | None = None) -> None:
        self.config = config or StackConfig()
        self.on_progress = on_progress
        self.run = run or RunFolder.create()
        self.components: dict[str, ManagedProcess] = {}
        self._endpoints: Endpoints | None = None
        self.startup_s: dict[str, float] = {}
        # Executors sweep every process of their slots' uids, so two stacks on one host must not
        # share uids: each processes stack takes its own range of 3 × 64, chosen from its run id.
        digest = int(hashlib.sha256(self.run.run_id.encode()).hexdigest(), 16)
        self.sandbox_uids = range(SANDBOX_UID_FLOOR + 192 * (digest % 4096),
                                  SANDBOX_UID_FLOOR + 192 * (digest % 4096) + 192)

    # -- protocol ----------------------------------------------------------------------------------

    @property
    def endpoints(self) -> Endpoints:
        """Where the running stack listens; raises StackError before it has started."""
        if self._endpoints is None:
            raise StackError(f"the {self.kind} stack has not started: enter it (``with``) or call start() first")
        return self._endpoints

    def __enter__(self) -> ProcessesStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def component(self, name: str) -> ManagedProcess:
        try:
            return self.components[name]
        except KeyError:
            raise StackError(f"no component {name!r}; components: {sorted(self.components)}") from None

    def start(self) -> Endpoints:
        reap_orphans()
        try:
            binary = find_redis_server()
        except RedisBinaryNotFound as exc:
            raise StackError(str(exc)) from exc
        cleanup.track(self)
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                self._start_once(binary)
                break
            except ComponentExited as exc:
                self.stop()
                chosen_by_user = {"gateway": self.config.gateway_port, "flower": self.config.flower_port}
                if (not is_port_clash(exc.last_lines) or chosen_by_user.get(exc.component)
                        or attempt == PORT_ATTEMPTS):
                    raise
                # Another program took a port between our check and the component's bind: start
                # the whole stack again on fresh ports (the URLs are wired into every component).
                log.warning("%s found its port taken (attempt %d of %d); starting the stack again on fresh ports",
                            exc.component, attempt, PORT_ATTEMPTS)
                self.components.clear()
                self.startup_s.clear()
                cleanup.track(self)
            except BaseException:
                self.stop()
                raise
        self.run.write_run_json(seed=self.config.seed, launcher=self.kind, config=self.config.as_dict(),
                                extra={"endpoints": self.describe()})
        return self.endpoints

    def _start_once(self, redis_binary: str) -> None:
        self._build(redis_binary)
        t0 = time.monotonic()
        for proc in self.components.values():
            proc.start()
        for name, proc in self.components.items():
            proc.wait_ready(self.config.ready_timeout_s)
            self.startup_s[name] = time.monotonic() - t0
            if self.on_progress is not None:
                self.on_progress(name, self.startup_s[name])

    def stop(self) -> None:
        """Stop every component (workers first, Redis last); safe to call twice."""
        # Everything but Redis at once (so teardown costs the slowest, not the sum), then Redis.
        first = [c for n, c in self.components.items() if "redis" not in n]
        last = [c for n, c in self.components.items() if "redis" in n]
        for group in (first, last):
            with ThreadPoolExecutor(max_workers=max(len(group), 1)) as pool:
                for _ in pool.map(lambda c: c.stop(grace_s=2.0), group):
                    pass
        if self._external_proxy and self._endpoints is not None:
            for name in self.endpoints.links:  # leave a shared Toxiproxy as we found it
                with contextlib.suppress(requests.RequestException):
                    requests.delete(f"{self._external_proxy}/proxies/{name}", timeout=5)
        cleanup.untrack(self)

    def describe(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for name, proc in self.components.items():
            rows.append({"component": name, "pid": proc.pid, "url": self._urls.get(name),
                         "log": str(proc.log_path)})
        return rows

    # -- building ------------------------------------------------------------------------------------

    def _build(self, redis_binary: str) -> None:
        cfg = self.config
        ports = {name: free_port() for name in ("main-redis", "celery-redis", "executor-1", "executor-2",
                                                "executor-3", "gateway", "flower", "fault-proxy")}
        ports["gateway"] = cfg.gateway_port or ports["gateway"]
        ports["flower"] = cfg.flower_port or ports["flower"]
        self._urls: dict[str, str] = {}
        links = self._links(ports)

        def via(link: str) -> str:
            return links[link].listen

        main_redis_direct = f"redis://{HOST}:{ports['main-redis']}/0"
        celery_redis_direct = f"redis://{HOST}:{ports['celery-redis']}/0"
        base_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "PYTHONUNBUFFERED": "1", "LANG": "C.UTF-8",
                    **cfg.extra_env}
        py = sys.executable
        logs = self.run.logs

        def add(name: str, argv: list[str], env: dict[str, str], ready: Callable[[], bool], hint: str,
                url: str | None = None) -> ManagedProcess:
            proc = ManagedProcess(name, argv, env={**base_env, **env}, log_path=logs / f"{name}.log",
                                  ready=ready, ready_timeout_s=cfg.ready_timeout_s, hint=hint)
            self.components[name] = proc
            if url:
                self._urls[name] = url
            return proc

        for name, maxmem, policy in (("main-redis", cfg.main_redis_maxmemory, cfg.main_redis_policy),
                                     ("celery-redis", cfg.celery_redis_maxmemory, cfg.celery_redis_policy)):
            add(name, redis_argv(port=ports[name], maxmemory=maxmem, maxmemory_policy=policy,
                                 binary=redis_binary, workdir=str(self.run.path)),
                {}, _redis_ok(ports[name]), f"is port {ports[name]} free, and does {redis_binary} run?",
                url=f"redis://{HOST}:{ports[name]}/0")

        if cfg.fault_proxy and not self._external_proxy:
            config_file = self.run.path / "faultproxy.json"
            config_file.write_text(json.dumps(
                [{"name": ln.name, "listen": ln.listen, "upstream": ln.upstream, "enabled": True}
                 for ln in links.values()], indent=2))
            add("fault-proxy", [py, "-m", "harness.faultproxy", "--host", HOST, "--port", str(ports["fault-proxy"]),
                                "--config", str(config_file), "--seed", str(cfg.seed)],
                {}, _http_ok(f"http://{HOST}:{ports['fault-proxy']}/version"),
                "the fault proxy serves GET /version once every link's proxy is listening",
                url=f"http://{HOST}:{ports['fault-proxy']}")

        for i in (1, 2, 3):
            name = f"executor-{i}"
            add(name, [py, "-m", "system_under_test.executor"],
                {**cfg.executor_env(), "EXECUTOR_ID": name, "EXECUTOR_HOST": HOST,
                 "EXECUTOR_PORT": str(ports[name]), "SANDBOX_UID_BASE": str(self.sandbox_uids[64 * (i - 1)]),
                 "EXECUTOR_LEDGER_PATH": str(self.run.ledger / f"{name}.jsonl")},
                _http_ok(f"http://{HOST}:{ports[name]}/health"), "the executor serves GET /health when up",
                url=f"http://{HOST}:{ports[name]}")

        legacy_env = {"REDIS_URL": f"redis://{via('legacy-main-redis')}/0",
                      "LEGACY_EXECUTOR_URLS": f"http://{via('legacy-executor-1')},http://{via('legacy-executor-2')}"}
        for i in range(1, cfg.legacy_workers + 1):
            name = f"legacy-worker-{i}"
            ref: list[ManagedProcess] = []
            ref.append(add(name, [py, "-m", "system_under_test.legacy"],
                           {**legacy_env, "LEGACY_WORKER_ID": name}, _log_says(ref, f"{name} ready"),
                           "the legacy worker prints '<id> ready' once connected to the main Redis"))

        celery_env = {**cfg.celery_env(), "CELERY_BROKER_URL": f"redis://{via('celery-worker-celery-redis')}/0",
                      "REDIS_URL": main_redis_direct,
                      "EXECUTOR_SERVICE_URL": f"http://{via('celery-executor-3')}" if cfg.celery_executor == "executor-3"
                      else f"http://{HOST}:{ports[cfg.celery_executor]}"}
        for name, queues, concurrency in cfg.celery_worker_specs():
            ref = []
            ref.append(add(name, [py, "-m", "celery", "-A", "system_under_test.tasks", "worker",
                                  "-Q", ",".join(queues), "-c", str(concurrency),
                                  "-n", f"{name}@%h", "-l", "INFO", "--pool=prefork",
                                  "--without-mingle", "--without-gossip"],
                           celery_env, _celery_ready(ref, name), "a Celery worker logs '<name>@<host> ready.'"))

        add("gateway", [py, "-m", "system_under_test.gateway"],
            {**cfg.gateway_env(), "GATEWAY_HOST": HOST, "GATEWAY_PORT": str(ports["gateway"]),
             "REDIS_URL": f"redis://{via('gateway-main-redis')}/0",
             "CELERY_BROKER_URL": f"redis://{via('gateway-celery-redis')}/0"},
            _http_ok(f"http://{HOST}:{ports['gateway']}/health"),
            "GET /health answers 200 once both Redis instances are reachable",
            url=f"http://{HOST}:{ports['gateway']}")

        if cfg.flower:
            add("flower", [py, "-m", "system_under_test.flower"],
                {"CELERY_BROKER_URL": celery_redis_direct, "FLOWER_HOST": HOST,
                 "FLOWER_PORT": str(ports["flower"]), "FLOWER_UNAUTHENTICATED_API": "true"},
                _http_ok(f"http://{HOST}:{ports['flower']}/healthcheck"), "Flower serves /healthcheck when up",
                url=f"http://{HOST}:{ports['flower']}")

        self._endpoints = Endpoints(
            gateway=f"http://{HOST}:{ports['gateway']}",
            flower=f"http://{HOST}:{ports['flower']}" if cfg.flower else None,
            main_redis=main_redis_direct, celery_redis=celery_redis_direct,
            executors={f"executor-{i}": f"http://{HOST}:{ports[f'executor-{i}']}" for i in (1, 2, 3)},
            proxy_api=self._proxy_api(ports),
            links=links,
        )

    @property
    def _external_proxy(self) -> str | None:
        """A real Toxiproxy to use instead of ours (``TOXIPROXY_URL``), if one is configured."""
        return os.environ.get("TOXIPROXY_URL") or None

    def _proxy_api(self, ports: dict[str, int]) -> str | None:
        if not self.config.fault_proxy:
            return None
        return self._external_proxy or f"http://{HOST}:{ports['fault-proxy']}"

    def _links(self, ports: dict[str, int]) -> dict[str, Link]:
        """Every link through its own proxy port (or direct, with ``fault_proxy=False``)."""
        links = {}
        for name, (_, server) in LINKS.items():
            upstream = f"{HOST}:{ports[server]}"
            listen = f"{HOST}:{free_port()}" if self.config.fault_proxy else upstream
            links[name] = Link(name, upstream, listen)
        if self.config.fault_proxy and self._external_proxy:
            self._populate_external(links)
        return links

    def _populate_external(self, links: dict[str, Link]) -> None:
        url = f"{self._external_proxy}/populate"
        body = [{"name": ln.name, "listen": ln.listen, "upstream": ln.upstream, "enabled": True}
                for ln in links.values()]
        try:
            resp = requests.post(url, json=body, timeout=10)
        except requests.RequestException as exc:
            raise StackError(f"TOXIPROXY_URL={self._external_proxy} is unreachable ({exc}); start Toxiproxy "
                             "there or unset TOXIPROXY_URL to use the harness's own fault proxy") from exc
        if resp.status_code >= 300:
            raise StackError(f"Toxiproxy at {self._external_proxy} refused the links: {resp.status_code} {resp.text}")


