"""Request parsing and JSON responses shared by every endpoint.

Bodies are read with a hard cap (1 MiB) before they are parsed, and every
validation failure becomes a ``ValidationFailed`` carrying API.md's details list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from novawrite.errors import InvalidJson, PayloadTooLarge, ValidationFailed

MAX_BODY_BYTES = 1024 * 1024

M = TypeVar("M", bound=BaseModel)


def dumps(data: Any) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_UTC_Z)


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else dumps(content)


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
    nul = _find_nul(data)
    if nul is not None:
        # PostgreSQL cannot store U+0000 in text; no author means to send it.
        raise ValidationFailed([{"field": nul, "message": "Text must not contain the NUL character"}])
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ValidationFailed(validation_details(error)) from None


def _find_nul(value: Any, path: str = "") -> str | None:
    """The dotted path of the first string (or member name) holding U+0000, or None."""
    if isinstance(value, str):
        return (path or "body") if "\x00" in value else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _find_nul(key, path) or _find_nul(item, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


def parse_query(params: Mapping[str, str], model: type[M]) -> M:
    try:
        return model.model_validate(dict(params))
    except ValidationError as error:
        raise ValidationFailed(validation_details(error, "query")) from None
