"""Accounts: registration, credential checks, password changes, logout, and who may call.

Authenticating a request must not cost a query: the polling route is hot. So each
process keeps an ``Account`` per user it has seen (name, token generation, revoked
session ids) and answers from it. A password change raises the account's token
generation and a logout adds the session's ``jti`` to ``revoked_tokens``; the process
that makes the change forgets its copy at once, and on PostgreSQL the same transaction
sends a NOTIFY (``CHANNEL``) that makes every other process forget its copy when the
change commits (``novawrite.services.account_events``). A copy is also never trusted
for longer than ``cache_seconds`` (default 30 s), which bounds a lost notification; an
active user costs one small query per process per that interval.

A read that began before a change and ends after the change's notification must not
store what it read: ``forget`` drops the read in flight, and a read that is no longer
the user's read in flight does not store (as the polling cache does). Requests that
miss the copy while a read is in flight wait for that read instead of starting their
own: under steady load (many polls of one user at once), reads that overwrote one
another would never store anything, and every request would cost a query.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from novawrite.db.engine import Database
from novawrite.db.models import RevokedToken, User, utcnow
from novawrite.errors import Conflict
from novawrite.security import Passwords, TokenClaims

#: PostgreSQL NOTIFY channel for account changes; payload "origin user_id".
CHANNEL = "novawrite_accounts"
MAX_CACHED = 100_000


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    username: str
    generation: int
    revoked: frozenset[str]
    loaded_at: float

    def accepts(self, claims: TokenClaims) -> bool:
        return claims.generation >= self.generation and claims.jti not in self.revoked


class Users:
    def __init__(
        self,
        db: Database,
        passwords: Passwords,
        *,
        clock: Callable[[], float] = time.time,
        cache_seconds: float = 30.0,
    ) -> None:
        self._db = db
        self.passwords = passwords
        self._clock = clock
        self._cache_seconds = cache_seconds
        #: Who sends this process's notifications (its listener skips them).
        self.origin = uuid.uuid4().hex
        self._accounts: dict[int, Account] = {}
        self._reads: dict[int, asyncio.Future[Account | None]] = {}  # one read in flight per user

    # --- accounts ------------------------------------------------------------------------

    async def register(self, username: str, password: str) -> tuple[int, str]:
        password_hash = await self.passwords.hash_async(password)
        try:
            async with self._db.write() as conn:
                user_id = (
                    await conn.execute(
                        insert(User)
                        .values(username=username, password_hash=password_hash, created_at=utcnow())
                        .returning(User.id)
                    )
                ).scalar_one()
        except IntegrityError:
            raise Conflict("username_taken", f"The username {username!r} is taken") from None
        return user_id, username

    async def check_credentials(self, username: str, password: str) -> tuple[int, int] | None:
        """(user id, token generation) when the password is right, else None (as slow for an unknown user)."""
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(User.id, User.password_hash, User.token_generation).where(User.username == username)
                )
            ).first()
        ok = await self.passwords.verify_async(row.password_hash if row else None, password)
        return (row.id, row.token_generation) if row is not None and ok else None

    async def change_password(self, user_id: int, current: str, new: str) -> int | None:
        """Set a new password and revoke every token issued before; the new token generation,
        or None when ``current`` is not the password."""
        async with self._db.read() as conn:
            old_hash = (await conn.execute(select(User.password_hash).where(User.id == user_id))).scalar_one_or_none()
        if old_hash is None or not await self.passwords.verify_async(old_hash, current):
            return None
        new_hash = await self.passwords.hash_async(new)
        async with self._db.write() as conn:
            # Guarded by the hash just verified: of two changes at once, the second finds it gone.
            generation = (
                await conn.execute(
                    update(User)
                    .where(User.id == user_id, User.password_hash == old_hash)
                    .values(password_hash=new_hash, token_generation=User.token_generation + 1)
                    .returning(User.token_generation)
                )
            ).scalar_one_or_none()
            if generation is not None:
                await self._notify(conn, user_id)
        self.forget(user_id)
        return generation

    async def revoke(self, claims: TokenClaims) -> None:
        """End one session (logout): its token is refused from now until it expires."""
        expires = datetime.fromtimestamp(claims.expires, UTC)
        now = datetime.fromtimestamp(self._clock(), UTC)
        values = {"jti": claims.jti, "user_id": claims.user_id, "expires_at": expires}
        dialect = postgresql if not self._db.is_sqlite else sqlite
        async with self._db.write() as conn:
            await conn.execute(dialect.insert(RevokedToken).values(values).on_conflict_do_nothing())
            # The user's sessions revoked earlier and expired since need no remembering.
            await conn.execute(
                delete(RevokedToken).where(RevokedToken.user_id == claims.user_id, RevokedToken.expires_at <= now)
            )
            await self._notify(conn, claims.user_id)
        self.forget(claims.user_id)

    # --- who may call --------------------------------------------------------------------

    async def account(self, user_id: int, *, fresh: bool = False) -> Account | None:
        """The user's token state, from this process's copy while it is recent (``fresh``: read it now)."""
        account = self._accounts.get(user_id)
        if account is not None and not fresh and time.monotonic() - account.loaded_at < self._cache_seconds:
            return account
        reading = self._reads.get(user_id)
        if reading is None or fresh:
            reading = asyncio.ensure_future(self._load(user_id))
            self._reads[user_id] = reading
            reading.add_done_callback(lambda done: self._store(user_id, done))
        return await asyncio.shield(reading)

    async def _load(self, user_id: int) -> Account | None:
        loaded_at = time.monotonic()
        now = datetime.fromtimestamp(self._clock(), UTC)
        async with self._db.read() as conn:
            row = (await conn.execute(select(User.username, User.token_generation).where(User.id == user_id))).first()
            revoked = (
                await conn.execute(
                    select(RevokedToken.jti).where(RevokedToken.user_id == user_id, RevokedToken.expires_at > now)
                )
            ).scalars()
            jtis = frozenset(revoked)
        return None if row is None else Account(user_id, row.username, row.token_generation, jtis, loaded_at)

    def _store(self, user_id: int, done: asyncio.Future[Account | None]) -> None:
        """Keep what a read found, unless a change (``forget``) or a fresher read came meanwhile."""
        if self._reads.get(user_id) is not done:
            return
        del self._reads[user_id]
        account = None if done.cancelled() or done.exception() is not None else done.result()
        if account is not None:
            if len(self._accounts) >= MAX_CACHED:
                self._accounts.clear()
            self._accounts[user_id] = account

    async def username(self, user_id: int) -> str | None:
        account = await self.account(user_id)
        return account.username if account is not None else None

    def forget(self, user_id: int | None) -> None:
        """Drop this process's copy of one account, or of every account for ``None``."""
        if user_id is None:
            self._accounts.clear()
            self._reads.clear()
        else:
            self._accounts.pop(user_id, None)
            self._reads.pop(user_id, None)

    async def _notify(self, conn: AsyncConnection, user_id: int) -> None:
        if not self._db.is_sqlite:
            await conn.execute(select(func.pg_notify(CHANNEL, f"{self.origin} {user_id}")))
