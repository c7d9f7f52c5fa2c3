"""Engines and transactions for SQLite and PostgreSQL.

SQLite is tuned for one writing process with many readers: WAL, a busy timeout,
foreign keys on, and every write transaction started with ``BEGIN IMMEDIATE`` on
a single writer connection, so writers queue in this process instead of failing
with "database is locked" when a read transaction tries to upgrade. Reads use a
separate pool and never block on the writer (WAL).

On PostgreSQL reads and writes share one pool.

``raw`` runs the task engine's hot statements on the drivers themselves
(``novawrite.db.raw``). On SQLite its writes and the SQLAlchemy writer's share
one lock, so the two writer connections never wait on each other, and both
count towards the WAL checkpoints that run on a thread (``WalCheckpointer``):
no connection checkpoints inside its COMMIT.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, NullPool

from novawrite.db.raw import RawDatabase, SqlaTx, SqliteRaw, Tx, WalCheckpointer, raw_database, sqlite_pragmas

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
        sqlite_pragmas(cursor, SQLITE_BUSY_TIMEOUT_MS)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """The application's database and its ways in, one per need of each path.

    The raw driver (the task engine's hot statements, ``novawrite.engine.queries``):

    - ``raw_read()``: a read (one snapshot on SQLite).
    - ``raw_write(single_statement=False)``: a write transaction.

    SQLAlchemy (everything else):

    - ``read()`` / ``write()``: a Core connection, for a read / in a write transaction.
    - ``read_session()`` / ``session()``: an ORM session, for a read / in a write transaction.
    - ``session_then_raw(orm, raw)``: one write transaction holding an ORM session's changes and then raw SQL
      (or nothing, when the session touched nothing).

    ``writer`` and ``reader`` are SQLAlchemy's engines, there to be measured (tests, benchmarks), not written through.
    """

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
        #: Write transactions this process committed, on either path (``/metrics``, benchmarks).
        self.write_transactions = 0
        #: SQLite: runs the WAL checkpoints off the event loop (None on PostgreSQL).
        self.checkpointer: WalCheckpointer | None = None
        if isinstance(self.raw, SqliteRaw):
            self.checkpointer = self.raw.checkpointer
            self.checkpointer.write_lock = self._write_lock

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def _exclusive(self) -> asyncio.Lock | nullcontext[None]:
        """SQLite: the one right to write in this process (held by every write transaction, raw or not)."""
        return self._write_lock if self._write_lock is not None else nullcontext()

    def raw_read(self) -> AbstractAsyncContextManager[Tx]:
        """A read on the raw driver (one snapshot on SQLite)."""
        return self.raw.read()

    @asynccontextmanager
    async def raw_write(self, single_statement: bool = False) -> AsyncIterator[Tx]:
        """A write transaction on the raw driver (``single_statement``: see ``PgRaw.transaction``)."""
        async with self._exclusive(), self.raw.transaction(single_statement) as tx:
            yield tx
        self.write_transactions += 1

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.reader.connect() as conn:
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction, committed on success and rolled back on error."""
        async with self._exclusive(), self.writer.begin() as conn:
            yield conn
        self._wrote()

    @asynccontextmanager
    async def read_session(self) -> AsyncIterator[AsyncSession]:
        async with self.reader.connect() as conn:
            session = AsyncSession(bind=conn, expire_on_commit=False)
            try:
                yield session
            finally:
                await session.close()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """An ORM session inside one write transaction."""
        async with self._exclusive(), self.writer.begin() as conn:
            session = AsyncSession(bind=conn, expire_on_commit=False, autoflush=True)
            try:
                yield session
                await session.flush()
            finally:
                await session.close()
        self._wrote()

    async def session_then_raw(
        self, orm: Callable[[AsyncSession], Awaitable[None]], raw: Callable[[Tx], Awaitable[None]]
    ) -> bool:
        """``orm``'s changes and then ``raw``'s statements, in one write transaction; True then.

        ``orm`` gets a session whose transaction begins on first use. When it touched
        nothing, ``raw`` is not run and the answer is False: the caller writes on its own.
        """
        async with self._exclusive():
            session = AsyncSession(bind=self.writer, expire_on_commit=False, autoflush=True)
            try:
                await orm(session)
                await session.flush()
                if not session.in_transaction():
                    return False
                await raw(SqlaTx(await session.connection()))
                await session.commit()
                self._wrote()
                return True
            finally:
                await session.close()

    def _wrote(self) -> None:
        """A SQLAlchemy write transaction committed (the raw writer counts its own checkpoints)."""
        self.write_transactions += 1
        if self.checkpointer is not None:
            self.checkpointer.wrote()

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
