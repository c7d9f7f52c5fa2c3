"""Responses of resources with an ETag (chapters, volumes, list items) and the ``If-Match`` they take."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from novawrite.services.etags import etag_of
from novawrite.web.http import JSON
from novawrite.web.routing import Call


def tagged(view: dict[str, Any], *, status_code: int = 200, location: str | None = None) -> Response:
    """The resource as JSON with its ETag (and ``Location`` for a 201)."""
    headers = {"ETag": etag_of(view)}
    if location is not None:
        headers["Location"] = location
    return JSON(view, status_code=status_code, headers=headers)


def if_match(call: Call) -> str | None:
    return call.request.headers.get("if-match")
