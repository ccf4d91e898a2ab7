"""``python -m system_under_test.flower``: run Flower against celery-redis for this app.

Runs ``celery -A system_under_test.tasks flower`` (so Flower shares the app's priority steps and
separator) on FLOWER_HOST:FLOWER_PORT (default 127.0.0.1:5555). In the local stack the REST API is
usable without a browser login: ``FLOWER_UNAUTHENTICATED_API`` defaults to true here.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("FLOWER_UNAUTHENTICATED_API", "true")
    host = os.environ.get("FLOWER_HOST", "127.0.0.1")
    port = os.environ.get("FLOWER_PORT", "5555")
    argv = [sys.executable, "-m", "celery", "-A", "system_under_test.tasks", "flower",
            f"--address={host}", f"--port={port}", *sys.argv[1:]]
    os.execv(sys.executable, argv)


if __name__ == "__main__":
    main()
