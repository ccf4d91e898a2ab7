"""``python -m system_under_test.executor``: run one executor service (see app.py for its env)."""

from __future__ import annotations

import sys

import uvicorn

from system_under_test.executor.app import ExecutorSettings, create_app
from system_under_test.executor.sandbox import SandboxError


def main() -> None:
    settings = ExecutorSettings.from_env()
    try:
        app = create_app(settings)
    except SandboxError as exc:
        sys.exit(f"{settings.executor_id}: not starting: {exc}")
    print(f"{settings.executor_id}: {app.state.sandbox.describe()}", flush=True)
    print(f"{settings.executor_id} listening on http://{settings.host}:{settings.port}", flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
