"""Plain SQL on the raw drivers, for the task engine's hot statements.

A statement through SQLAlchemy's async engine costs far more than the database
work it asks for (measured per write transaction: 1,295 µs through SQLAlchemy
and aiosqlite, 30 µs on ``sqlite3`` in the event loop; 1,105 against 217 µs on
asyncpg). The engine runs a few statements per task many times a second, so it
writes them in SQL once and runs them on the driver itself; everything else in
the application stays on SQLAlchemy.

One SQL text serves both databases: parameters are written ``$1, $2, ...``
(asyncpg's style; SQLite reads them as ``?1, ?2, ...``). Values cross as str,
int, bool, datetime and JSON text; the SQLite side stores datetimes in the same
text form SQLAlchemy does, so either layer reads what the other wrote.

SQLite: ``sqlite3`` connections used inline in the event loop (a statement is
tens of microseconds; a thread hand-off costs more than the work). A write
transaction holds ``Database``'s writer lock, the same lock the SQLAlchemy writer
takes, so the two never wait on each other's SQLite lock; a transaction begun
here never yields to the loop before its commit. When another *process* holds
the database's write lock, ``BEGIN IMMEDIATE`` fails at once and is retried
after an ``asyncio.sleep`` instead of blocking the loop in SQLite's busy wait.
No connection checkpoints the WAL by itself (``wal_autocheckpoint=0``): SQLite
would run the checkpoint inside the COMMIT that takes the WAL past 1,000 pages,
6-19 ms of the loop on the inline connection. ``WalCheckpointer`` runs them on a
thread of their own instead, one at a time, every ``WAL_CHECK_EVERY`` commits.

PostgreSQL: an asyncpg pool of its own (prepared statements are cached per
connection by asyncpg).
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg
import orjson
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

SQLITE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's SQLite DATETIME storage format
SQLITE_BUSY_SECONDS = 30.0
SQLITE_READ_BUSY_MS = 200
#: Commits (through either writer) between two WAL checkpoints: a few hundred pages of WAL at a time.
WAL_CHECK_EVERY = 100

log = logging.getLogger("novawrite.db")

#: A unique index refused a row (the driver's own exception types).
IntegrityError = (sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError)

_PARAM = re.compile(r"\$(\d+)")


class Tx(Protocol):
    """One transaction (or one read connection) on a raw driver."""

    dialect: str

    async def fetch(self, sql: str, *args: Any) -> list[Any]: ...

    async def fetchrow(self, sql: str, *args: Any) -> Any: ...

    async def execute(self, sql: str, *args: Any) -> int:
        """Run one statement; the number of rows it changed."""
        ...

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    async def fetchmany(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[Any]:
        """Run one statement for each row of arguments (PostgreSQL: one round trip, atomic); all rows returned."""
        ...


def json_text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def json_value(value: Any) -> Any:
    """A JSON column as read: text from the raw drivers, already decoded from SQLAlchemy's asyncpg."""
    return orjson.loads(value) if isinstance(value, (str, bytes)) else value


def time_value(value: Any) -> datetime | None:
    """A datetime column as read: text on SQLite (stored in UTC)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.strptime(value, SQLITE_TIME_FORMAT).replace(tzinfo=UTC)


# --- SQLite ----------------------------------------------------------------------------------

_sqlite_sql: dict[str, str] = {}


def _qmark(sql: str) -> str:
    converted = _sqlite_sql.get(sql)
    if converted is None:
        converted = _sqlite_sql[sql] = _PARAM.sub(r"?\1", sql)
    return converted


def _sqlite_args(args: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(a.astimezone(UTC).strftime(SQLITE_TIME_FORMAT) if isinstance(a, datetime) else a for a in args)


class SqliteTx:
    dialect = "sqlite"
    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        return self._conn.execute(_qmark(sql), _sqlite_args(args)).fetchall()

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        return self._conn.execute(_qmark(sql), _sqlite_args(args)).fetchone()

    async def execute(self, sql: str, *args: Any) -> int:
        return self._conn.execute(_qmark(sql), _sqlite_args(args)).rowcount

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(_qmark(sql), [_sqlite_args(r) for r in rows])

    async def fetchmany(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[Any]:
        statement = _qmark(sql)
        return [row for args in rows for row in self._conn.execute(statement, _sqlite_args(args)).fetchall()]


def sqlite_pragmas(cursor: Any, busy_ms: int) -> None:
    """The settings of every SQLite connection, ours and SQLAlchemy's (``cursor``: anything with ``execute``)."""
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Never inside a COMMIT (on the inline connection, that is in the event loop): WalCheckpointer's thread does it.
    cursor.execute("PRAGMA wal_autocheckpoint=0")


