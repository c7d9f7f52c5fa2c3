"""The one place where failures become HTTP responses in API.md's error shape."""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from novawrite.errors import AppError, TooManyAttempts, TooManyStreams, TooManyTasks, ValidationFailed
from novawrite.web.http import JSON

log = logging.getLogger("novawrite.web")

STATUS_BY_CODE = {
    "invalid_json": 400,
    "unauthorized": 401,
    "csrf_failed": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "task_conflict": 409,
    "task_finished": 409,
    "task_not_retryable": 409,
    "chapter_has_content": 409,
    "idempotency_key_reused": 409,
    "username_taken": 409,
    "name_taken": 409,
    "precondition_failed": 412,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "validation_error": 422,
    "too_many_tasks": 429,
    "too_many_streams": 429,
    "too_many_attempts": 429,
    "internal_error": 500,
}

CODE_BY_STATUS = {
    400: "invalid_json",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    500: "internal_error",
}


def error_response(
    status: int, code: str, message: str, *, details: Any = None, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    body: dict[str, Any] = {"code": code, "message": message, **extra}
    if details is not None:
        body["details"] = details
    return JSON({"error": body}, status_code=status, headers=headers)


async def app_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    status = STATUS_BY_CODE.get(exc.code, 500)
    headers: dict[str, str] = {}
    details = None
    if isinstance(exc, ValidationFailed):
        details = exc.details
    if isinstance(exc, (TooManyTasks, TooManyStreams, TooManyAttempts)):
        headers["Retry-After"] = str(exc.retry_after)
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return error_response(status, exc.code, exc.message, details=details, headers=headers or None, **exc.extra)


async def http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = CODE_BY_STATUS.get(exc.status_code, "http_error")
    messages = {404: "Not found", 405: "Method not allowed"}
    message = messages.get(exc.status_code) or (exc.detail if isinstance(exc.detail, str) else "Request failed")
    return error_response(exc.status_code, code, message, headers=dict(exc.headers or {}) or None)


async def unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "Internal server error")


EXCEPTION_HANDLERS = {AppError: app_error, HTTPException: http_exception, Exception: unexpected}
