"""``python -m system_under_test.executor``: run one executor service (see app.py for its env)."""

from __future__ import annotations

import uvicorn

from system_under_test.executor.app import ExecutorSettings, create_app


def main() -> None:
    settings = ExecutorSettings.from_env()
    app = create_app(settings)
    print(f"{settings.executor_id} listening on http://{settings.host}:{settings.port}", flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
