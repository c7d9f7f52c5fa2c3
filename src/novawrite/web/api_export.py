"""GET /api/novels/{novel_id}/export?format=txt|md|epub: the written book as a download."""

from __future__ import annotations

import re
from urllib.parse import quote

from starlette.responses import Response

from novawrite.services.export import MEDIA_TYPES
from novawrite.web.routing import ApiRouter, Call
from novawrite.web.schemas import ExportQuery

router = ApiRouter("export")

# Characters a file name should not carry on any common system, nor a quoted header value.
_UNSAFE = re.compile(r'[\x00-\x1f\x7f"\\/:*?<>|]+')


@router.route(
    "GET",
    "/api/novels/{novel_id}/export",
    summary="The novel's written chapters as one file (txt, md or epub)",
    query=ExportQuery,
    media_type=tuple(MEDIA_TYPES.values()),
)
async def export_novel(call: Call) -> Response:
    fmt = call.query.format
    book, body = await call.services.exports.export(call.user.id, call.path_param("novel_id"), fmt)
    return Response(
        body,
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": content_disposition(book.title, fmt)},
    )


def content_disposition(title: str, extension: str) -> str:
    """``attachment`` with the title as file name (RFC 6266): ``filename*`` when it is not ASCII, with a fallback."""
    name = " ".join(_UNSAFE.sub(" ", title).split()).strip(". ") or "novel"
    name = name[:150]
    ascii_name = " ".join(name.encode("ascii", "ignore").decode().split()).strip(". ")
    if ascii_name == name:
        return f'attachment; filename="{name}.{extension}"'
    fallback = ascii_name or "novel"
    return f"attachment; filename=\"{fallback}.{extension}\"; filename*=UTF-8''{quote(f'{name}.{extension}', safe='')}"
