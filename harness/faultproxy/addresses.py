"""Listen and upstream addresses, resolved and bound the way Toxiproxy does it.

Toxiproxy takes ``host:port`` strings and reports the address it really bound: a
name resolves to its *first* address (IPv4 preferred), port ``0`` becomes the port the
kernel picked, and a wildcard host is reported as Go's dual-stack ``[::]:PORT``. This
module turns strings into :class:`ListenAddress` values, compares them, and binds
listening sockets with ``SO_REUSEADDR`` so that a proxy can re-bind right after it was
disabled. Errors are :class:`ApiError` 500s whose text follows Go's ``net`` package.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from dataclasses import dataclass

from .errors import ApiError

#: How long a name lookup for a listen address may take before the API gives up.
RESOLVE_TIMEOUT_S = 5.0
#: Used when a create body leaves ``listen`` out (Toxiproxy would bind every interface).
DEFAULT_LISTEN = "127.0.0.1:0"

_WILDCARDS = frozenset({"", "0.0.0.0", "::"})
#: Go's ``net.Listen`` puts this in front of an address error (``ResolveTCPAddr`` does not).
LISTEN_PREFIX = "listen tcp: "


@dataclass(frozen=True)
class ListenAddress:
    """A resolved listen address: an IP literal (or the wildcard) and a port."""

    ip: str
    port: int
    family: socket.AddressFamily
    wildcard: bool = False
    #: A wildcard's host as written ("", "0.0.0.0" or "::"): Go keeps it until the bind.
    spelled: str = ""

    @property
    def text(self) -> str:
        """The address as Toxiproxy reports it once bound: ``1.2.3.4:P``, ``[::1]:P`` or ``[::]:P``."""
        if self.wildcard:
            return f"[::]:{self.port}"
        return join_host_port(self.ip, self.port)

    @property
    def resolved(self) -> str:
        """Go's ``ResolveTCPAddr(…).String()``, which Toxiproxy compares and names in bind errors.

        The same as :attr:`text` except for a wildcard, which keeps its spelling (``:P``,
        ``0.0.0.0:P``, ``[::]:P``).
        """
        return join_host_port(self.spelled, self.port) if self.wildcard else self.text


def join_host_port(host: str, port: int | str) -> str:
    """``host:port``, with brackets around an IPv6 host."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_host_port(address: str) -> tuple[str, str]:
    """Split ``host:port`` like Go's ``net.SplitHostPort``; raise ApiError 500 when malformed."""

    def bad(why: str) -> ApiError:
        return ApiError(500, f"address {address}: {why}")

    if address.startswith("["):
        end = address.find("]")
        if end < 0:
            raise bad("missing ']' in address")
        host, rest = address[1:end], address[end + 1 :]
        if not rest.startswith(":"):
            raise bad("missing port in address")
        port = rest[1:]
        if "[" in host or "]" in port or "[" in port:
            raise bad("unexpected '[' in address")
        return host, port
    colon = address.rfind(":")
    if colon < 0:
        raise bad("missing port in address")
    host, port = address[:colon], address[colon + 1 :]
    if ":" in host:
        raise bad("too many colons in address")
    if "]" in address:
        raise bad("unexpected ']' in address")
    return host, port


def _parse_port(port: str) -> int:
    """Go's ``parsePort`` + ``LookupPort``: an optional sign and ASCII digits, else a service name."""
    sign, digits = (port[:1], port[1:]) if port[:1] in ("+", "-") else ("", port)
    if digits and not (digits.isascii() and digits.isdigit()):
        try:
            return socket.getservbyname(port.lower(), "tcp")
        except OSError:
            raise ApiError(500, f"lookup tcp/{port}: unknown port") from None
    number = -int(digits or "0") if sign == "-" else int(digits or "0")
    if not 0 <= number <= 65535:
        raise ApiError(500, f"address {port}: invalid port")
    return number


async def resolve_listen(listen: str) -> ListenAddress:
    """Resolve a listen string without binding it, like Go's ``ResolveTCPAddr``.

    Raises ApiError 500 with Go's text for a bad address (``address local373: missing port
    in address``); where Toxiproxy binds instead (``net.Listen``), the caller adds
    :data:`LISTEN_PREFIX`.
    """
    host, port_text = split_host_port(listen)
    port = _parse_port(port_text)
    if host in _WILDCARDS:
        return ListenAddress("::", port, socket.AF_INET6, wildcard=True, spelled=host)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        found = await _lookup(host)
        return ListenAddress(found, port, socket.AF_INET6 if ":" in found else socket.AF_INET)
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    return ListenAddress(str(ip), port, family)


async def _lookup(host: str) -> str:
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, None, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT_S
        )
    except TimeoutError:
        raise ApiError(500, f"lookup {host}: i/o timeout") from None
    except OSError:
        raise ApiError(500, f"lookup {host}: no such host") from None
    # Go binds the first address only and prefers IPv4; binding both ::1 and
    # 127.0.0.1 for "localhost" would make the reported address ambiguous.
    for family, *_rest, sockaddr in infos:
        if family == socket.AF_INET:
            return str(sockaddr[0])
    if not infos:
        raise ApiError(500, f"lookup {host}: no such host")
    return str(infos[0][4][0])


def bind_listener(address: ListenAddress, backlog: int = socket.SOMAXCONN) -> socket.socket:
    """Bind and listen on ``address``; raise ApiError 500 with Go's wording on failure."""
    if address.wildcard:
        try:
            return _bind(socket.AF_INET6, ("::", address.port), backlog, dual_stack=True)
        except OSError as exc:
            if exc.errno not in _NO_IPV6:
                raise _bind_error(address, exc) from None
        try:
            return _bind(socket.AF_INET, ("0.0.0.0", address.port), backlog)
        except OSError as exc:
            raise _bind_error(address, exc) from None
    try:
        return _bind(address.family, (address.ip, address.port), backlog)
    except OSError as exc:
        raise _bind_error(address, exc) from None


_NO_IPV6 = frozenset({errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL})


def _bind(
    family: socket.AddressFamily, sockaddr: tuple[str, int], backlog: int, dual_stack: bool = False
) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if dual_stack:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(sockaddr)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _bind_error(address: ListenAddress, exc: OSError) -> ApiError:
    reason = (exc.strerror or str(exc)).strip()
    reason = reason[:1].lower() + reason[1:]
    return ApiError(500, f"listen tcp {address.resolved}: bind: {reason}")


def bound_address(sock: socket.socket, requested: ListenAddress) -> ListenAddress:
    """The address a bound socket really has (port 0 replaced by the kernel's choice)."""
    name = sock.getsockname()
    if requested.wildcard:
        return ListenAddress("::", int(name[1]), socket.AF_INET6, wildcard=True, spelled=requested.spelled)
    return ListenAddress(str(name[0]), int(name[1]), requested.family)


def upstream_target(upstream: str) -> tuple[str, int]:
    """``(host, port)`` to dial for an upstream string; raises ApiError 500 when malformed."""
    host, port = split_host_port(upstream)
    return (host or "127.0.0.1"), _parse_port(port)
