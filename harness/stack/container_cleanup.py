"""Clean-up by label: what the containers launcher leaves on the Docker engine, and Ryuk.

Every container and network carries the labels ``crucible.harness.run=<run id>``,
``crucible.harness.owner=<pid>:<start ticks>`` and ``crucible.harness.host=<hostname>`` (and a
container also its component and its run folder's ``logs/``). If the harness is SIGKILLed, the next
start (or ``python -m harness.stack.containers reap``) removes what belongs to harness processes
that are gone, saving each container's log into its run folder first. Testcontainers' Ryuk reaper is
used only when its image is present locally; with no registry it cannot be pulled, so it is
disabled and the label clean-up does its job.
"""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path
from typing import Any

from harness.run import RunFolder
from harness.stack.images import LABEL_HOST, LABEL_OWNER, LABEL_RUN, docker_client, image_exists, owner_labels
from harness.stack.process import owner_token

LABEL_COMPONENT = "crucible.harness.component"
LABEL_LOGS = "crucible.harness.logs"


def run_labels(run: RunFolder, component: str | None = None) -> dict[str, str]:
    """The labels of a run's network, or of one component's container."""
    labels = {**owner_labels(run.run_id), LABEL_LOGS: str(run.logs)}
    if component:
        labels[LABEL_COMPONENT] = component
    return labels


def owner_gone(labels: dict[str, str]) -> bool:
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
        return bool(run_id) or everything or owner_gone(labels)

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


def configure_ryuk(client: Any) -> str:
    """Use Testcontainers' Ryuk only when its image is present locally; say what was decided."""
    from testcontainers.core.config import testcontainers_config as tc

    if tc.ryuk_disabled:
        return "disabled by configuration; leftovers are removed by label"
    if image_exists(client, tc.ryuk_image):
        return f"enabled ({tc.ryuk_image})"
    tc.ryuk_disabled = True
    return f"disabled: {tc.ryuk_image} is not present locally (no registry); leftovers are removed by label"
