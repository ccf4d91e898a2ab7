"""The admin endpoint's guard: ``Authorization: Bearer <ADMIN_TOKEN>`` or ``X-Admin-Token``.

Both are declared as OpenAPI security schemes (either one will do), so Swagger UI offers an
"Authorize" button and schema-driven tools know the endpoint needs a token. The guard answers
instead of the endpoint: 403 when the gateway runs without ``ADMIN_TOKEN`` (the endpoint is
disabled), 401 when the token is missing or wrong. Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from system_under_test import httperrors

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
