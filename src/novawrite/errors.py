"""Domain errors: plain exceptions that say what went wrong, not how HTTP shows it.

``novawrite.web.errors`` holds the one table that maps them to status codes and
API.md's error shape.
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    code = "internal_error"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        #: Extra members of the error object (e.g. ``task_id`` of a conflict).
        self.extra = extra


class NotFound(AppError):
    code = "not_found"

    def __init__(self, message: str = "Not found") -> None:
        super().__init__(message)


class Unauthorized(AppError):
    code = "unauthorized"

    def __init__(self, message: str = "Authentication required") -> None:
        super().__init__(message)


class CsrfFailed(AppError):
    code = "csrf_failed"

    def __init__(self, message: str = "Missing or wrong X-CSRF-Token header") -> None:
        super().__init__(message)


class InvalidJson(AppError):
    code = "invalid_json"


class PayloadTooLarge(AppError):
    code = "payload_too_large"


class ValidationFailed(AppError):
    code = "validation_error"

    def __init__(self, details: list[dict[str, str]], message: str = "Request validation failed") -> None:
        super().__init__(message)
        self.details = details


class PreconditionFailed(AppError):
    """A 412: the client's ``If-Match`` is not the resource's current ETag."""

    code = "precondition_failed"

    def __init__(self, message: str = "The resource has changed since it was read (If-Match)") -> None:
        super().__init__(message)


class Conflict(AppError):
    """A 409: ``code`` is one of API.md's conflict codes."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(message, **extra)
        self.code = code


class TooManyTasks(AppError):
    code = "too_many_tasks"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooManyStreams(AppError):
    code = "too_many_streams"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UnsupportedMediaType(AppError):
    code = "unsupported_media_type"


class TooManyAttempts(AppError):
    """Failed logins throttled: wait ``retry_after`` seconds."""

    code = "too_many_attempts"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
