"""One error format for every HTTP service of the platform (gateway and executors).

Every error body is a JSON object with ``error`` (what went wrong, one line) and ``hint`` (what to do
about it). A request whose fields break a rule also lists each one in ``problems``
(``[{"field": "language", "rule": "..."}]``; 413 and 422), a body that cannot be parsed says why in
``detail`` (400), and an unreachable backend is named (``backend``, ``url``, ``detail``; 503). The
models below are the schema of these bodies, so a service documents them in its OpenAPI schema with
:func:`documented`, and :func:`install` turns every failure the framework raises into one of them:
failed validation (422), malformed JSON, a body that is not UTF-8 or nests too deeply (400), an unknown
path or method (404, 405), a body over the limit (413), a body that is not declared as JSON (415, with
the :func:`require_json` dependency) and any unexpected exception (500). No client
ever sees FastAPI's ``{"detail": ...}``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.routing import Match

SCHEMA_HINT = "the API is described at /openapi.json (and at /docs)"


class Problem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str = Field(description="the field, dotted when nested (`query.wait`); `body` for the whole body")
    rule: str = Field(description="the rule the field broke")


class ErrorBody(BaseModel):
    """Every error: what went wrong and what to do about it."""

    model_config = ConfigDict(extra="forbid")

    error: str = Field(description="what went wrong, in one line")
    hint: str = Field(description="what to do about it")


class Invalid(ErrorBody):
    """A request that breaks rules (413, 422): one problem per field and rule."""

    problems: list[Problem] = Field(min_length=1)


class Malformed(ErrorBody):
    """A body that cannot be parsed (400): not JSON, not UTF-8, nested too deeply."""

    detail: str = Field(description="why the parser gave up")


class Unavailable(ErrorBody):
    """A backend the service needs is unreachable (503); nothing was done."""

    backend: str = Field(description="the unreachable backend")
    url: str = Field(description="where the service looked for it")
    detail: str = Field(description="the connection error")


class RequestTooLarge(HTTPException):
    """Raised while a request body streams in, as soon as it is over ``limit`` bytes."""

    def __init__(self, limit: int, seen: int, declared: bool) -> None:
        super().__init__(status_code=413, detail=f"request body over {limit} bytes")
        self.limit = limit
        self.seen = seen
        self.declared = declared


def body(model: ErrorBody) -> dict[str, Any]:
    return model.model_dump()


def respond(status: int, model: ErrorBody, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content=body(model), headers=headers)


def error(status: int, error: str, hint: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An error without fields (401, 403, 404, ...)."""
    return respond(status, ErrorBody(error=error, hint=hint), headers)


def problem(status: int, field: str, rule: str, hint: str = "") -> JSONResponse:
    """One field broke one rule (413 or 422 on the gateway, 400 on the executors)."""
    return respond(status, Invalid(error="invalid request", problems=[Problem(field=field, rule=rule)],
                                   hint=hint or f"fix {field}; {SCHEMA_HINT}"))


def too_large(exc: RequestTooLarge) -> JSONResponse:
    """The 413 for a body over the limit; the connection closes, the rest of the body is never read."""
    seen = (f"Content-Length is {exc.seen} bytes" if exc.declared
            else f"more than {exc.limit} bytes arrived")
    return respond(413, Invalid(
        error="request body too large",
        problems=[Problem(field="body", rule=f"{seen}; the limit is {exc.limit} bytes")],
        hint="send a smaller body; a submission's code may be at most MAX_CODE_BYTES bytes"),
        headers={"Connection": "close"})


def is_json(content_type: str | None) -> bool:
    """``application/json`` or ``application/*+json``, parameters aside."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def require_json(request: Request) -> None:
    """A route dependency: a body that is not declared as JSON is a 415 before anything parses it."""
    content_type = request.headers.get("content-type")
    if not is_json(content_type):
        raise HTTPException(415, detail=f"Content-Type {content_type!r} is not JSON" if content_type
                            else "no Content-Type")


def documented(status: int, description: str) -> dict[str, Any]:
    """One entry of a FastAPI route's ``responses=``: the status, its meaning and its body model."""
    model = {400: Malformed, 413: Invalid, 422: Invalid, 503: Unavailable}.get(status, ErrorBody)
    return {"model": model, "description": description}


def _rule(err: dict[str, Any]) -> str:
    ctx = err.get("ctx") or {}
    if err.get("type") in ("literal_error", "enum") and "expected" in ctx:
        return f"unsupported value {err.get('input')!r}; expected one of {ctx['expected']}"
    return str(err.get("msg", "invalid"))


def _unparsable(cause: BaseException | None) -> str | None:
    """Why the framework could not parse a body, when it says 'There was an error parsing the body'."""
    if isinstance(cause, UnicodeDecodeError):
        return f"the body is not valid UTF-8 ({cause.reason} at byte {cause.start})"
    if isinstance(cause, RecursionError):
        return "the JSON is nested deeper than the parser allows (about 1000 levels)"
    if cause is not None:
        return f"{cause.__class__.__name__}: {cause}"
    return None


_PHRASES = {404: "no such endpoint", 405: "method not allowed"}


def allowed_methods(request: Request) -> list[str]:
    """Every method some route accepts on this path (Starlette's 405 names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "\0"})
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def install(app: FastAPI) -> None:
    """Answer every error the framework raises in the one format (see the module docstring)."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems: list[Problem] = []
        for err in exc.errors():
            if err.get("type") == "json_invalid":
                return respond(400, Malformed(
                    error="malformed JSON", detail=str(err.get("ctx", {}).get("error", err.get("msg"))),
                    hint="send a JSON object with Content-Type: application/json"))
            loc = [str(part) for part in err.get("loc", ()) if part != "body"]
            problems.append(Problem(field=".".join(loc) or "body", rule=_rule(err)))
        return respond(422, Invalid(error="invalid request", problems=problems,
                                    hint=f"fix the fields listed in problems; {SCHEMA_HINT}"))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        if isinstance(exc, RequestTooLarge):
            return too_large(exc)
        headers = dict(exc.headers or {})
        if exc.status_code == 400:
            why = _unparsable(exc.__cause__) or str(exc.detail)
            return respond(400, Malformed(error="malformed JSON", detail=why,
                                          hint="send a UTF-8 JSON object with Content-Type: application/json"),
                           headers)
        where = f"{request.method} {request.url.path}"
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request)) or headers.get("Allow", "")
            return error(405, f"method not allowed: {where}",
                         f"this path accepts {headers.get('Allow', 'other methods')}; {SCHEMA_HINT}", headers)
        if exc.status_code == 415:
            return error(415, f"unsupported media type: {exc.detail}",
                         "send the body as JSON with Content-Type: application/json", headers)
        phrase = _PHRASES.get(exc.status_code, str(exc.detail))
        return error(exc.status_code, f"{phrase}: {where}", SCHEMA_HINT, headers)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        return error(500, f"internal error: {exc.__class__.__name__}",
                     "this is a bug in the service; its log has the traceback")
