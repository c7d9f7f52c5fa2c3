"""LISTEN on a PostgreSQL channel for as long as a process runs.

One connection of its own, made again (with backoff) whenever it fails or is
terminated. Nothing is heard while it is down, so ``connected`` runs each time it
is listening again, for the caller to catch up on what it may have missed. The
task events (``engine.notify``) and the account changes (``services.account_events``)
both listen this way.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable

import asyncpg

log = logging.getLogger("novawrite.db")

Callback = Callable[[object, int, str, str], None]


async def listen_forever(
    dsn: str,
    channel: str,
    on_notify: Callback,
    *,
    what: str,
    connected: Callable[[], None],
    ready: asyncio.Event,
) -> None:
    """Listen on ``channel`` until cancelled; ``ready`` is set while listening.

    ``what`` names the listener in the log and, with the pid, in ``pg_stat_activity``
    (``application_name = 'novawrite <what> <pid>'``).
    """
    delay = 0.5
    while True:
        try:
            conn = await asyncpg.connect(dsn, server_settings={"application_name": f"novawrite {what} {os.getpid()}"})
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("%s cannot connect (%s); retrying in %.1f s", what, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)
            continue
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _, lost=lost: lost.set())
        try:
            await conn.add_listener(channel, on_notify)
            delay = 0.5
            ready.set()
            connected()
            await lost.wait()
            log.warning("%s lost its connection; reconnecting", what)
        finally:
            ready.clear()
            if not conn.is_closed():
                await conn.close(timeout=2)
