"""The admin endpoints and their guard: ``Authorization: Bearer <ADMIN_TOKEN>`` or ``X-Admin-Token``.

``GET``/``PUT /api/admin/split`` read and change the routing settings (the split, dual-write, phase 2's
``fallback``, phase 3's ``accept_legacy``); every change is recorded, with its time, before it takes
effect, and ``GET /api/admin/history`` lists them (history.py). A change that would leave no path for
new work (``celery_enabled`` and ``accept_legacy`` both false) is a 409.

Both token headers are declared as OpenAPI security schemes (either one will do), so Swagger UI offers an
"Authorize" button and schema-driven tools know the endpoint needs a token. The guard answers
instead of the endpoint: 403 when the gateway runs without ``ADMIN_TOKEN`` (the endpoint is
disabled), 401 when the token is missing or wrong. Tokens are compared in constant time.
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoints' annotations at run time, and
# they name this gateway's guard.

import hmac
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from redis.exceptions import RedisError

from system_under_test import httperrors
from system_under_test.gateway.history import History
from system_under_test.gateway.models import AdminChange, Split, SplitUpdate
from system_under_test.gateway.split import SplitPolicy

D = httperrors.documented

bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <ADMIN_TOKEN>`")
header = APIKeyHeader(name="X-Admin-Token", auto_error=False, description="the ADMIN_TOKEN itself")


class AdminGuard:
    def __init__(self, token: str) -> None:
        self.token = token

    def check(self, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
              x_admin_token: Annotated[str | None, Security(header)]) -> JSONResponse | None:
        """None when the request may pass, else the response that refuses it."""
        if not self.token:
            return httperrors.error(403, "the admin endpoint is disabled",
                                    "start the gateway with ADMIN_TOKEN set")
        given = x_admin_token or (credentials.credentials if credentials else "")
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return httperrors.error(401, "missing or wrong admin token",
                                    "send 'Authorization: Bearer <ADMIN_TOKEN>' (or 'X-Admin-Token: <ADMIN_TOKEN>')",
                                    headers={"WWW-Authenticate": "Bearer"})
        return None


def install(app: FastAPI, *, guard: AdminGuard, state: dict[str, SplitPolicy], history: History,
            unavailable: Callable[..., JSONResponse], redis_url: str, too_large: dict[str, Any],
            json_only: list[Any]) -> Callable[[], Split]:
    """Add the admin endpoints to ``app``; returns the function that reads the split now."""

    def split_view() -> Split:
        return Split.model_validate(state["policy"].as_dict())

    responses: dict[int | str, dict[str, Any]] = {
        401: D(401, "no admin token, or the wrong one"),
        403: D(403, "the gateway runs without ADMIN_TOKEN: the admin endpoint is disabled"),
        413: too_large}
    redis_down = D(503, "the main Redis is unreachable")
    Denied = Annotated[JSONResponse | None, Depends(guard.check)]

    @app.get("/api/admin/split", response_model=Split, operation_id="read_split",
             summary="Read the split and the phase settings", responses=responses)
    def get_split(denied: Denied) -> Split | JSONResponse:
        return denied or split_view()

    @app.put("/api/admin/split", response_model=Split, operation_id="change_split",
             summary="Change the split and the phase settings at run time", dependencies=json_only, responses={
                 **responses, 400: D(400, "the body is not JSON, not UTF-8, or nested too deeply"),
                 409: D(409, "the settings would leave no path for new work: celery_enabled false with "
                             "accept_legacy false"),
                 415: D(415, "the body is not declared as JSON (Content-Type: application/json)"),
                 422: D(422, "a field is of the wrong type, out of range, or unknown"),
                 503: D(503, "the main Redis is unreachable: the change is not made, as it cannot be recorded")})
    def put_split(update: SplitUpdate, denied: Denied) -> Split | JSONResponse:
        if denied:
            return denied
        changes = {k: v for k, v in update.model_dump().items() if v is not None}
        with history.lock:
            try:
                policy = state["policy"].with_changes(**changes)
            except ValueError as exc:
                return httperrors.error(409, f"conflicting settings: {exc}",
                                        "set accept_legacy true in the same request to send work to legacy again, "
                                        "or keep celery_enabled true")
            try:
                history.record(changes)
            except RedisError as exc:
                return unavailable("main redis", redis_url, exc,
                                   hint="the change was not made (every change is recorded first); retry when "
                                        "the main Redis is back")
            state["policy"] = policy
        return split_view()

    @app.get("/api/admin/history", response_model=list[AdminChange], response_model_exclude_none=True,
             operation_id="read_admin_history", summary="Every settings change with its time, oldest first",
             responses={**responses, 503: redis_down})
    def get_history(denied: Denied) -> list[AdminChange] | JSONResponse:
        if denied:
            return denied
        try:
            history.record_start()
            return [AdminChange.model_validate(entry) for entry in history.read()]
        except RedisError as exc:
            return unavailable("main redis", redis_url, exc, hint="retry the read when the main Redis is back")

    return split_view
