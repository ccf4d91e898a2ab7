"""The set of proxies behind the API: create, populate, delete, reset.

This is Toxiproxy's ``ProxyCollection``: names are unique, a create checks its fields
and the name before it binds, ``populate`` validates every entry before touching
anything and then creates, keeps or replaces proxies in order, stopping at the first
failure, and ``reset`` re-enables every proxy and strips its toxics without deleting
anything. Callers serialise calls (the API holds one lock), so no two run at once.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from .addresses import DEFAULT_LISTEN
from .errors import ApiError, PopulateError
from .proxy import Proxy
from .schema import ProxyFields, check_name


class ProxyCollection:
    """Every proxy of one server, by name."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.proxies: dict[str, Proxy] = {}

    def get(self, name: str) -> Proxy:
        """The proxy called ``name``; ApiError 404 ``proxy not found`` otherwise."""
        proxy = self.proxies.get(name)
        if proxy is None:
            raise ApiError(404, "proxy not found")
        return proxy

    def sorted(self) -> list[Proxy]:
        return [self.proxies[name] for name in sorted(self.proxies)]

    async def create(self, fields: ProxyFields) -> Proxy:
        """Create (and, unless ``enabled`` is false, bind) a proxy. 400/409/500 as ApiError."""
        name, upstream = _required(fields)
        if name in self.proxies:
            raise ApiError(409, "proxy already exists")
        proxy = Proxy(name, fields.listen or DEFAULT_LISTEN, upstream, self.rng)
        if fields.enabled is not False:
            await proxy.start()
        self.proxies[name] = proxy
        return proxy

    async def delete(self, name: str) -> None:
        proxy = self.get(name)
        await proxy.stop()
        del self.proxies[name]

    async def populate(self, entries: Sequence[ProxyFields]) -> list[Proxy]:
        """Create, keep or replace each entry in order. PopulateError carries what was done."""
        for index, entry in enumerate(entries, start=1):
            _required(entry, f" at proxy {index}")
        done: list[Proxy] = []
        try:
            for entry in entries:
                done.append(await self._add_or_replace(entry))
        except ApiError as exc:
            raise PopulateError(exc.status, exc.message, done) from None
        return done

    async def _add_or_replace(self, entry: ProxyFields) -> Proxy:
        name, upstream = _required(entry)
        listen = entry.listen or DEFAULT_LISTEN
        existing = self.proxies.get(name)
        if existing is not None:
            if not await existing.differs(listen, upstream):
                return existing
            await existing.stop()
        proxy = Proxy(name, listen, upstream, self.rng)
        if entry.enabled is not False:
            await proxy.start()
        self.proxies[name] = proxy
        return proxy

    async def reset(self) -> None:
        """Enable every proxy (re-binding its listen) and remove all its toxics."""
        for proxy in self.sorted():
            await proxy.start()
            proxy.remove_all_toxics()

    async def close(self) -> None:
        """Stop every proxy (the server is shutting down)."""
        for proxy in self.sorted():
            await proxy.stop()


def _required(fields: ProxyFields, suffix: str = "") -> tuple[str, str]:
    if not fields.name:
        raise ApiError(400, f"missing required field: name{suffix}")
    if not fields.upstream:
        raise ApiError(400, f"missing required field: upstream{suffix}")
    check_name("proxy", fields.name)
    return fields.name, fields.upstream

