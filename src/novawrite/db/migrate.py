"""Schema migrations (Alembic, run programmatically) and SQLite backups.

The migration scripts live in the repository's top-level ``alembic/`` folder, so
``alembic upgrade head`` from the repository root and ``novawrite db upgrade``
run the same scripts.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from novawrite.db.engine import null_pool_engine

ROOT = Path(__file__).resolve().parents[3]


def alembic_config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision``. Call outside a running event loop."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


async def current_revision(url: str) -> str | None:
    engine = null_pool_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())
    finally:
        await engine.dispose()


def schema_is_current(url: str) -> bool:
    return asyncio.run(current_revision(url)) == head_revision(url)


def backup_sqlite(database: Path, destination: Path) -> None:
    """A consistent copy of a live SQLite database (the online backup API, safe under WAL)."""
    if not database.exists():
        raise FileNotFoundError(f"no SQLite database at {database}")
    destination.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        target = sqlite3.connect(destination)
        try:
            source.backup(target)
        finally:
            target.close()
    finally:
        source.close()
