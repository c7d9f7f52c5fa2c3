"""Account changes across processes on PostgreSQL: LISTEN on ``users.CHANNEL``.

A logout or a password change in one process sends a NOTIFY in its transaction;
every other process hears it when the change commits and forgets its copy of that
account (``Users.forget``), so the next request of that user reads the new state.
While the connection is down nothing is heard, so every copy is dropped each time
it is (re)made; ``Users``' cache bound covers a connection that died unnoticed.
SQLite has one process and needs none of this.
"""

from __future__ import annotations

import asyncio

from novawrite.db.listen import listen_forever
from novawrite.db.raw import asyncpg_dsn
from novawrite.services.users import CHANNEL, Users


class AccountListener:
    def __init__(self, url: str, users: Users) -> None:
        self._dsn = asyncpg_dsn(url)
        self._users = users
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="account listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=5)

    async def _listen(self) -> None:
        await listen_forever(
            self._dsn, CHANNEL, self._on_notify, what="account listener", connected=self._connected, ready=self.ready
        )

    def _connected(self) -> None:
        self._users.forget(None)  # whatever changed while nobody listened

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        origin, _, user_id = payload.partition(" ")
        if origin != self._users.origin and user_id.isdigit():
            self._users.forget(int(user_id))
