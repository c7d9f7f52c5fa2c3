"""The reliability suite: a short form in every test run, a long form on demand.

``scripts/reliability`` sets ``NOVAWRITE_RELIABILITY=long``; the tests read their
sizes (task counts, client counts, durations) through ``scale``.
"""

from __future__ import annotations

import os

LONG = os.environ.get("NOVAWRITE_RELIABILITY", "").lower() == "long"


def scale(short: int | float, long: int | float) -> int | float:
    """The short-form size in CI, the issue's full size in the long form."""
    return long if LONG else short
