"""Entity tags of the author's resources (chapters, volumes, list items) and ``If-Match``.

An ETag is a digest of the resource's JSON representation, so it changes exactly
when what a GET shows changes, whoever changed it (an edit, a generation, a
renumbering), with no version column for every writer to remember to bump. The
check and the write happen in one transaction with the novel's row locked, so of
two writers holding the same ETag exactly one wins.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from novawrite.errors import PreconditionFailed


def etag_of(view: Mapping[str, Any]) -> str:
    """A strong ETag (quoted) of a resource's representation."""
    body = orjson.dumps(view, option=orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS)
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def if_match_holds(header: str | None, current: str) -> bool:
    """RFC 9110 ``If-Match`` against the current ETag: absent or ``*`` holds; else one listed tag must be it.

    The comparison is strong: a weak tag (``W/"..."``) never matches, and neither does
    anything that is not a quoted tag.
    """
    if header is None:
        return True
    tags = [tag.strip() for tag in header.split(",")]
    return "*" in tags or current in tags


def check_if_match(header: str | None, current: str) -> None:
    if not if_match_holds(header, current):
        raise PreconditionFailed()
