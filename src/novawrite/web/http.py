"""Request parsing and JSON responses shared by every endpoint.

Bodies are read with a hard cap (1 MiB) before they are parsed, and every
validation failure becomes a ``ValidationFailed`` carrying API.md's details list.

JSON has one number type, so a whole number written as ``16.0`` or ``1e2`` is the
integer it denotes (as JSON Schema and the OpenAPI document say). Two rules hold for
every value a body model accepts, because the database cannot store anything else:
strings have no NUL character and integers fit in 64 bits; members the model ignores
are not looked into. ``openapi_document`` publishes both rules
(``BODY_STRING_PATTERN``, ``format: int64``).

A request that carries a body (a ``Content-Length`` above 0, or any
``Transfer-Encoding``) must say it is JSON (``require_json_body``, 415), on every
method, before anything reads it: a cross-site form (``text/plain``, urlencoded,
multipart) never reaches a handler. A request without a body (``logout``, ``cancel``,
a GET) may send any Content-Type or none.

JSON responses are ``Cache-Control: no-store``: they hold a user's data.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from novawrite.errors import InvalidJson, PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from novawrite.jsonenc import dumps as dumps  # the web's JSON is everyone's (novawrite.jsonenc)

MAX_BODY_BYTES = 1024 * 1024
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: Any text without U+0000, as a JSON Schema (ECMA-262) pattern.
BODY_STRING_PATTERN = "^[^\\u0000]*$"

M = TypeVar("M", bound=BaseModel)


NO_STORE = (b"cache-control", b"no-store")


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else dumps(content)

    def init_headers(self, headers: Mapping[str, str] | None = None) -> None:
        super().init_headers(headers)
        if headers is None or not any(name.lower() == "cache-control" for name in headers):
            self.raw_headers.append(NO_STORE)


def require_json_body(request: Request) -> None:
    """415 when the request has a body that is not ``application/json`` (a charset of UTF-8 is fine)."""
    content_type = b""
    has_body = False
    for name, value in request.scope["headers"]:
        if name == b"content-type":
            content_type = value
        elif name == b"content-length":
            has_body = has_body or not value.isdigit() or int(value) > 0
        elif name == b"transfer-encoding":
            has_body = True
    if has_body and not _is_json(content_type):
        raise UnsupportedMediaType("The request body must be JSON (Content-Type: application/json)")


def _is_json(content_type: bytes) -> bool:
    media_type, *parameters = content_type.decode("latin-1").split(";")
    if media_type.strip().lower() != "application/json":
        return False
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if not parameter.strip():
            continue
        if name.strip().lower() != "charset":
            return False
        try:
            if codecs.lookup(value.strip().strip('"')).name not in ("utf-8", "ascii"):
                return False
        except LookupError:
            return False
    return True


async def read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"Request body is over {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"Request body is over {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _field(loc: tuple[int | str, ...], prefix: str) -> str:
    parts = [str(part) for part in loc]
    return ".".join([prefix, *parts] if prefix else parts) or prefix or "body"


def validation_details(error: ValidationError, prefix: str = "") -> list[dict[str, str]]:
    return [{"field": _field(e["loc"], prefix), "message": e["msg"]} for e in error.errors(include_url=False)]


async def parse_body(request: Request, model: type[M]) -> M:
    raw = await read_body(request)
    try:
        data = orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError:
        raise InvalidJson("Request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidJson("Request body must be a JSON object")
    try:
        parsed = model.model_validate(_whole_numbers_as_int(data))
    except ValidationError as error:
        raise ValidationFailed(validation_details(error)) from None
    problem = _unstorable(parsed.model_dump())
    if problem is not None:
        raise ValidationFailed([problem])
    return parsed


def _whole_numbers_as_int(data: dict[str, Any]) -> dict[str, Any]:
    """``16.0`` as ``16``, in the members of a body and the lists they hold (a list of chapter ids);
    bodies are flat objects, nothing deeper is walked."""
    return {
        key: [_as_int(item) for item in value] if isinstance(value, list) else _as_int(value)
        for key, value in data.items()
    }


def _as_int(value: Any) -> Any:
    return int(value) if _exact_integer(value) else value


def _exact_integer(value: Any) -> bool:
    # Past 2**53 a double is not the number that was written (orjson reads integers past 64 bits as doubles).
    return isinstance(value, float) and value.is_integer() and abs(value) <= 2**53


def _unstorable(value: Any, path: str = "") -> dict[str, str] | None:
    """API.md's detail for the first accepted value the database cannot store, or None."""
    if isinstance(value, str) and "\x00" in value:
        # PostgreSQL cannot store U+0000 in text; no author means to send it.
        return {"field": path or "body", "message": "Text must not contain the NUL character"}
    if isinstance(value, int) and not isinstance(value, bool) and not INT64_MIN <= value <= INT64_MAX:
        return {"field": path or "body", "message": "Integers must fit in 64 bits"}
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _unstorable(item, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None
