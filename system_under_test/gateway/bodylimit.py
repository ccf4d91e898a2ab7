"""Refuse a request body over the limit while it streams in, before it is read whole (ASGI middleware).

A request that declares a ``Content-Length`` over the limit is answered 413 at once: the application
never runs and no byte of the body is read (a client that sent ``Expect: 100-continue`` never sends
it). A body without a length (chunked) or one that lies is counted as it arrives; the moment the
count passes the limit, reading stops with :class:`~system_under_test.httperrors.RequestTooLarge`,
which FastAPI hands to the error handler (a 413 in the project's format, ``Connection: close``). So
a 50 MB body costs the gateway at most one chunk past the limit, never 50 MB.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from system_under_test import httperrors


def declared_length(scope: Scope) -> int | None:
    """The request's Content-Length, or None when absent or not a number (the server frames it then)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimit:
    """ASGI middleware: at most ``max_bytes`` of request body reach the application."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            response = httperrors.too_large(httperrors.RequestTooLarge(self.max_bytes, declared, declared=True))
            await response(scope, receive, send)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise httperrors.RequestTooLarge(self.max_bytes, seen, declared=False)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except httperrors.RequestTooLarge as exc:
            # Only reached when the application did not turn it into a response itself.
            if started:
                raise
            await httperrors.too_large(exc)(scope, receive, send)
