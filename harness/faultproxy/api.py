"""The Toxiproxy v2 HTTP API: routing, middleware and handlers.

Routing matches gorilla/mux as Toxiproxy configures it: exact paths, ``{proxy}`` and
``{toxic}`` match ``[^/]+`` of the percent-decoded path, an unclean path (``//proxies``)
is redirected (301) to its cleaned form, an unknown path is ``404 page not found`` and a
known path with the wrong method is an empty 405. Routed requests get an
``X-Toxiproxy-Request-Id`` header, and a browser user agent (``Mozilla/…``) gets 403.

Handlers run one at a time under a lock, so each API call sees and leaves a
consistent state; none of them waits on a proxied socket (teardown waits are bounded).
Errors are ``{"error": …, "status": …}`` bodies written like Go's ``http.Error``;
``/populate`` errors are JSON with the proxies created so far. Texts are Toxiproxy's:
its own (``proxy not found``), Go's ``encoding/json`` ones for bodies (:mod:`.bodies`)
and Go's ``net`` ones for addresses (:mod:`.addresses`).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import os
import re
from collections.abc import Awaitable, Callable
from typing import Any, Final
from urllib.parse import quote, unquote

from .bodies import (
    decode_body,
    decode_populate,
    decode_proxy,
    decode_toxic_attributes,
    decode_toxic_head,
    decode_toxic_update,
)
from .collection import ProxyCollection
from .errors import ApiError, PopulateError
from .gojson import dumps
from .httpserver import Request, Response
from .proxy import Proxy
from .schema import TOXIC_TYPES, ToxicSpec, check_name, error_body, toxic_json

#: The Toxiproxy version this server mimics.
VERSION: Final = "2.12.0"

JSON: Final = "application/json"
TEXT: Final = "text/plain; charset=utf-8"
#: Go's ``http.Error`` adds it to every plain-text error.
NOSNIFF: Final = (("X-Content-Type-Options", "nosniff"),)

RouteHandler = Callable[..., Awaitable[Response]]


def clean_path(path: str) -> str:
    """Go's ``path.Clean`` plus gorilla/mux's rule of keeping a trailing slash."""
    if not path:
        return "/"
    if not path.startswith("/"):
        path = "/" + path
    parts: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if parts:
                parts.pop()
            continue
        parts.append(segment)
    cleaned = "/" + "/".join(parts)
    if path.endswith("/") and cleaned != "/":
        cleaned += "/"
    return cleaned


def _request_id() -> str:
    return base64.b32hexencode(os.urandom(12)).decode().lower().rstrip("=")


def _json(status: int, value: Any) -> Response:
    return Response(status, dumps(value), JSON)


def _error(exc: ApiError) -> Response:
    return Response(exc.status, error_body(exc.status, exc.message), TEXT, NOSNIFF)


class Api:
    """The API handlers over one :class:`ProxyCollection`."""

    def __init__(self, collection: ProxyCollection) -> None:
        self.collection = collection
        self.lock = asyncio.Lock()
        name = r"(?P<{}>[^/]+)"
        proxy = "/proxies/" + name.format("proxy")
        self.routes: list[tuple[re.Pattern[str], dict[str, RouteHandler]]] = [
            (re.compile("/version"), {"GET": self.version}),
            (re.compile("/reset"), {"POST": self.reset}),
            (re.compile("/proxies"), {"GET": self.list_proxies, "POST": self.create_proxy}),
            (re.compile("/populate"), {"POST": self.populate}),
            (re.compile(proxy), {"GET": self.get_proxy, "POST": self.update_proxy,
                                 "PATCH": self.update_proxy, "DELETE": self.delete_proxy}),
            (re.compile(proxy + "/toxics"), {"GET": self.list_toxics, "POST": self.create_toxic}),
            (re.compile(proxy + "/stats"), {"GET": self.proxy_stats}),  # our extension, not Toxiproxy's
            (re.compile(proxy + "/toxics/" + name.format("toxic")), {
                "GET": self.get_toxic, "POST": self.update_toxic,
                "PATCH": self.update_toxic, "DELETE": self.delete_toxic}),
        ]  # fmt: skip

    async def handle(self, request: Request) -> Response:
        path = unquote(request.path)
        cleaned = clean_path(path)
        if cleaned != path:
            location = quote(cleaned, safe="/:@!$&'()*+,;=") + (f"?{request.query}" if request.query else "")
            return Response(301, headers=(("Location", location),))
        matched_path = False
        for pattern, methods in self.routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            handler = methods.get(request.method)
            if handler is None:
                matched_path = True
                continue
            return await self._routed(request, handler, match.groupdict())
        if matched_path:
            return Response(405)
        return Response(404, b"404 page not found\n", TEXT, NOSNIFF)

    async def _routed(self, request: Request, handler: RouteHandler, params: dict[str, str]) -> Response:
        if request.headers.get("user-agent", "").startswith("Mozilla/"):
            response = Response(403, b"User agent not allowed\n", TEXT, NOSNIFF)
        else:
            try:
                async with self.lock:
                    response = await handler(request, **params)
            except ApiError as exc:
                response = _error(exc)
        header = ("X-Toxiproxy-Request-Id", _request_id())
        return dataclasses.replace(response, headers=(*response.headers, header))

    # -- handlers ---------------------------------------------------------------------------

    async def version(self, request: Request) -> Response:
        return Response(200, b'{"version": "%s"}\n' % VERSION.encode(), "application/json;charset=utf-8")

    async def reset(self, request: Request) -> Response:
        await self.collection.reset()
        return Response(204)

    async def list_proxies(self, request: Request) -> Response:
        return _json(200, {proxy.name: proxy.to_json() for proxy in self.collection.sorted()})

    async def create_proxy(self, request: Request) -> Response:
        proxy = await self.collection.create(decode_proxy(decode_body(request.body)))
        return _json(201, proxy.to_json())

    async def populate(self, request: Request) -> Response:
        done: list[Proxy] = []
        try:
            done = await self.collection.populate(decode_populate(decode_body(request.body)))
        except PopulateError as exc:
            done_json = [proxy.to_json() for proxy in exc.done] or None
            return _json(exc.status, {"error": exc.message, "status": exc.status, "proxies": done_json})
        except ApiError as exc:
            return _json(exc.status, {"error": exc.message, "status": exc.status, "proxies": None})
        # Go marshals the empty slice it built as null, so an empty populate answers {"proxies":null}.
        return _json(201, {"proxies": [proxy.to_json() for proxy in done] or None})

    async def get_proxy(self, request: Request, proxy: str) -> Response:
        return _json(200, self.collection.get(proxy).to_json())

    async def proxy_stats(self, request: Request, proxy: str) -> Response:
        """Our extension: the proxy's traffic since it was created (connections, bytes each way)."""
        return _json(200, self.collection.get(proxy).stats())

    async def update_proxy(self, request: Request, proxy: str) -> Response:
        found = self.collection.get(proxy)
        await found.update(decode_proxy(decode_body(request.body)))
        return _json(200, found.to_json())

    async def delete_proxy(self, request: Request, proxy: str) -> Response:
        await self.collection.delete(proxy)
        return Response(204)

    async def list_toxics(self, request: Request, proxy: str) -> Response:
        return _json(200, [toxic_json(spec) for spec in self.collection.get(proxy).toxics()])

    async def create_toxic(self, request: Request, proxy: str) -> Response:
        found = self.collection.get(proxy)
        body = decode_body(request.body)
        head = decode_toxic_head(body)
        if head.stream.lower() not in ("upstream", "downstream"):
            raise ApiError(400, "stream was invalid, can be either upstream or downstream")
        name = head.name or f"{head.type}_{head.stream}"
        if head.type not in TOXIC_TYPES:
            raise ApiError(400, "invalid toxic type")
        check_name("toxic", name)
        if found.find_toxic(name) is not None:
            raise ApiError(409, "toxic already exists")
        attributes = decode_toxic_attributes(body, head.type, {})
        spec = ToxicSpec(name, head.type, head.stream, head.toxicity, attributes)
        found.add_toxic(spec)
        return _json(200, toxic_json(spec))

    def _toxic(self, proxy: str, toxic: str) -> tuple[Proxy, ToxicSpec]:
        found = self.collection.get(proxy)
        spec = found.find_toxic(toxic)
        if spec is None:
            raise ApiError(404, "toxic not found")
        return found, spec

    async def get_toxic(self, request: Request, proxy: str, toxic: str) -> Response:
        return _json(200, toxic_json(self._toxic(proxy, toxic)[1]))

    async def update_toxic(self, request: Request, proxy: str, toxic: str) -> Response:
        found, spec = self._toxic(proxy, toxic)
        attributes, toxicity = decode_toxic_update(decode_body(request.body), spec.type, spec.attributes)
        updated = dataclasses.replace(
            spec, attributes=attributes, toxicity=spec.toxicity if toxicity is None else toxicity
        )
        found.update_toxic(updated)
        return _json(200, toxic_json(updated))

    async def delete_toxic(self, request: Request, proxy: str, toxic: str) -> Response:
        found, spec = self._toxic(proxy, toxic)
        found.remove_toxic(spec.name)
        return Response(204)
