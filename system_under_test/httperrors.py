"""One error format for every HTTP service of the platform (gateway and executors).

A 4xx body always names the problem and, where it is a field, the field and the rule:
``{"error": "invalid request", "problems": [{"field": "language", "rule": "..."}]}``.
Malformed JSON is a 400 that says so; failed validation is a 422 listing each problem.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems: list[dict[str, Any]] = []
        for err in exc.errors():
            loc = [str(part) for part in err.get("loc", ()) if part != "body"]
            if err.get("type") == "json_invalid":
                return JSONResponse(
                    status_code=400,
                    content={
                        "error": "malformed JSON",
                        "detail": str(err.get("ctx", {}).get("error", err.get("msg"))),
                        "hint": "send a JSON object with Content-Type: application/json",
                    },
                )
            problems.append({"field": ".".join(loc) or "body", "rule": err.get("msg", "invalid")})
        return JSONResponse(status_code=422, content={"error": "invalid request", "problems": problems})


def problem(status: int, field: str, rule: str) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"error": "invalid request", "problems": [{"field": field, "rule": rule}]},
    )
