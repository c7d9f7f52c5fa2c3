"""Accounts: registration, credential checks, and a cache of who exists."""

from __future__ import annotations

import asyncio

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from novawrite.db.engine import Database
from novawrite.db.models import User, utcnow
from novawrite.errors import Conflict
from novawrite.security import Passwords


class Users:
    def __init__(self, db: Database, passwords: Passwords) -> None:
        self._db = db
        self._passwords = passwords
        # Users are never deleted, so a user seen once stays valid: authenticating
        # a request costs no query after the first (the polling path is hot).
        self._names: dict[int, str] = {}

    async def register(self, username: str, password: str) -> tuple[int, str]:
        password_hash = await asyncio.to_thread(self._passwords.hash, password)
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
        self._names[user_id] = username
        return user_id, username

    async def check_credentials(self, username: str, password: str) -> int | None:
        async with self._db.read() as conn:
            row = (await conn.execute(select(User.id, User.password_hash).where(User.username == username))).first()
        ok = await asyncio.to_thread(self._passwords.verify, row.password_hash if row else None, password)
        return row.id if row is not None and ok else None

    async def username(self, user_id: int) -> str | None:
        name = self._names.get(user_id)
        if name is None:
            async with self._db.read() as conn:
                name = (await conn.execute(select(User.username).where(User.id == user_id))).scalar_one_or_none()
            if name is not None:
                self._names[user_id] = name
        return name
