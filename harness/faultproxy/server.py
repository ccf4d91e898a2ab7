"""The fault proxy server: the API listener plus the proxies it manages.

:class:`FaultProxyServer` runs either inside an existing event loop
(:meth:`~FaultProxyServer.astart` / :meth:`~FaultProxyServer.astop`), on a background
thread with its own loop (:meth:`~FaultProxyServer.start` / :meth:`~FaultProxyServer.stop`,
or ``with FaultProxyServer(...) as server:``), or in the foreground until SIGINT or
SIGTERM (:meth:`~FaultProxyServer.serve`, used by the command line). Port 0 picks a
free port; :attr:`~FaultProxyServer.url` reports the real one. Stopping closes the API,
every proxy listener and every proxied connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import threading
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Final

from .addresses import bind_listener, bound_address, join_host_port, resolve_listen
from .api import Api
from .collection import ProxyCollection
from .errors import ApiError, ConfigError, FaultProxyError, PopulateError, ServerStartError
from .httpserver import HttpServer
from .schema import ProxyFields

log = logging.getLogger(__name__)

START_TIMEOUT_S: Final = 30.0


class FaultProxyServer:
    """A Toxiproxy-compatible server on ``host:port`` (default ``127.0.0.1:8474``).

    ``proxies`` are created at start as if POSTed to ``/populate`` (``config_source``
    names where they came from in errors); ``seed`` drives every random choice
    (toxicity draws, jitter, slicer splits).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8474,
        *,
        seed: int | None = None,
        proxies: Sequence[ProxyFields] = (),
        config_source: str = "config",
    ) -> None:
        self.host = host
        self.port = port
        self.seed = seed
        self._proxies = list(proxies)
        self._config_source = config_source
        self._http: HttpServer | None = None
        self._collection: ProxyCollection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._bound: tuple[str, int] | None = None

    @property
    def url(self) -> str:
        """The API's base URL, with the real port once started."""
        host, port = self.address
        return f"http://{join_host_port(host, port)}"

    @property
    def address(self) -> tuple[str, int]:
        """The API's ``(host, port)``, with the real port once started."""
        return self._bound or (self.host, self.port)

    # -- inside an event loop ---------------------------------------------------------------

    async def astart(self) -> None:
        """Bind the API and create the configured proxies. ServerStartError / ConfigError on failure."""
        self._loop = asyncio.get_running_loop()
        self._collection = ProxyCollection(random.Random(self.seed))
        try:
            address = await resolve_listen(join_host_port(self.host, self.port))
            sock = bind_listener(address)
        except ApiError as exc:
            raise ServerStartError(self.host, self.port, exc.message) from None
        bound = bound_address(sock, address)
        self._bound = ("127.0.0.1" if bound.wildcard else bound.ip, bound.port)
        self._http = HttpServer(Api(self._collection).handle)
        await self._http.start(sock)
        if self._proxies:
            try:
                await self._collection.populate(self._proxies)
            except PopulateError as exc:
                await self.astop()
                entry = self._proxies[min(len(exc.done), len(self._proxies) - 1)]
                raise ConfigError(self._config_source, f"proxy {entry.name!r}", exc.message) from None
            except ApiError as exc:
                await self.astop()
                raise ConfigError(self._config_source, "", exc.message) from None

    async def astop(self) -> None:
        """Close the API and every proxy and connection."""
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._collection is not None:
            await self._collection.close()

    # -- on a background thread -------------------------------------------------------------

    def start(self) -> FaultProxyServer:
        """Run on a background thread with its own event loop; return once the API is up."""
        if self._thread is not None:
            raise FaultProxyError("this fault proxy server is already started")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=_run_loop, args=(loop,), name="fault-proxy", daemon=True)
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.astart(), loop).result(START_TIMEOUT_S)
        except BaseException:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(START_TIMEOUT_S)
            raise
        self._thread = thread
        return self

    def stop(self) -> None:
        """Stop the background server started by :meth:`start` (idempotent)."""
        thread, loop, self._thread = self._thread, self._loop, None
        if thread is None or loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.astop(), loop).result(START_TIMEOUT_S)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(START_TIMEOUT_S)

    def __enter__(self) -> FaultProxyServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- in the foreground ------------------------------------------------------------------

    def serve(self, announce: Callable[[str], None] | None = None) -> None:
        """Serve until SIGINT or SIGTERM, then close everything and return.

        ``announce`` is called with :attr:`url` once the API is up and the configured
        proxies exist. Raises ServerStartError or ConfigError if startup fails.
        """
        asyncio.run(self._serve(announce))

    async def _serve(self, announce: Callable[[str], None] | None) -> None:
        await self.astart()
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
        try:
            if announce is not None:
                announce(self.url)
            await stopping.wait()
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
            await self.astop()


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        with contextlib.suppress(RuntimeError):
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()
