"""``fault-proxy`` / ``python -m harness.faultproxy``: run the fault proxy in the foreground.

Prints ``fault proxy API on http://HOST:PORT`` once the API is up and the config's
proxies exist (``--port 0`` picks a free port and prints it), then serves until SIGINT
or SIGTERM, closes every listener and connection, and exits 0. Exit 2 means a bad
config file or API address; the message says which and what to change.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from .api import VERSION
from .config import load_config
from .errors import FaultProxyError
from .server import FaultProxyServer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fault-proxy",
        description="A Toxiproxy-compatible fault proxy (HTTP API v2, Toxiproxy " + VERSION + ").",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address of the HTTP API (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8474, help="port of the HTTP API; 0 picks a free one (default 8474)")
    parser.add_argument("--config", metavar="FILE", help="JSON array of proxies to create at start (the /populate format)")
    parser.add_argument("--seed", type=int, default=None, help="seed for toxicity draws, jitter and slicer splits")
    parser.add_argument("--version", action="version", version=f"fault-proxy (toxiproxy API {VERSION})")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fault proxy until SIGINT/SIGTERM. Returns the process exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "WARNING").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        proxies = load_config(args.config) if args.config else []
        server = FaultProxyServer(
            args.host, args.port, seed=args.seed, proxies=proxies, config_source=args.config or "config"
        )
        server.serve(announce=lambda url: print(f"fault proxy API on {url}", flush=True))
    except FaultProxyError as exc:
        print(f"fault-proxy: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
