"""NovaWrite's engine in-process, for the engine benchmarks (throughput, writes).

A fresh migrated database per run (a SQLite file in a temporary folder, or a
PostgreSQL database created and dropped around the run), the engine's parts
wired the way the app's lifespan wires them, and users and novels seeded in
bulk so that setting up never counts in a measurement. Everything runs on
uvloop, as ``novawrite serve`` does under uvicorn. What the engine tests'
kit already has (``tests.engine_kit``: a provider that asks no model) is reused.
"""

from __future__ import annotations

import asyncio
import os
import platform
import sqlite3
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Coroutine, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import uvloop
from sqlalchemy import insert
from tests.engine_kit import NullProvider as NullProvider  # the engine tests' provider that asks no model

from novawrite.db import migrate
from novawrite.db.engine import Database
from novawrite.db.models import Novel, User, utcnow
from novawrite.engine.bus import EventBus
from novawrite.engine.supervisor import Supervisor
from novawrite.generators.kind import TaskKind
from novawrite.providers.base import Provider
from novawrite.services.tasks import Tasks
from novawrite.settings import Settings

T = TypeVar("T")

#: The PostgreSQL server the benchmarks create their databases on (any database of it, to connect to).
PG_URL = os.environ.get("NOVAWRITE_BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
BACKENDS = ("sqlite", "postgres")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one measurement in a fresh uvloop event loop."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def pg_url(database: str) -> str:
    return PG_URL.rsplit("/", 1)[0] + "/" + database


def libpq_url(url: str) -> str:
    """The same PostgreSQL URL without SQLAlchemy's driver suffix (for asyncpg, psycopg)."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _pg_admin(statement: str) -> None:
    conn = await asyncpg.connect(libpq_url(PG_URL), timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextmanager
def fresh_database(backend: str, *, migrated: bool = True) -> Iterator[str]:
    """A new empty database for one run (migrated to head unless ``migrated=False``); gone afterwards.

    Call outside a running event loop (migrations run their own).
    """
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="nw-bench-") as folder:
            url = f"sqlite+aiosqlite:///{folder}/bench.sqlite3"
            if migrated:
                migrate.upgrade(url)
            yield url
        return
    name = f"nw_bench_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        url = pg_url(name)
        if migrated:
            migrate.upgrade(url)
        yield url
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _postgres_version() -> str:
    conn = await asyncpg.connect(libpq_url(PG_URL), timeout=10)
    try:
        return str(await conn.fetchval("SHOW server_version")).split()[0]
    finally:
        await conn.close()


def header(title: str, packages: Sequence[str], servers: Sequence[str], extra: Mapping[str, str]) -> str:
    """The lines above an in-process benchmark's tables, in bench.common's layout (which assumes a uvicorn server)."""
    cpu = "unknown CPU"
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    names = ["novawrite", "sqlalchemy", "aiosqlite", "asyncpg", "uvloop", *packages]
    found = [f"{name} {metadata.version(name)}" for name in names]
    found += [f"SQLite {sqlite3.sqlite_version}", f"PostgreSQL {run(_postgres_version())}", *servers]
    lines = [
        f"## {title}",
        "",
        f"- Run: {datetime.now(UTC):%Y-%m-%d %H:%M UTC}, `scripts/bench {' '.join([Path(sys.argv[0]).stem, *sys.argv[1:]])}`",
        f"- Machine: {cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; "
        "one process (uvloop), not pinned: the database servers share its cores",
        f"- Versions: Python {platform.python_version()}, " + ", ".join(found),
        f"- Load average at the end (1, 5, 15 min): {', '.join(Path('/proc/loadavg').read_text().split()[:3])}",
    ]
    lines += [f"- {name}: {value}" for name, value in extra.items()]
    return "\n".join(lines)


@dataclass
class Engine:
    """The parts the app's lifespan builds, minus the web: what a submit and a run go through."""

    settings: Settings
    db: Database
    bus: EventBus
    supervisor: Supervisor
    tasks: Tasks


@asynccontextmanager
async def running_engine(
    settings: Settings, kinds: Mapping[str, TaskKind], provider: Provider
) -> AsyncIterator[Engine]:
    db = Database(settings.database_url)
    bus = EventBus(settings.stream_queue_size)
    supervisor = Supervisor(settings, db, bus, provider, kinds)
    tasks = Tasks(supervisor.store, supervisor, dict(kinds), settings.max_unfinished_per_user)
    await supervisor.start()
    try:
        yield Engine(settings, db, bus, supervisor, tasks)
    finally:
        await supervisor.stop()
        bus.close_all()
        await db.dispose()


async def seed_novels(db: Database, users: int, novels: int, *, language: str = "zh") -> list[tuple[int, int]]:
    """``novels`` novels spread round-robin over ``users`` new users: [(user_id, novel_id), ...]."""
    now = utcnow()
    async with db.write() as conn:
        user_ids = [
            (
                await conn.execute(
                    insert(User)
                    .values(username=f"bench-{i}-{uuid.uuid4().hex[:6]}", password_hash="-", created_at=now)
                    .returning(User.id)
                )
            ).scalar_one()
            for i in range(users)
        ]
        rows = [
            {
                "user_id": user_ids[i % users],
                "title": f"Bench {i}",
                "genre": "",
                "synopsis": "",
                "language": language,
                "created_at": now,
                "updated_at": now,
            }
            for i in range(novels)
        ]
        result = await conn.execute(
            insert(Novel).returning(Novel.id, Novel.user_id, sort_by_parameter_order=True), rows
        )
        return [(row.user_id, row.id) for row in result]


async def bounded(awaitable: Awaitable[T], timeout: float, what: str) -> T:
    """Await with a deadline whose expiry says what was being waited for."""
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except TimeoutError:
        raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}") from None
