"""Failed logins, throttled per username and per client address.

Each failure is a row in ``login_failures`` (so the rule holds across processes on
PostgreSQL). An attempt is refused, before its password is looked at, while the
username has ``per_username`` failures in the last ``window`` seconds or the address
has ``per_address``; it may try again once the oldest failure that keeps the count at
the limit leaves the window, which is its Retry-After. A refused attempt is not itself
a failure (the password was not checked). A success deletes the username's failures;
the address's stay. Rows older than the window are pruned now and then.

Attempts racing each other may overshoot a limit by the number running at once, as
each checks before any of them has failed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Select, delete, insert, select
from sqlalchemy.sql.elements import ColumnElement

from novawrite.db.engine import Database
from novawrite.db.models import LoginFailure
from novawrite.errors import TooManyAttempts

MAX_ADDRESS = 100


class LoginThrottle:
    def __init__(
        self,
        db: Database,
        *,
        per_username: int = 10,
        per_address: int = 100,
        window_seconds: int = 15 * 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self.per_username = per_username
        self.per_address = per_address
        self.window = timedelta(seconds=window_seconds)
        self.clock = clock
        self._pruned_at: datetime | None = None

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    async def check(self, username: str, address: str) -> None:
        """Raise ``TooManyAttempts`` while the username or the address is throttled."""
        now = self._now()
        since = now - self.window
        async with self._db.read() as conn:
            waits = []
            for column, value, limit in (
                (LoginFailure.username, username, self.per_username),
                (LoginFailure.address, address[:MAX_ADDRESS], self.per_address),
            ):
                # The limit-th newest failure in the window: while it is there, the count is at the limit.
                oldest = await conn.scalar(_nth_newest(column == value, since, limit))
                if oldest is not None:
                    waits.append(oldest + self.window - now)
        if waits:
            seconds = max(1, math.ceil(max(waits).total_seconds()))
            raise TooManyAttempts(f"Too many failed logins; try again in {seconds} s", retry_after=seconds)

    async def failed(self, username: str, address: str) -> None:
        now = self._now()
        async with self._db.write() as conn:
            await conn.execute(
                insert(LoginFailure).values(username=username, address=address[:MAX_ADDRESS], failed_at=now)
            )
            if self._pruned_at is None or now - self._pruned_at > self.window:
                self._pruned_at = now
                await conn.execute(delete(LoginFailure).where(LoginFailure.failed_at <= now - self.window))

    async def succeeded(self, username: str) -> None:
        async with self._db.write() as conn:
            await conn.execute(delete(LoginFailure).where(LoginFailure.username == username))


def _nth_newest(match: ColumnElement[bool], since: datetime, n: int) -> Select[datetime]:
    return (
        select(LoginFailure.failed_at)
        .where(match, LoginFailure.failed_at > since)
        .order_by(LoginFailure.failed_at.desc())
        .limit(1)
        .offset(n - 1)
    )
