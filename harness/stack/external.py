"""The external launcher: URLs of an already-running deployment instead of a stack we start.

Nothing is started or stopped. ``start`` only checks that the gateway answers ``/health``. Faults
are limited to what the deployment exposes: network faults through its fault proxy when a
``proxy_api`` URL is given, none on processes or containers (``component`` says so).
The endpoints come from ``--stack-url`` (the gateway) and, optionally, a JSON file with the same
keys as ``Endpoints`` (``--stack-endpoints``), for example the ``stack.json`` that
``harness up --detach`` writes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests

from harness.errors import StackError
from harness.run import RunFolder
from harness.stack.config import StackConfig
from harness.stack.protocol import ComponentHandle, Endpoints, Link


class ExternalStack:
    kind = "external"

    def __init__(self, endpoints: Endpoints, config: StackConfig | None = None, run: RunFolder | None = None) -> None:
        self.config = config or StackConfig()
        self.run = run or RunFolder.create()
        self._endpoints = endpoints

    @property
    def endpoints(self) -> Endpoints:
        """Where the deployment listens (known from the start: it is already running)."""
        return self._endpoints

    @classmethod
    def from_url(cls, gateway: str, endpoints_file: Path | None = None, **kwargs: Any) -> ExternalStack:
        data: dict[str, Any] = {}
        if endpoints_file is not None:
            try:
                data = json.loads(Path(endpoints_file).read_text())["endpoints"]
            except (OSError, ValueError, KeyError) as exc:
                raise StackError(f"{endpoints_file}: cannot read endpoints ({exc}); expected the JSON "
                                 "that `harness up --detach` writes, with an 'endpoints' object") from exc
        links = {name: Link(**link) for name, link in data.get("links", {}).items()}
        endpoints = Endpoints(
            gateway=gateway.rstrip("/"), flower=data.get("flower"), main_redis=data.get("main_redis", ""),
            celery_redis=data.get("celery_redis", ""), executors=data.get("executors", {}),
            proxy_api=data.get("proxy_api"), links=links)
        return cls(endpoints, **kwargs)

    def __enter__(self) -> ExternalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Endpoints:
        url = self.endpoints.gateway + "/health"
        try:
            resp = requests.get(url, timeout=5)
        except requests.RequestException as exc:
            raise StackError(f"external stack unreachable: GET {url} failed ({exc.__class__.__name__}). "
                             "Is it running? Start one with `harness up --detach`, or check --stack-url.") from exc
        if resp.status_code != 200:
            raise StackError(f"external stack unhealthy: GET {url} answered {resp.status_code}: {resp.text[:300]}")
        self.run.write_run_json(seed=self.config.seed, launcher=self.kind, config=self.config.as_dict(),
                                extra={"endpoints": self.describe()})
        return self.endpoints

    def stop(self) -> None:
        """Nothing to stop: the deployment is not ours."""

    def component(self, name: str) -> ComponentHandle:
        raise StackError(f"component {name!r} cannot be faulted on an external stack: the harness does not "
                         "own its processes. Network faults work through its fault proxy (proxy_api), "
                         "if it exposes one.")

    def describe(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = [{"component": "gateway", "pid": None, "url": self.endpoints.gateway}]
        if self.endpoints.flower:
            rows.append({"component": "flower", "pid": None, "url": self.endpoints.flower})
        rows += [{"component": k, "pid": None, "url": v} for k, v in self.endpoints.executors.items()]
        return rows
