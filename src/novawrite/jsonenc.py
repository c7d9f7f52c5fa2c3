"""The application's JSON encoding, for every layer that writes JSON (HTTP responses, the polling cache).

orjson, with datetimes in UTC written with a ``Z``.
"""

from __future__ import annotations

from typing import Any

import orjson


def dumps(data: Any) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_UTC_Z)
