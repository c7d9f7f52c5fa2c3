"""SQLite's WAL checkpoints run on a thread of their own, never inside a COMMIT in the event loop.

What tells a checkpoint happened: the WAL header's checkpoint sequence number (bytes
12-15), which goes up each time a writer restarts the WAL after a checkpoint copied
all of it into the database, and the WAL file's length, which grows by a frame per
page written until the WAL restarts.
"""

from __future__ import annotations

import asyncio
import shutil
import struct
from pathlib import Path

import pytest
from sqlalchemy import text

from novawrite.db.engine import Database
from tests.waiting import until

#: SQLite's own automatic checkpoint threshold: the WAL pages a COMMIT would checkpoint past.
SQLITE_AUTOCHECKPOINT_PAGES = 1000
ROW = b"x" * 4000  # about one page per row


@pytest.fixture
def database_url(sqlite_template: Path, tmp_path: Path) -> str:
    """WAL checkpoints are SQLite's: these tests run on it alone."""
    path = tmp_path / "novawrite.sqlite3"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


def wal_of(database_url: str) -> Path:
    return Path(database_url.removeprefix("sqlite+aiosqlite:///") + "-wal")


def wal_restarts(wal: Path) -> int:
    """The WAL header's checkpoint sequence number."""
    with wal.open("rb") as f:
        header = f.read(32)
    return int(struct.unpack(">I", header[12:16])[0])


def wal_frames(wal: Path) -> int:
    """How many frames the WAL file holds (the longest it has been since it was created)."""
    page_size = struct.unpack(">I", wal.read_bytes()[8:12])[0]
    return (wal.stat().st_size - 32) // (page_size + 24)


async def write_rows(db: Database, rows: int, *, yield_between: bool) -> None:
    """``rows`` write transactions on the inline (raw) connection, one row each."""
    for _ in range(rows):
        async with db.raw_write() as tx:
            await tx.execute("INSERT INTO scratch (body) VALUES ($1)", ROW)
        if yield_between:
            await asyncio.sleep(0)  # as a server does between requests: the checkpoint task gets its turn


async def make_scratch(db: Database) -> None:
    async with db.raw_write() as tx:
        await tx.execute("CREATE TABLE scratch (id INTEGER PRIMARY KEY, body BLOB)")


async def test_no_connection_checkpoints_inside_its_commit(database_url: str) -> None:
    db = Database(database_url)
    try:
        assert db.checkpointer is not None
        db.checkpointer.every = 10**9  # the thread never runs: any checkpoint would be a COMMIT's
        await make_scratch(db)
        wal = wal_of(database_url)
        restarts = wal_restarts(wal)
        await write_rows(db, SQLITE_AUTOCHECKPOINT_PAGES + 500, yield_between=False)
        # SQLite's default would have checkpointed at 1,000 pages inside a COMMIT, on the loop's thread,
        # and the next write would have restarted the WAL.
        assert wal_frames(wal) > SQLITE_AUTOCHECKPOINT_PAGES + 500
        assert wal_restarts(wal) == restarts
        assert db.checkpointer.checkpoints == 0
        # The SQLAlchemy connections (aiosqlite's threads) do not checkpoint either.
        async with db.write() as conn:
            assert (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar() == 0
        async with db.read() as conn:
            assert (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar() == 0
    finally:
        await db.dispose()


async def test_the_checkpoint_thread_keeps_the_wal_short_and_truncates_it_at_close(database_url: str) -> None:
    db = Database(database_url)
    wal = wal_of(database_url)
    try:
        assert db.checkpointer is not None
        await make_scratch(db)
        restarts = wal_restarts(wal)
        await write_rows(db, 3000, yield_between=True)

        async def restarted() -> bool:
            await write_rows(db, 1, yield_between=True)  # a WAL restarts at the write after a whole checkpoint
            return wal_restarts(wal) > restarts

        await until(restarted, 10, "the WAL restarts after a checkpoint")
        # one per 100 commits, unless one still ran at the 100th
        assert db.checkpointer.checkpoints >= 10, db.checkpointer.checkpoints
        # 3,000 rows of a page each (9,000 frames with their index and table pages); the WAL never held a third
        assert wal_frames(wal) < 3000, wal_frames(wal)
    finally:
        await db.dispose()
    assert not wal.exists() or wal.stat().st_size == 0, "no final checkpoint at close"
