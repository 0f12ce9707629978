"""Every response is `{code, message, data}`; errors carry the API contract's codes. The mapping
from error codes to HTTP statuses lives here, once."""

from __future__ import annotations

import logging
import secrets
from typing import Any, Generic, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from controller.errors import LifeboatError

log = logging.getLogger(__name__)
T = TypeVar("T")

OK = 200  # a success's code, as the API contract's example has it; errors carry a name
HTTP_STATUS: dict[str, int] = {
    "INVALID_REQUEST": 400,
    "UNAUTHORIZED": 401,
    "FORBIDDEN": 403,
    "BACKUP_NOT_FOUND": 404,
    "APP_NOT_FOUND": 404,
    "RESOURCE_NOT_FOUND": 404,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "CONFLICT": 409,
    "RESOURCE_BUSY": 409,
    "REPOSITORY_LOCKED": 409,
    "WRITE_CONFLICT": 409,
    "REQUEST_TOO_LARGE": 413,
    "RANGE_NOT_SATISFIABLE": 416,
    "INVALID_RESOURCE": 422,
    "VALIDATION_ERROR": 422,
    "BACKUP_CREATE_FAILED": 500,
    "BACKUP_CORRUPTED": 500,
    "RESTORE_FAILED": 500,
    "STORAGE_UNAVAILABLE": 503,
    "DOCKER_UNAVAILABLE": 503,
    "TRANSIENT": 503,
    "BACKUP_QUOTA_EXCEEDED": 507,
    "STORAGE_FULL": 507,
}
_HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 401: "UNAUTHORIZED", 403: "FORBIDDEN"}


class Envelope(BaseModel, Generic[T]):
    code: int | str  # 200 on success; the error's name otherwise
    message: str
    data: T | None = None


def status_for(code: str) -> int:
    return HTTP_STATUS.get(code, 500)


def error_response(code: str, message: str, data: Any = None, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"code": code, "message": message, "data": data}
    return JSONResponse(body, status_code=status_for(code), headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """No stack trace reaches a client: Lifeboat's errors by their code, validation errors
    by field (without the rejected input, which may be a secret), anything else as a 500
    whose id points into the log."""

    @app.exception_handler(LifeboatError)
    async def lifeboat_error(_request: Request, err: LifeboatError) -> JSONResponse:
        return error_response(err.code, str(err))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, err: RequestValidationError) -> JSONResponse:
        broken = next((e for e in err.errors() if e.get("type") == "json_invalid"), None)
        if broken is not None:  # not JSON at all: the request, not a field, is wrong
            where = (broken.get("ctx") or {}).get("error", "")
            return error_response("INVALID_REQUEST", f"the body is not valid JSON{f': {where}' if where else ''}")
        problems = [
            {"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"), "message": e.get("msg", "")}
            for e in err.errors()
        ]
        message = "; ".join(f"{p['field']}: {p['message']}" for p in problems) or "the request is not valid"
        return error_response("VALIDATION_ERROR", message, {"problems": problems})

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, err: HTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(err.status_code, f"HTTP_{err.status_code}")
        response = error_response(code, str(err.detail), headers=getattr(err, "headers", None))
        response.status_code = err.status_code
        return response

    @app.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception) -> JSONResponse:
        incident = secrets.token_hex(4)
        log.error("internal error %s on %s %s", incident, request.method, request.url.path, exc_info=err)
        return error_response("INTERNAL_ERROR", f"internal error {incident}; the controller's log has the details")
