"""Schema migrations (Alembic, run programmatically) and SQLite backups.

The migration scripts' source is the repository's top-level ``alembic/`` folder,
so ``alembic upgrade head`` from the repository root and ``novawrite db upgrade``
run the same scripts. A built package (wheel, ``pip install .``) carries a copy of
them in ``novawrite/migrations/`` (setup.py makes it), which is used when present;
an editable install has none and uses the checkout's ``alembic/``. No alembic.ini
is read here: the configuration is made in code.
"""

from __future__ import annotations

import asyncio
import sqlite3
from functools import cache
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from novawrite.db.engine import null_pool_engine


class MigrationsNotFound(RuntimeError):
    pass


@cache
def script_location() -> Path:
    """The folder of the migration scripts: the package's copy, else the checkout's ``alembic/``."""
    packaged = resources.files("novawrite") / "migrations"
    if isinstance(packaged, Path) and (packaged / "env.py").is_file():
        return packaged
    checkout = Path(__file__).resolve().parents[3] / "alembic"  # src/novawrite/db/migrate.py -> the repository
    if (checkout / "env.py").is_file():
        return checkout
    raise MigrationsNotFound(
        f"no migration scripts: neither {packaged} (an installed package) nor {checkout} (a checkout) exists; "
        "reinstall NovaWrite from a wheel built with `python -m build`"
    )


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location()))
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
