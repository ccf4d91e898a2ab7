"""``python -m system_under_test.gateway``: run the API gateway (see app.py for its env)."""

from __future__ import annotations

import uvicorn

from system_under_test.gateway.app import create_app
from system_under_test.gateway.settings import GatewaySettings


def main() -> None:
    settings = GatewaySettings.from_env()
    app = create_app(settings)
    print(f"gateway listening on http://{settings.host}:{settings.port} (docs at /docs)", flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
