"""The state of stacks started by ``harness up``: one file per named stack, so several can run at once.

``harness up [--detach] [--name NAME]`` writes ``<reports>/.stacks/NAME.json`` once every component is
healthy (the default name is ``default``; ``<reports>`` is ``<workspace>/reports`` or
``HARNESS_REPORTS``, see ``harness.run``): the pid of the harness process that owns the stack, its run
folder, its endpoints and its components. ``harness status`` and ``harness down`` read these files; a
file whose owner is gone is stale and removed on sight. A detached stack's start-up output goes to
``NAME.log`` beside it. The folder is readable by its owner only (0700) and each file is 0600.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, TypedDict

from harness.run import owner_only_dir, reports_root

DEFAULT_NAME = "default"


class StackState(TypedDict):
    name: str
    pid: int
    run_dir: str
    launcher: str
    endpoints: dict[str, Any]
    components: list[dict[str, Any]]


def state_dir() -> Path:
    """``<reports>/.stacks`` (not created)."""
    return reports_root() / ".stacks"


def state_file(name: str) -> Path:
    return state_dir() / f"{name}.json"


def log_file(name: str) -> Path:
    return state_dir() / f"{name}.log"


def prepare() -> Path:
    """Create the state folder, owner-only."""
    return owner_only_dir(state_dir())


def write(state: StackState) -> Path:
    """Write a stack's state file atomically (0600)."""
    folder = prepare()
    target = folder / f"{state['name']}.json"
    tmp = target.with_suffix(".json.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(state, fh, indent=2)
    os.replace(tmp, target)
    return target


def remove(name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        state_file(name).unlink()


def pid_alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def read(name: str) -> StackState | None:
    """The state of the stack ``name`` if its owner runs; a stale or unreadable file is removed."""
    try:
        state: StackState = json.loads(state_file(name).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        remove(name)
        return None
    if not pid_alive(state.get("pid")):
        remove(name)
        return None
    return state


def running() -> dict[str, StackState]:
    """Every stack whose owner runs, by name (stale files are removed)."""
    folder = state_dir()
    if not folder.is_dir():
        return {}
    found = {}
    for file in sorted(folder.glob("*.json")):
        state = read(file.stem)
        if state is not None:
            found[file.stem] = state
    return found