def _sqlite_connect(path: str, busy_ms: int) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    sqlite_pragmas(conn, busy_ms)
    return conn


def _locked(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in str(
        exc
    )


class WalCheckpointer:
    """The WAL's checkpoints, off the event loop: ``wrote()`` after each commit; every ``every``-th
    starts one on a thread, on a connection of its own, unless one is still running.

    A checkpoint is two ``PRAGMA wal_checkpoint(PASSIVE)``: the first copies the WAL into the
    database beside the writers; the second, holding ``write_lock`` (the process's writer lock,
    set by ``Database``), copies the few pages committed meanwhile. The WAL then holds nothing
    the database lacks, and the next write starts it over from its beginning: without the second,
    a steady stream of commits would leave every checkpoint a few pages short, and the WAL file
    would grow without end. PASSIVE never waits for a reader. ``close`` waits for the running
    one and ends with a TRUNCATE checkpoint, which leaves an empty WAL when nobody reads.
    """

    def __init__(self, path: str, every: int = WAL_CHECK_EVERY) -> None:
        self._path = path
        self.every = every
        self._writes = 0
        self._running: asyncio.Task[None] | None = None
        self._conn: sqlite3.Connection | None = None  # used by one thread at a time
        self._closed = False
        self.write_lock: asyncio.Lock | None = None
        #: Checkpoints run, and the WAL's frames the last one found (tests, diagnostics).
        self.checkpoints = 0
        self.last_wal_frames = 0

    def wrote(self) -> None:
        self._writes += 1
        if self._writes >= self.every and self._running is None and not self._closed:
            self._writes = 0
            self._running = asyncio.get_running_loop().create_task(self._checkpoint("PASSIVE"), name="wal checkpoint")

    async def _checkpoint(self, mode: str) -> None:
        try:
            await asyncio.to_thread(self._checkpoint_now, mode)
            if mode == "PASSIVE" and self.write_lock is not None:
                async with self.write_lock:
                    await asyncio.to_thread(self._checkpoint_now, mode)
            self.checkpoints += 1
        except sqlite3.Error:
            log.warning("WAL checkpoint (%s) failed", mode, exc_info=True)
        finally:
            self._running = None

    def _checkpoint_now(self, mode: str) -> None:
        """On the checkpoint thread."""
        if self._conn is None:
            self._conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA busy_timeout=0")  # never waits: a busy checkpoint is skipped
        _busy, frames, _copied = self._conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        self.last_wal_frames = frames

    async def close(self) -> None:
        self._closed = True
        running = self._running
        if running is not None:
            await asyncio.shield(running)
        await self._checkpoint("TRUNCATE")
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class SqliteRaw:
    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        self._path = path
        self._writer: sqlite3.Connection | None = None
        self._readers: list[sqlite3.Connection] = []
        self._closed = False
        self.checkpointer = WalCheckpointer(path)

    @asynccontextmanager
    async def transaction(self, single_statement: bool = False) -> AsyncIterator[Tx]:
        """A write transaction; the caller holds the database's writer lock.

        (``single_statement`` matters on PostgreSQL only: here the engine's one-statement
        writes are two statements, see ``TaskStore``.)
        """
        conn = self._writer
        if conn is None:
            conn = self._writer = _sqlite_connect(self._path, 0)
        await self._begin(conn)
        try:
            yield SqliteTx(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # also when COMMIT itself failed
                conn.execute("ROLLBACK")
            raise
        self.checkpointer.wrote()

    @staticmethod
    async def _begin(conn: sqlite3.Connection) -> None:
        delay, deadline = 0.001, time.monotonic() + SQLITE_BUSY_SECONDS
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:  # another process writes
                if not _locked(exc) or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        """A read snapshot (WAL: never waits on writers)."""
        conn = self._readers.pop() if self._readers else _sqlite_connect(self._path, SQLITE_READ_BUSY_MS)
        conn.execute("BEGIN")
        try:
            yield SqliteTx(conn)
        finally:
            conn.execute("COMMIT")
            if self._closed:
                conn.close()
            else:
                self._readers.append(conn)

    async def close(self) -> None:
        self._closed = True
        for conn in [*self._readers, *([self._writer] if self._writer else [])]:
            conn.close()
        self._readers.clear()
        self._writer = None
        await self.checkpointer.close()


# --- PostgreSQL ------------------------------------------------------------------------------


def asyncpg_dsn(url: str) -> str:
    """asyncpg's DSN for a SQLAlchemy URL (``postgresql+asyncpg://...``), for every connection of our own."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class PgTx:
    dialect = "postgresql"
    __slots__ = ("_conn",)

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        rows: list[Any] = await self._conn.fetch(sql, *args)
        return rows

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        return await self._conn.fetchrow(sql, *args)

    async def execute(self, sql: str, *args: Any) -> int:
        status = await self._conn.execute(sql, *args)
        tail = status.rpartition(" ")[2]
        return int(tail) if tail.isdigit() else 0

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._conn.executemany(sql, rows)

    async def fetchmany(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[Any]:
        records: list[Any] = await self._conn.fetchmany(sql, rows)
        return records


async def _reset(conn: asyncpg.Connection) -> None:
    # Only this module's statements run on these connections: no LISTEN, no
    # session settings, so the default reset (a round trip per release) is not needed.
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


class PgRaw:
    dialect = "postgresql"

    def __init__(self, url: str, size: int) -> None:
        self._dsn = asyncpg_dsn(url)
        self._size = size
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def _open(self) -> asyncpg.Pool:
        async with self._opening:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(self._dsn, min_size=1, max_size=self._size, reset=_reset)
            return self._pool

    @asynccontextmanager
    async def transaction(self, single_statement: bool = False) -> AsyncIterator[Tx]:
        """A transaction; with ``single_statement``, none is begun: the one statement
        the caller runs is its own transaction (two round trips fewer)."""
        pool = self._pool or await self._open()
        async with pool.acquire() as conn:
            if single_statement:
                yield PgTx(conn)
            else:
                async with conn.transaction():
                    yield PgTx(conn)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        pool = self._pool or await self._open()
        async with pool.acquire() as conn:
            yield PgTx(conn)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


# --- the same SQL inside a SQLAlchemy transaction ------------------------------------------


class SqlaTx:
    """A SQLAlchemy transaction seen as a ``Tx``: for statements that must share it
    (completing a task in the transaction that applied its result)."""

    __slots__ = ("_conn", "dialect")

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self.dialect = conn.dialect.name

    def _statement(self, sql: str, args: Sequence[Any]) -> tuple[str, tuple[Any, ...]]:
        if self.dialect == "sqlite":
            return _qmark(sql), _sqlite_args(args)
        return sql, tuple(args)

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        result = await self._conn.exec_driver_sql(*self._statement(sql, args))
        return [_Row(row) for row in result]

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def execute(self, sql: str, *args: Any) -> int:
        return (await self._conn.exec_driver_sql(*self._statement(sql, args))).rowcount

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        statement = _qmark(sql) if self.dialect == "sqlite" else sql
        convert = _sqlite_args if self.dialect == "sqlite" else tuple
        await self._conn.exec_driver_sql(statement, [convert(r) for r in rows])

    async def fetchmany(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[Any]:
        return [row for args in rows for row in await self.fetch(sql, *args)]


class _Row:
    """A SQLAlchemy row read like the drivers' rows: by position or by column name."""

    __slots__ = ("_row",)

    def __init__(self, row: Any) -> None:
        self._row = row

    def __getitem__(self, key: int | str) -> Any:
        return self._row._mapping[key] if isinstance(key, str) else self._row[key]


RawDatabase = SqliteRaw | PgRaw


def raw_database(url: str, pool_size: int) -> RawDatabase:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database
        if not path or path == ":memory:":
            raise ValueError("NovaWrite needs an SQLite database file, not an in-memory database")
        return SqliteRaw(path)
    return PgRaw(url, pool_size)
