"""``fault-proxy`` / ``python -m harness.faultproxy``: run the fault proxy in the foreground.

Prints ``fault proxy API on http://HOST:PORT`` once the API is up and the config's
proxies exist (``--port 0`` picks a free port and prints it), then serves until SIGINT
or SIGTERM, closes every listener and connection, and exits 0. Exit 3 (the harness's
usage error) means a bad option, config file or API address; the usage line or the
message says which and what to change. Options are never abbreviated.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from .api import VERSION
from .config import load_config
from .errors import FaultProxyError
from .server import FaultProxyServer

# harness.vocabulary.EXIT_USAGE, not imported: the image ships harness/faultproxy with harness/errors.py alone.
EXIT_USAGE = 3


class _Parser(argparse.ArgumentParser):
    """No abbreviated options; a usage error exits 3 after the usage line."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port within 0..65535 (0 picks a free one), got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="fault-proxy",
        allow_abbrev=False,
        description="A Toxiproxy-compatible fault proxy (HTTP API v2, Toxiproxy " + VERSION + ").",
        epilog="exit status: 0 stopped by SIGINT or SIGTERM, 3 a bad option, config file or API address",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address of the HTTP API (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8474, help="port of the HTTP API; 0 picks a free one (default 8474)")
    parser.add_argument("--config", metavar="FILE", help="JSON array of proxies to create at start (the /populate format)")
    parser.add_argument("--seed", type=_seed, default=None, help="seed for toxicity draws, jitter and slicer splits")
    parser.add_argument("--version", action="version", version=f"fault-proxy (toxiproxy API {VERSION})")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fault proxy until SIGINT/SIGTERM. Returns the process exit status."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # a usage error (3) or --help / --version (0)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
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
        return EXIT_USAGE
    return 0


if __name__ == "__main__":
    sys.exit(main())
