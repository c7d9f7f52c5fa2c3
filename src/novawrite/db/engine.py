"""Engines and transactions for SQLite and PostgreSQL.

SQLite is tuned for one writing process with many readers: WAL, a busy timeout,
foreign keys on, and every write transaction started with ``BEGIN IMMEDIATE`` on
a single writer connection, so writers queue in this process instead of failing
with "database is locked" when a read transaction tries to upgrade. Reads use a
separate pool and never block on the writer (WAL).

On PostgreSQL reads and writes share one pool.

``raw`` runs the task engine's hot statements on the drivers themselves
(``novawrite.db.raw``). On SQLite its writes and the SQLAlchemy writer's share
one lock (``exclusive``), so the two writer connections never wait on each other.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, NullPool

from novawrite.db.raw import RawDatabase, Tx, raw_database

SQLITE_BUSY_TIMEOUT_MS = 30_000

# The largest id a BIGINT can hold; anything beyond cannot exist.
MAX_ID = 2**63 - 1


def _sqlite_engine(url: str, *, immediate: bool, pool_size: int) -> AsyncEngine:
    engine = create_async_engine(
        url,
        poolclass=AsyncAdaptedQueuePool,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=60,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so that BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """The application's database: a writer and a reader engine (the same one on PostgreSQL)."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.dialect = make_url(url).get_backend_name()
        if self.dialect == "sqlite":
            self.writer = _sqlite_engine(url, immediate=True, pool_size=1)
            self.reader = _sqlite_engine(url, immediate=False, pool_size=pool_size)
        else:
            self.writer = create_async_engine(url, pool_size=pool_size, max_overflow=10, pool_pre_ping=False)
            self.reader = self.writer
        self.raw: RawDatabase = raw_database(url, pool_size)
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def exclusive(self) -> asyncio.Lock | nullcontext[None]:
        """SQLite: the one right to write in this process (held by every write transaction)."""
        return self._write_lock if self._write_lock is not None else nullcontext()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction, committed on success and rolled back on error."""
        async with self.exclusive(), self.writer.begin() as conn:
            yield conn

    @asynccontextmanager
    async def raw_write(self, single_statement: bool = False) -> AsyncIterator[Tx]:
        """A write transaction on the raw driver (``single_statement``: see ``PgRaw.transaction``)."""
        async with self.exclusive(), self.raw.transaction(single_statement) as tx:
            yield tx

    def raw_read(self) -> AbstractAsyncContextManager[Tx]:
        """A read on the raw driver (one snapshot on SQLite)."""
        return self.raw.read()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.reader.connect() as conn:
            yield conn

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """An ORM session inside one write transaction."""
        async with self.exclusive(), self.writer.begin() as conn:
            session = AsyncSession(bind=conn, expire_on_commit=False, autoflush=True)
            try:
                yield session
                await session.flush()
            finally:
                await session.close()

    @asynccontextmanager
    async def read_session(self) -> AsyncIterator[AsyncSession]:
        async with self.reader.connect() as conn:
            session = AsyncSession(bind=conn, expire_on_commit=False)
            try:
                yield session
            finally:
                await session.close()

    async def ping(self) -> bool:
        from sqlalchemy import text

        try:
            async with self.read() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    async def dispose(self) -> None:
        await self.raw.close()
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()


def null_pool_engine(url: str) -> AsyncEngine:
    """A throwaway engine (migrations, CLI checks) that keeps no connections."""
    return create_async_engine(url, poolclass=NullPool)


def valid_id(value: object) -> int | None:
    """An id from a path or body as an int, or None when it cannot exist."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value <= MAX_ID else None
    if isinstance(value, str) and value.isdigit() and value.isascii() and len(value) <= 19:
        number = int(value)
        return number if 0 < number <= MAX_ID else None
    return None
