"""A Toxiproxy-compatible fault proxy, in Python asyncio.

It serves Toxiproxy's v2 HTTP API (``/version``, ``/reset``, ``/proxies``, ``/populate``,
proxy and toxic CRUD) so that ``toxiproxy-python`` and the other Toxiproxy clients can
drive it, and proxies TCP with the built-in toxics (latency, bandwidth, slow_close,
timeout, reset_peer, slicer, limit_data, noop) on either direction. Every API call is
synchronous: a 2xx means the port is bound or closed and the toxic is on every live
connection. Run it with ``fault-proxy`` / ``python -m harness.faultproxy``, or in
process::

    with FaultProxyServer("127.0.0.1", 0) as server:
        Toxiproxy().update_api_consumer(*server.address)
"""

from .api import VERSION
from .config import load_config
from .errors import ApiError, ConfigError, FaultProxyError, ServerStartError
from .schema import TOXIC_TYPES, ProxyFields, ToxicSpec
from .server import FaultProxyServer

__all__ = [
    "TOXIC_TYPES",
    "VERSION",
    "ApiError",
    "ConfigError",
    "FaultProxyError",
    "FaultProxyServer",
    "ProxyFields",
    "ServerStartError",
    "ToxicSpec",
    "load_config",
]
