"""The application's JSON encoding, for every layer that writes JSON (HTTP responses, the polling cache).

orjson, with datetimes in UTC written with a ``Z``.

orjson hands back its output in the buffer it wrote into, which it does not shrink:
with orjson 3.13, an English chapter's 3.4 KB task body held 32 KB, and 4.5 KB
of Chinese text 64 KB (``test_a_kept_body_holds_no_more_memory_than_its_length``
prints both). That costs nothing for a response sent and dropped,
but a body kept for the process's lifetime would keep all of it, so what is kept
goes through :func:`dumps_kept`.
"""

from __future__ import annotations

from typing import Any

import orjson


def dumps(data: Any) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_UTC_Z)


def dumps_kept(data: Any) -> bytes:
    """:func:`dumps` for a body kept beyond the request: a copy in an allocation of its own size."""
    return bytes(memoryview(dumps(data)))
